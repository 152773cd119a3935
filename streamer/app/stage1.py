"""Stage 1: track calls. Events keyed by call id in, facts keyed by queue out (to stage 2).

Per owned partition of `call-events`: a `CallTracker` over an in-memory mirror of the partition's
calls, written back to the Faust table once per key per batch. Invalid, rejected and late events go
to the dead-letter topic with their reason; nothing stops the worker. Each partition's stream time is
published to every stage-2 partition, so stage 2 can hold a watermark.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from streamer.app.health import Health
from streamer.core import events as ev
from streamer.core.calls import CallState
from streamer.core.config import Config
from streamer.core.tracker import DUPLICATE, INVALID, PROCESSED, CallTracker

log = logging.getLogger(__name__)


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (murmur2, as the Java client and aiokafka)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class DirtyDict(MutableMapping[str, CallState]):
    """A dict that remembers which keys changed since the last `take_changes()`."""

    def __init__(self, data: dict[str, CallState]) -> None:
        self.data = data
        self.changed: set[str] = set()

    def __getitem__(self, key: str) -> CallState:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __setitem__(self, key: str, value: CallState) -> None:
        self.data[key] = value
        self.changed.add(key)

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.changed.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def values(self):  # type: ignore[override]
        return self.data.values()

    def take_changes(self) -> list[tuple[str, CallState | None]]:
        changes = [(key, self.data.get(key)) for key in self.changed]
        self.changed = set()
        return changes


@dataclass
class BatchOutput:
    """What one partition's batch produced: facts and agent states per queue, dead letters by index."""

    facts: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))
    agents: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))
    dead: list[tuple[int, str, str]] = field(default_factory=list)


class CallStage:
    def __init__(self, config: Config, call_table: Any, clock_table: Any, partitions: int, health: Health) -> None:
        self.config = config
        self.table = call_table
        self.clock = clock_table
        self.partitions = partitions
        self.health = health
        self.trackers: dict[int, CallTracker] = {}
        self.published: dict[int, int] = {}  # partition -> stream time whose facts have all been sent
        self.last_event_wall: dict[int, float] = {}
        self._saved_clock: dict[int, int] = {}

    def tracker(self, partition: int) -> CallTracker:
        tracker = self.trackers.get(partition)
        if tracker is None:
            started = time.monotonic()
            calls = {}
            for key, raw in self.table.items():
                if partition_of(key, self.partitions) == partition:
                    calls[key] = CallState.from_list(orjson.loads(raw))
            tracker = CallTracker(self.config, DirtyDict(calls))
            tracker.rebuild_schedule()
            saved = self.clock.get(str(partition))
            newest = max((s.last_ts for s in calls.values()), default=0)
            tracker.stream_time = max(int(saved) if saved else 0, newest)
            self._saved_clock[partition] = tracker.stream_time
            self.trackers[partition] = tracker
            log.info("stage 1 partition %d: recovered %d call(s) in %.2f s, stream time %s", partition, len(calls),
                     time.monotonic() - started,
                     ev.format_ts(tracker.stream_time) if tracker.stream_time else "none")
        return tracker

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.trackers.pop(partition, None)
            self.published.pop(partition, None)
            self.last_event_wall.pop(partition, None)

    def process(self, partition: int, values: list[bytes | None]) -> BatchOutput:
        """Run one partition's records, in order, through its tracker."""
        tracker = self.tracker(partition)
        self.last_event_wall[partition] = time.monotonic()
        out = BatchOutput()
        count = self.health.count
        for index, value in enumerate(values):
            try:
                event = ev.parse_event(value if value is not None else b"")
            except ev.InvalidEvent as exc:
                count(INVALID, exc.reason)
                out.dead.append((index, exc.reason, exc.detail))
                continue
            if event.type == ev.AGENT_STATE:
                count(PROCESSED, "", event.ts)
                for queue in event.queues or ():
                    out.agents[queue].append([event.agent_id, event.state, event.ts])
                continue
            outcome = tracker.process(event)
            count(outcome.result, outcome.reason, event.ts)
            for fact in outcome.facts:
                out.facts[fact.queue].append(fact.to_list())
            for fact in tracker.advance():
                out.facts[fact.queue].append(fact.to_list())
            if outcome.result not in (PROCESSED, DUPLICATE):
                out.dead.append((index, outcome.reason, f"{outcome.result}: {outcome.reason}"))
        return out

    def flush(self, partition: int) -> None:
        """Write the partition's changed calls and stream time to the tables (one write per key).

        Runs with one of the partition's events as Faust's current event (see faust_compat)."""
        tracker = self.trackers[partition]
        for key, state in tracker.store.take_changes():  # type: ignore[attr-defined]
            if state is None:
                self.table.pop(key, None)
            else:
                self.table[key] = orjson.dumps(state.to_list())
        if tracker.stream_time != self._saved_clock.get(partition):
            self.clock[str(partition)] = str(tracker.stream_time).encode()
            self._saved_clock[partition] = tracker.stream_time

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
