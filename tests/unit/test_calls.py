"""The call state machine: every outcome row of the design's table, the callback policies, and every
impossible transition (rejected with its reason, changing nothing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from streamer.core import calls, counters
from streamer.core import events as ev
from streamer.core.config import (
    POLICY_FLOW_OUT,
    POLICY_REMOVED_FROM_QUEUE,
    QueueSettings,
)
from tests.eventlog import EventLog, visit_facts

T0 = 1780308000000  # 2026-06-01T10:00:00Z
DEFAULT = QueueSettings()  # T = 20 s, S = 5 s, COPC callback policy


@dataclass
class Run:
    """One call's events applied in order: its facts, its rejections, its last state."""

    state: calls.CallState | None = None
    facts: list[calls.Fact] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def outcomes(self) -> list[tuple[str, str, int | None]]:
        return [(f.kind, f.queue, f.wait_ms) for f in self.facts if f.is_outcome]

    def kinds(self) -> list[str]:
        return [f.kind for f in visit_facts(self.facts)]

    def counts(self, settings: QueueSettings = DEFAULT) -> dict[str, int]:
        block = counters.empty()
        for fact in visit_facts(self.facts):
            counters.add_fact(block, fact, settings)
        return {name: block[i] for name, i in counters.INDEX.items() if block[i]}


def run(log: EventLog, settings: QueueSettings = DEFAULT, into: Run | None = None) -> Run:
    result = into or Run()
    for event in log.events():
        step = calls.apply(result.state, event, lambda _queue: settings)
        if step.rejected:
            result.rejected.append(step.rejected)
        else:
            result.facts.extend(step.facts)
        result.state = step.state
    return result


# --- the outcome table (default COPC policy) -------------------------------------------------------


def test_answered_by_an_agent_waits_answer_minus_enqueue():
    log = EventLog()
    log.enqueued("c1", 0)
    log.answered("c1", 15.25, agent_id="a1")
    result = run(log)
    assert result.kinds() == ["entered", "answered"]
    assert result.outcomes() == [("answered", "q1", 15_250)]
    assert result.facts[1].ts == T0 + 15_250
    assert result.facts[1].enqueued_ts == T0
    assert result.counts() == {"entered": 1, "answered": 1, "answered_within_threshold": 1,
                               "answered_wait_ms": 15_250, "longest_answered_wait_ms": 15_250}
    assert result.state is not None and not result.state.is_open and result.state.answered


def test_keep_position_callback_connected_is_answered_with_the_wait_from_the_original_enqueue():
    log = EventLog()
    log.enqueued("c3", 0)
    log.callback("c3", 30, "keep_position")
    log.connected("c3", 240, agent_id="a2")
    result = run(log)
    assert result.kinds() == ["entered", "callback_requested", "callback_connected", "answered"]
    assert result.outcomes() == [("answered", "q1", 240_000)]
    assert result.facts[-1].callback == "keep_position"
    counts = result.counts()
    assert counts["answered"] == 1
    assert counts.get("answered_within_threshold", 0) == 0
    assert counts["answered_wait_ms"] == 240_000
    assert counts["callbacks_requested"] == 1
    assert counts["callbacks_kept_position"] == 1
    assert counts["callbacks_connected"] == 1
    assert counts["callbacks_answered"] == 1
    assert counts.get("abandoned", 0) == 0


def test_keep_position_marker_waits_between_request_and_result():
    log = EventLog()
    log.enqueued("c3", 0)
    log.callback("c3", 30, "keep_position")
    result = run(log)
    assert result.state is not None
    assert (result.state.status, result.state.callback) == (calls.MARKER, "keep_position")
    assert result.outcomes() == []


def test_unreachable_keep_position_callback_is_abandoned_with_wait_failure_minus_enqueue():
    log = EventLog()
    log.enqueued("c7", 0)
    log.callback("c7", 10, "keep_position")
    log.failed("c7", 900)
    result = run(log)
    assert result.kinds() == ["entered", "callback_requested", "callback_failed", "abandoned"]
    assert result.outcomes() == [("abandoned", "q1", 900_000)]
    counts = result.counts()
    assert (counts["abandoned"], counts["abandoned_wait_ms"], counts["callbacks_failed"]) == (1, 900_000, 1)
    assert counts.get("abandoned_within_threshold", 0) == 0


