"""Counters and formulas: the four Service Level formulas on published examples, ASA as a true mean,
null rates without a denominator, histogram bounds, and the merge of buckets."""

from __future__ import annotations

import pytest

from streamer.core import calls, counters
from streamer.core.config import (
    SL_ABANDONS_WITHIN_MET,
    SL_ANSWERED_ONLY,
    SL_ANSWERED_OVER_OFFERED,
    SL_IGNORE_ABANDONS_WITHIN,
    QueueSettings,
)

T0 = 1780308000000
DEFAULT = QueueSettings()  # T = 20 s


def fact(kind: str, wait_ms: int | None = None, callback: str | None = None) -> calls.Fact:
    return calls.Fact(kind, "q1", "v#1", T0 + (wait_ms or 0), T0, wait_ms, callback)


def counts_of(*facts: calls.Fact, settings: QueueSettings = DEFAULT) -> list[int]:
    block = counters.empty()
    for one in facts:
        counters.add_fact(block, one, settings)
    return block


def cisco_example(late: str) -> list[int]:
    """Cisco's published example: 70 answered within T, 10 abandoned within T, 20 past T (answered or
    abandoned late, as `late` says); 100 service-level events."""
    facts = [fact(calls.ANSWERED, 12_000)] * 70 + [fact(calls.ABANDONED, 8_000)] * 10
    facts += [fact(late, 45_000)] * 20
    return counts_of(*facts)


def settings(formula: str, **kw: object) -> QueueSettings:
    return QueueSettings(service_level_formula=formula, **kw)  # type: ignore[arg-type]


# --- Service Level ---------------------------------------------------------------------------------


@pytest.mark.parametrize("late", [calls.ABANDONED, calls.ANSWERED])
@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        (SL_IGNORE_ABANDONS_WITHIN, 70 / 90),  # Cisco "ignore": 77.8 %
        (SL_ANSWERED_OVER_OFFERED, 70 / 100),  # Cisco "negative": 70 %
        (SL_ABANDONS_WITHIN_MET, 80 / 100),  # Cisco "positive": 80 %
    ],
)
def test_cisco_published_example_gives_77_8_70_and_80_percent(formula, expected, late):
    value = counters.service_level(cisco_example(late), settings(formula))
    assert value == pytest.approx(expected)
    assert round(value * 100, 1) == {SL_IGNORE_ABANDONS_WITHIN: 77.8, SL_ANSWERED_OVER_OFFERED: 70.0,
                                     SL_ABANDONS_WITHIN_MET: 80.0}[formula]


@pytest.mark.parametrize(("late", "expected"), [(calls.ABANDONED, 70 / 70), (calls.ANSWERED, 70 / 90)])
def test_answered_only_formula_on_the_cisco_example(late, expected):
    assert counters.service_level(cisco_example(late), settings(SL_ANSWERED_ONLY)) == pytest.approx(expected)


def contract_example() -> list[int]:
    """The design's worked example on q1: 2 answered (1 within), 3 abandoned (1 within), 1 short, 1 dequeued."""
    return counts_of(
        fact(calls.ANSWERED, 15_000), fact(calls.ANSWERED, 240_000, "keep_position"),
        fact(calls.ABANDONED, 40_000, "scheduled"), fact(calls.ABANDONED, 20_000),
        fact(calls.ABANDONED, 900_000, "keep_position"), fact(calls.SHORT_ABANDONED, 3_000),
        fact(calls.DEQUEUED),
    )


@pytest.mark.parametrize(
    ("formula", "expected", "with_dequeued"),
    [
        (SL_ANSWERED_OVER_OFFERED, 1 / 5, 1 / 6),
        (SL_IGNORE_ABANDONS_WITHIN, 1 / 4, 1 / 5),
        (SL_ABANDONS_WITHIN_MET, 2 / 5, 2 / 6),
        (SL_ANSWERED_ONLY, 1 / 2, 1 / 3),
    ],
)
def test_every_formula_on_the_contract_example_with_and_without_dequeued(formula, expected, with_dequeued):
    block = contract_example()
    assert counters.service_level(block, settings(formula)) == pytest.approx(expected)
    assert counters.service_level(block, settings(formula, dequeued_in_denominator=True)) == pytest.approx(
        with_dequeued)


