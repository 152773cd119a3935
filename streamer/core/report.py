"""The offline report: an event stream in, per-queue totals and closed intervals out.

It runs the same `CallTracker` as stage 1, the same `CustomerTracker` after it (fed the contact facts,
as the live customer stage is) and the same counters as stage 2, streaming (memory grows with calls in
flight, customers within their windows and intervals, not with events), so a month of a large centre
fits. Groups and tenants are counted like queues, under their roll-up keys (config.rollup_key).

Stage 1 keeps one stream time per partition of `call-events`: lateness, expiry and the forgetting of
finished calls are judged against it. With `partitions` set to that topic's partition count the report
splits the events as Kafka's default partitioner does (by call id, agent id for agent events) and
gives the worker's numbers on any input, even one out of order by more than the grace period
(docs/pipeline.md, "Live = offline"). The customer tracker's time is the least stream time of the
partitions that have seen events, as a watermark over them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamer.core import calls, counters
from streamer.core import events as ev
from streamer.core.config import GROUP, TENANT, Config, QueueSettings, parse_rollup_key, rollup_key
from streamer.core.customers import CustomerTracker
from streamer.core.partitioning import partition_of
from streamer.core.tracker import INVALID, PROCESSED, CallTracker
from streamer.core.windows import MINUTE_MS, day_start, fact_time, interval_end, interval_start

# Facts about a contact, counted again by the contact's local day (first-contact resolution is
# decided days after the contact's interval closed).
DAY_KINDS = frozenset({calls.CONTACT, calls.FCR_RESOLVED, calls.FCR_UNRESOLVED})
_SLOT_MS = 15 * MINUTE_MS
_DECISIONS = frozenset({calls.FCR_RESOLVED, calls.FCR_UNRESOLVED})


@dataclass(slots=True)
class QueueBook:
    """One queue's (or group's, or tenant's) counts: the whole input, per interval start (epoch ms),
    and per local day of the contacts (start of the day, epoch ms)."""

    total: list[int] = field(default_factory=counters.empty)
    intervals: dict[int, list[int]] = field(default_factory=dict)
    days: dict[int, list[int]] = field(default_factory=dict)
    # Local day start by 15-minute slot (every UTC offset is a multiple of 15 minutes, so a local
    # midnight never falls inside a slot): contacts and decisions about them are a week apart.
    day_of_slot: dict[int, int] = field(default_factory=dict)
    # The interval of the last minute counted into: facts come roughly in time order, and a UTC
    # offset never changes within a minute, so this saves a time-zone lookup for most facts.
    minute: int = -1
    minute_interval: int = 0


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
        self.customers = CustomerTracker(self.config)
        self.queues: dict[str, QueueBook] = {}  # by queue name or roll-up key
        self.results: Counter[tuple[str, str]] = Counter()
        self._flushed = False

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
        if outcome.result == PROCESSED and outcome.facts:
            self._count(outcome.facts)
        swept = tracker.advance()
        if swept:
            self._count(swept)
        due = self.customers.next_due
        if due is not None and due <= tracker.stream_time:
            decided = self.customers.advance(self._watermark(tracker))
            if decided:
                self._count(decided)

    def _watermark(self, tracker: CallTracker) -> int:
        """The stream time every partition with events has reached (stage 1's watermark)."""
        if self.partitions == 1:
            return tracker.stream_time
        return min((t.stream_time for t in self.trackers if t.stream_time), default=0)

    def add_lines(self, lines: Iterable[bytes | str]) -> None:
        for line in lines:
            self.add_line(line)

    def _count(self, facts: list[calls.Fact]) -> None:
        for fact in facts:
            settings = self.config.for_queue(fact.queue)
            book = self.queues.get(fact.queue)
            if book is None:
                book = self.queues[fact.queue] = QueueBook()
            kind = fact.kind
            if kind not in _DECISIONS:  # an interval never shows an FCR decision (counters.summary)
                at = fact_time(fact, settings)
                if at - at % MINUTE_MS != book.minute:
                    book.minute, book.minute_interval = at - at % MINUTE_MS, interval_start(at, settings)
                start = book.minute_interval
                bucket = book.intervals.get(start)
                if bucket is None:
                    bucket = book.intervals[start] = counters.empty()
                counters.add_fact(bucket, fact, settings)
            counters.add_fact(book.total, fact, settings)
            if kind in DAY_KINDS:
                counters.add_fact(_day_counts(book, fact.enqueued_ts, settings), fact, settings)
                if kind == calls.CONTACT:
                    self._count(self.customers.add(fact))

    def _flush(self) -> None:
        """At the end of the input, once: the unresolved contacts whose decision waits to settle."""
        if not self._flushed:
            self._flushed = True
            self._count(self.customers.flush())

    @property
    def skipped(self) -> dict[str, int]:
        """Events not counted, by `result:reason` (invalid, duplicate, rejected, late)."""
        return {f"{result}:{reason}": n for (result, reason), n in sorted(self.results.items())
                if result != PROCESSED}

    def to_dict(self) -> dict[str, Any]:
        """`{"queues": {...}}`, then `"groups"` when the config defines groups and `"tenants"` when an
        event named a tenant: `{NAME: {"total", "intervals"}}` each, with the keys of a queue."""
        self._flush()
        queues: dict[str, Any] = {}
        rollups: dict[str, dict[str, Any]] = {GROUP: {}, TENANT: {}}
        for name in self.config.groups:
            self.queues.setdefault(rollup_key(GROUP, name), QueueBook())
        for key in sorted(self.queues):
            book = self.queues[key]
            settings = self.config.for_queue(key)
            rollup = parse_rollup_key(key)
            if rollup is not None:
                rollups[rollup[0]][rollup[1]] = {"total": counters.summary(book.total, settings),
                                                 "intervals": _intervals(book, settings)}
                continue
            total = counters.summary(book.total, settings)
            total.update(counters.fcr_block(book.total))
            queues[key] = {"total": total, "intervals": _intervals(book, settings)}
            if book.days:
                queues[key]["days"] = [{"date": _local_date(start, settings), **_day_block(book.days[start])}
                                       for start in sorted(book.days)]
        out: dict[str, Any] = {"queues": queues}
        if rollups[GROUP]:
            out["groups"] = dict(sorted(rollups[GROUP].items()))
        if rollups[TENANT]:
            out["tenants"] = rollups[TENANT]
        return out

    def to_csv(self) -> str:
        """One row per queue and interval, then a `total` row per queue; then the groups' and the
        tenants' rows, their first cell `group:NAME` / `tenant:NAME`. FCR cells are filled in totals only."""
        keys = [*counters.REPORT_COUNT_KEYS, *counters.EXTRA_COUNT_KEYS, *counters.RATE_KEYS,
                "longest_answered_wait_seconds", *counters.JOURNEY_COUNT_KEYS, *counters.JOURNEY_RATE_KEYS,
                *counters.FCR_KEYS]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["queue", "start", "end", *keys])
        report = self.to_dict()
        rows = [(queue, data) for queue, data in report["queues"].items()]
        rows += [(f"{kind}:{name}", data) for kind, section in ((GROUP, "groups"), (TENANT, "tenants"))
                 for name, data in report.get(section, {}).items()]
        for label, data in rows:
            for block in data["intervals"]:
                writer.writerow([label, block["start"], block["end"], *(_cell(block.get(k)) for k in keys)])
            writer.writerow([label, "total", "", *(_cell(data["total"].get(k)) for k in keys)])
        return buffer.getvalue()


