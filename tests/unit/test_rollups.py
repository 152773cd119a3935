"""Queue groups and tenants count a call once (docs/metrics.md "Groups and tenants"): a worked example
with every number derived by hand, tenants kept apart, and properties on random histories.

Groups: front = [sales, vip], back = [support], all = [sales, vip, support] (groups share queues).
T = 20 s, S = 5 s; times in seconds after 2026-06-01T10:00:00Z.

  g1  vip 0, overflow to sales at 30, answered 45       an overflow inside front (and all)
  g2  sales 10, overflow to support at 70, answered 80  an overflow out of front, into back
  g3  vip 20, abandoned 50                              an abandon (30 s)
  g4  sales 100, answered 105                           a direct answer
  g5  sales 120, abandoned 122                          a short abandon (2 s)
  g6  support 200, dequeued 210 (timeout, no to_queue), vip 215, answered 225
                                                        out of back, found out at the next visit
  g7  sales 300, answered 305, completed 400 to_queue vip, vip 400, answered 410
                                                        a transfer back into front: counted once

front: entered 7 (g1 g2 g3 g4 g5 g6 g7; g6 at 215, its first entry); answered 4: g1 45 s (from its
entry at 0, not 15 s from sales), g4 5, g6 10, g7 5: within 3; abandoned 1 (g3, 30 s); short 1 (g5);
dequeued 1 (g2 at 70). Outcomes 4 + 1 + 1 + 1 = 7 = entered. SL 3 / (4 + 1) = 0.6; ASA 65 / 4 = 16.25 s.
back: entered 2 (g2 at 70, g6 at 200); answered 1 (g2, 10 s, within); dequeued 1 (g6, at 210). SL 1.0.
all: entered 7; answered 5: g1 45, g2 70 (overflow inside all), g4 5, g6 25, g7 5: within 2;
abandoned 1; short 1; dequeued 0. SL 2 / 6; ASA 150 / 5 = 30 s.

Tenants (the `tenant` field of the events): acme = g1..g4: entered 4, answered 3 (45, 70, 5: within 1),
abandoned 1: SL 1 / 4. globex = g5..g7: entered 3, answered 2 (25, 5: within 1), short 1: SL 1 / 2.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.core import events as ev
from streamer.core.config import GROUP, ConfigError, parse_config, parse_rollup_key, rollup_key
from streamer.core.queues import QueueState
from streamer.core.tracker import CallTracker
from tests.eventlog import EventLog, run_report

GROUPS = {"groups": {"front": {"queues": ["sales", "vip"]}, "back": {"queues": ["support"]},
                     "all": {"queues": ["sales", "vip", "support"]}}}
KEYS = ("entered", "answered", "answered_within_threshold", "abandoned", "abandoned_within_threshold",
        "short_abandoned", "dequeued")


def example() -> EventLog:
    log = EventLog()
    acme, globex = {"tenant": "acme"}, {"tenant": "globex"}
    log.enqueued("g1", 0, queue="vip", **acme)
    log.enqueued("g2", 10, queue="sales", **acme)
    log.enqueued("g3", 20, queue="vip", **acme)
    log.dequeued("g1", 30, to_queue="sales", queue="vip", **acme)
    log.enqueued("g1", 30, queue="sales", **acme)
    log.answered("g1", 45, queue="sales", **acme)
    log.abandoned("g3", 50, queue="vip", **acme)
    log.dequeued("g2", 70, to_queue="support", queue="sales", **acme)
    log.enqueued("g2", 70, queue="support", **acme)
    log.answered("g2", 80, queue="support", **acme)
    log.enqueued("g4", 100, queue="sales", **acme)
    log.answered("g4", 105, queue="sales", **acme)
    log.enqueued("g5", 120, queue="sales", **globex)
    log.abandoned("g5", 122, queue="sales", **globex)
    log.enqueued("g6", 200, queue="support", **globex)
    log.dequeued("g6", 210, reason="timeout", queue="support", **globex)
    log.enqueued("g6", 215, queue="vip", **globex)
    log.answered("g6", 225, queue="vip", **globex)
    log.enqueued("g7", 300, queue="sales", **globex)
    log.answered("g7", 305, queue="sales", **globex)
    log.completed("g7", 400, to_queue="vip", queue="sales", **globex)
    log.enqueued("g7", 400, queue="vip", **globex)
    log.answered("g7", 410, queue="vip", **globex)
    return log


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = run_report(example(), parse_config(GROUPS))
    assert result.skipped == {}
    return result.to_dict()


def pick(block: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: block[key] for key in keys}


def test_a_group_counts_a_call_once_from_its_first_entry(report):
    front = report["groups"]["front"]["total"]
    assert pick(front, *KEYS) == {"entered": 7, "answered": 4, "answered_within_threshold": 3, "abandoned": 1,
                                  "abandoned_within_threshold": 0, "short_abandoned": 1, "dequeued": 1}
    assert front["service_level"] == pytest.approx(0.6)
    assert front["asa_seconds"] == pytest.approx(16.25)
    assert front["longest_answered_wait_seconds"] == 45.0  # g1 waited from 0 in the group, not 15 s in sales


def test_an_overflow_out_of_a_group_is_its_dequeue_and_the_next_groups_entry(report):
    back = report["groups"]["back"]["total"]
    assert pick(back, *KEYS) == {"entered": 2, "answered": 1, "answered_within_threshold": 1, "abandoned": 0,
                                 "abandoned_within_threshold": 0, "short_abandoned": 0, "dequeued": 1}
    assert back["service_level"] == 1.0


def test_groups_may_share_queues(report):
    group_all = report["groups"]["all"]["total"]
    assert pick(group_all, *KEYS) == {"entered": 7, "answered": 5, "answered_within_threshold": 2, "abandoned": 1,
                                      "abandoned_within_threshold": 0, "short_abandoned": 1, "dequeued": 0}
    assert group_all["service_level"] == pytest.approx(2 / 6)
    assert group_all["asa_seconds"] == pytest.approx(30.0)
    assert list(report["groups"]) == ["all", "back", "front"]
    assert [i["start"] for i in report["groups"]["all"]["intervals"]] == ["2026-06-01T10:00:00+00:00"]


def test_queue_figures_are_unchanged_by_groups(report):
    plain = run_report(example()).to_dict()["queues"]
    assert report["queues"] == plain
    assert pick(plain["vip"]["total"], "entered", "answered", "dequeued", "abandoned") == {
        "entered": 4, "answered": 2, "dequeued": 1, "abandoned": 1}


def test_tenants_roll_up_their_calls(report):
    tenants = report["tenants"]
    assert pick(tenants["acme"]["total"], *KEYS) == {
        "entered": 4, "answered": 3, "answered_within_threshold": 1, "abandoned": 1,
        "abandoned_within_threshold": 0, "short_abandoned": 0, "dequeued": 0}
    assert tenants["acme"]["total"]["service_level"] == 0.25
    assert pick(tenants["globex"]["total"], *KEYS) == {
        "entered": 3, "answered": 2, "answered_within_threshold": 1, "abandoned": 0,
        "abandoned_within_threshold": 0, "short_abandoned": 1, "dequeued": 0}
    assert tenants["globex"]["total"]["service_level"] == 0.5


def test_without_groups_or_tenants_the_report_has_queues_only():
    log = EventLog()
    log.answered_call("c", 0, 5)
    assert list(run_report(log).to_dict()) == ["queues"]
    configured = run_report(log, parse_config({"groups": {"idle": {"queues": ["q9"]}}})).to_dict()
    assert configured["groups"]["idle"]["total"]["entered"] == 0
    assert configured["groups"]["idle"]["intervals"] == []


def test_group_rows_in_csv():
    text = run_report(example(), parse_config(GROUPS)).to_csv()
    labels = {row.split(",")[0] for row in text.splitlines()[1:]}
    assert labels == {"sales", "support", "vip", "group:all", "group:back", "group:front", "tenant:acme",
                      "tenant:globex"}


def test_group_settings_apply_to_the_group():
    config = parse_config({"groups": {"front": {"queues": ["sales", "vip"], "threshold_seconds": 50,
                                                "short_abandon_seconds": 1}}})
    front = run_report(example(), config).to_dict()["groups"]["front"]["total"]
    # g1 45 s is within 50 s; g5's 2 s is no short abandon with S = 1 s.
    assert (front["answered_within_threshold"], front["short_abandoned"], front["abandoned"]) == (4, 0, 2)


# --- the live path: roll-up facts are counted by a QueueState under the roll-up key -----------------------


def test_a_group_counted_live_equals_the_report_and_its_waiting_calls_leave():
    config = parse_config(GROUPS)
    tracker = CallTracker(config)
    key = rollup_key(GROUP, "front")
    state = QueueState(key, config.for_queue(key))
    for event in example().events():
        for fact in tracker.process(event).facts + tracker.advance():
            if fact.queue == key:
                assert state.apply(fact).repeated is False
    assert state.totals == run_report(example(), config).queues[key].total
    assert state.waiting == {}
    assert parse_rollup_key(key) == (GROUP, "front") and parse_rollup_key("front") is None


def test_roll_up_keys_cannot_be_queue_names():
    record = {"event_id": "e", "type": "call.enqueued", "ts": 0, "call_id": "c", "queue": rollup_key(GROUP, "x")}
    with pytest.raises(ev.InvalidEvent) as refused:
        ev.parse_event(record)
    assert refused.value.reason == "bad_queue"


# --- tenants are never mixed -----------------------------------------------------------------------------

TENANTS = {"tenants": {"acme": {"queues": ["sales", "vip"]}, "globex": {"queues": ["support"],
                                                                         "time_zone": "America/New_York"}}}


def test_a_tenants_queues_refuse_another_tenants_calls():
    log = EventLog()
    log.enqueued("c1", 0, queue="support", tenant="acme")  # acme's call on globex's queue
    log.enqueued("c2", 0, queue="sales")  # no tenant named: the queue's tenant
    log.dequeued("c2", 10, to_queue="support", queue="sales")
    log.enqueued("c2", 10, queue="support")  # would carry an acme call into globex
    log.enqueued("c3", 0, queue="elsewhere", tenant="acme")  # outside acme's list
    log.enqueued("c4", 0, queue="vip", tenant="acme")
    log.dequeued("c4", 5, queue="vip")
    log.enqueued("c4", 6, queue="sales", tenant="globex")  # one call, two tenants
    result = run_report(log, parse_config(TENANTS))
    assert result.skipped == {"rejected:wrong_tenant": 4}
    tenants = result.to_dict()["tenants"]
    assert list(tenants) == ["acme"]
    assert tenants["acme"]["total"]["entered"] == 2


def test_a_tenant_uses_its_own_settings():
    log = EventLog()
    log.answered_call("c", 0, 5, queue="support")
    tenants = run_report(log, parse_config(TENANTS)).to_dict()["tenants"]
    assert tenants["globex"]["intervals"][0]["start"] == "2026-06-01T06:00:00-04:00"


@pytest.mark.parametrize(("data", "message"), [
    ({"groups": {"g": {}}}, "groups.g.queues is missing"),
    ({"groups": {"g": {"queues": []}}}, "groups.g.queues must be a non-empty list"),
    ({"groups": {"g": {"queues": ["a"], "colour": "red"}}}, "groups.g.colour is not a setting"),
    ({"groups": {"a|b": {"queues": ["a"]}}}, "groups.a|b: a name must be"),
    ({"tenants": {"t1": {"queues": ["a"]}, "t2": {"queues": ["a"]}}}, "listed by tenant 't1' too"),
    ({"defaults": {"fcr_window_days": 32}}, "at most 31"),
    ({"defaults": {"repeat_window_minutes": 0}}, "above 0"),
    ({"limits": {"next_visit_seconds": -1}}, "limits.next_visit_seconds"),
])
def test_bad_roll_up_settings_stop_with_a_message(data, message):
    with pytest.raises(ConfigError, match=message.replace("|", r"\|")):
        parse_config(data)


# --- properties --------------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUEUES = ("q1", "q2", "q3")


@st.composite
def histories(draw: st.DrawFn) -> EventLog:
    log = EventLog()
    for n in range(draw(st.integers(1, 20))):
        call, t = f"c{n}", draw(st.integers(0, 3600))
        tenant = draw(st.sampled_from(["t1", "t2"]))
        for _ in range(draw(st.integers(1, 4))):
            queue = draw(st.sampled_from(QUEUES))
            log.enqueued(call, t, queue=queue, tenant=tenant)
            t += draw(st.integers(0, 60))
            end = draw(st.sampled_from(["answer", "abandon", "overflow", "dequeue", "transfer", "open",
                                        "keep", "scheduled"]))
            if end in ("overflow", "dequeue"):
                to = draw(st.sampled_from(QUEUES))
                log.dequeued(call, t, reason="overflow", to_queue=to if end == "overflow" else None, queue=queue)
                t += draw(st.integers(0, 5))
                continue
            if end == "transfer":
                log.answered(call, t, queue=queue, tenant=tenant)
                t += 20
                log.completed(call, t, queue=queue, to_queue=draw(st.sampled_from(QUEUES)))
                continue
            if end == "answer":
                log.answered(call, t, queue=queue)
            elif end == "abandon":
                log.abandoned(call, t, queue=queue)
            elif end in ("keep", "scheduled"):
                log.callback(call, t, "keep_position" if end == "keep" else "scheduled", queue=queue)
                if end == "keep" and draw(st.booleans()):
                    log.connected(call, t + 100, queue=queue)
            break
    log.enqueued("clock", 9 * 3600, queue="q9")  # every call expired or decided
    log.records.sort(key=lambda record: ev.parse_ts(record["ts"]))
    return log


@PROPERTY
@given(histories())
def test_a_group_of_every_queue_counts_each_journey_once(log: EventLog):
    config = parse_config({"groups": {"every": {"queues": list(QUEUES)}}})
    result = run_report(log, config).to_dict()
    group = result["groups"]["every"]["total"]
    journeys = sum(block["total"]["journeys"] for block in result["queues"].values())
    assert group["entered"] == journeys  # the clock's queue q9 is in no group
    assert sum(group[k] for k in ("answered", "abandoned", "short_abandoned", "dequeued", "expired")) == journeys
    tenants = result["tenants"]
    for key in ("entered", "answered", "abandoned", "short_abandoned", "dequeued", "expired", "callbacks_requested"):
        assert sum(t["total"][key] for t in tenants.values()) == group[key], key


@PROPERTY
@given(histories(), st.sampled_from(QUEUES))
def test_each_group_has_one_outcome_per_entry_and_never_more_than_its_queues(log: EventLog, left_out: str):
    members = [q for q in QUEUES if q != left_out]
    config = parse_config({"groups": {"some": {"queues": members}}})
    result = run_report(log, config).to_dict()
    group = result["groups"]["some"]["total"]
    outcomes = sum(group[k] for k in ("answered", "abandoned", "short_abandoned", "dequeued", "expired"))
    assert outcomes == group["entered"]
    assert group["entered"] <= sum(result["queues"][q]["total"]["entered"] for q in members if q in result["queues"])
    key = rollup_key(GROUP, "some")
    tracker = CallTracker(config)
    state = QueueState(key, config.for_queue(key))
    for event in log.events():
        for fact in tracker.process(event).facts + tracker.advance():
            if fact.queue == key:
                state.apply(fact)
    assert state.waiting == {}  # every call that entered the group left it once


def test_a_new_tenant_takes_a_place_under_the_queue_cap():
    log = EventLog()
    log.answered_call("c1", 0, 5, tenant="t1")  # q1 and t1: two places
    log.answered_call("c2", 10, 5, tenant="t2")  # t2 would be the third
    log.answered_call("c3", 20, 5)
    result = run_report(log, parse_config({"limits": {"max_queues": 2}}))
    assert result.skipped == {"rejected:too_many_queues": 1, "rejected:unknown_call": 1}
    assert list(result.to_dict()["tenants"]) == ["t1"]
