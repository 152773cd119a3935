"""Stage 1: track calls. Events keyed by call id in, facts keyed by queue out (to stage 2).

One `CallTracker` per owned partition of `call-events`, over the partition's slice of the call table.
Invalid, rejected and late events go to the dead-letter topic with their reason; nothing stops the
worker. Every second each partition's stream time is published to every stage-2 partition, so stage 2
can hold a watermark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from aiokafka.partitioner import murmur2

from streamer.app import records
from streamer.app.health import Health
from streamer.core import events as ev
from streamer.core.calls import CallState
from streamer.core.config import Config
from streamer.core.tracker import DUPLICATE, INVALID, PROCESSED, CallTracker

log = logging.getLogger(__name__)

CLOCK_KEY = "stream-time"


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives `key` (murmur2, as the Java client and aiokafka)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class CallTable(MutableMapping[str, CallState]):
    """The Faust call table seen as a mapping of `CallState` (stored as a compact JSON list)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def __getitem__(self, key: str) -> CallState:
        return CallState.from_list(self.table[key])

    def get(self, key: str, default: Any = None) -> Any:
        raw = self.table.get(key)
        return default if raw is None else CallState.from_list(raw)

    def __setitem__(self, key: str, value: CallState) -> None:
        self.table[key] = value.to_list()

    def __delitem__(self, key: str) -> None:
        del self.table[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k in self.table if k != CLOCK_KEY)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def values_of_partition(self, partition: int, partitions: int) -> Iterator[CallState]:
        for key, raw in self.table.items():
            if key != CLOCK_KEY and partition_of(key, partitions) == partition:
                yield CallState.from_list(raw)


class _PartitionView(MutableMapping[str, CallState]):
    """One partition's calls: reads and writes go to the shared table, iteration only to this partition."""

    def __init__(self, calls: CallTable, partition: int, partitions: int) -> None:
        self.calls, self.partition, self.partitions = calls, partition, partitions

    def __getitem__(self, key: str) -> CallState:
        return self.calls[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.calls.get(key, default)

    def __setitem__(self, key: str, value: CallState) -> None:
        self.calls[key] = value

    def __delitem__(self, key: str) -> None:
        del self.calls[key]

    def __iter__(self) -> Iterator[str]:
        return (s.call_id for s in self.calls.values_of_partition(self.partition, self.partitions))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def values(self):  # type: ignore[override]
        return list(self.calls.values_of_partition(self.partition, self.partitions))


class CallStage:
    def __init__(self, config: Config, call_table: Any, clock_table: Any, partitions: int, health: Health) -> None:
        self.config = config
        self.calls = CallTable(call_table)
        self.clock = clock_table
        self.partitions = partitions
        self.health = health
        self.trackers: dict[int, CallTracker] = {}
        self.published: dict[int, int] = {}  # partition -> stream time whose facts have all been sent
        self.last_event_wall: dict[int, float] = {}

    def tracker(self, partition: int) -> CallTracker:
        tracker = self.trackers.get(partition)
        if tracker is None:
            tracker = CallTracker(self.config, _PartitionView(self.calls, partition, self.partitions))
            tracker.rebuild_schedule()
            saved = self.clock.get(f"{CLOCK_KEY}:{partition}") or 0
            newest = max((s.last_ts for s in tracker.store.values()), default=0)
            tracker.stream_time = max(saved, newest)
            self.trackers[partition] = tracker
            log.info("stage 1 partition %d: %d calls recovered, stream time %s", partition,
                     len(tracker.store), ev.format_ts(tracker.stream_time) if tracker.stream_time else "none")
        return tracker

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.trackers.pop(partition, None)
            self.published.pop(partition, None)
            self.last_event_wall.pop(partition, None)

    def handle(self, value: bytes | None, partition: int) -> tuple[list[tuple[str, bytes]], tuple[str, str] | None]:
        """Process one record: (records to send to stage 2 as (queue, value), dead-letter (reason, detail) or None)."""
        tracker = self.tracker(partition)
        self.last_event_wall[partition] = time.monotonic()
        try:
            event = ev.parse_event(value if value is not None else b"")
        except ev.InvalidEvent as exc:
            self.health.count(INVALID, exc.reason)
            return [], (exc.reason, exc.detail)
        if event.type == ev.AGENT_STATE:
            self.health.count(PROCESSED, "", event.ts)
            return [(q, records.agent_record(q, event.agent_id or "", event.state or "", event.ts))
                    for q in event.queues or ()], None
        before = tracker.stream_time
        outcome = tracker.process(event)
        self.health.count(outcome.result, outcome.reason, event.ts)
        out = [(fact.queue, records.fact_record(fact)) for fact in outcome.facts]
        out.extend((fact.queue, records.fact_record(fact)) for fact in tracker.advance())
        if tracker.stream_time // 1000 > before // 1000:
            self.clock[f"{CLOCK_KEY}:{partition}"] = tracker.stream_time
        if outcome.result in (PROCESSED, DUPLICATE):
            return out, None
        return out, (outcome.reason, f"{outcome.result}: {outcome.reason}")

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
