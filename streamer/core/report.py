"""The offline report: an event stream in, per-queue totals and closed intervals out.

It runs the same `CallTracker` as stage 1 and the same counters as stage 2, streaming (memory grows
with calls in flight and intervals, not with events), so a month of a large centre fits.

Stage 1 keeps one stream time per partition of `call-events`: lateness, expiry and the forgetting of
finished calls are judged against it. With `partitions` set to that topic's partition count the report
splits the events as Kafka's default partitioner does (by call id, agent id for agent events) and
gives the worker's numbers on any input, even one out of order by more than the grace period
(docs/pipeline.md, "Live = offline").
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamer.core import counters
from streamer.core import events as ev
from streamer.core.config import Config
from streamer.core.partitioning import partition_of
from streamer.core.tracker import INVALID, PROCESSED, CallTracker
from streamer.core.windows import fact_time, interval_end, interval_start


@dataclass(slots=True)
class QueueBook:
    """One queue's counts: the whole input, and per interval start (epoch ms)."""

    total: list[int] = field(default_factory=counters.empty)
    intervals: dict[int, list[int]] = field(default_factory=dict)


class Report:
    def __init__(self, config: Config | None = None, partitions: int = 1, now_ms: int | None = None) -> None:
        """`now_ms`, when given, is the clock against which an event dated more than
        `limits.max_future_seconds` ahead is rejected, as a live worker does against its own."""
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.config = config or Config()
        self.partitions = partitions
        self.now_ms = now_ms
        self.trackers = [CallTracker(self.config) for _ in range(partitions)]
        self.queues: dict[str, QueueBook] = {}
        self.results: Counter[tuple[str, str]] = Counter()

    def add_line(self, line: bytes | str) -> None:
        """Feed one JSONL line; blank lines are ignored, invalid ones counted by reason."""
        if not line.strip():
            return
        try:
            event = ev.parse_event(line)
        except ev.InvalidEvent as exc:
            self.results[(INVALID, exc.reason)] += 1
            return
        self.add_event(event)

    def add_event(self, event: ev.Event) -> None:
        tracker = self.trackers[partition_of(event.key, self.partitions)]
        outcome = tracker.process(event, self.now_ms)
        self.results[(outcome.result, outcome.reason)] += 1
        if outcome.result == PROCESSED:
            self._count(outcome.facts)
        self._count(tracker.advance())

    def add_lines(self, lines: Iterable[bytes | str]) -> None:
        for line in lines:
            self.add_line(line)

    def _count(self, facts: list) -> None:
        for fact in facts:
            settings = self.config.for_queue(fact.queue)
            book = self.queues.get(fact.queue)
            if book is None:
                book = self.queues[fact.queue] = QueueBook()
            start = interval_start(fact_time(fact, settings), settings)
            bucket = book.intervals.get(start)
            if bucket is None:
                bucket = book.intervals[start] = counters.empty()
            counters.add_fact(bucket, fact, settings)
            counters.add_fact(book.total, fact, settings)

    @property
    def skipped(self) -> dict[str, int]:
        """Events not counted, by `result:reason` (invalid, duplicate, rejected, late)."""
        return {f"{result}:{reason}": n for (result, reason), n in sorted(self.results.items())
                if result != PROCESSED}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for queue in sorted(self.queues):
            book = self.queues[queue]
            settings = self.config.for_queue(queue)
            intervals = []
            for start in sorted(book.intervals):
                block = {
                    "start": ev.format_ts(start, settings.tz),
                    "end": ev.format_ts(interval_end(start, settings), settings.tz),
                }
                block.update(counters.summary(book.intervals[start], settings))
                intervals.append(block)
            out[queue] = {"total": counters.summary(book.total, settings), "intervals": intervals}
        return {"queues": out}

    def to_csv(self) -> str:
        """One row per queue and interval, then a `total` row per queue."""
        keys = [*counters.REPORT_COUNT_KEYS, *counters.EXTRA_COUNT_KEYS, *counters.RATE_KEYS,
                "longest_answered_wait_seconds"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["queue", "start", "end", *keys])
        for queue, data in self.to_dict()["queues"].items():
            for block in data["intervals"]:
                writer.writerow([queue, block["start"], block["end"], *(_cell(block[k]) for k in keys)])
            writer.writerow([queue, "total", "", *(_cell(data["total"][k]) for k in keys)])
        return buffer.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value