def test_contract_example_rates():
    block = contract_example()
    assert counters.asa_seconds(block) == pytest.approx(127.5)
    assert counters.abandon_rate(block) == pytest.approx(0.6)
    assert counters.average_abandon_seconds(block) == pytest.approx(320.0)
    assert counters.longest_answered_wait_seconds(block) == pytest.approx(240.0)


def test_short_abandons_are_out_of_every_rate():
    block = counts_of(fact(calls.ANSWERED, 10_000), *[fact(calls.SHORT_ABANDONED, 1_000)] * 50)
    assert counters.service_level(block, DEFAULT) == 1.0
    assert counters.abandon_rate(block) == 0.0
    assert counters.average_abandon_seconds(block) is None


def test_live_variant_counts_calls_still_waiting_past_threshold_as_misses():
    block = cisco_example(calls.ABANDONED)
    assert counters.service_level(block, DEFAULT, waiting_over_threshold=2) == pytest.approx(70 / 102)
    assert counters.service_level(counters.empty(), DEFAULT, waiting_over_threshold=3) == 0.0
    assert counters.service_level(counters.empty(), DEFAULT, waiting_over_threshold=0) is None


def test_live_variant_with_dequeued_in_denominator_adds_both():
    block = counts_of(fact(calls.ANSWERED, 5_000), fact(calls.DEQUEUED))
    value = counters.service_level(block, QueueSettings(dequeued_in_denominator=True), waiting_over_threshold=1)
    assert value == pytest.approx(1 / 3)


# --- no denominator: no value ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts",
    [
        [],
        [fact(calls.ENTERED)],
        [fact(calls.SHORT_ABANDONED, 2_000)],
        [fact(calls.DEQUEUED)],
        [fact(calls.EXPIRED)],
        [fact(calls.CALLBACK_REQUESTED, callback="keep_position")],
    ],
)
def test_rates_without_a_denominator_have_no_value(facts):
    block = counts_of(*facts)
    summary = counters.summary(block, DEFAULT)
    for key in (*counters.RATE_KEYS, "longest_answered_wait_seconds"):
        assert summary[key] is None, key


def test_answered_only_formula_with_only_abandons_has_no_value():
    block = counts_of(fact(calls.ABANDONED, 30_000))
    assert counters.service_level(block, settings(SL_ANSWERED_ONLY)) is None
    assert counters.abandon_rate(block) == 1.0


def test_ignore_formula_with_only_abandons_within_has_no_value():
    block = counts_of(fact(calls.ABANDONED, 10_000), fact(calls.ABANDONED, 20_000))
    assert counters.service_level(block, settings(SL_IGNORE_ABANDONS_WITHIN)) is None
    assert counters.service_level(block, DEFAULT) == 0.0


def test_dequeued_alone_in_the_denominator_gives_zero_not_none():
    block = counts_of(fact(calls.DEQUEUED))
    assert counters.service_level(block, QueueSettings(dequeued_in_denominator=True)) == 0.0


# --- ASA, longest wait, merge ----------------------------------------------------------------------


def test_asa_over_merged_intervals_is_the_true_mean_not_the_mean_of_means():
    first = counts_of(fact(calls.ANSWERED, 10_000))
    second = counts_of(*[fact(calls.ANSWERED, 20_000)] * 3)
    merged = counters.total([first, second])
    assert counters.asa_seconds(first) == 10.0
    assert counters.asa_seconds(second) == 20.0
    assert counters.asa_seconds(merged) == pytest.approx(70 / 4)  # 17.5, not (10 + 20) / 2 = 15


def test_asa_keeps_milliseconds():
    block = counts_of(fact(calls.ANSWERED, 1), fact(calls.ANSWERED, 2))
    assert counters.asa_seconds(block) == pytest.approx(0.0015)