def _intervals(book: QueueBook, settings: QueueSettings) -> list[dict[str, Any]]:
    intervals = []
    for start in sorted(book.intervals):
        if counters.is_empty(book.intervals[start]):
            continue  # only decisions about earlier contacts (FCR): nothing an interval shows
        block = {
            "start": ev.format_ts(start, settings.tz),
            "end": ev.format_ts(interval_end(start, settings), settings.tz),
        }
        block.update(counters.summary(book.intervals[start], settings))
        intervals.append(block)
    return intervals


def _day_counts(book: QueueBook, ts: int, settings: QueueSettings) -> list[int]:
    """The counts of the local day holding `ts`."""
    slot = ts // _SLOT_MS
    start = book.day_of_slot.get(slot)
    if start is None:
        start = book.day_of_slot[slot] = day_start(ts, settings.tz)
    counts = book.days.get(start)
    if counts is None:
        counts = book.days[start] = counters.empty()
    return counts


def _local_date(day_start_ms: int, settings: QueueSettings) -> str:
    return ev.format_ts(day_start_ms, settings.tz)[:10]


def _day_block(counts: list[int]) -> dict[str, Any]:
    return {"contacts_identified": counts[counters.INDEX["contacts_identified"]], **counters.fcr_block(counts)}


def _cell(value: Any) -> Any:
    return "" if value is None else value
