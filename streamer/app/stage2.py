"""Stage 2: aggregate per queue. Facts keyed by queue in, a partition batch at a time (`handle`, called
by the bulk consumer); minute buckets, totals, the live queue and agents kept per owned queue (a
`QueueState` in memory, changes written to tables once per key per batch); closed intervals out.

Time here is a watermark: the minimum stream time over every stage-1 partition, so an interval never
closes only because one upstream partition ran ahead of the others. A queue idle for the idle period
(wall clock) closes its intervals anyway, so quiet queues and the end of a replay still close.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamer.app import records
from streamer.app.health import Health
from streamer.app.progress import UpstreamProgress
from streamer.core import counters
from streamer.core.calls import ENTERED, Fact
from streamer.core.config import Config, parse_rollup_key
from streamer.core.partitioning import partition_of
from streamer.core.queues import QueueState
from streamer.core.tracker import LATE

PAST_RETENTION = "past_retention"  # a fact for a minute already folded into the totals' base
# Row kinds of the queue-state table; keys are QUEUE, KIND and ID joined by a unit separator, which no
# queue name can hold (names are printable), so any id parses back.
SEP = "\x1f"
BUCKET, BASE, WAITING, AGENT = "m", "base", "w", "a"


def row_key(queue: str, kind: str, ident: object = "") -> str:
    return f"{queue}{SEP}{kind}{SEP}{ident}"

log = logging.getLogger(__name__)


@dataclass
class PendingWrites:
    """Table keys changed since the last flush; a waiting entry added and removed within one batch
    never reaches the table."""

    buckets: set[tuple[str, int]] = field(default_factory=set)
    bases: set[str] = field(default_factory=set)
    waiting_added: set[tuple[str, str]] = field(default_factory=set)
    waiting_new: set[tuple[str, str]] = field(default_factory=set)  # entered in this batch
    waiting_removed: set[tuple[str, str]] = field(default_factory=set)
    agents: set[tuple[str, str]] = field(default_factory=set)
    pruned: set[tuple[str, int]] = field(default_factory=set)


class QueueStage:
    def __init__(self, config: Config, rows: Callable[[int], Iterable[tuple[str, bytes]]],
                 upstream_partitions: int, partitions: int, health: Health) -> None:
        """`rows(partition)`: a partition's rows of the queue-state table, as stored. One table, so one
        changelog partition holds a batch's writes in the order they were made:

          QUEUE␟m␟MINUTE   [counts, keys of the facts counted]
          QUEUE␟base␟      [counts folded away, first minute kept]
          QUEUE␟w␟VISIT    [enqueued ms, kind]: a caller or callback marker waiting
          QUEUE␟a␟AGENT    the agent's state
        """
        self.config = config
        self.rows = rows
        self.upstream_partitions = upstream_partitions
        self.partitions = partitions
        self.health = health
        self.owned: dict[int, dict[str, QueueState]] = {}  # partition -> queue -> state
        self.progress: dict[int, UpstreamProgress] = {}  # partition -> what the upstream stages published
        self.pending: dict[int, PendingWrites] = {}
        self.last_fact_wall: dict[str, float] = {}
        self.applied: dict[int, int] = {}  # partition -> offset of the last record applied and flushed
        self.sending: Counter[str] = Counter()  # queue -> intervals handed to the producer, not yet delivered
        self._next_prune: dict[str, int] = {}

    # --- ownership ------------------------------------------------------------------------------

    def queues(self) -> dict[str, QueueState]:
        """Every queue this worker owns now, groups' and tenants' roll-ups included."""
        return {q: s for states in self.owned.values() for q, s in states.items()}

    def plain_queues(self) -> dict[str, QueueState]:
        """The queues this worker owns now, without the roll-ups (what the per-queue pages show)."""
        return {q: s for q, s in self.queues().items() if parse_rollup_key(q) is None}

    def partition_states(self, partition: int) -> dict[str, QueueState]:
        states = self.owned.get(partition)
        if states is None:
            states = self.owned[partition] = self._recover(partition)
        return states

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            for queue in self.owned.pop(partition, {}):
                self.last_fact_wall.pop(queue, None)
                self.sending.pop(queue, None)
            self.progress.pop(partition, None)
            self.pending.pop(partition, None)
            self.applied.pop(partition, None)

    def _recover(self, partition: int) -> dict[str, QueueState]:
        started = time.monotonic()
        states: dict[str, QueueState] = {}

        def state_of(queue: str) -> QueueState | None:
            if partition_of(queue, self.partitions) != partition:
                return None
            state = states.get(queue)
            if state is None:
                state = states[queue] = QueueState(queue, self.config.for_queue(queue))
            return state

        for key, raw in self.rows(partition):
            queue, kind, ident = key.split(SEP, 2)
            if (state := state_of(queue)) is None:
                continue
            if kind == BUCKET:
                state.restore_bucket(int(ident), orjson.loads(raw))
            elif kind == BASE:
                state.restore_base(orjson.loads(raw))
            elif kind == WAITING:
                enqueued, waiting_kind = orjson.loads(raw)
                state.waiting[ident] = (enqueued, waiting_kind)
            elif kind == AGENT:
                state.agents[ident] = raw.decode()
        pending = self.pending.setdefault(partition, PendingWrites())
        for queue, state in states.items():
            pending.pruned.update((queue, minute) for minute in state.finish_restore())
        if states:
            log.info("stage 2 partition %d: recovered %d queue(s) in %.2f s: %s", partition, len(states),
                     time.monotonic() - started, ", ".join(sorted(states)))
        return states

    # --- processing -----------------------------------------------------------------------------

    def handle_record(self, key: str, value: bytes, partition: int) -> None:
        """Apply one record in memory; its table writes wait for `flush(partition)`."""
        states = self.partition_states(partition)
        record = records.decode(value)
        if record["k"] == records.PROGRESS:
            progress = self.progress.get(partition)
            if progress is None:
                progress = self.progress[partition] = UpstreamProgress(self.upstream_partitions)
            progress.update(record["p"], record["st"], bool(record.get("idle")))
            return
        queue = key
        state = states.get(queue)
        if state is None:
            state = states[queue] = QueueState(queue, self.config.for_queue(queue))
        pending = self.pending[partition]
        for agent_id, agent_state, ts in record.get("a", ()):
            state.set_agent(agent_id, agent_state, ts)
            pending.agents.add((queue, agent_id))
        facts = record.get("f")
        if not facts:
            return
        latest = 0
        for data in facts:
            fact = Fact.from_list(data)
            changes = state.apply(fact)
            if changes.bucket is not None:
                pending.buckets.add((queue, changes.bucket))
            elif changes.past_retention:
                self.health.count(LATE, PAST_RETENTION, fact.ts)
            if changes.waiting_added is not None:
                entry = (queue, changes.waiting_added)
                pending.waiting_added.add(entry)
                if fact.kind == ENTERED:
                    pending.waiting_new.add(entry)
            if changes.waiting_removed is not None:
                entry = (queue, changes.waiting_removed)
                pending.waiting_added.discard(entry)
                if entry in pending.waiting_new:
                    pending.waiting_new.discard(entry)  # never written: nothing to delete
                else:
                    pending.waiting_removed.add(entry)
            latest = max(latest, fact.ts)
        self.last_fact_wall[queue] = time.monotonic()
        self._prune(state, latest, pending)

    def _prune(self, state: QueueState, now_ms: int, pending: PendingWrites) -> None:
        if now_ms < self._next_prune.get(state.queue, 0):
            return
        self._next_prune[state.queue] = now_ms + 3600 * 1000
        kept_from = state.kept_from
        for minute in state.prune(now_ms):
            pending.pruned.add((state.queue, minute))
            pending.buckets.discard((state.queue, minute))
        if state.kept_from != kept_from:
            pending.bases.add(state.queue)

    def flush(self, partition: int) -> dict[str, bytes | None]:
        """The queue-state rows changed in the partition since the last flush, one write per key, in the
        order they must land: the live queue and agents first (a bucket row persisted means its facts'
        waiting changes are too, so a replay that finds a fact counted can skip them), then the buckets,
        a prune's base before its deletes."""
        pending = self.pending.get(partition)
        if pending is None:
            return {}
        states = self.owned[partition]
        changes: dict[str, bytes | None] = {}
        for queue, visit in pending.waiting_added:
            entry = states[queue].waiting.get(visit)
            if entry is not None:
                changes[row_key(queue, WAITING, visit)] = orjson.dumps(entry)
        for queue, visit in pending.waiting_removed:
            changes[row_key(queue, WAITING, visit)] = None
        for queue, agent in pending.agents:
            agent_state = states[queue].agents.get(agent)
            changes[row_key(queue, AGENT, agent)] = None if agent_state is None else agent_state.encode()
        for queue in pending.bases:
            changes[row_key(queue, BASE)] = orjson.dumps(states[queue].base_row())
        for queue, minute in pending.buckets:
            changes[row_key(queue, BUCKET, minute)] = orjson.dumps(states[queue].bucket_row(minute))
        for queue, minute in pending.pruned:
            changes[row_key(queue, BUCKET, minute)] = None
        self.pending[partition] = PendingWrites()
        return changes

    async def handle(self, partition: int, records: list[Any],
                     write: Callable[[int, dict[str, bytes | None]], Awaitable[None]]) -> None:
        """One partition batch of `call-outcomes` records: applied in memory, then the table written."""
        for record in records:
            key = record.key
            self.handle_record(key.decode() if key is not None else "", record.value, partition)
        await write(partition, self.flush(partition))
        self.applied[partition] = records[-1].offset

    # --- closing intervals ----------------------------------------------------------------------

    def watermark(self, partition: int) -> int | None:
        """Minimum stream time over the active upstream partitions; None until every one has reported."""
        progress = self.progress.get(partition)
        return progress.watermark() if progress is not None else None

    def is_idle(self, queue: str, idle_seconds: float, now: float | None = None) -> bool:
        """No fact for the queue for `idle_seconds` of wall clock: its intervals close without waiting
        for the watermark."""
        now = time.monotonic() if now is None else now
        return now - self.last_fact_wall.get(queue, 0.0) >= idle_seconds

    def due_intervals(self, idle_seconds: float) -> list[tuple[str, int, str, dict[str, Any]]]:
        """Closed intervals to write now, as (queue, start, key, document). Each counts as sending until
        `delivered` says how its write went."""
        out = []
        now = time.monotonic()
        grace = self.config.limits.grace_ms
        for partition, states in self.owned.items():
            watermark = self.watermark(partition)
            for queue, state in states.items():
                for start in state.due_intervals(watermark, grace, self.is_idle(queue, idle_seconds, now)):
                    state.dirty.discard(start)
                    if not counters.is_empty(state.interval_counts(start)):
                        block = state.closed_interval(start)
                        out.append((queue, start, f"{queue}|{block['start']}", block))
                        self.sending[queue] += 1
        return out

    def delivered(self, queue: str, start: int, ok: bool) -> None:
        """The write of an interval from `due_intervals` ended; a failed one is due again (the topic must
        end with every interval's newest counts)."""
        if self.sending[queue] > 0:
            self.sending[queue] -= 1
        state = self.queues().get(queue)
        if not ok and state is not None:
            state.dirty.add(start)

    def partition_pending_intervals(self, partition: int) -> int:
        """Intervals of the partition's queues, groups and tenants not on the intervals topic yet."""
        return sum(len(state.dirty) + self.sending.get(queue, 0)
                   for queue, state in self.owned.get(partition, {}).items())

    def pending_intervals(self, queue: str) -> int:
        """Intervals of the queue whose newest counts are not on the intervals topic yet."""
        state = self.queues().get(queue)
        return (len(state.dirty) if state is not None else 0) + self.sending.get(queue, 0)