def test_scheduled_callback_is_abandoned_at_the_moment_of_request_whatever_happens_later():
    log = EventLog()
    log.enqueued("c4", 0)
    log.callback("c4", 40, "scheduled")
    log.connected("c4", 3600, agent_id="a3")  # the customer is reached an hour later
    result = run(log)
    assert result.rejected == []
    assert result.outcomes() == [("abandoned", "q1", 40_000)]
    assert result.kinds() == ["entered", "callback_requested", "abandoned", "callback_connected"]
    counts = result.counts()
    assert counts["callbacks_scheduled"] == 1
    assert counts["callbacks_connected"] == 1
    assert counts.get("answered", 0) == 0
    assert counts.get("callbacks_answered", 0) == 0


def test_scheduled_callback_requested_within_threshold_is_an_abandon_within_threshold():
    log = EventLog()
    log.enqueued("c4", 0)
    log.callback("c4", 12, "scheduled")
    assert run(log).counts()["abandoned_within_threshold"] == 1


def test_scheduled_callback_that_fails_later_changes_no_outcome():
    log = EventLog()
    log.enqueued("c4", 0)
    log.callback("c4", 40, "scheduled")
    log.failed("c4", 7200)
    result = run(log)
    assert result.outcomes() == [("abandoned", "q1", 40_000)]
    assert result.counts()["callbacks_failed"] == 1


def test_caller_hanging_up_after_accepting_a_kept_position_is_accepted_silently_and_the_marker_waits():
    log = EventLog()
    log.enqueued("c3", 0)
    log.callback("c3", 30, "keep_position")
    log.abandoned("c3", 35)  # the customer ends the inbound call, as expected after accepting
    middle = run(log)
    assert middle.rejected == []
    assert middle.outcomes() == []
    assert middle.state is not None and middle.state.status == calls.MARKER
    log.connected("c3", 240)
    result = run(log)
    assert result.outcomes() == [("answered", "q1", 240_000)]


def test_caller_hanging_up_after_a_scheduled_request_is_accepted_silently():
    log = EventLog()
    log.enqueued("c4", 0)
    log.callback("c4", 40, "scheduled")
    log.abandoned("c4", 42)
    result = run(log)
    assert result.rejected == []
    assert result.outcomes() == [("abandoned", "q1", 40_000)]


@pytest.mark.parametrize(
    ("wait", "kind"),
    [(0, "short_abandoned"), (4.999, "short_abandoned"), (5.0, "abandoned"), (5.001, "abandoned")],
)
def test_short_abandon_is_a_wait_strictly_below_the_short_threshold(wait, kind):
    log = EventLog()
    log.abandoned_call("c2", 0, wait)
    result = run(log)
    assert result.outcomes() == [(kind, "q1", round(wait * 1000))]


def test_short_abandon_is_counted_alone():
    log = EventLog()
    log.abandoned_call("c2", 0, 3)
    assert run(log).counts() == {"entered": 1, "short_abandoned": 1}


@pytest.mark.parametrize(
    ("wait", "within"),
    [(19.999, 1), (20.0, 1), (20.001, 0)],
)
def test_answered_at_exactly_the_threshold_is_within_and_one_millisecond_over_is_not(wait, within):
    log = EventLog()
    log.answered_call("c1", 0, wait)
    counts = run(log).counts()
    assert counts["answered"] == 1
    assert counts.get("answered_within_threshold", 0) == within


@pytest.mark.parametrize(
    ("wait", "within"),
    [(19.999, 1), (20.0, 1), (20.001, 0)],
)
def test_abandoned_at_exactly_the_threshold_is_within_and_one_millisecond_over_is_not(wait, within):
    log = EventLog()
    log.abandoned_call("c5", 0, wait)
    counts = run(log).counts()
    assert counts["abandoned"] == 1
    assert counts.get("abandoned_within_threshold", 0) == within


