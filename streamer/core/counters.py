"""Counts per queue and time bucket, and the formulas that turn them into Service Level, ASA, abandonment.

A `Counts` is a flat list of integers (cheap to store in a table, to add, to ship as JSON); the names
below give each slot a meaning. Waits are summed in milliseconds, so no precision is lost before the
division. Every formula of DESIGN.md "Metrics" is written here once, and those of the customer's
journey (docs/metrics.md): repeat contacts, first-contact resolution, hand-offs, journeys, surveys.
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
HISTOGRAM_START = len(SLOTS)
HISTOGRAM_END = HISTOGRAM_START + len(WAIT_BUCKETS_SECONDS) + 1
# The customer's journey, after the histogram: counts stored before these slots existed keep their
# meaning (`widen` pads them). First-contact resolution is decided long after its interval closed, so
# its counts are left out of interval blocks (`summary`) and reported per contact day (`fcr_block`).
JOURNEY_COUNT_KEYS = (
    "contacts_identified",
    "repeat_contacts",
    "handoffs_in",
    "handoffs_out",
    "journeys",
    "journeys_with_handoff",
    "journeys_passed_around",
    "journey_answered",
    "journey_answered_within_threshold",
    "journey_abandoned",
    "journey_abandoned_within_threshold",
    "nps_responses",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "csat_responses",
    "csat_satisfied",
)
FCR_COUNT_KEYS = ("fcr_resolved", "fcr_unresolved")
JOURNEY_SUM_KEYS = ("journey_dequeued", "journey_answered_wait_ms")
# Handle times of answered visits (HANDLED facts), for the live foresight: internal, in no report block.
HANDLE_SUM_KEYS = ("handled_calls", "handle_ms")
_TAIL_KEYS = JOURNEY_COUNT_KEYS + FCR_COUNT_KEYS + JOURNEY_SUM_KEYS + HANDLE_SUM_KEYS
INDEX = {name: i for i, name in enumerate(SLOTS)}
INDEX.update((name, HISTOGRAM_END + i) for i, name in enumerate(_TAIL_KEYS))
WIDTH = HISTOGRAM_END + len(_TAIL_KEYS)
LONGEST = INDEX["longest_answered_wait_ms"]

RATE_KEYS = ("service_level", "asa_seconds", "abandon_rate", "average_abandon_seconds")
JOURNEY_RATE_KEYS = ("repeat_contact_rate", "journey_service_level", "journey_asa_seconds", "nps_score",
                     "csat_rate")
FCR_KEYS = ("fcr_resolved", "fcr_unresolved", "fcr_pending", "fcr_rate")
# NPS categories (Reichheld): promoters 9-10, passives 7-8, detractors 0-6; CSAT satisfied: 4-5.
NPS_PROMOTER_FROM = 9
NPS_PASSIVE_FROM = 7
CSAT_SATISFIED_FROM = 4

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
_CONTACTS = INDEX["contacts_identified"]
_REPEATS = INDEX["repeat_contacts"]
_HANDOFFS_IN = INDEX["handoffs_in"]
_HANDOFFS_OUT = INDEX["handoffs_out"]
_JOURNEYS = INDEX["journeys"]
_WITH_HANDOFF = INDEX["journeys_with_handoff"]
_PASSED_AROUND = INDEX["journeys_passed_around"]
_J_ANSWERED = INDEX["journey_answered"]
_J_ANSWERED_WITHIN = INDEX["journey_answered_within_threshold"]
_J_ABANDONED = INDEX["journey_abandoned"]
_J_ABANDONED_WITHIN = INDEX["journey_abandoned_within_threshold"]
_J_DEQUEUED = INDEX["journey_dequeued"]
_J_ANSWERED_WAIT = INDEX["journey_answered_wait_ms"]
_NPS = INDEX["nps_responses"]
_PROMOTERS = INDEX["nps_promoters"]
_PASSIVES = INDEX["nps_passives"]
_DETRACTORS = INDEX["nps_detractors"]
_CSAT = INDEX["csat_responses"]
_SATISFIED = INDEX["csat_satisfied"]
_FCR_RESOLVED = INDEX["fcr_resolved"]
_FCR_UNRESOLVED = INDEX["fcr_unresolved"]
_HANDLED = INDEX["handled_calls"]
_HANDLE_MS = INDEX["handle_ms"]


# Facts that count one in one slot, nothing else.
_ONE_SLOT = {
    calls.CONTACT: _CONTACTS,
    calls.REPEAT_CONTACT: _REPEATS,
    calls.HANDOFF_IN: _HANDOFFS_IN,
    calls.HANDOFF_OUT: _HANDOFFS_OUT,
    calls.FCR_RESOLVED: _FCR_RESOLVED,
    calls.FCR_UNRESOLVED: _FCR_UNRESOLVED,
}


def empty() -> list[int]:
    return [0] * WIDTH


def widen(counts: list[int]) -> list[int]:
    """`counts` as stored before the journey slots existed, padded to today's width (a copy)."""
    return list(counts) + [0] * (WIDTH - len(counts))


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
    elif kind in _ONE_SLOT:
        counts[_ONE_SLOT[kind]] += 1
    elif kind == calls.JOURNEY:
        _add_journey(counts, fact, settings)
    elif kind == calls.NPS:
        counts[_NPS] += 1
        score = fact.value or 0
        counts[_PROMOTERS if score >= NPS_PROMOTER_FROM else _PASSIVES if score >= NPS_PASSIVE_FROM
               else _DETRACTORS] += 1
    elif kind == calls.CSAT:
        counts[_CSAT] += 1
        if (fact.value or 0) >= CSAT_SATISFIED_FROM:
            counts[_SATISFIED] += 1
    elif kind == calls.HANDLED:
        counts[_HANDLED] += 1
        counts[_HANDLE_MS] += fact.value or 0


