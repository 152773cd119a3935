"""CallTracker: stream time, lateness, duplicates, admission of queues, expiry and forgetting of calls."""

from __future__ import annotations

from collections import Counter

from streamer.core import calls
from streamer.core.config import Config, Limits, QueueSettings
from streamer.core.tracker import CallTracker, Outcome
from tests.eventlog import EventLog, visit_facts

T0 = 1780308000000  # 2026-06-01T10:00:00Z
MINUTE = 60_000


def feed(tracker: CallTracker, log: EventLog, start: int = 0) -> tuple[list[Outcome], list[calls.Fact]]:
    """Process the records of `log` from index `start`, with an advance after each, as the shells do."""
    outcomes: list[Outcome] = []
    facts: list[calls.Fact] = []
    for event in log.events()[start:]:
        outcome = tracker.process(event)
        outcomes.append(outcome)
        facts.extend(visit_facts(outcome.facts))
        facts.extend(visit_facts(tracker.advance()))
    return outcomes, facts


def results(outcomes: list[Outcome]) -> list[tuple[str, str]]:
    return [(o.result, o.reason) for o in outcomes]


def tracker_with(**limits: object) -> CallTracker:
    return CallTracker(Config(limits=Limits(**limits)))  # type: ignore[arg-type]


def test_stream_time_is_the_newest_event_time_and_never_goes_back():
    tracker = tracker_with()
    log = EventLog()
    log.enqueued("c1", 30)
    log.enqueued("c2", 10)
    feed(tracker, log)
    assert tracker.stream_time == T0 + 30_000


def test_agent_events_are_processed_without_facts_or_stream_time():
    tracker = tracker_with()
    log = EventLog()
    log.agent("a1", 10, "available", queues=["q1"])
    outcomes, facts = feed(tracker, log)
    assert results(outcomes) == [("processed", "")]
    assert facts == []


def test_duplicates_and_rejections_are_reported_by_reason():
    tracker = tracker_with()
    log = EventLog()
    first = log.enqueued("c1", 0)
    log.repeat(first)
    log.answered("ghost", 5)
    log.answered("c1", 10, queue="q2")
    outcomes, _ = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("duplicate", "duplicate"), ("rejected", "unknown_call"),
                                 ("rejected", "wrong_queue")]


def test_an_open_visit_expires_at_the_maximum_age_once_stream_time_reaches_it():
    tracker = tracker_with(max_call_age_seconds=3600)
    log = EventLog()
    log.enqueued("stuck", 0)
    log.enqueued("c1", 3599.999)  # stream time 10:59:59.999: not yet
    _, facts = feed(tracker, log)
    assert [f.kind for f in facts] == ["entered", "entered"]
    assert tracker.store["stuck"].is_open
    log.abandoned("c1", 3600)  # stream time 11:00:00.000: the maximum age is reached
    _, later = feed(tracker, log, start=2)
    expired = [f for f in later if f.kind == "expired"]
    assert [(f.visit_id, f.queue, f.ts, f.enqueued_ts, f.wait_ms) for f in expired] == [
        ("stuck#1", "q1", T0 + 3_600_000, T0, None)]
    # Its intervals closed long ago, so the expired call is forgotten at once.
    assert "stuck" not in tracker.store


def test_an_end_event_after_expiry_is_rejected_and_counts_nothing():
    tracker = tracker_with(max_call_age_seconds=600)
    log = EventLog()
    log.enqueued("stuck", 0)
    log.enqueued("c1", 700)
    log.abandoned("stuck", 705)
    outcomes, facts = feed(tracker, log)
    assert [f.kind for f in facts] == ["entered", "entered", "expired"]
    assert results(outcomes)[-1] == ("rejected", "visit_ended")


def test_nothing_expires_before_the_maximum_age():
    tracker = tracker_with(max_call_age_seconds=3600)
    log = EventLog()
    log.enqueued("c1", 0)
    log.enqueued("c2", 3500)
    _, facts = feed(tracker, log)
    assert [f.kind for f in facts] == ["entered", "entered"]
    assert tracker.store["c1"].is_open


def test_advance_works_at_most_once_per_minute_of_stream_time():
    tracker = tracker_with(max_call_age_seconds=60)
    log = EventLog()
    log.enqueued("c1", 0)
    feed(tracker, log)
    tracker.stream_time = T0 + 61_000
    assert [f.kind for f in visit_facts(tracker.advance())] == ["expired"]
    assert tracker.advance() == []


def test_a_finished_call_is_forgotten_once_its_interval_closed_and_a_redelivery_is_then_late():
    tracker = tracker_with(grace_seconds=60)
    log = EventLog()
    log.enqueued("c1", 0)
    abandon = log.abandoned("c1", 30)
    log.enqueued("c2", 15 * 60 + 59)  # 10:15:59: interval 10:00-10:15 not yet closed (grace 60 s)
    feed(tracker, log)
    assert "c1" in tracker.store
    log.enqueued("c3", 16 * 60 + 1)  # stream time passes 10:16:00 and a new minute
    feed(tracker, log, start=3)
    assert "c1" not in tracker.store
    log.repeat(abandon)
    outcomes, facts = feed(tracker, log, start=4)
    assert results(outcomes) == [("late", "late")]
    assert facts == []