@pytest.mark.parametrize("reason", ["overflow", "transfer", "timeout", "keypress", "other"])
def test_dequeued_for_each_reason_ends_the_visit_counted_alone(reason):
    log = EventLog()
    log.enqueued("c6", 0)
    log.dequeued("c6", 30, reason=reason)
    result = run(log)
    assert result.outcomes() == [("dequeued", "q1", None)]
    assert result.facts[-1].reason == reason
    assert result.counts() == {"entered": 1, "dequeued": 1}


def test_overflow_chain_gives_one_visit_and_one_outcome_per_queue():
    log = EventLog()
    log.enqueued("c6", 0, queue="q1")
    log.dequeued("c6", 30, reason="overflow", to_queue="q2", queue="q1")
    log.enqueued("c6", 30, queue="q2")
    log.dequeued("c6", 90, reason="timeout", to_queue="q3", queue="q2")
    log.enqueued("c6", 90, queue="q3")
    log.answered("c6", 102.5, queue="q3")
    result = run(log)
    assert result.rejected == []
    assert result.outcomes() == [("dequeued", "q1", None), ("dequeued", "q2", None), ("answered", "q3", 12_500)]
    entered = [(f.queue, f.visit_id) for f in result.facts if f.kind == "entered"]
    assert entered == [("q1", "c6#1"), ("q2", "c6#2"), ("q3", "c6#3")]
    assert [f.visit_id for f in result.facts if f.is_outcome] == ["c6#1", "c6#2", "c6#3"]


def test_overflow_chain_with_an_abandon_on_the_last_queue():
    log = EventLog()
    log.enqueued("c8", 0, queue="q1")
    log.dequeued("c8", 20, to_queue="q2", queue="q1")
    log.enqueued("c8", 20, queue="q2")
    log.dequeued("c8", 50, to_queue="q3", queue="q2")
    log.enqueued("c8", 50, queue="q3")
    log.abandoned("c8", 80, queue="q3")
    assert run(log).outcomes() == [("dequeued", "q1", None), ("dequeued", "q2", None), ("abandoned", "q3", 30_000)]


def test_a_new_visit_after_an_answer_is_allowed_and_numbered():
    log = EventLog()
    log.answered_call("c1", 0, 10)
    log.completed("c1", 100)
    log.answered_call("c1", 120, 5, queue="q2")  # transferred by the agent into another queue
    result = run(log)
    assert result.rejected == []
    assert [(f.visit_id, f.kind, f.wait_ms) for f in result.facts if f.is_outcome] == [
        ("c1#1", "answered", 10_000), ("c1#2", "answered", 5_000)]


def test_expire_ends_an_open_visit_at_enqueue_plus_max_age():
    log = EventLog()
    log.enqueued("c9", 0)
    state = run(log).state
    assert state is not None
    max_age = 3_600_000
    assert calls.expire(state, T0 + max_age - 1, max_age).facts == []
    step = calls.expire(state, T0 + max_age + 5_000, max_age)
    assert [(f.kind, f.ts, f.wait_ms) for f in visit_facts(step.facts)] == [("expired", T0 + max_age, None)]
    assert step.state is not None and not step.state.is_open
    assert state.is_open  # the old state is not mutated


def test_expire_also_ends_a_waiting_callback_marker():
    log = EventLog()
    log.enqueued("c3", 0)
    log.callback("c3", 30, "keep_position")
    step = calls.expire(run(log).state, T0 + 7_200_000, 3_600_000)  # type: ignore[arg-type]
    assert [f.kind for f in visit_facts(step.facts)] == ["expired"]


def test_expire_does_nothing_to_an_ended_visit():
    log = EventLog()
    log.answered_call("c1", 0, 10)
    state = run(log).state
    assert calls.expire(state, T0 + 10**9, 3_600_000).facts == []  # type: ignore[arg-type]


# --- the other callback policies -------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "within"), [("keep_position", 1), ("scheduled", 0)])
def test_removed_from_queue_policy_counts_a_request_as_answered_at_the_request(mode, within):
    settings = QueueSettings(callback_policy=POLICY_REMOVED_FROM_QUEUE)
    log = EventLog()
    log.enqueued("c1", 0)
    log.callback("c1", 12 if mode == "keep_position" else 25, mode)
    log.connected("c1", 600)
    result = run(log, settings)
    assert result.rejected == []
    assert result.outcomes() == [("answered", "q1", 12_000 if within else 25_000)]
    counts = result.counts(settings)
    assert counts.get("answered_within_threshold", 0) == within
    assert counts["callbacks_connected"] == 1
    assert counts["callbacks_answered"] == 1


