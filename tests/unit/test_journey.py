"""The customer's journey on one worked example (docs/metrics.md "The customer's journey"), every number
derived by hand below; then the window edges, pending contacts, journeys that wait for a next visit,
surveys and their rejections, the detractor list, and properties on random histories.

Worked example: T = 20 s, S = 5 s, 15-minute intervals in UTC, repeat window 30 min, FCR window
7 days, grace 60 s, next visit within 60 s; times in seconds after 2026-06-01T10:00:00Z.

  q1  a1  customer A  enq 0, answered 15, completed 300                    contact, journey answered 15 s
      b1  customer B  enq 60, abandoned 90                                 contact, journey abandoned 30 s
      t1              enq 200, answered 210, completed 400 to_queue q2     transfer after an answer
      o1              enq 300, dequeued 330 overflow to q2                 passed around (see q2, q3)
      d1              enq 500, answered 512, completed 700                 journey answered 12 s
      s1              enq 600, dequeued 610 overflow to q2                 abandons on q2 (see q2)
      x1              enq 1000 without customer_id, answered 1004, completed 1100 (with one): no contact
      a2  customer A  enq 1800, answered 1810, completed 1900              exactly 30 min after a1: repeat
      b2  customer B  enq 1860.001, answered 1865.001, completed 1950      30 min + 1 ms after b1: no repeat
      a3  customer A  enq 606600, answered 606605, completed 606700        exactly a2 + 7 days
  q2  c1  customer C  enq 120, answered 125, completed 200
      o1              enq 330, dequeued 340 timeout (no to_queue)
      t1              enq 400 (the transfer), answered 430, completed 600
      s1              enq 610, abandoned 613 (3 s: a short abandon on q2)
      g1              enq 700, dequeued 720 keypress, no next visit: its journey ends at 720
  q3  o1              enq 345 (5 s after leaving q2), answered 350, completed 500
      late            enq 800, dequeued 810 timeout; enq 900 (90 s later: a new journey), answered 905,
                      completed 950
      z               enq 612000, answered 612002, completed 612100 (moves stream time past the windows)

Visits. q1: entered 10, answered 7 (waits 15, 10, 12, 10, 5, 4, 5: all within), abandoned 1 (b1),
dequeued 2. q2: entered 5, answered 2 (5 s within, 30 s not), short abandon 1, dequeued 2.
q3: entered 4, answered 3 (5, 5, 2), dequeued 1.

Contacts (first enqueue with a customer): q1 a1, b1, a2, b2, a3 = 5; q2 c1 = 1. Repeats: a2 (a1 at
exactly t - 30 min is in [t - 30 min, t)); b2 is 1 ms too late. q1 repeat_contact_rate 1/5 = 0.2.

FCR. a1 unresolved (a2 within 7 days), b1 unresolved (b2), a2 unresolved (a3 at exactly a2 + 7 days:
(t, t + window] holds its end), b2 resolved (nothing in its window, which z's time has passed), a3
pending (its window is open at the end of the input); c1 resolved. q1: resolved 1, unresolved 3,
pending 1, fcr_rate 1/4; by contact day: 2026-06-01 4 contacts (1, 3, 0, 0.25), 2026-06-08 1 contact
(pending 1, rate null). q2: 2026-06-01 c1 resolved, rate 1.0.

Hand-offs (at the new visit's enqueue): t1 q1 -> q2 at 400, o1 q1 -> q2 at 330 and q2 -> q3 at 345,
s1 q1 -> q2 at 610. q1 out 3 in 0; q2 out 1 in 3; q3 out 0 in 1. late's visit at 900 is no hand-off.

Journeys (at the first queue). q1: a1 answered 15 within; b1 abandoned 30; t1 answered 10 + 30 = 40,
1 hand-off; o1 answered 30 + 10 + 5 = 45, 2 hand-offs (passed around); d1 answered 12 within; s1
abandoned 10 + 3 = 13 s (not short: the journey waited >= 5 s; within T), 1 hand-off; a2, b2, x1, a3
answered 10, 5, 4, 5 within. journeys 10, with hand-off 3, passed around 1, answered 8 (6 within),
abandoned 2 (1 within); journey SL 6 / (8 + 2) = 0.6; journey ASA 136 / 8 = 17 s.
q2: c1 answered 5 within, g1 dequeued (out of the SL): journeys 2, SL 1/1, ASA 5 s.
q3: late's first journey dequeued (ended at 810), late's second answered 5, z answered 2: journeys 3,
answered 2 within 2, SL 1.0, ASA 3.5 s.

Surveys: q1 a1 nps 8 (passive) at 400; d1 nps 10 csat 5 at 800; a second nps for d1 at 850 (rejected:
survey_repeated); nps 11, no score, nps "9" (invalid: bad_value, missing_field, wrong_type). q1 NPS
100 (1 - 0) / 2 = 50, CSAT 1/1. q2 t1 nps 6 csat 2 at 700: NPS -100, CSAT 0. q3 o1 csat 4 at 600:
CSAT 1.0, NPS null.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.core import calls, counters
from streamer.core import events as ev
from streamer.core.config import Config, Limits, parse_config
from streamer.core.customers import CustomerTracker
from streamer.core.queues import QueueState
from streamer.core.report import Report
from streamer.core.tracker import CallTracker
from tests.eventlog import EventLog, run_report

DAY = 86_400
WEEK = 7 * DAY


def worked_example() -> EventLog:
    log = EventLog()

    def visit(call: str, at: float, queue: str, **kw: Any) -> None:
        log.enqueued(call, at, queue=queue, **kw)

    visit("a1", 0, "q1", customer_id="A")
    log.answered("a1", 15)
    log.completed("a1", 300)
    visit("b1", 60, "q1", customer_id="B")
    log.abandoned("b1", 90)
    visit("c1", 120, "q2", customer_id="C")
    log.answered("c1", 125, queue="q2")
    log.completed("c1", 200, queue="q2")
    visit("t1", 200, "q1")
    log.answered("t1", 210)
    log.completed("t1", 400, to_queue="q2")
    visit("t1", 400, "q2")
    log.answered("t1", 430, queue="q2")
    log.completed("t1", 600, queue="q2")
    visit("o1", 300, "q1")
    log.dequeued("o1", 330, to_queue="q2")
    visit("o1", 330, "q2")
    log.dequeued("o1", 340, reason="timeout", queue="q2")
    visit("o1", 345, "q3")
    log.answered("o1", 350, queue="q3")
    log.completed("o1", 500, queue="q3")
    visit("d1", 500, "q1")
    log.answered("d1", 512)
    log.completed("d1", 700)
    visit("s1", 600, "q1")
    log.dequeued("s1", 610, to_queue="q2")
    visit("s1", 610, "q2")
    log.abandoned("s1", 613, queue="q2")
    visit("g1", 700, "q2")
    log.dequeued("g1", 720, reason="keypress", queue="q2")
    visit("late", 800, "q3")
    log.dequeued("late", 810, reason="timeout", queue="q3")
    visit("late", 900, "q3")
    log.answered("late", 905, queue="q3")
    log.completed("late", 950, queue="q3")
    visit("x1", 1000, "q1")
    log.answered("x1", 1004)
    log.completed("x1", 1100, customer_id="X")
    visit("a2", 1800, "q1", customer_id="A")
    log.answered("a2", 1810)
    log.completed("a2", 1900)
    visit("b2", 1860.001, "q1", customer_id="B")
    log.answered("b2", 1865.001)
    log.completed("b2", 1950)
    visit("a3", 1800 + WEEK, "q1", customer_id="A")
    log.answered("a3", 1805 + WEEK)
    log.completed("a3", 1900 + WEEK)
    visit("z", 612000, "q3")
    log.answered("z", 612002, queue="q3")
    log.completed("z", 612100, queue="q3")
    # Surveys.
    log.add(ev.SURVEY_COMPLETED, "a1", 400, nps=8)
    log.add(ev.SURVEY_COMPLETED, "d1", 800, nps=10, csat=5)
    log.add(ev.SURVEY_COMPLETED, "d1", 850, nps=3)
    log.add(ev.SURVEY_COMPLETED, "t1", 700, queue="q2", nps=6, csat=2, agent_id="ag7")
    log.add(ev.SURVEY_COMPLETED, "o1", 600, queue="q3", csat=4)
    log.add(ev.SURVEY_COMPLETED, "b1", 420, nps=11)
    log.add(ev.SURVEY_COMPLETED, "b1", 430)
    log.add(ev.SURVEY_COMPLETED, "b1", 440, nps="9")
    log.records.sort(key=lambda record: ev.parse_ts(record["ts"]))  # stable: one instant keeps its order
    return log


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = run_report(worked_example())
    assert result.skipped == {"invalid:bad_value": 1, "invalid:missing_field": 1, "invalid:wrong_type": 1,
                              "rejected:survey_repeated": 1}
    return result.to_dict()


def pick(block: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: block[key] for key in keys}


VISIT_KEYS = ("entered", "answered", "answered_within_threshold", "abandoned", "short_abandoned", "dequeued")
JOURNEY_KEYS = ("journeys", "journeys_with_handoff", "journeys_passed_around", "journey_answered",
                "journey_answered_within_threshold", "journey_abandoned", "journey_abandoned_within_threshold")


def test_visits_are_counted_as_before(report):
    queues = report["queues"]
    assert pick(queues["q1"]["total"], *VISIT_KEYS) == {
        "entered": 10, "answered": 7, "answered_within_threshold": 7, "abandoned": 1, "short_abandoned": 0,
        "dequeued": 2}
    assert pick(queues["q2"]["total"], *VISIT_KEYS) == {
        "entered": 5, "answered": 2, "answered_within_threshold": 1, "abandoned": 0, "short_abandoned": 1,
        "dequeued": 2}
    assert pick(queues["q3"]["total"], *VISIT_KEYS) == {
        "entered": 4, "answered": 3, "answered_within_threshold": 3, "abandoned": 0, "short_abandoned": 0,
        "dequeued": 1}


def test_contacts_and_repeat_contacts_with_the_30_minute_edge(report):
    q1, q2 = report["queues"]["q1"]["total"], report["queues"]["q2"]["total"]
    assert pick(q1, "contacts_identified", "repeat_contacts", "repeat_contact_rate") == {
        "contacts_identified": 5, "repeat_contacts": 1, "repeat_contact_rate": 0.2}
    assert pick(q2, "contacts_identified", "repeat_contacts", "repeat_contact_rate") == {
        "contacts_identified": 1, "repeat_contacts": 0, "repeat_contact_rate": 0.0}
    assert report["queues"]["q3"]["total"]["repeat_contact_rate"] is None  # no contact: no denominator
    # Counted in the interval of the contact: a2's at 10:30.
    at_1030 = next(i for i in report["queues"]["q1"]["intervals"] if i["start"] == "2026-06-01T10:30:00+00:00")
    assert pick(at_1030, "contacts_identified", "repeat_contacts") == {"contacts_identified": 2, "repeat_contacts": 1}


def test_first_contact_resolution_per_queue_and_contact_day(report):
    q1 = report["queues"]["q1"]
    assert pick(q1["total"], *counters.FCR_KEYS) == {
        "fcr_resolved": 1, "fcr_unresolved": 3, "fcr_pending": 1, "fcr_rate": 0.25}
    assert q1["days"] == [
        {"date": "2026-06-01", "contacts_identified": 4, "fcr_resolved": 1, "fcr_unresolved": 3, "fcr_pending": 0,
         "fcr_rate": 0.25},
        {"date": "2026-06-08", "contacts_identified": 1, "fcr_resolved": 0, "fcr_unresolved": 0, "fcr_pending": 1,
         "fcr_rate": None},
    ]
    assert report["queues"]["q2"]["days"] == [
        {"date": "2026-06-01", "contacts_identified": 1, "fcr_resolved": 1, "fcr_unresolved": 0, "fcr_pending": 0,
         "fcr_rate": 1.0}]
    assert "days" not in report["queues"]["q3"]  # no contact there
    for interval in q1["intervals"]:
        assert not set(counters.FCR_KEYS) & set(interval)  # decided long after any interval closes


def test_handoffs_at_the_queue_left_and_the_queue_entered(report):
    totals = {q: pick(report["queues"][q]["total"], "handoffs_out", "handoffs_in") for q in ("q1", "q2", "q3")}
    assert totals == {"q1": {"handoffs_out": 3, "handoffs_in": 0}, "q2": {"handoffs_out": 1, "handoffs_in": 3},
                      "q3": {"handoffs_out": 0, "handoffs_in": 1}}
    first = report["queues"]["q2"]["intervals"][0]
    assert first["start"] == "2026-06-01T10:00:00+00:00" and first["handoffs_in"] == 3


def test_journeys_at_their_first_queue(report):
    q1, q2, q3 = (report["queues"][q]["total"] for q in ("q1", "q2", "q3"))
    assert pick(q1, *JOURNEY_KEYS) == {
        "journeys": 10, "journeys_with_handoff": 3, "journeys_passed_around": 1, "journey_answered": 8,
        "journey_answered_within_threshold": 6, "journey_abandoned": 2, "journey_abandoned_within_threshold": 1}
    assert q1["journey_service_level"] == pytest.approx(0.6)
    assert q1["journey_asa_seconds"] == pytest.approx(17.0)
    assert pick(q2, "journeys", "journey_answered", "journey_answered_within_threshold", "journey_abandoned",
                "journey_service_level", "journey_asa_seconds") == {
        "journeys": 2, "journey_answered": 1, "journey_answered_within_threshold": 1, "journey_abandoned": 0,
        "journey_service_level": 1.0, "journey_asa_seconds": 5.0}
    assert pick(q3, "journeys", "journeys_with_handoff", "journey_answered", "journey_answered_within_threshold",
                "journey_service_level", "journey_asa_seconds") == {
        "journeys": 3, "journeys_with_handoff": 0, "journey_answered": 2, "journey_answered_within_threshold": 2,
        "journey_service_level": 1.0, "journey_asa_seconds": 3.5}


def test_journeys_are_counted_in_the_interval_where_they_end(report):
    by_start = {i["start"]: i for i in report["queues"]["q1"]["intervals"]}
    assert by_start["2026-06-01T10:00:00+00:00"]["journeys"] == 6  # a1 b1 t1 o1 d1 s1 end before 10:15
    assert by_start["2026-06-01T10:15:00+00:00"]["journeys"] == 1  # x1 completes at 10:18:20
    assert by_start["2026-06-01T10:30:00+00:00"]["journeys"] == 2  # a2, b2
    # g1 left q2 at 10:12 with no next visit: its journey ends there (decided 60 s + settling later).
    assert report["queues"]["q2"]["intervals"][0]["journeys"] == 2


def test_surveys_nps_and_csat(report):
    keys = ("nps_responses", "nps_promoters", "nps_passives", "nps_detractors", "nps_score", "csat_responses",
            "csat_satisfied", "csat_rate")
    assert pick(report["queues"]["q1"]["total"], *keys) == {
        "nps_responses": 2, "nps_promoters": 1, "nps_passives": 1, "nps_detractors": 0, "nps_score": 50.0,
        "csat_responses": 1, "csat_satisfied": 1, "csat_rate": 1.0}
    assert pick(report["queues"]["q2"]["total"], *keys) == {
        "nps_responses": 1, "nps_promoters": 0, "nps_passives": 0, "nps_detractors": 1, "nps_score": -100.0,
        "csat_responses": 1, "csat_satisfied": 0, "csat_rate": 0.0}
    assert pick(report["queues"]["q3"]["total"], "nps_responses", "nps_score", "csat_rate") == {
        "nps_responses": 0, "nps_score": None, "csat_rate": 1.0}


def test_the_example_through_csv_has_the_new_columns():
    report = run_report(worked_example())
    header, *rows = report.to_csv().splitlines()
    columns = header.split(",")
    assert columns[-len(counters.FCR_KEYS):] == list(counters.FCR_KEYS)
    total = next(row.split(",") for row in rows if row.startswith("q1,total"))
    assert total[columns.index("fcr_pending")] == "1"
    assert total[columns.index("journeys_passed_around")] == "1"


# --- window edges and pending decisions ---------------------------------------------------------------


def contacts_log(*times: float, customer: str = "K", queue: str = "q1") -> EventLog:
    log = EventLog()
    for i, at in enumerate(times):
        log.enqueued(f"k{i}", at, queue=queue, customer_id=customer)
        log.answered(f"k{i}", at + 1, queue=queue)
        log.completed(f"k{i}", at + 2, queue=queue)
    return log


def test_a_window_still_open_at_the_end_of_the_input_is_pending_never_resolved():
    total = run_report(contacts_log(0, 600)).to_dict()["queues"]["q1"]["total"]
    # k0 has a later contact: unresolved, although its decision had not settled when the input ended.
    assert pick(total, *counters.FCR_KEYS) == {"fcr_resolved": 0, "fcr_unresolved": 1, "fcr_pending": 1,
                                               "fcr_rate": 0.0}
    assert total["repeat_contacts"] == 1


def test_resolution_waits_until_no_contact_in_the_window_can_still_be_accepted():
    # Window end t + 7 d; an event at or before it is late once stream time is 15 min + 60 s past it.
    settle = 15 * 60 + 60
    for clock, expected in ((WEEK + settle - 0.001, 0), (WEEK + settle, 1)):
        log = contacts_log(0)
        log.enqueued("clock", clock)
        assert run_report(log).to_dict()["queues"]["q1"]["total"]["fcr_resolved"] == expected


def test_a_contact_one_millisecond_after_the_window_leaves_it_resolved():
    log = contacts_log(0, WEEK + 0.001, WEEK + 3 * 3600)
    total = run_report(log).to_dict()["queues"]["q1"]["total"]
    assert pick(total, "fcr_resolved", "fcr_unresolved", "fcr_pending") == {
        "fcr_resolved": 1, "fcr_unresolved": 1, "fcr_pending": 1}


def test_settings_change_the_windows():
    config = parse_config({"queues": {"q1": {"repeat_window_minutes": 5, "fcr_window_days": 1}}})
    total = run_report(contacts_log(0, 301, 2 * DAY), config).to_dict()["queues"]["q1"]["total"]
    # 301 s is past 5 min: no repeat. k0 is unresolved by k1; k1 resolved (k2 is a day too late); k2 pending.
    assert total["repeat_contacts"] == 0
    assert pick(total, "fcr_resolved", "fcr_unresolved", "fcr_pending") == {
        "fcr_resolved": 1, "fcr_unresolved": 1, "fcr_pending": 1}


def test_contacts_of_one_customer_in_any_order_give_the_same_decisions():
    """Live, one customer's contacts come from different call partitions in any order: the
    decisions (facts, with their times) must not depend on it."""
    rng = random.Random(7)
    config = Config()
    for _ in range(50):
        times = sorted(rng.sample(range(0, 3 * 3600_000, 60_000), 5))
        facts = [calls.Fact(calls.CONTACT, rng.choice(["q1", "q2"]), f"c{i}#1", t, t, customer_id="K")
                 for i, t in enumerate(times)]
        results = []
        for order in (facts, facts[::-1], rng.sample(facts, len(facts))):
            tracker = CustomerTracker(config)
            out = [f for fact in order for f in tracker.add(fact)]
            out += tracker.advance(times[-1] + 3600_000) + tracker.flush()
            results.append(sorted((f.kind, f.visit_id, f.ts) for f in out))
        assert results[0] == results[1] == results[2]


def test_customer_state_is_bounded_and_serializable():
    tracker = CustomerTracker(Config())
    tracker.add(calls.Fact(calls.CONTACT, "q1", "c1#1", 0, 0, customer_id="K"))
    row = tracker.store["K"]
    assert type(row).from_list(row.to_list()) == row
    # At 7 days + 16 min it is resolved, and past 30 min + 16 min no later contact can be its repeat.
    assert [f.kind for f in tracker.advance(WEEK * 1000 + 16 * 60_000)] == [calls.FCR_RESOLVED]
    assert "K" not in tracker.store
    assert tracker.add(calls.Fact(calls.CONTACT, "q1", "c2#1", WEEK * 1000 + 17 * 60_000,
                                  WEEK * 1000 + 17 * 60_000, customer_id="K")) == []


def test_a_redelivered_contact_changes_nothing():
    tracker = CustomerTracker(Config())
    fact = calls.Fact(calls.CONTACT, "q1", "c1#1", 0, 0, customer_id="K")
    later = calls.Fact(calls.CONTACT, "q1", "c2#1", 60_000, 60_000, customer_id="K")
    assert tracker.add(fact) == []
    assert [f.kind for f in tracker.add(later)] == [calls.REPEAT_CONTACT]
    assert tracker.add(later) == [] and tracker.add(fact) == []


# --- journeys waiting for a next visit -------------------------------------------------------------------


def journey_facts(log: EventLog, config: Config | None = None) -> list[calls.Fact]:
    tracker = CallTracker(config or Config())
    facts: list[calls.Fact] = []
    for event in log.events():
        facts += tracker.process(event).facts + tracker.advance()
    return [f for f in facts if f.kind == calls.JOURNEY]


def test_a_next_visit_within_the_limit_continues_the_journey_and_one_after_it_starts_another():
    for gap, journeys in ((60, 1), (60.001, 2)):
        log = EventLog()
        log.enqueued("c", 0)
        log.dequeued("c", 10, reason="timeout")
        log.enqueued("c", 10 + gap, queue="q2")
        log.answered("c", 15 + gap, queue="q2")
        log.completed("c", 100 + gap, queue="q2")
        facts = journey_facts(log)
        assert len(facts) == journeys, gap
        if journeys == 2:  # the first one ended as its visit left q1
            assert (facts[0].queue, facts[0].reason, facts[0].ts) == ("q1", calls.DEQUEUED, log.ms(10))
        assert (facts[-1].queue, facts[-1].reason) == ("q1" if journeys == 1 else "q2", calls.ANSWERED)


def test_a_sweep_and_a_late_next_visit_end_a_journey_alike():
    """The journey that waited in vain ends at its last departure however it is found out."""
    def run(with_clock: bool) -> list[tuple[str, str, int, str | None]]:
        log = EventLog()
        log.enqueued("c", 0)
        log.dequeued("c", 10, reason="timeout")
        if with_clock:
            log.enqueued("other", 3000, queue="q3")  # stream time passes the deadline + settling first
        log.enqueued("c", 3100, queue="q2")
        log.answered("c", 3105, queue="q2")
        log.completed("c", 3200, queue="q2")
        return [(f.queue, f.visit_id.split("#")[0], f.ts, f.reason) for f in journey_facts(log) if f.queue != "q3"]

    assert run(True) == run(False)


def test_an_answer_without_completion_ends_its_journey_at_the_maximum_age():
    config = Config(limits=Limits(max_call_age_seconds=3600))
    log = EventLog()
    log.answered_call("c", 0, 10)
    log.enqueued("clock", 3 * 3600)
    (fact,) = [f for f in journey_facts(log, config) if f.visit_id.startswith("c#")]
    assert (fact.reason, fact.ts, fact.wait_ms) == (calls.ANSWERED, log.ms(10) + 3600_000, 10_000)


def test_an_unannounced_transfer_after_an_answer_is_a_hand_off():
    log = EventLog()
    log.answered_call("c", 0, 5)
    log.enqueued("c", 120, queue="q2")  # no call.completed in between
    log.answered("c", 130, queue="q2")
    log.completed("c", 200, queue="q2")
    (fact,) = journey_facts(log)
    assert (fact.queue, fact.value, fact.wait_ms, fact.reason) == ("q1", 1, 15_000, calls.ANSWERED)


def test_a_completed_call_that_comes_back_starts_a_new_journey():
    log = EventLog()
    log.answered_call("c", 0, 5)
    log.completed("c", 60)
    log.enqueued("c", 90, queue="q2", customer_id="K")
    log.abandoned("c", 100, queue="q2")
    facts = journey_facts(log)
    assert [(f.queue, f.value, f.reason) for f in facts] == [("q1", 0, calls.ANSWERED),
                                                             ("q2", 0, calls.ABANDONED)]


def test_journey_state_round_trips_and_stays_small():
    log = EventLog()
    log.enqueued("c", 0, customer_id="K", tenant="acme")
    log.dequeued("c", 10, to_queue="q2")
    config = parse_config({"groups": {"front": {"queues": ["q1", "q2"]}}})
    tracker = CallTracker(config)
    for event in log.events():
        tracker.process(event)
    state = tracker.store["c"]
    assert calls.CallState.from_list(state.to_list()) == state
    import orjson
    assert len(orjson.dumps(state.to_list())) < 250
    old_row = state.to_list()[:9]  # a row stored before journeys existed
    assert calls.CallState.from_list(old_row).journey is None


# --- surveys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "reason"), [
    ({"nps": 11}, "bad_value"), ({"nps": -1}, "bad_value"), ({"csat": 0}, "bad_value"), ({"csat": 6}, "bad_value"),
    ({}, "missing_field"), ({"nps": "9"}, "wrong_type"), ({"nps": True}, "wrong_type"), ({"csat": 4.5}, "wrong_type"),
    ({"nps": None, "csat": None}, "missing_field"),
])
def test_bad_surveys_are_rejected_with_a_reason(fields, reason):
    record = {"event_id": "s", "type": ev.SURVEY_COMPLETED, "ts": 0, "call_id": "c", "queue": "q1", **fields}
    with pytest.raises(ev.InvalidEvent) as refused:
        ev.parse_event({k: v for k, v in record.items() if v is not None})
    assert refused.value.reason == reason


def test_a_survey_names_its_call_and_queue_and_a_whole_score():
    event = ev.parse_event({"event_id": "s", "type": ev.SURVEY_COMPLETED, "ts": 0, "call_id": "c", "queue": "q1",
                            "nps": 7.0, "customer_id": "K", "agent_id": "a"})
    assert (event.nps, event.csat, event.key) == (7, None, "c")
    with pytest.raises(ev.InvalidEvent, match="call_id"):
        ev.parse_event({"event_id": "s", "type": ev.SURVEY_COMPLETED, "ts": 0, "queue": "q1", "nps": 7})


def test_a_survey_long_after_its_call_was_forgotten_is_counted_once():
    log = EventLog()
    log.answered_call("c", 0, 5)
    log.completed("c", 60)
    survey = log.add(ev.SURVEY_COMPLETED, "c", 2 * DAY, nps=2)
    log.repeat(survey)
    result = run_report(log)
    assert result.skipped == {"duplicate:duplicate": 1}
    assert result.to_dict()["queues"]["q1"]["total"]["nps_detractors"] == 1


def test_an_answer_for_a_call_only_surveyed_is_still_an_unknown_call():
    log = EventLog()
    log.add(ev.SURVEY_COMPLETED, "c", 0, csat=3)
    log.answered("c", 5)
    assert run_report(log).skipped == {"rejected:unknown_call": 1}


def test_the_days_latest_detractors_per_queue():
    state = QueueState("q1", Config().defaults)
    start = EventLog().start_ms
    for i, (hours, score) in enumerate(((-12, 1), (1, 9), (2, 4), (3, 6), (3, 6))):
        fact = calls.Fact(calls.NPS, "q1", f"call-{i}", start + hours * 3600_000, 0, value=score)
        state.apply(fact)
    state.apply(calls.Fact(calls.NPS, "q1", "call-2", start + 2 * 3600_000, 0, value=4))  # a re-delivery
    today = state.detractors_today(start + 4 * 3600_000)
    assert today == [{"call_id": "call-4", "time": "2026-06-01T13:00:00+00:00", "score": 6},
                     {"call_id": "call-3", "time": "2026-06-01T13:00:00+00:00", "score": 6},
                     {"call_id": "call-2", "time": "2026-06-01T12:00:00+00:00", "score": 4}]
    restored = QueueState("q1", Config().defaults)
    restored.restore_detractors(state.detractor_row())
    assert restored.detractors == state.detractors


# --- properties --------------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def journeys(draw: st.DrawFn) -> EventLog:
    """Calls of random shape: up to four visits chained by overflow, dequeue or transfer, ending in an
    answer (completed or not), an abandon or nothing; customers from a small pool."""
    log = EventLog()
    for n in range(draw(st.integers(1, 25))):
        call = f"c{n}"
        t = draw(st.integers(0, 7200))
        customer = draw(st.sampled_from([None, "K1", "K2", "K3"]))
        for visit in range(draw(st.integers(1, 4))):
            queue = draw(st.sampled_from(["q1", "q2", "q3"]))
            log.enqueued(call, t, queue=queue, customer_id=customer if visit == 0 else None)
            t += draw(st.integers(0, 120))
            end = draw(st.sampled_from(["answer", "transfer", "dequeue", "abandon", "open"]))
            if end == "answer":
                log.answered(call, t, queue=queue)
                if draw(st.booleans()):
                    log.completed(call, t + 30, queue=queue)
                break
            if end == "transfer":
                log.answered(call, t, queue=queue)
                t += 30
                log.completed(call, t, queue=queue, to_queue="q2")
            elif end == "dequeue":
                log.dequeued(call, t, reason="overflow", queue=queue)
            elif end == "abandon":
                log.abandoned(call, t, queue=queue)
                break
            else:
                break
            t += draw(st.integers(0, 90))
    log.enqueued("clock", 9 * 3600 + 8 * DAY, queue="q1")  # every window passed, every call expired
    log.records.sort(key=lambda record: ev.parse_ts(record["ts"]))
    return log


@PROPERTY
@given(journeys())
def test_every_journey_ends_once_and_hand_offs_balance(log: EventLog):
    report = Report()
    report.add_lines(log.lines())
    totals = [block["total"] for block in report.to_dict()["queues"].values()]
    calls_started = len({r["call_id"] for r in log.records})
    journeys_total = sum(t["journeys"] for t in totals)
    handoffs_in = sum(t["handoffs_in"] for t in totals)
    assert handoffs_in == sum(t["handoffs_out"] for t in totals)
    # Every visit is a journey's first or a hand-off; the clock call's journey is still open.
    assert journeys_total + handoffs_in == sum(t["entered"] for t in totals) - 1
    assert journeys_total >= calls_started - 1
    assert sum(t["journeys_with_handoff"] for t in totals) <= journeys_total
    for t in totals:
        assert t["journey_answered"] + t["journey_abandoned"] <= t["journeys"]
        assert t["fcr_pending"] >= 0 and t["fcr_resolved"] + t["fcr_unresolved"] <= t["contacts_identified"]
        assert t["repeat_contacts"] <= t["contacts_identified"]


@PROPERTY
@given(journeys())
def test_journeys_do_not_depend_on_a_redelivery(log: EventLog):
    once = run_report(log).to_dict()
    twice = run_report(log.lines() * 2).to_dict()
    assert twice == once


def test_the_report_split_by_partitions_decides_contacts_by_the_watermark_of_its_partitions():
    """k0 and k1 fall in partition 1, the clock call in partition 2: with four partitions, partition
    1's stream time stays at k1's, so k1's window is not settled and k1 stays pending; in one
    partition the clock's time settles it."""
    log = contacts_log(0, 600)
    log.records.insert(0, {"event_id": "junk", "type": "call.answered", "ts": 0, "call_id": "nobody", "queue": "q1"})
    log.enqueued("clock", WEEK + 3 * 3600)
    results = {}
    for partitions in (1, 4):
        report = Report(partitions=partitions)
        report.add_lines(log.lines())
        results[partitions] = pick(report.to_dict()["queues"]["q1"]["total"], "fcr_resolved", "fcr_unresolved",
                                   "fcr_pending")
    assert results[1] == {"fcr_resolved": 1, "fcr_unresolved": 1, "fcr_pending": 0}
    assert results[4] == {"fcr_resolved": 0, "fcr_unresolved": 1, "fcr_pending": 1}
