"""Properties of the core on random plausible call histories (many calls, every outcome, callbacks,
overflow chains, duplicates, impossible events, junk lines), checked with hypothesis.

Invariants: no count is negative and no rate leaves its range; each queue visit ends in at most one
outcome, after its entry; outcomes never outnumber entries; the same input delivered twice (every event
id repeated) gives the report of one delivery; interleaving different calls' events differently within
a minute, each call's own order kept, changes no total when no event is late.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.core import calls
from streamer.core import events as ev
from streamer.core.config import CALLBACK_POLICIES, Config, Limits, QueueSettings
from streamer.core.report import Report
from streamer.core.tracker import CallTracker

T0 = 1780308000000  # 2026-06-01T10:00:00Z
QUEUES = ("q1", "q2", "q3")
ENDINGS = ("answered", "answered_completed", "abandoned", "dequeued", "keep_connected", "keep_failed",
           "keep_hangup_connected", "scheduled", "scheduled_connected", "open")
NOISE = (None, None, None, "completed", "connected", "enqueued", "wrong_queue", "before_enqueue",
         "second_outcome")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Delivery:
    """One line of the stream: when it is delivered (ms), the call, its order within the call."""

    at: int
    call_id: str
    seq: int
    text: str


@st.composite
def call_history(draw: st.DrawFn, call_id: str, late_duplicates: bool) -> list[Delivery]:
    """One call's deliveries, in the call's own order: up to three visits chained by overflow."""
    planned: list[tuple[int, dict[str, Any]]] = []

    def emit(etype: str, ts: int, queue: str, deliver_at: int | None = None, **extra: Any) -> None:
        record = {"event_id": f"{call_id}-{len(planned)}", "type": etype, "ts": ts, "call_id": call_id,
                  "queue": queue, **extra}
        planned.append((ts if deliver_at is None else deliver_at, record))

    t = T0 + draw(st.integers(0, 3_600_000))
    queue = draw(st.sampled_from(QUEUES))
    for visit in range(3):
        emit("call.enqueued", t, queue)
        wait = draw(st.integers(0, 600_000))
        end = t + wait
        noise = draw(st.sampled_from(NOISE))
        if noise == "completed":
            emit("call.completed", t + wait // 2, queue)
        elif noise == "connected":
            emit("callback.connected", t + wait // 2, queue)
        elif noise == "enqueued":
            emit("call.enqueued", t + wait // 2, draw(st.sampled_from(QUEUES)))
        elif noise == "wrong_queue":
            emit("call.answered", t + wait // 2, "elsewhere")
        elif noise == "before_enqueue":
            emit("call.abandoned", t - 1000, queue, deliver_at=t)
        ending = draw(st.sampled_from(ENDINGS))
        if ending == "dequeued" and visit < 2:
            following = draw(st.sampled_from([q for q in QUEUES if q != queue]))
            emit("call.dequeued", end, queue, reason="overflow", to_queue=following)
            t, queue = end, following
            continue
        if ending in ("answered", "answered_completed"):
            emit("call.answered", end, queue)
            if ending == "answered_completed":
                emit("call.completed", end + draw(st.integers(1, 600_000)), queue, talk_seconds=60)
        elif ending in ("abandoned", "dequeued"):
            emit("call.abandoned" if ending == "abandoned" else "call.dequeued", end, queue)
        elif ending.startswith("keep"):
            emit("callback.requested", end, queue, mode="keep_position")
            later = end + draw(st.integers(0, 1_800_000))
            if ending == "keep_hangup_connected":
                emit("call.abandoned", end + 1000, queue)
                later += 1000
            emit("callback.failed" if ending == "keep_failed" else "callback.connected", later, queue)
        elif ending.startswith("scheduled"):
            emit("callback.requested", end, queue, mode="scheduled")
            if ending == "scheduled_connected":
                emit("callback.connected", end + draw(st.integers(0, 3_600_000)), queue)
        if noise == "second_outcome" and ending != "open":
            last = max(ts for ts, _ in planned)
            second = ["call.answered", "call.abandoned", "callback.connected", "callback.failed"]
            emit(draw(st.sampled_from(second)), last + 5000, queue)
        break

    deliveries = [(at, seq, record) for seq, (at, record) in enumerate(planned)]
    for index in draw(st.lists(st.integers(0, len(planned) - 1), max_size=3)):
        at, _, record = deliveries[index]
        if late_duplicates:
            at = max(at, deliveries[draw(st.integers(index, len(planned) - 1))][0])
        deliveries.append((at, len(deliveries), record))
    deliveries.sort(key=lambda item: (item[0], item[1]))
    return [Delivery(at, call_id, seq, orjson.dumps(record).decode())
            for seq, (at, _, record) in enumerate(deliveries)]


@st.composite
def stream(draw: st.DrawFn, late_duplicates: bool = True) -> list[Delivery]:
    """Many calls merged by delivery time (each call's order kept), plus junk and unknown-call lines."""
    deliveries: list[Delivery] = []
    for n in range(draw(st.integers(1, 25))):
        deliveries.extend(draw(call_history(f"c{n}", late_duplicates)))
    for n in range(draw(st.integers(0, 3))):
        at = T0 + draw(st.integers(0, 3_600_000))
        ghost = {"event_id": f"g{n}", "type": "call.answered", "ts": at, "call_id": f"ghost{n}", "queue": "q1"}
        deliveries.append(Delivery(at, f"ghost{n}", 0, orjson.dumps(ghost).decode()))
    for n in range(draw(st.integers(0, 2))):
        deliveries.append(Delivery(T0 + draw(st.integers(0, 3_600_000)), f"junk{n}", 0, '{"event_id": "j", "ty'))
    deliveries.sort(key=lambda d: (d.at, d.call_id, d.seq))
    return deliveries


configs = st.builds(
    lambda policy, dequeued, arrival, age: Config(
        defaults=QueueSettings(callback_policy=policy, dequeued_in_denominator=dequeued,
                               attribute_to="arrival" if arrival else "outcome"),
        limits=Limits(max_call_age_seconds=age),
    ),
    st.sampled_from(CALLBACK_POLICIES), st.booleans(), st.booleans(), st.sampled_from([900.0, 4 * 3600.0]),
)


def report(lines: list[str], config: Config) -> dict[str, Any]:
    built = Report(config)
    built.add_lines(lines)
    return built.to_dict()["queues"]


def texts(deliveries: list[Delivery]) -> list[str]:
    return [d.text for d in deliveries]


def blocks(queues: dict[str, Any]) -> list[dict[str, Any]]:
    return [block for data in queues.values() for block in (data["total"], *data["intervals"])]


@PROPERTY_SETTINGS
@given(stream(), configs)
def test_counts_are_never_negative_and_rates_stay_in_range(deliveries, config):
    for block in blocks(report(texts(deliveries), config)):
        for key, value in block.items():
            if key in ("start", "end") or value is None:
                continue
            assert value >= 0, key
        for ratio in ("service_level", "abandon_rate"):
            assert block[ratio] is None or 0.0 <= block[ratio] <= 1.0
        assert block["answered_within_threshold"] <= block["answered"]
        assert block["abandoned_within_threshold"] <= block["abandoned"]


@PROPERTY_SETTINGS
@given(stream(), configs)
def test_every_visit_ends_in_at_most_one_outcome_after_it_entered(deliveries, config):
    tracker = CallTracker(config)
    facts: list[calls.Fact] = []
    for delivery in deliveries:
        try:
            event = ev.parse_event(delivery.text)
        except ev.InvalidEvent:
            continue
        facts.extend(tracker.process(event).facts)
        facts.extend(tracker.advance())
    entered: set[str] = set()
    outcomes: Counter[str] = Counter()
    for fact in facts:
        if fact.kind == calls.ENTERED:
            assert fact.visit_id not in entered
            entered.add(fact.visit_id)
        elif fact.is_outcome:
            assert fact.visit_id in entered
            outcomes[fact.visit_id] += 1
        assert fact.wait_ms is None or fact.wait_ms >= 0
    assert all(n == 1 for n in outcomes.values())


@PROPERTY_SETTINGS
@given(stream(), configs)
def test_outcomes_never_outnumber_entries_per_queue(deliveries, config):
    for data in report(texts(deliveries), config).values():
        total = data["total"]
        ended = sum(total[k] for k in ("answered", "abandoned", "short_abandoned", "dequeued", "expired"))
        assert ended <= total["entered"]
        assert total["callbacks_connected"] + total["callbacks_failed"] <= total["callbacks_requested"]


@PROPERTY_SETTINGS
@given(stream(), configs)
def test_the_same_input_delivered_twice_gives_the_report_of_one_delivery(deliveries, config):
    once = texts(deliveries)
    assert report(once + once, config) == report(once, config)


def interleave_within_minutes(deliveries: list[Delivery], rng: random.Random) -> list[Delivery]:
    """Another interleaving of the calls within each minute of delivery, each call's own order kept."""
    by_minute: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_minute[delivery.at // 60_000].append(delivery)
    result: list[Delivery] = []
    for minute in sorted(by_minute):
        group = by_minute[minute]
        keys = [rng.random() for _ in group]
        per_call: dict[str, list[int]] = defaultdict(list)
        for position, delivery in enumerate(group):
            per_call[delivery.call_id].append(position)
        for positions in per_call.values():
            for position, key in zip(positions, sorted(keys[p] for p in positions), strict=True):
                keys[position] = key
        result.extend(delivery for _, delivery in sorted(zip(keys, group, strict=True), key=lambda kv: kv[0]))
    return result


def totals_and_results(lines: list[str], config: Config) -> tuple[dict[str, Any], Counter[tuple[str, str]]]:
    built = Report(config)
    built.add_lines(lines)
    return {q: data["total"] for q, data in built.to_dict()["queues"].items()}, built.results


@PROPERTY_SETTINGS
@given(stream(late_duplicates=False), st.sampled_from(CALLBACK_POLICIES), st.randoms(use_true_random=False))
def test_interleaving_calls_differently_within_a_minute_changes_no_total(deliveries, policy, rng):
    config = Config(defaults=QueueSettings(callback_policy=policy))
    shuffled = interleave_within_minutes(deliveries, rng)
    for call_id in {d.call_id for d in deliveries}:
        assert [d for d in shuffled if d.call_id == call_id] == [d for d in deliveries if d.call_id == call_id]
    original, original_results = totals_and_results(texts(deliveries), config)
    reordered, reordered_results = totals_and_results(texts(shuffled), config)
    assert original_results[("late", "late")] == reordered_results[("late", "late")] == 0
    assert reordered == original