def test_flow_out_policy_counts_a_request_as_dequeued_with_reason_callback():
    settings = QueueSettings(callback_policy=POLICY_FLOW_OUT)
    log = EventLog()
    log.enqueued("c1", 0)
    log.callback("c1", 45, "keep_position")
    log.failed("c1", 900)
    result = run(log, settings)
    assert result.rejected == []
    assert result.outcomes() == [("dequeued", "q1", None)]
    assert result.facts[2].reason == "callback"
    counts = result.counts(settings)
    assert (counts["dequeued"], counts["callbacks_failed"]) == (1, 1)
    assert counts.get("abandoned", 0) == 0


# --- duplicates and impossible transitions ---------------------------------------------------------


def test_a_duplicate_at_once_and_later_is_ignored():
    log = EventLog()
    enqueued = log.enqueued("c1", 0)
    log.repeat(enqueued)
    answered = log.answered("c1", 15)
    log.repeat(enqueued)
    log.repeat(answered)
    result = run(log)
    assert result.rejected == ["duplicate", "duplicate", "duplicate"]
    assert result.outcomes() == [("answered", "q1", 15_000)]
    assert result.kinds().count("entered") == 1


def _impossible(build: Callable[[EventLog], object]) -> Run:
    log = EventLog()
    build(log)
    return run(log)


@pytest.mark.parametrize(
    ("name", "build", "reason"),
    [
        ("second outcome", lambda log: (log.abandoned_call("c", 0, 30), log.answered("c", 40)), "visit_ended"),
        ("second abandon", lambda log: (log.abandoned_call("c", 0, 30), log.abandoned("c", 40)), "visit_ended"),
        ("answer after dequeue", lambda log: (log.enqueued("c", 0), log.dequeued("c", 5), log.answered("c", 9)),
         "visit_ended"),
        ("answer for unknown call", lambda log: log.answered("ghost", 10), "unknown_call"),
        ("callback result for unknown call", lambda log: log.connected("ghost", 10), "unknown_call"),
        ("connect without request", lambda log: (log.enqueued("c", 0), log.connected("c", 30)), "no_callback"),
        ("fail without request", lambda log: (log.enqueued("c", 0), log.failed("c", 30)), "no_callback"),
        ("connect after answered", lambda log: (log.answered_call("c", 0, 9), log.connected("c", 30)),
         "visit_ended"),
        ("outcome before the enqueue", lambda log: (log.enqueued("c", 60), log.answered("c", 30)), "before_enqueue"),
        ("wrong queue", lambda log: (log.enqueued("c", 0), log.answered("c", 10, queue="q2")), "wrong_queue"),
        ("completed before answer", lambda log: (log.enqueued("c", 0), log.completed("c", 10)), "not_answered"),
        ("enqueued while queued", lambda log: (log.enqueued("c", 0), log.enqueued("c", 5)), "already_queued"),
        ("enqueued on another queue while queued",
         lambda log: (log.enqueued("c", 0), log.enqueued("c", 5, queue="q2")), "already_queued"),
        ("second callback request",
         lambda log: (log.enqueued("c", 0), log.callback("c", 5, "keep_position"), log.callback("c", 9, "scheduled")),
         "callback_already_requested"),
        ("agent answers the marker",
         lambda log: (log.enqueued("c", 0), log.callback("c", 5, "keep_position"), log.answered("c", 9)),
         "marker_answered"),
        ("second result of a kept callback",
         lambda log: (log.enqueued("c", 0), log.callback("c", 5, "keep_position"), log.connected("c", 60),
                      log.failed("c", 70)), "visit_ended"),
        ("second connect of a scheduled callback",
         lambda log: (log.enqueued("c", 0), log.callback("c", 5, "scheduled"), log.connected("c", 60),
                      log.connected("c", 70)), "visit_ended"),
    ],
)
def test_impossible_transitions_are_rejected_and_change_no_number(name, build, reason):
    whole = _impossible(build)
    assert whole.rejected == [reason], name
    # The same history without the impossible event gives the same facts.
    log = EventLog()
    build(log)
    log.records.pop()
    assert run(log).facts == whole.facts


