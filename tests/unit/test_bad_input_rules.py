"""What keeps bad input out of the counts and the metric series: events dated far ahead of a live
worker's clock, agent events naming queues outside the allow-list or beyond the cap, and the resumed
stream time after a restart."""

from __future__ import annotations

import pytest

from streamer.core.config import Config, ConfigError, Limits, parse_config
from streamer.core.tracker import FUTURE_TIME, PROCESSED, QUEUE_NOT_ALLOWED, REJECTED, TOO_MANY_QUEUES, CallTracker
from tests.eventlog import EventLog

T0 = 1780308000000  # 2026-06-01T10:00:00Z
DAY = 86_400_000


def tracker_with(**limits: object) -> CallTracker:
    return CallTracker(Config(limits=Limits(**limits)))  # type: ignore[arg-type]


def test_an_event_dated_beyond_the_future_limit_is_rejected_and_moves_no_stream_time():
    tracker = tracker_with()
    log = EventLog()
    far = log.enqueued("c1", DAY / 1000 + 1)
    near = log.enqueued("c2", DAY / 1000)
    events = log.events()
    assert (tracker.process(events[0], now_ms=T0).result, tracker.process(events[0], now_ms=T0).reason) == (
        REJECTED, FUTURE_TIME)
    assert tracker.stream_time == 0
    assert tracker.process(events[1], now_ms=T0).result == PROCESSED
    assert tracker.stream_time == T0 + DAY
    assert far["call_id"] not in tracker.store and near["call_id"] in tracker.store


def test_without_a_clock_there_is_no_future_limit():
    """The offline report has no "now": a file of any date is reported."""
    tracker = tracker_with()
    log = EventLog()
    log.enqueued("c1", 10 * DAY / 1000)
    assert tracker.process(log.events()[0]).result == PROCESSED


def test_the_future_limit_is_a_setting():
    config = parse_config({"limits": {"max_future_seconds": 600}})
    assert config.limits.max_future_ms == 600_000
    with pytest.raises(ConfigError, match="max_future_seconds"):
        parse_config({"limits": {"max_future_seconds": 1}})


def test_agent_events_naming_a_queue_outside_the_allow_list_are_rejected():
    tracker = tracker_with(allowed_queues=frozenset({"sales"}))
    log = EventLog()
    log.agent("a1", 1, "available", queues=["sales"])
    log.agent("a2", 2, "available", queues=["sales", "flood-1"])
    ok, refused = (tracker.process(event) for event in log.events())
    assert ok.result == PROCESSED
    assert (refused.result, refused.reason) == (REJECTED, QUEUE_NOT_ALLOWED)
    assert tracker.queues_seen == {"sales"}


def test_agent_queues_count_under_the_cap_and_a_refused_event_admits_none_of_its_queues():
    tracker = tracker_with(max_queues=2)
    log = EventLog()
    log.agent("a1", 1, "busy", queues=["q1"])
    log.agent("a2", 2, "busy", queues=["q2", "q3"])
    log.agent("a3", 3, "busy", queues=["q2"])
    log.enqueued("c1", 4, queue="q2")
    first, flood, again, call = (tracker.process(event) for event in log.events())
    assert first.result == PROCESSED
    assert (flood.result, flood.reason) == (REJECTED, TOO_MANY_QUEUES)
    assert again.result == PROCESSED and call.result == PROCESSED
    assert tracker.queues_seen == {"q1", "q2"}


def facts_after(tracker: CallTracker, events: list) -> list[list[str]]:
    """Per event, the kinds of the facts it gave, with an advance after each, as the shells run it."""
    out = []
    for event in events:
        outcome = tracker.process(event)
        out.append([fact.kind for fact in outcome.facts] + [fact.kind for fact in tracker.advance()])
    return out


def test_a_resumed_tracker_sweeps_when_the_first_run_would_have():
    """After a restart the next expiry sweep falls where the first run's would have, so the replay
    expires the same calls at the same events. Here "old" is past its maximum age (65 s) at 66 s, but
    the first run sweeps only at 120 s: the answer at 68 s still counts."""
    log = EventLog()
    log.enqueued("first", 0)
    log.enqueued("old", 5)
    log.enqueued("c1", 61)
    log.enqueued("c2", 66)
    log.enqueued("c3", 67)  # restart before this one
    log.answered("old", 68)
    events = log.events()
    first_run = tracker_with(max_call_age_seconds=60)
    before = facts_after(first_run, events)

    crashed = tracker_with(max_call_age_seconds=60)
    facts_after(crashed, events[:4])
    restarted = CallTracker(crashed.config, crashed.store)
    restarted.rebuild_schedule()
    restarted.resume(crashed.stream_time)
    assert facts_after(restarted, events[4:]) == before[4:] == [["entered"], ["answered"]]

    naive = CallTracker(crashed.config, {key: state for key, state in crashed.store.items()})
    naive.rebuild_schedule()
    naive.stream_time = crashed.stream_time  # without the sweep it had planned: expires "old" too early
    assert facts_after(naive, events[4:]) != before[4:]