def test_longest_wait_merges_as_a_maximum():
    first = counts_of(fact(calls.ANSWERED, 30_000))
    second = counts_of(fact(calls.ANSWERED, 10_000), fact(calls.ANSWERED, 25_000))
    merged = counters.total([first, second])
    assert counters.longest_answered_wait_seconds(merged) == 30.0
    counters.merge(first, second)
    assert first == merged


def test_longest_wait_ignores_abandons():
    block = counts_of(fact(calls.ANSWERED, 5_000), fact(calls.ABANDONED, 500_000))
    assert counters.longest_answered_wait_seconds(block) == 5.0


def test_merge_adds_every_other_slot():
    one = counts_of(fact(calls.ENTERED), fact(calls.ANSWERED, 4_000))
    merged = counters.total([one, one, one])
    assert merged[counters.INDEX["entered"]] == 3
    assert merged[counters.INDEX["answered_wait_ms"]] == 12_000
    assert counters.histogram(merged)[0] == 3


def test_empty_and_is_empty():
    assert counters.is_empty(counters.empty())
    assert len(counters.empty()) == counters.WIDTH
    assert not counters.is_empty(counts_of(fact(calls.ENTERED)))


# --- histogram -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wait_ms", "bucket"),
    [(0, 0), (5_000, 0), (5_001, 1), (10_000, 1), (20_000, 3), (20_001, 4), (600_000, 11), (1_200_000, 12),
     (1_200_001, 13), (86_400_000, 13)],
)
def test_histogram_bucket_upper_bounds_are_inclusive(wait_ms, bucket):
    hist = counters.histogram(counts_of(fact(calls.ANSWERED, wait_ms)))
    assert len(hist) == len(counters.WAIT_BUCKETS_SECONDS) + 1
    assert hist[bucket] == 1
    assert sum(hist) == 1


def test_histogram_counts_answered_waits_only():
    hist = counters.histogram(counts_of(fact(calls.ABANDONED, 30_000), fact(calls.SHORT_ABANDONED, 1_000)))
    assert sum(hist) == 0


# --- counts ----------------------------------------------------------------------------------------


def test_callback_facts_are_counted_by_kind():
    block = counts_of(
        fact(calls.CALLBACK_REQUESTED, callback="keep_position"),
        fact(calls.CALLBACK_REQUESTED, callback="scheduled"),
        fact(calls.CALLBACK_REQUESTED, callback="scheduled"),
        fact(calls.CALLBACK_CONNECTED, callback="keep_position"),
        fact(calls.CALLBACK_FAILED, callback="scheduled"),
        fact(calls.ANSWERED, 100_000, "keep_position"),
    )
    summary = counters.summary(block, DEFAULT)
    assert {k: summary[k] for k in ("callbacks_requested", "callbacks_kept_position", "callbacks_scheduled",
                                    "callbacks_connected", "callbacks_failed", "callbacks_answered")} == {
        "callbacks_requested": 3, "callbacks_kept_position": 1, "callbacks_scheduled": 2,
        "callbacks_connected": 1, "callbacks_failed": 1, "callbacks_answered": 1}


def test_summary_carries_every_report_key():
    summary = counters.summary(contract_example(), DEFAULT)
    for key in (*counters.REPORT_COUNT_KEYS, *counters.RATE_KEYS):
        assert key in summary
    assert {k: summary[k] for k in counters.REPORT_COUNT_KEYS} == {
        "entered": 0, "answered": 2, "answered_within_threshold": 1, "abandoned": 3,
        "abandoned_within_threshold": 1, "short_abandoned": 1, "dequeued": 1, "callbacks_requested": 0,
        "callbacks_connected": 0, "callbacks_failed": 0, "expired": 0}


def test_the_threshold_comes_from_the_queue_settings():
    wait = fact(calls.ANSWERED, 25_000)
    assert counts_of(wait, settings=QueueSettings(threshold_seconds=30))[counters.INDEX["answered_within_threshold"]]
    assert not counts_of(wait)[counters.INDEX["answered_within_threshold"]]