def test_a_rejected_event_leaves_the_visit_as_it_was():
    log = EventLog()
    log.enqueued("c1", 0)
    before = run(log).state
    assert before is not None
    event = ev.parse_event(log.answered("c1", 10, queue="q2"))
    step = calls.apply(before, event, lambda _q: DEFAULT)
    assert step.rejected == "wrong_queue"
    assert step.facts == []
    after = step.state
    assert after is not None
    assert (after.visits, after.queue, after.enqueued_ts, after.status, after.callback) == (
        before.visits, before.queue, before.enqueued_ts, before.status, before.callback)
    assert before.seen == ["c1-1"]  # the old state object itself is untouched


def test_a_rejected_event_delivered_again_is_a_duplicate_even_once_it_would_fit():
    log = EventLog()
    log.enqueued("c1", 0)
    early = log.enqueued("c1", 5, queue="q2")  # rejected: the call is still queued on q1
    log.dequeued("c1", 10, to_queue="q2")
    log.repeat(early)  # a redelivery must not now open a visit that was judged impossible
    result = run(log)
    assert result.rejected == ["already_queued", "duplicate"]
    assert result.kinds() == ["entered", "dequeued"]


def test_completion_after_an_answer_or_a_connected_callback_is_accepted():
    log = EventLog()
    log.answered_call("c1", 0, 10)
    log.completed("c1", 200, talk_seconds=190)
    log.enqueued("c3", 0)
    log.callback("c3", 5, "keep_position")
    log.connected("c3", 300)
    log.completed("c3", 500)
    result = run(log)
    assert result.rejected == []


def test_completion_after_an_answer_gives_the_visits_handle_time():
    log = EventLog()
    log.answered_call("c1", 0, 10)
    log.completed("c1", 200, talk_seconds=190, wrap_seconds=25.5)
    log.answered_call("c2", 0, 10)
    log.completed("c2", 200)  # no durations: no handle time
    result = run(log)
    handled = [f for f in result.facts if f.kind == calls.HANDLED]
    assert [(f.queue, f.visit_id, f.value, f.ts) for f in handled] == [("q1", "c1#1", 215_500, T0 + 200_000)]
    block = counters.empty()
    for fact in handled:
        counters.add_fact(block, fact, DEFAULT)
    assert (block[counters.INDEX["handled_calls"]], block[counters.INDEX["handle_ms"]]) == (1, 215_500)
    # Internal: no report key shows it, and an interval of handle times alone is empty.
    assert counters.is_empty(block)
    assert counters.summary(block, DEFAULT) == counters.summary(counters.empty(), DEFAULT)


def test_completion_after_an_abandon_is_accepted_and_counts_nothing():
    log = EventLog()
    log.abandoned_call("c1", 0, 30)
    log.completed("c1", 31)
    result = run(log)
    assert result.rejected == []
    assert result.kinds() == ["entered", "abandoned"]


# --- state storage ---------------------------------------------------------------------------------


def test_seen_event_ids_are_bounded_per_call():
    state = calls.CallState("c1", visits=1, queue="q1", enqueued_ts=T0, status=calls.WAITING)
    for i in range(calls.MAX_SEEN_EVENT_IDS + 10):
        event = ev.Event(event_id=f"x{i}", type=ev.CALL_ABANDONED, ts=T0 + 1, call_id="c1", queue="q1")
        state = calls._copy(state, event)
    assert len(state.seen) == calls.MAX_SEEN_EVENT_IDS
    assert state.seen[-1] == f"x{calls.MAX_SEEN_EVENT_IDS + 9}"


def test_state_and_facts_survive_a_list_round_trip():
    log = EventLog()
    log.enqueued("c3", 0)
    log.callback("c3", 30, "keep_position")
    result = run(log)
    assert result.state is not None
    assert calls.CallState.from_list(result.state.to_list()) == result.state
    for fact in result.facts:
        assert calls.Fact.from_list(fact.to_list()) == fact
