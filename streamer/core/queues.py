"""One queue's aggregate state: minute buckets, monotonic totals, the live queue and agents.

Stage 2 of the live pipeline keeps one `QueueState` per owned queue (persisting what changes to its
tables), and every reader (Prometheus, the JSON API, the wallboard) asks it for windows. Pure: it
is handed the current time, it never reads a clock.

Facts arrive at least once (a crash replays records; a restarted stage 1 re-sends the facts of the
events it had not yet recorded), so each minute bucket remembers the keys of the facts it counted
and a repeat is recognised there. The keys live in the same table row as the counts they guard, so
one write persists both or neither; they are kept as long as the bucket. Totals are the sum of the
buckets plus `base`, the counts of buckets that aged out, so they need no write of their own.
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any

from streamer.core import calls, counters
from streamer.core.config import QueueSettings, parse_rollup_key
from streamer.core.events import format_ts
from streamer.core.windows import (
    MINUTE_MS,
    SLIDING_WINDOWS_MINUTES,
    day_end,
    day_start,
    fact_time,
    interval_end,
    interval_start,
    minute_of,
    sliding_minutes,
)

CALLER = "caller"
CALLBACK = "callback"
EXPORTED_AGENT_STATES = ("available", "busy", "wrap_up", "away")
WINDOWS = ("interval", *SLIDING_WINDOWS_MINUTES, "today")
# Buckets are kept long enough for "today" (up to 25 h) plus a day of late corrections and replays.
BUCKET_RETENTION_MS = 49 * 3600 * 1000
# Detractor responses (NPS 0-6) kept for a supervisor to call back: the latest ones, enough for a day's
# list on a wallboard or in the API.
DETRACTORS_KEPT = 100
_FACT_KEY_MASK = (1 << 63) - 1


def fact_key(fact: calls.Fact) -> int:
    """A stable 63-bit identity of a fact: its visit and its kind (a visit has at most one fact of
    each kind), so every copy of a fact has the same key. Two different facts of one queue-minute
    share a key with a probability of about n² / 2⁶⁴ for n facts: never, in practice."""
    digest = hashlib.blake2b(f"{fact.kind}|{fact.visit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & _FACT_KEY_MASK


@dataclass(slots=True)
class Changes:
    """What one applied fact changed, so a shell can persist exactly that."""

    bucket: int | None = None  # minute start whose counts changed (None: nothing was counted)
    waiting_added: str | None = None  # visit id now waiting (or now a callback marker)
    waiting_removed: str | None = None
    repeated: bool = False  # the fact had been counted already: a re-delivery
    past_retention: bool = False  # its minute was folded into `base` already: not counted
    detractors: bool = False  # a detractor response joined `QueueState.detractors` (persist `detractor_row`)


@dataclass
class QueueState:
    queue: str
    settings: QueueSettings
    buckets: dict[int, list[int]] = field(default_factory=dict)
    totals: list[int] = field(default_factory=counters.empty)
    waiting: dict[str, tuple[int, str]] = field(default_factory=dict)  # visit id -> (enqueued ms, kind)
    agents: dict[str, str] = field(default_factory=dict)  # agent id -> state
    last_event_ts: int = 0
    dirty: set[int] = field(default_factory=set)  # interval starts changed since last emitted
    applied: dict[int, array] = field(default_factory=dict)  # minute -> sorted keys of the facts counted
    base: list[int] = field(default_factory=counters.empty)  # counts of the buckets folded away
    kept_from: int = 0  # first minute kept as a bucket: earlier ones are in `base`
    detractors: list[tuple[int, str, int]] = field(default_factory=list)  # (ts, call id, score), oldest first
    # The last foresight block (foresight.forecast) and the instant it was computed for: readers within
    # a few seconds of it share it.
    foresight_memo: tuple[int, dict[str, Any]] | None = field(default=None, repr=False,
                                                                                compare=False)

    def apply(self, fact: calls.Fact) -> Changes:
        """Count one fact into its minute bucket and the totals, once, and update the live queue.

        A repeat counts nothing and adds no waiting caller; an outcome still removes its visit from
        the live queue (harmless when it is gone already)."""
        changes = Changes()
        minute = minute_of(fact_time(fact, self.settings))
        if minute < self.kept_from:
            changes.past_retention = True
        elif self._remember(minute, fact_key(fact)):
            bucket = self.buckets.get(minute)
            if bucket is None:
                bucket = self.buckets[minute] = counters.empty()
            counters.add_fact(bucket, fact, self.settings)
            counters.add_fact(self.totals, fact, self.settings)
            changes.bucket = minute
            self.dirty.add(interval_start(minute, self.settings))
        else:
            changes.repeated = True
        counted = changes.bucket is not None
        if fact.kind == calls.ENTERED:
            if counted:
                self.waiting[fact.visit_id] = (fact.enqueued_ts, CALLER)
                changes.waiting_added = fact.visit_id
        elif fact.kind == calls.CALLBACK_REQUESTED and fact.visit_id in self.waiting:
            self.waiting[fact.visit_id] = (fact.enqueued_ts, CALLBACK)
            changes.waiting_added = fact.visit_id
        elif fact.is_outcome and self.waiting.pop(fact.visit_id, None) is not None:
            changes.waiting_removed = fact.visit_id
        elif fact.kind == calls.NPS and counted and (fact.value or 0) < counters.NPS_PASSIVE_FROM:
            insort(self.detractors, (fact.ts, fact.visit_id, fact.value or 0))
            del self.detractors[:-DETRACTORS_KEPT]
            changes.detractors = True
        if fact.ts > self.last_event_ts:
            self.last_event_ts = fact.ts
        return changes

    def _remember(self, minute: int, key: int) -> bool:
        """Add `key` to the minute's fact keys; False when it was there already."""
        keys = self.applied.get(minute)
        if keys is None:
            keys = self.applied[minute] = array("q")
        at = bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            return False
        keys.insert(at, key)
        return True

    def set_agent(self, agent_id: str, state: str, ts: int) -> None:
        if state == "logged_out":
            self.agents.pop(agent_id, None)
        else:
            self.agents[agent_id] = state
        if ts > self.last_event_ts:
            self.last_event_ts = ts

    def prune(self, now_ms: int) -> list[int]:
        """Fold the buckets older than the retention into `base`; returns the minutes folded.

        `kept_from` moves with them, so a fact for a folded minute is not counted again later (it
        is reported as past retention). The cut is at an interval start, so no interval is left
        half folded. Persist `base_row()` before deleting the folded buckets."""
        cutoff = interval_start(now_ms - BUCKET_RETENTION_MS, self.settings)
        if cutoff <= self.kept_from:
            return []
        old = sorted(minute for minute in self.buckets if minute < cutoff)
        for minute in old:
            counters.merge(self.base, self.buckets.pop(minute))
            self.applied.pop(minute, None)
        self.kept_from = cutoff
        return old

    # --- persistence -----------------------------------------------------------------------------

    def bucket_row(self, minute: int) -> list:
        """A bucket as stored: its counts and the keys of the facts it counted, in one value."""
        return [self.buckets[minute], self.applied.get(minute, array("q")).tolist()]

    def base_row(self) -> list:
        return [self.base, self.kept_from]

    def detractor_row(self) -> list:
        return [list(entry) for entry in self.detractors]

    def restore_bucket(self, minute: int, row: list) -> None:
        counts, keys = row
        self.buckets[minute] = counters.widen(counts)
        self.applied[minute] = array("q", sorted(keys))

    def restore_base(self, row: list) -> None:
        self.base, self.kept_from = counters.widen(row[0]), row[1]

    def restore_detractors(self, row: list) -> None:
        self.detractors = sorted((ts, call_id, score) for ts, call_id, score in row)

    def finish_restore(self) -> list[int]:
        """After the rows are restored: totals and last event time from them; returns the minutes of
        buckets already folded into `base` (a crash between the two writes of a prune), to delete."""
        stale = sorted(minute for minute in self.buckets if minute < self.kept_from)
        for minute in stale:
            del self.buckets[minute]
            self.applied.pop(minute, None)
        self.dirty = {interval_start(minute, self.settings) for minute in self.buckets}
        self.totals = counters.total([self.base, *self.buckets.values()])
        if self.buckets:
            self.last_event_ts = max(self.last_event_ts, max(self.buckets) + MINUTE_MS - 1)
        return stale

    # --- reading -------------------------------------------------------------------------------

    def counts_between(self, first_minute: int, end_ms: int) -> list[int]:
        """Sum of the buckets with minute start in [first_minute, end_ms)."""
        result = counters.empty()
        if end_ms - first_minute > len(self.buckets) * MINUTE_MS:
            for minute, bucket in self.buckets.items():
                if first_minute <= minute < end_ms:
                    counters.merge(result, bucket)
        else:
            for minute in range(first_minute, end_ms, MINUTE_MS):
                bucket = self.buckets.get(minute)
                if bucket is not None:
                    counters.merge(result, bucket)
        return result

    def interval_counts(self, start_ms: int) -> list[int]:
        return self.counts_between(start_ms, interval_end(start_ms, self.settings))

    def window(self, name: str, now_ms: int) -> tuple[int, int, list[int]]:
        """(start ms, end ms, counts) of a named window as of `now_ms`."""
        if name == "interval":
            start = interval_start(now_ms, self.settings)
            end = interval_end(start, self.settings)
        elif name == "today":
            start, end = day_start(now_ms, self.settings.tz), day_end(now_ms, self.settings.tz)
        else:
            first, last = sliding_minutes(now_ms, SLIDING_WINDOWS_MINUTES[name])
            start, end = first, last + MINUTE_MS
        return start, end, self.counts_between(start, min(end, minute_of(now_ms) + MINUTE_MS))

    def waiting_counts(self, now_ms: int) -> dict[str, Any]:
        callers = callbacks = over = 0
        oldest = None
        threshold = self.settings.threshold_ms
        for enqueued, kind in self.waiting.values():
            if kind == CALLER:
                callers += 1
            else:
                callbacks += 1
            if now_ms - enqueued > threshold:
                over += 1
            if oldest is None or enqueued < oldest:
                oldest = enqueued
        return {
            "calls_waiting": callers,
            "callbacks_waiting": callbacks,
            "oldest_wait_seconds": max(0, now_ms - oldest) / 1000 if oldest is not None else 0.0,
            "waiting_over_threshold": over,
        }

    def detractors_today(self, now_ms: int, limit: int = 20) -> list[dict[str, Any]]:
        """The day's latest detractor responses, newest first, for a supervisor to call back."""
        tz = self.settings.tz
        start, end = day_start(now_ms, tz), day_end(now_ms, tz)
        today = [entry for entry in reversed(self.detractors) if start <= entry[0] < end]
        return [{"call_id": call_id, "time": format_ts(ts, tz), "score": score} for ts, call_id, score in today[:limit]]

    def agent_counts(self) -> dict[str, int]:
        result = dict.fromkeys(EXPORTED_AGENT_STATES, 0)
        for state in self.agents.values():
            if state in result:
                result[state] += 1
        return result

    def view(self, now_ms: int) -> dict[str, Any]:
        """The queue as the JSON API and the wallboard show it (docs/api.md)."""
        tz = self.settings.tz
        live = self.waiting_counts(now_ms)
        live["agents"] = self.agent_counts()
        windows: dict[str, Any] = {}
        for name in WINDOWS:
            start, end, counts = self.window(name, now_ms)
            block: dict[str, Any] = {"start": format_ts(start, tz), "end": format_ts(end, tz)}
            block.update(counters.summary(counts, self.settings))
            block["service_level_live"] = counters.service_level(
                counts, self.settings, live["waiting_over_threshold"]
            )
            windows[name] = block
        s = self.settings
        return {
            "queue": self.queue,
            "settings": {
                "threshold_seconds": s.threshold_seconds,
                "target": s.target,
                "short_abandon_seconds": s.short_abandon_seconds,
                "service_level_formula": s.service_level_formula,
                "time_zone": s.time_zone,
                "interval_minutes": s.interval_minutes,
            },
            "last_event_time": format_ts(self.last_event_ts, tz) if self.last_event_ts else None,
            "live": live,
            "windows": windows,
        }

    def closed_interval(self, start_ms: int) -> dict[str, Any]:
        """One closed interval as written to the queue-intervals topic. A group's or tenant's names it
        under "group" or "tenant" instead of "queue" (its key keeps the roll-up mark, which no queue name
        can hold, so the two never share a key)."""
        tz = self.settings.tz
        rollup = parse_rollup_key(self.queue)
        block: dict[str, Any] = {
            rollup[0] if rollup else "queue": rollup[1] if rollup else self.queue,
            "start": format_ts(start_ms, tz),
            "end": format_ts(interval_end(start_ms, self.settings), tz),
        }
        block.update(counters.summary(self.interval_counts(start_ms), self.settings))
        return block

    def due_intervals(self, watermark_ms: int | None, grace_ms: int, idle: bool) -> list[int]:
        """Dirty intervals to (re-)emit: closed in stream time, or all of them when the queue is idle."""
        if idle:
            return sorted(self.dirty)
        if watermark_ms is None:
            return []
        return sorted(s for s in self.dirty if interval_end(s, self.settings) + grace_ms <= watermark_ms)