def test_an_answered_call_is_kept_for_its_completion_until_the_maximum_age():
    tracker = tracker_with(max_call_age_seconds=3600)
    log = EventLog()
    log.answered_call("c1", 0, 10)
    log.enqueued("c2", 1800)
    log.completed("c1", 1900, talk_seconds=1890)
    outcomes, _ = feed(tracker, log)
    assert results(outcomes)[-1] == ("processed", "")
    log.enqueued("c3", 3700)
    log.enqueued("c4", 3800)
    feed(tracker, log, start=5)
    assert "c1" not in tracker.store


def test_a_scheduled_callback_result_long_after_the_request_is_still_counted():
    tracker = tracker_with(max_call_age_seconds=4 * 3600)
    log = EventLog()
    log.enqueued("c4", 0)
    log.callback("c4", 40, "scheduled")
    log.answered_call("other", 2400, 5)  # stream time moves 40 minutes on: two intervals close
    log.connected("c4", 2700)
    outcomes, facts = feed(tracker, log)
    assert results(outcomes)[-1] == ("processed", "")
    assert [f.kind for f in facts if f.visit_id == "c4#1"] == ["entered", "callback_requested", "abandoned",
                                                               "callback_connected"]


def test_an_event_within_grace_is_processed_and_past_it_is_late():
    tracker = tracker_with(grace_seconds=60)
    log = EventLog()
    log.enqueued("c1", 10 * 60)  # 10:10
    log.enqueued("c2", 15 * 60 + 59.999)  # 10:15:59.999
    log.answered("c1", 14 * 60)  # interval 10:00-10:15 closes at 10:16:00: still in grace
    log.enqueued("c3", 16 * 60)  # 10:16:00.000
    log.abandoned("c2", 14 * 60 + 59)  # before c2's enqueue: impossible, but late first
    log.enqueued("c4", 14 * 60 + 59)  # a new call in the closed interval: late
    outcomes, _ = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("processed", ""), ("processed", ""), ("processed", ""),
                                 ("late", "late"), ("late", "late")]


def test_queues_beyond_the_allowed_set_are_refused_at_enqueue():
    tracker = CallTracker(Config(limits=Limits(allowed_queues=frozenset({"sales"}))))
    log = EventLog()
    log.enqueued("c1", 0, queue="sales")
    log.enqueued("c2", 1, queue="support")
    log.answered("c2", 2, queue="support")
    outcomes, facts = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("rejected", "queue_not_allowed"), ("rejected", "unknown_call")]
    assert {f.queue for f in facts} == {"sales"}


def test_the_queue_cardinality_cap_refuses_new_queues_but_keeps_known_ones():
    tracker = tracker_with(max_queues=2)
    log = EventLog()
    for i, queue in enumerate(["q1", "q2", "q3", "q1"]):
        log.enqueued(f"c{i}", i, queue=queue)
    outcomes, _ = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("processed", ""), ("rejected", "too_many_queues"),
                                 ("processed", "")]


def test_a_recovered_store_expires_and_forgets_like_the_original():
    config = Config(limits=Limits(max_call_age_seconds=600))
    first = CallTracker(config)
    log = EventLog()
    log.enqueued("stuck", 0)
    log.answered_call("done", 10, 5)
    feed(first, log)
    # A persisted store comes back as lists (the codec of the live table); the schedule is rebuilt.
    store = {k: calls.CallState.from_list(v.to_list()) for k, v in first.store.items()}
    second = CallTracker(config, store)
    second.rebuild_schedule()
    second.stream_time = first.stream_time
    assert second.queues_seen == {"q1"}
    log.enqueued("late-comer", 700)
    _, facts = feed(second, log, start=3)
    assert [(f.kind, f.visit_id) for f in facts] == [("entered", "late-comer#1"), ("expired", "stuck#1")]


def test_the_store_may_be_any_mutable_mapping_and_rejections_are_remembered_in_it():
    store: dict[str, calls.CallState] = {}
    tracker = CallTracker(Config(), store)
    log = EventLog()
    log.enqueued("c1", 0)
    bad = log.completed("c1", 5)  # not answered yet: rejected
    log.repeat(bad)
    outcomes, _ = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("rejected", "not_answered"), ("duplicate", "duplicate")]
    assert store["c1"].seen == ["c1-1", "c1-2"]
    assert store["c1"].is_open


def test_per_queue_settings_decide_lateness():
    config = Config(queues={"hourly": QueueSettings(interval_minutes=60)}, limits=Limits(grace_seconds=0))
    tracker = CallTracker(config)
    log = EventLog()
    log.enqueued("c1", 20 * 60, queue="hourly")  # 10:20
    log.enqueued("c2", 20 * 60, queue="q1")
    log.enqueued("c3", 10 * 60, queue="hourly")  # 10:10: the hourly interval is still open
    log.enqueued("c4", 10 * 60, queue="q1")  # 10:10: 10:00-10:15 closed at 10:15
    outcomes, _ = feed(tracker, log)
    assert Counter(o.result for o in outcomes) == Counter({"processed": 3, "late": 1})
    assert results(outcomes)[-1] == ("late", "late")


def test_a_rejected_enqueue_takes_no_place_under_the_queue_cap():
    tracker = tracker_with(max_queues=2)
    log = EventLog()
    log.enqueued("c1", 0, queue="q1")
    log.enqueued("c1", 1, queue="junk")  # c1 is already queued: rejected, "junk" must not be admitted
    log.enqueued("c2", 2, queue="q2")
    outcomes, _ = feed(tracker, log)
    assert results(outcomes) == [("processed", ""), ("rejected", "already_queued"), ("processed", "")]
    assert tracker.queues_seen == {"q1", "q2"}