def _add_journey(counts: list[int], fact: calls.Fact, settings: QueueSettings) -> None:
    """One ended journey, at its first queue: `reason` is how it ended, `value` its hand-offs, and its
    wait the sum of its visits' waits, judged against the first queue's T."""
    counts[_JOURNEYS] += 1
    handoffs = fact.value or 0
    if handoffs >= 1:
        counts[_WITH_HANDOFF] += 1
        if handoffs >= 2:
            counts[_PASSED_AROUND] += 1
    wait = fact.wait_ms or 0
    outcome = fact.reason
    if outcome == calls.ANSWERED:
        counts[_J_ANSWERED] += 1
        counts[_J_ANSWERED_WAIT] += wait
        if wait <= settings.threshold_ms:
            counts[_J_ANSWERED_WITHIN] += 1
    elif outcome == calls.ABANDONED:
        counts[_J_ABANDONED] += 1
        if wait <= settings.threshold_ms:
            counts[_J_ABANDONED_WITHIN] += 1
    elif outcome == calls.DEQUEUED:
        counts[_J_DEQUEUED] += 1


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
    return _service_level(counts[_ANSWERED_WITHIN], counts[_ANSWERED], counts[_ABANDONED], counts[_ABANDONED_WITHIN],
                          counts[_DEQUEUED], settings, waiting_over_threshold)


def journey_service_level(counts: list[int], settings: QueueSettings) -> float | None:
    """Service Level over whole journeys (journey wait against the first queue's T), by the first
    queue's formula; a journey that left to no further queue is its `dequeued`."""
    return _service_level(counts[_J_ANSWERED_WITHIN], counts[_J_ANSWERED], counts[_J_ABANDONED],
                          counts[_J_ABANDONED_WITHIN], counts[_J_DEQUEUED], settings)


def service_level_of(answered_within: float, answered: float, abandoned: float, abandoned_within: float,
                     dequeued: float, settings: QueueSettings) -> float | None:
    """The queue's formula over (expected) outcome counts, which may be fractional (foresight.py)."""
    return _service_level(answered_within, answered, abandoned, abandoned_within, dequeued, settings)


