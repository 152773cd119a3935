"""Counts per queue and time bucket, and the formulas that turn them into Service Level, ASA, abandonment.

A `Counts` is a flat list of integers (cheap to store in a table, to add, to ship as JSON); the names
below give each slot a meaning. Waits are summed in milliseconds, so no precision is lost before the
division. Every formula of DESIGN.md "Metrics" is written here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamer.core import calls
from streamer.core.config import (
    SL_ABANDONS_WITHIN_MET,
    SL_ANSWERED_ONLY,
    SL_IGNORE_ABANDONS_WITHIN,
    QueueSettings,
)

# Upper bounds (seconds) of the wait histogram of answered calls; a last slot counts the rest (+Inf).
WAIT_BUCKETS_SECONDS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200)

# The count keys of the report (DESIGN.md "Commands"), then extensions, then internal sums.
REPORT_COUNT_KEYS = (
    "entered",
    "answered",
    "answered_within_threshold",
    "abandoned",
    "abandoned_within_threshold",
    "short_abandoned",
    "dequeued",
    "callbacks_requested",
    "callbacks_connected",
    "callbacks_failed",
    "expired",
)
EXTRA_COUNT_KEYS = ("callbacks_kept_position", "callbacks_scheduled", "callbacks_answered")
SUM_KEYS = ("answered_wait_ms", "abandoned_wait_ms", "longest_answered_wait_ms")
SLOTS = REPORT_COUNT_KEYS + EXTRA_COUNT_KEYS + SUM_KEYS
INDEX = {name: i for i, name in enumerate(SLOTS)}
HISTOGRAM_START = len(SLOTS)
WIDTH = HISTOGRAM_START + len(WAIT_BUCKETS_SECONDS) + 1
LONGEST = INDEX["longest_answered_wait_ms"]

RATE_KEYS = ("service_level", "asa_seconds", "abandon_rate", "average_abandon_seconds")

_ENTERED = INDEX["entered"]
_ANSWERED = INDEX["answered"]
_ANSWERED_WITHIN = INDEX["answered_within_threshold"]
_ABANDONED = INDEX["abandoned"]
_ABANDONED_WITHIN = INDEX["abandoned_within_threshold"]
_SHORT = INDEX["short_abandoned"]
_DEQUEUED = INDEX["dequeued"]
_CB_REQUESTED = INDEX["callbacks_requested"]
_CB_CONNECTED = INDEX["callbacks_connected"]
_CB_FAILED = INDEX["callbacks_failed"]
_EXPIRED = INDEX["expired"]
_CB_KEPT = INDEX["callbacks_kept_position"]
_CB_SCHEDULED = INDEX["callbacks_scheduled"]
_CB_ANSWERED = INDEX["callbacks_answered"]
_ANSWERED_WAIT = INDEX["answered_wait_ms"]
_ABANDONED_WAIT = INDEX["abandoned_wait_ms"]
_BUCKET_MS = tuple(s * 1000 for s in WAIT_BUCKETS_SECONDS)


def empty() -> list[int]:
    return [0] * WIDTH


def add_fact(counts: list[int], fact: calls.Fact, settings: QueueSettings) -> None:
    """Count one fact into `counts` (in place)."""
    kind = fact.kind
    if kind == calls.ENTERED:
        counts[_ENTERED] += 1
    elif kind == calls.ANSWERED:
        wait = fact.wait_ms or 0
        counts[_ANSWERED] += 1
        counts[_ANSWERED_WAIT] += wait
        if wait <= settings.threshold_ms:
            counts[_ANSWERED_WITHIN] += 1
        if wait > counts[LONGEST]:
            counts[LONGEST] = wait
        if fact.callback is not None:
            counts[_CB_ANSWERED] += 1
        counts[HISTOGRAM_START + _bucket_of(wait)] += 1
    elif kind == calls.ABANDONED:
        wait = fact.wait_ms or 0
        counts[_ABANDONED] += 1
        counts[_ABANDONED_WAIT] += wait
        if wait <= settings.threshold_ms:
            counts[_ABANDONED_WITHIN] += 1
    elif kind == calls.SHORT_ABANDONED:
        counts[_SHORT] += 1
    elif kind == calls.DEQUEUED:
        counts[_DEQUEUED] += 1
    elif kind == calls.EXPIRED:
        counts[_EXPIRED] += 1
    elif kind == calls.CALLBACK_REQUESTED:
        counts[_CB_REQUESTED] += 1
        counts[_CB_KEPT if fact.callback == "keep_position" else _CB_SCHEDULED] += 1
    elif kind == calls.CALLBACK_CONNECTED:
        counts[_CB_CONNECTED] += 1
    elif kind == calls.CALLBACK_FAILED:
        counts[_CB_FAILED] += 1


def _bucket_of(wait_ms: int) -> int:
    for i, bound in enumerate(_BUCKET_MS):
        if wait_ms <= bound:
            return i
    return len(_BUCKET_MS)


def merge(into: list[int], other: list[int]) -> None:
    """Add `other` into `into` (in place); the longest wait is a maximum, not a sum."""
    for i, value in enumerate(other):
        if i == LONGEST:
            if value > into[i]:
                into[i] = value
        else:
            into[i] += value


def total(parts: Iterable[list[int]]) -> list[int]:
    result = empty()
    for part in parts:
        merge(result, part)
    return result


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def service_level(counts: list[int], settings: QueueSettings, waiting_over_threshold: int = 0) -> float | None:
    """The queue's Service Level formula; `waiting_over_threshold` > 0 gives the live variant."""
    answered_within = counts[_ANSWERED_WITHIN]
    answered = counts[_ANSWERED]
    abandoned = counts[_ABANDONED]
    formula = settings.service_level_formula
    if formula == SL_IGNORE_ABANDONS_WITHIN:
        numerator, denominator = answered_within, answered + abandoned - counts[_ABANDONED_WITHIN]
    elif formula == SL_ABANDONS_WITHIN_MET:
        numerator, denominator = answered_within + counts[_ABANDONED_WITHIN], answered + abandoned
    elif formula == SL_ANSWERED_ONLY:
        numerator, denominator = answered_within, answered
    else:
        numerator, denominator = answered_within, answered + abandoned
    if settings.dequeued_in_denominator:
        denominator += counts[_DEQUEUED]
    return _ratio(numerator, denominator + waiting_over_threshold)


