"""Stage 1: track calls. Events keyed by call id in, facts keyed by queue out (to stage 2).

Per owned partition of `call-events`, a batch at a time (`handle`, called by the bulk consumer): a
`CallTracker` over an in-memory mirror of the partition's calls, written back to the call table once
per key per batch. Invalid, rejected and late events go to the dead-letter topic with their reason;
nothing stops the worker. Each partition's stream time is published to every stage-2 partition, so
stage 2 can hold a watermark.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamer.app import records as wire
from streamer.app.health import Health
from streamer.core import events as ev
from streamer.core.calls import CONTACT, CallState
from streamer.core.config import Config
from streamer.core.partitioning import partition_of
from streamer.core.tracker import DUPLICATE, INVALID, PROCESSED, CallTracker

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Outputs:
    """Where stage 1's records go: facts to `call-outcomes` (partitioned by queue, as Kafka's default
    partitioner would), contacts also to `call-contacts` (by customer), dead letters to the DLQ, rows
    through `write(partition, changes)`; `batches()`
    gathers records to deliver together (streamer/app/bulk.py `Batches`)."""

    outcomes_topic: str
    outcome_partitions: int
    contacts_topic: str
    contact_partitions: int
    dlq_topic: str
    dlq_partitions: int
    batches: Callable[[], Any]
    write: Callable[[int, dict[str, bytes | None]], Awaitable[None]]


CALL_ROW = "c:"
CLOCK_ROW = "t:"


class DirtyDict(dict):
    """A dict that remembers which keys were set or deleted since the last `take_changes()`, and their
    value before. Reads are a plain dict's; only `d[k] = v` and `del d[k]` are tracked (the tracker
    uses nothing else to change its store)."""

    def __init__(self, data: dict[str, CallState]) -> None:
        super().__init__(data)
        self.before: dict[str, CallState | None] = {}

    def __setitem__(self, key: str, value: CallState) -> None:
        if key not in self.before:
            self.before[key] = self.get(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self.before:
            self.before[key] = self.get(key)
        super().__delitem__(key)

    def touch(self, key: str) -> None:
        """Mark `key` to be written at the next flush, with its current value as the one before."""
        if key not in self.before:
            self.before[key] = self.get(key)

    def take_changes(self) -> list[tuple[str, CallState | None, CallState | None]]:
        """(key, value now or None when deleted, value before the changes) of every key changed."""
        changes = [(key, self.get(key), before) for key, before in self.before.items()]
        self.before = {}
        return changes


@dataclass
class BatchOutput:
    """What one partition's batch produced: facts and agent states per queue, dead letters by index, and
    the tracker that holds its changes until `flush`."""

    tracker: CallTracker
    facts: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))
    contacts: list[tuple[str, list]] = field(default_factory=list)  # (customer id, fact) for the customer stage
    agents: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))
    dead: list[tuple[int, str, str]] = field(default_factory=list)


class CallStage:
    """Stage 1 over its table, where every row records the input offset of the batch that wrote it:

      "c:" + call id     [partition, offset, call state or null (forgotten), the state before that write]
      "t:" + partition   [partition, offset, stream time]: every record up to `offset` is in the rows

    A batch's facts and dead letters are delivered before its rows are written, and the partition's
    "t:" row is written last, so after a crash a row newer than its partition's "t:" row belongs to a
    batch whose writes did not all land: recovery puts it back to its state before, and processing
    resumes after the "t:" offset with that offset's stream time. The replay then decides every event
    as the first run did and sends the same facts again, which stage 2 counts once (`QueueState`).
    """

    def __init__(self, config: Config, rows: Callable[[int], Iterable[tuple[str, bytes]]], partitions: int,
                 health: Health) -> None:
        """`rows(partition)`: the call table's rows of a partition, as stored."""
        self.config = config
        self.rows = rows
        self.partitions = partitions
        self.health = health
        self.trackers: dict[int, CallTracker] = {}
        self.published: dict[int, int] = {}  # partition -> stream time whose facts have all been sent
        self.last_event_wall: dict[int, float] = {}
        self.applied: dict[int, int] = {}  # partition -> offset of the last record in the table's rows
        self.forgotten: dict[int, set[str]] = {}  # partition -> calls marked forgotten, to delete at next flush

    def tracker(self, partition: int) -> CallTracker:
        tracker = self.trackers.get(partition)
        if tracker is None:
            started = time.monotonic()
            rows = [(key, orjson.loads(raw)) for key, raw in self.rows(partition)]
            clock = next((row for key, row in rows if key == CLOCK_ROW + str(partition)), None)
            _, applied, stream_time = clock if clock is not None else (partition, -1, 0)
            calls: dict[str, CallState] = {}
            rolled_back: list[str] = []
            forgotten: set[str] = set()
            for key, row in rows:
                if not key.startswith(CALL_ROW):
                    continue
                row_partition, offset, state, before = row
                if row_partition != partition:
                    continue
                call_id = key[len(CALL_ROW):]
                if offset > applied:
                    state = before
                    rolled_back.append(call_id)
                if state is None:
                    forgotten.add(call_id)
                else:
                    calls[call_id] = CallState.from_list(state)
            store = DirtyDict(calls)
            for call_id in rolled_back:
                store.touch(call_id)  # rewrite the row at the next flush, so no newer version remains
            tracker = CallTracker(self.config, store)
            tracker.rebuild_schedule()
            tracker.resume(stream_time)
            self.trackers[partition] = tracker
            self.applied[partition] = applied
            self.forgotten[partition] = forgotten - set(rolled_back)
            log.info("stage 1 partition %d: recovered %d call(s) in %.2f s, stream time %s, resuming after "
                     "offset %d (%d call(s) rolled back to it)", partition, len(calls), time.monotonic() - started,
                     ev.format_ts(stream_time) if stream_time else "none", applied, len(rolled_back))
        return tracker

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.trackers.pop(partition, None)
            self.published.pop(partition, None)
            self.last_event_wall.pop(partition, None)
            self.applied.pop(partition, None)
            self.forgotten.pop(partition, None)

    def process(self, partition: int, records: list[tuple[int, bytes | None]]) -> BatchOutput:
        """Run one partition's records (offset, value), in order, through its tracker.

        Records already in the table's rows (replayed after a restart) are skipped: their facts and
        dead letters went out before the rows were written."""
        tracker = self.tracker(partition)
        self.last_event_wall[partition] = time.monotonic()
        applied = self.applied[partition]
        out = BatchOutput(tracker)
        count = self.health.count
        now_ms = time.time_ns() // 1_000_000
        for index, (offset, value) in enumerate(records):
            if offset <= applied:
                continue
            try:
                event = ev.parse_event(value if value is not None else b"")
            except ev.InvalidEvent as exc:
                count(INVALID, exc.reason)
                out.dead.append((index, exc.reason, exc.detail))
                continue
            outcome = tracker.process(event, now_ms)
            count(outcome.result, outcome.reason, event.ts)
            if event.type == ev.AGENT_STATE:
                if outcome.result == PROCESSED:
                    for queue in event.queues or ():
                        out.agents[queue].append([event.agent_id, event.state, event.ts])
            else:
                for fact in outcome.facts:
                    data = fact.to_list()
                    out.facts[fact.queue].append(data)
                    if fact.kind == CONTACT:
                        out.contacts.append((fact.customer_id, data))  # type: ignore[arg-type]
                for fact in tracker.advance():
                    out.facts[fact.queue].append(fact.to_list())
            if outcome.result not in (PROCESSED, DUPLICATE):
                out.dead.append((index, outcome.reason, f"{outcome.result}: {outcome.reason}"))
        return out

    def flush(self, partition: int, offset: int, output: BatchOutput) -> dict[str, bytes | None] | None:
        """The table writes that record the batch: the partition's changed calls, then its "t:" row
        (everything up to `offset` is done), in the order they must land. None when the partition was
        revoked since `process` (its new owner reads the batch again).

        Persist them only once the batch's facts and dead letters are delivered."""
        tracker = self.trackers.get(partition)
        if tracker is not output.tracker:
            return None
        offset = max(offset, self.applied[partition])
        calls = tracker.store
        changes: dict[str, bytes | None] = {}
        for call_id in self.forgotten.get(partition, set()) - calls.keys():
            changes[CALL_ROW + call_id] = None
        forgotten = set()
        for call_id, state, before in tracker.store.take_changes():  # type: ignore[attr-defined]
            if state is None and before is None:
                changes[CALL_ROW + call_id] = None
                continue
            changes[CALL_ROW + call_id] = orjson.dumps([partition, offset, state.to_list() if state else None,
                                                        before.to_list() if before else None])
            if state is None:
                forgotten.add(call_id)  # kept one flush longer, so an unfinished next batch can roll back to it
        changes[CLOCK_ROW + str(partition)] = orjson.dumps([partition, offset, tracker.stream_time])
        self.applied[partition] = offset
        self.forgotten[partition] = forgotten
        return changes

    async def handle(self, partition: int, records: list[Any], out: Outputs) -> None:
        """One partition batch of `call-events` records, end to end: facts per queue and dead letters
        delivered first, then the call table's rows. A crash anywhere in between leaves rows that
        recovery rolls back to the last complete batch, whose replay sends the same facts again."""
        output = self.process(partition, [(record.offset, record.value) for record in records])
        batches = out.batches()
        for queue in output.facts.keys() | output.agents.keys():
            key = queue.encode()
            batches.add(out.outcomes_topic, partition_of(key, out.outcome_partitions), key,
                        wire.batch_record(output.facts.get(queue, []), output.agents.get(queue, [])))
        for customer_id, contact in output.contacts:
            key = customer_id.encode()
            batches.add(out.contacts_topic, partition_of(key, out.contact_partitions), key,
                        wire.contact_record(contact))
        for index, reason, detail in output.dead:
            record = records[index]
            dlq_partitions = out.dlq_partitions
            target = partition_of(record.key, dlq_partitions) if record.key else record.partition % dlq_partitions
            batches.add(out.dlq_topic, target, record.key, record.value, wire.dead_letter_headers(
                reason, detail, record.topic, record.partition, record.offset))
        await batches.deliver()
        changes = self.flush(partition, records[-1].offset, output)
        if changes is not None:
            await out.write(partition, changes)
            self.published[partition] = output.tracker.stream_time

    def progress(self, assigned: set[int], idle_seconds: float) -> list[tuple[int, int | None, bool]]:
        """(partition, stream time, idle) of every assigned partition, for stage 2's watermark.

        The stream time is the one whose facts have all been sent. A partition with no event for
        `idle_seconds` of wall-clock time (or none yet) is idle: stage 2 leaves it out of the minimum,
        as Flink does with idle sources, so a quiet partition cannot hold every interval open.
        """
        now = time.monotonic()
        result = []
        for partition in sorted(assigned):
            stream_time = self.published.get(partition)
            idle = stream_time is None or now - self.last_event_wall.get(partition, 0.0) >= idle_seconds
            result.append((partition, stream_time, idle))
        return result