def _service_level(answered_within: float, answered: float, abandoned: float, abandoned_within: float,
                   dequeued: float, settings: QueueSettings, waiting_over_threshold: int = 0) -> float | None:
    formula = settings.service_level_formula
    if formula == SL_IGNORE_ABANDONS_WITHIN:
        numerator, denominator = answered_within, answered + abandoned - abandoned_within
    elif formula == SL_ABANDONS_WITHIN_MET:
        numerator, denominator = answered_within + abandoned_within, answered + abandoned
    elif formula == SL_ANSWERED_ONLY:
        numerator, denominator = answered_within, answered
    else:
        numerator, denominator = answered_within, answered + abandoned
    if settings.dequeued_in_denominator:
        denominator += dequeued
    return _ratio(numerator, denominator + waiting_over_threshold)


def repeat_contact_rate(counts: list[int]) -> float | None:
    return _ratio(counts[_REPEATS], counts[_CONTACTS])


def journey_asa_seconds(counts: list[int]) -> float | None:
    return _ratio(counts[_J_ANSWERED_WAIT] / 1000, counts[_J_ANSWERED])


def nps_score(counts: list[int]) -> float | None:
    """100 × (promoters − detractors) / responses: from −100 to 100."""
    return _ratio(100 * (counts[_PROMOTERS] - counts[_DETRACTORS]), counts[_NPS])


def csat_rate(counts: list[int]) -> float | None:
    return _ratio(counts[_SATISFIED], counts[_CSAT])


def fcr_rate(counts: list[int]) -> float | None:
    """resolved / (resolved + unresolved): a pending contact is in neither."""
    return _ratio(counts[_FCR_RESOLVED], counts[_FCR_RESOLVED] + counts[_FCR_UNRESOLVED])


def fcr_block(counts: list[int]) -> dict[str, Any]:
    """First-contact resolution of the contacts counted in `counts` (a block dated by contact time, so
    every decision belongs to a contact it holds): pending = contacts not yet decided either way."""
    resolved, unresolved = counts[_FCR_RESOLVED], counts[_FCR_UNRESOLVED]
    return {"fcr_resolved": resolved, "fcr_unresolved": unresolved,
            "fcr_pending": counts[_CONTACTS] - resolved - unresolved, "fcr_rate": fcr_rate(counts)}


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
    return counts[HISTOGRAM_START:HISTOGRAM_END]


def summary(counts: list[int], settings: QueueSettings) -> dict[str, Any]:
    """The report block: count keys, then the rates (None where there is no denominator)."""
    block: dict[str, Any] = {name: counts[INDEX[name]] for name in REPORT_COUNT_KEYS + EXTRA_COUNT_KEYS}
    block["service_level"] = service_level(counts, settings)
    block["asa_seconds"] = asa_seconds(counts)
    block["abandon_rate"] = abandon_rate(counts)
    block["average_abandon_seconds"] = average_abandon_seconds(counts)
    block["longest_answered_wait_seconds"] = longest_answered_wait_seconds(counts)
    for name in JOURNEY_COUNT_KEYS:
        block[name] = counts[INDEX[name]]
    block["repeat_contact_rate"] = repeat_contact_rate(counts)
    block["journey_service_level"] = journey_service_level(counts, settings)
    block["journey_asa_seconds"] = journey_asa_seconds(counts)
    block["nps_score"] = nps_score(counts)
    block["csat_rate"] = csat_rate(counts)
    return block


_SHOWN_IN_INTERVALS = tuple(i for i in range(WIDTH) if i not in (_FCR_RESOLVED, _FCR_UNRESOLVED, _HANDLED,
                                                                   _HANDLE_MS))


def is_empty(counts: list[int]) -> bool:
    """Nothing an interval block shows: FCR decisions alone (about earlier contacts) and handle times
    (of calls answered earlier) do not count."""
    return not any(counts[i] for i in _SHOWN_IN_INTERVALS)