def asa_seconds(counts: list[int]) -> float | None:
    return _ratio(counts[_ANSWERED_WAIT] / 1000, counts[_ANSWERED])


def abandon_rate(counts: list[int]) -> float | None:
    return _ratio(counts[_ABANDONED], counts[_ANSWERED] + counts[_ABANDONED])


def average_abandon_seconds(counts: list[int]) -> float | None:
    return _ratio(counts[_ABANDONED_WAIT] / 1000, counts[_ABANDONED])


def longest_answered_wait_seconds(counts: list[int]) -> float | None:
    return counts[LONGEST] / 1000 if counts[_ANSWERED] else None


def histogram(counts: list[int]) -> list[int]:
    """Per-bucket (not cumulative) counts of answered waits, the last one for waits above 1200 s."""
    return counts[HISTOGRAM_START:WIDTH]


def summary(counts: list[int], settings: QueueSettings) -> dict[str, Any]:
    """The report block: count keys, then the rates (None where there is no denominator)."""
    block: dict[str, Any] = {name: counts[INDEX[name]] for name in REPORT_COUNT_KEYS + EXTRA_COUNT_KEYS}
    block["service_level"] = service_level(counts, settings)
    block["asa_seconds"] = asa_seconds(counts)
    block["abandon_rate"] = abandon_rate(counts)
    block["average_abandon_seconds"] = average_abandon_seconds(counts)
    block["longest_answered_wait_seconds"] = longest_answered_wait_seconds(counts)
    return block


def is_empty(counts: list[int]) -> bool:
    return not any(counts)
