"""The traffic model: reproducible output, schema-v1 events, one outcome per visit, agents, shifts,
profiles, callbacks and overflow, the command's flags."""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime
from itertools import islice

import orjson
import pytest

from streamer.cli import main
from streamer.simulate.clock import DEFAULT_FILE_START, format_ts, parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenario import AgentSpec, CallbackOffer, HandleTime, QueueSpec, Scenario
from streamer.simulate.scenarios import DAY_PROFILE, cover_with_shifts, demo, plain

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CALL_TYPES = {
    "call.enqueued", "call.answered", "call.abandoned", "call.dequeued", "call.completed",
    "callback.requested", "callback.connected", "callback.failed", "survey.completed",
}  # fmt: skip
AGENT_STATES = {"available", "busy", "wrap_up", "away", "logged_out"}
START_MS = parse_start("2026-06-01T00:00:00Z")


def seconds(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def rich_scenario() -> Scenario:
    """Two busy queues sharing agents: callbacks of both kinds, overflow, patience, wrap-up, lognormal."""
    return plain(
        150, 240, 8, 120,
        queues=("sales", "billing"), shared_agents=True,
        handle_distribution="lognormal", handle_cv=0.7, wrap_seconds=10,
        callback=CallbackOffer(after_seconds=30, accept=0.6, reach=0.6, scheduled_share=0.3),
        overflows=[("sales", "billing", 45)],
    )  # fmt: skip


def check_schema(events: list[dict]) -> None:
    """Every event carries the schema-v1 fields of its type; ids unique; times RFC 3339 ms and in order."""
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids), "event ids repeat"
    previous = ""
    for event in events:
        assert isinstance(event["event_id"], str) and event["event_id"]
        assert TS.match(event["ts"]), event
        assert event["ts"] >= previous, f"out of time order: {event}"
        previous = event["ts"]
        kind = event["type"]
        if kind == "agent.state":
            assert isinstance(event["agent_id"], str)
            assert event["state"] in AGENT_STATES
            assert isinstance(event["queues"], list) and all(isinstance(q, str) for q in event["queues"])
            continue
        assert kind in CALL_TYPES, event
        assert isinstance(event["call_id"], str) and isinstance(event["queue"], str)
        if kind in ("call.answered", "callback.connected", "call.completed"):
            assert isinstance(event["agent_id"], str)
        if kind == "survey.completed":
            assert 0 <= event["nps"] <= 10 and 1 <= event["csat"] <= 5
        if kind == "call.dequeued":
            assert event["reason"] == "overflow" and isinstance(event["to_queue"], str)
        if kind == "callback.requested":
            assert event["mode"] in ("keep_position", "scheduled")
        if kind == "call.completed":
            assert event["talk_seconds"] >= 0
            assert event.get("wrap_seconds", 0) >= 0


# Per-visit lifecycle: state -> {event type (mode) -> next state}; "end" closes the visit.
LIFECYCLE = {
    "waiting": {
        "call.answered": "talking",
        "call.abandoned": "end",
        "call.dequeued": "moved",
        "callback.requested:scheduled": "end",
        "callback.requested:keep_position": "marker",
    },
    "marker": {"callback.connected": "talking", "callback.failed": "end"},
    "talking": {"call.completed": "end", "call.completed:transfer": "moved"},
}
OUTCOMES = {
    "call.answered", "call.abandoned", "call.dequeued", "callback.requested:scheduled",
    "callback.connected", "callback.failed",
}  # fmt: skip


def check_visits(events: list[dict]) -> Counter:
    """Each visit starts with call.enqueued and ends in exactly one outcome; a completed call follows
    every answer; an overflow or a transfer is followed at once by the visit on the next queue; a survey
    comes after its call's end. Returns outcomes."""
    state: dict[str, str] = {}
    queue_of: dict[str, str] = {}
    outcomes: Counter = Counter()
    for event in events:
        kind = event["type"]
        if kind == "agent.state":
            continue
        call, key = event["call_id"], kind + (f":{event['mode']}" if kind == "callback.requested" else "")
        if kind == "call.completed" and "to_queue" in event:
            key = "call.completed:transfer"
        if kind == "survey.completed":
            assert state.get(call) == "end" and event["queue"] == queue_of[call], event
            outcomes[kind] += 1
            continue
        if kind == "call.enqueued":
            assert state.get(call) in (None, "moved"), f"{call} entered twice: {event}"
            if state.get(call) == "moved":
                assert event["queue"] == queue_of[call], "overflow went to another queue than announced"
            state[call] = "waiting"
            queue_of[call] = event["queue"]
            continue
        assert event["queue"] == queue_of[call], f"{call}: event on a queue it is not in: {event}"
        assert key in LIFECYCLE.get(state.get(call, "end"), {}), f"{call}: {key} not allowed in {state.get(call)}"
        state[call] = LIFECYCLE[state[call]][key]
        if key in OUTCOMES:
            outcomes[key] += 1
        if kind == "call.dequeued" or key == "call.completed:transfer":
            queue_of[call] = event["to_queue"]
    assert all(s == "end" for s in state.values()), Counter(state.values())
    return outcomes


def check_agents(events: list[dict]) -> None:
    """Agents answer only when on duty, hold one call at a time, and end logged out."""
    on_duty: dict[str, bool] = defaultdict(bool)
    in_hand: dict[str, str | None] = defaultdict(lambda: None)
    for event in events:
        kind = event["type"]
        if kind == "agent.state":
            agent = event["agent_id"]
            if event["state"] == "logged_out":
                assert on_duty[agent] and in_hand[agent] is None, f"bad logout: {event}"
            on_duty[agent] = event["state"] != "logged_out"
        elif kind in ("call.answered", "callback.connected"):
            agent = event["agent_id"]
            assert on_duty[agent], f"{agent} answered while logged out"
            assert in_hand[agent] is None, f"{agent} took a second call"
            in_hand[agent] = event["call_id"]
        elif kind in ("call.completed", "callback.failed"):
            agent = event["agent_id"]
            if kind == "call.completed":
                assert in_hand[agent] == event["call_id"]
            in_hand[agent] = None
    assert not any(on_duty.values()), "agents still logged in at the end of a finite run"


@pytest.fixture(scope="module")
def rich_events() -> list[dict]:
    return list(simulate(rich_scenario(), seed=3, start_ms=START_MS, hours=12))


@pytest.fixture(scope="module")
def demo_day() -> list[dict]:
    return list(simulate(demo(), seed=1, start_ms=START_MS, hours=24))


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path):
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"]
    for path, seed in zip(paths, ("7", "7", "8"), strict=True):
        assert main(["simulate", "--hours", "6", "--patience", "60", "--seed", seed, "--out", str(path)]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    first = orjson.loads(paths[0].read_bytes().splitlines()[0])
    assert first["ts"] == DEFAULT_FILE_START.replace("Z", ".000Z")


def test_demo_is_reproducible_too():
    def first_hours() -> list[dict]:
        return list(islice(simulate(demo(), seed=5, start_ms=START_MS, hours=None), 20_000))

    assert first_hours() == first_hours()


def test_plain_model_events_follow_the_schema_and_the_visit_rules():
    events = list(simulate(plain(252, 120, 12, 60), seed=1, start_ms=START_MS, hours=8))
    check_schema(events)
    outcomes = check_visits(events)
    check_agents(events)
    assert set(outcomes) == {"call.answered", "call.abandoned"}
    assert {e["queue"] for e in events if "queue" in e} == {"support"}
    # Nothing but the plain model: no callbacks, no overflow, no wrap-up.
    assert not any(e["type"].startswith("callback.") or e["type"] == "call.dequeued" for e in events)
    assert not any(e.get("state") == "wrap_up" for e in events)


def test_without_patience_every_call_is_answered():
    events = list(simulate(plain(252, 120, 12), seed=1, start_ms=START_MS, hours=8))
    assert set(check_visits(events)) == {"call.answered"}


def test_every_feature_shows_up_in_a_rich_run(rich_events):
    check_schema(rich_events)
    outcomes = check_visits(rich_events)
    check_agents(rich_events)
    for outcome in OUTCOMES:
        assert outcomes[outcome] > 0, f"no {outcome} in a run meant to have them all"
    assert any(e.get("state") == "wrap_up" for e in rich_events)
    completed = [e for e in rich_events if e["type"] == "call.completed"]
    assert all(e["wrap_seconds"] == 10 for e in completed)
    # Shared pool: the same agent serves both queues.
    served = defaultdict(set)
    for e in rich_events:
        if e["type"] == "call.answered":
            served[e["agent_id"]].add(e["queue"])
    assert any(len(queues) == 2 for queues in served.values())


def test_queues_are_first_come_first_served_and_callbacks_keep_their_place(rich_events):
    """Within a queue, agents take visits (live callers, and keep-position markers when the agent
    starts dialling: a ring before a connect, a no-answer time before a failure) in entry order."""
    offer = rich_scenario().queues[0].callback
    dial_time = {"callback.connected": offer.ring_seconds, "callback.failed": offer.no_answer_seconds}
    entered: dict[tuple[str, str], float] = {}
    taken: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for event in rich_events:
        kind, key = event["type"], (event.get("call_id"), event.get("queue"))
        if kind == "call.enqueued":
            entered[key] = seconds(event["ts"])
        elif kind == "call.answered" or kind in dial_time:
            taken_at = seconds(event["ts"]) - dial_time.get(kind, 0.0)
            taken[event["queue"]].append((round(taken_at, 3), entered[key]))
    assert sum(1 for e in rich_events if e["type"] in dial_time) > 0
    for queue, visits in taken.items():
        order = [entry for _, entry in sorted(visits)]
        assert order == sorted(order), f"{queue} did not serve in entry order"


def test_callback_waits_run_from_the_original_entry(rich_events):
    offer = rich_scenario().queues[0].callback
    entered = {}
    connected = 0
    for event in rich_events:
        if event["type"] == "call.enqueued":
            entered[event["call_id"]] = seconds(event["ts"])
        if event["type"] == "callback.connected":
            connected += 1
            wait = seconds(event["ts"]) - entered[event["call_id"]]
            assert wait >= offer.offer_delay_seconds + offer.ring_seconds
    assert connected > 0


def test_a_finite_run_stops_arrivals_at_its_end_and_plays_calls_out():
    hours = 3
    events = list(simulate(plain(400, 180, 12, 300), seed=2, start_ms=START_MS, hours=hours))
    end = START_MS / 1000 + hours * 3600
    arrivals = [seconds(e["ts"]) for e in events if e["type"] == "call.enqueued"]
    assert max(arrivals) < end
    assert seconds(events[-1]["ts"]) > end  # the calls in hand were finished after the end
    assert events[-1]["state"] == "logged_out"
    check_visits(events)


def test_demo_day_has_queues_breaches_callbacks_overflow_and_shifts(demo_day):
    check_schema(demo_day)
    outcomes = check_visits(demo_day)
    check_agents(demo_day)
    assert {e["queue"] for e in demo_day if "queue" in e} == {"sales", "support", "billing", "vip"}
    assert outcomes["callback.requested:scheduled"] > 0 and outcomes["callback.connected"] > 0
    assert outcomes["call.dequeued"] > 0
    assert all(e["customer_id"].startswith("cust-") for e in demo_day if e["type"] == "call.enqueued")
    # Service level (answered within 20 s / answered + abandoned after 5 s) by hour of the day.
    entered, hourly = {}, defaultdict(lambda: [0, 0])
    for e in demo_day:
        key = (e.get("call_id"), e.get("queue"))
        if e["type"] == "call.enqueued":
            entered[key] = seconds(e["ts"])
        elif e["type"] in ("call.answered", "call.abandoned"):
            wait = seconds(e["ts"]) - entered[key]
            if e["type"] == "call.answered" or wait >= 5:
                tally = hourly[e["queue"], e["ts"][11:13]]
                tally[0] += e["type"] == "call.answered" and wait <= 20
                tally[1] += 1
    level = {key: met / total for key, (met, total) in hourly.items() if total >= 20}
    billing = [v for (queue, _), v in level.items() if queue == "billing"]
    assert min(billing) < 0.7, "billing should breach at its peaks"
    assert max(billing) > 0.8, "billing should meet its target off-peak"
    assert min(v for (queue, _), v in level.items() if queue == "sales") > 0.7
    # Shifts: an 8-hour agent logs in at the start of its shift and out at (or just after) its end.
    agent = next(a for a in demo().agents if a.shifts and a.shifts[0][0] >= 1 and a.shifts[0][1] <= 24)
    start_h, end_h = agent.shifts[0]
    states = [e for e in demo_day if e.get("agent_id") == agent.agent_id and e["type"] == "agent.state"]
    assert states[0]["ts"] == format_ts(START_MS + round(start_h * 3_600_000))
    logout = next(e for e in states if e["state"] == "logged_out")
    assert 0 <= seconds(logout["ts"]) - (START_MS / 1000 + end_h * 3600) < 3600


def test_an_endless_run_keeps_going_day_after_day():
    scenario = demo()
    events = simulate(scenario, seed=1, start_ms=START_MS, hours=None)
    logins = Counter()
    last = None
    for event in events:
        last = event
        if event["type"] == "agent.state" and event["agent_id"] == "billing-04" and event["state"] != "busy":
            logins[event["ts"][:10], event["state"]] += 1
        if seconds(event["ts"]) > START_MS / 1000 + 2.5 * 86400:
            break
    assert last is not None and last["ts"].startswith("2026-06-03")
    days = {day for day, state in logins if state == "logged_out"}
    assert len(days) >= 2, "shifts repeat every day"


def test_the_time_of_day_profile_shapes_arrivals():
    days = 30
    scenario = plain(200, 60, 10, 30, profile=DAY_PROFILE)
    per_hour = Counter(
        int(e["ts"][11:13]) for e in simulate(scenario, seed=4, start_ms=START_MS, hours=24 * days)
        if e["type"] == "call.enqueued"
    )  # fmt: skip
    for hour, multiplier in enumerate(DAY_PROFILE):
        expected = days * 200 * multiplier
        # Poisson counts: within 5 standard deviations.
        assert abs(per_hour[hour] - expected) <= 5 * math.sqrt(expected), (hour, per_hour[hour], expected)


def test_lognormal_handle_times_have_the_asked_mean_and_spread():
    mean, cv = 300.0, 0.6
    scenario = plain(100, mean, 40, handle_distribution="lognormal", handle_cv=cv)
    talks = [
        e["talk_seconds"] for e in simulate(scenario, seed=9, start_ms=START_MS, hours=300)
        if e["type"] == "call.completed"
    ]  # fmt: skip
    sd = statistics.stdev(talks)
    assert abs(statistics.fmean(talks) - mean) <= 5 * sd / math.sqrt(len(talks))
    assert sd / statistics.fmean(talks) == pytest.approx(cv, rel=0.1)


def test_priority_queue_is_served_first_by_a_shared_agent():
    handle = HandleTime(60)
    scenario = Scenario(
        name="priority",
        queues=(QueueSpec("low", 20, handle), QueueSpec("high", 20, handle, priority=1)),
        agents=(AgentSpec("a1", ("low", "high")),),
    )
    events = list(simulate(scenario, seed=1, start_ms=START_MS, hours=20))
    entered = {e["call_id"]: seconds(e["ts"]) for e in events if e["type"] == "call.enqueued"}
    waiting: dict[str, dict[str, float]] = {"low": {}, "high": {}}
    for e in events:
        if e["type"] == "call.enqueued":
            waiting[e["queue"]][e["call_id"]] = entered[e["call_id"]]
        elif e["type"] == "call.answered":
            del waiting[e["queue"]][e["call_id"]]
            if e["queue"] == "low":
                assert not waiting["high"], "a low-priority call was taken while a high-priority one waited"


def test_cover_with_shifts_meets_every_hour():
    need = [2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 9, 9, 9, 8, 7, 5, 4, 3, 3, 2, 2]
    starts = cover_with_shifts(need, 8)
    on_duty = [sum(1 for s in starts if (hour - s) % 24 < 8) for hour in range(24)]
    assert all(have >= want for have, want in zip(on_duty, need, strict=True))


@pytest.mark.parametrize(("argv", "message"), [
    (["--hours", "1", "--out", "x.jsonl", "--speed", "2"], "--speed paces Kafka"),
    (["--out", "x.jsonl"], "give --hours"),
    (["--scenario", "demo", "--agents", "3", "--hours", "1", "--out", "-"], "drop --agents"),
    (["--theory", "--wrap", "5"], "drop --wrap"),
    (["--hours", "1", "--out", "-", "--start", "2026-06-01T08:00:00"], "no offset"),
    (["--hours", "1", "--out", "-", "--overflow", "nope:support:30"], "unknown queue"),
    (["--hours", "1", "--out", "-", "--calls-per-hour", "600", "--aht", "60", "--agents", "2", "--wrap", "90"],
     "wrap-up"),
])  # fmt: skip
def test_bad_flags_get_a_clear_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--agents", "0"])
    assert "--agents must be > 0" in capsys.readouterr().err


def test_theory_flag_prints_the_erlang_figures(capsys):
    assert main(["simulate", "--patience", "60", "--theory"]) == 0
    figures = orjson.loads(capsys.readouterr().out)
    assert figures["model"].startswith("Erlang A")
    assert figures["abandon_probability"] == pytest.approx(0.0297, abs=1e-4)


def test_stdout_output_and_start_flag(capsys):
    assert main(["simulate", "--hours", "1", "--out", "-", "--start", "2026-03-01T12:00:00+01:00"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert orjson.loads(lines[0])["ts"] == "2026-03-01T11:00:00.000Z"
    assert "simulated hours/s" in captured.err


def test_every_model_flag_reaches_the_model(tmp_path):
    out = tmp_path / "rich.jsonl"
    argv = [
        "simulate", "--queues", "vip,support", "--overflow", "vip:support:30", "--callback-after", "20",
        "--callback-scheduled", "0.3", "--callback-reach", "0.7", "--handle-dist", "lognormal",
        "--handle-cv", "0.5", "--wrap", "10", "--profile", "day", "--calls-per-hour", "200",
        "--agents", "6", "--patience", "120", "--hours", "24", "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    check_schema(events)
    outcomes = check_visits(events)
    assert outcomes["callback.requested:scheduled"] and outcomes["callback.connected"] and outcomes["call.dequeued"]
    assert {e["queue"] for e in events if "queue" in e} == {"vip", "support"}
    assert all(e["wrap_seconds"] == 10 for e in events if e["type"] == "call.completed")
    assert {e["agent_id"].split("-")[0] for e in events if e["type"] == "agent.state"} == {"vip", "support"}


# --- customers, transfers, surveys --------------------------------------------------------------------


def journey_scenario(**changes) -> Scenario:
    from streamer.simulate.scenario import Recall, Surveys

    options = {"customers": 10**9, "recall": Recall(after_answered=0.1, after_abandoned=0.6),
               "surveys": Surveys(share=0.5), "transfers": [("sales", "billing", 0.2)]}
    options.update(changes)
    return plain(200, 200, 6, 60, queues=("sales", "billing"), **options)


@pytest.fixture(scope="module")
def journey_events() -> list[dict]:
    return list(simulate(journey_scenario(), seed=11, start_ms=START_MS, hours=24))


def test_journey_features_follow_the_schema_and_the_visit_rules(journey_events):
    check_schema(journey_events)
    outcomes = check_visits(journey_events)
    check_agents(journey_events)
    assert outcomes["survey.completed"] > 0
    transfers = [e for e in journey_events if e["type"] == "call.completed" and "to_queue" in e]
    assert transfers and all(e["queue"] == "sales" and e["to_queue"] == "billing" for e in transfers)


def test_customers_call_again_more_often_after_an_abandon():
    """With a pool so large that two callers never share a customer by chance, every second call of a
    customer is a recall: after 60 % of abandons, after 10 % of answered journeys."""
    events = list(simulate(journey_scenario(transfers=[], surveys=None), seed=5, start_ms=START_MS, hours=48))
    first_visit: dict[str, str] = {}
    ending: dict[str, str] = {}
    calls_of: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e["type"] == "call.enqueued" and e["call_id"] not in first_visit:
            first_visit[e["call_id"]] = e["queue"]
            calls_of[e["customer_id"]].append(e["call_id"])
        elif e["type"] in ("call.abandoned", "call.completed"):
            ending[e["call_id"]] = e["type"]
    came_back = Counter()
    ended = Counter()
    for customer_calls in calls_of.values():
        for call, following in zip(customer_calls, [*customer_calls[1:], None], strict=True):
            ended[ending.get(call)] += 1
            came_back[ending.get(call)] += following is not None
            if following is not None:
                assert first_visit[following] == first_visit[call], "a recall goes to the first queue again"
    after_abandon = came_back["call.abandoned"] / ended["call.abandoned"]
    after_answer = came_back["call.completed"] / ended["call.completed"]
    assert ended["call.abandoned"] > 200
    # Recalls that would come after the run's end are not made: a little below the shares.
    assert 0.5 < after_abandon <= 0.6 + 0.05 and 0.04 < after_answer <= 0.1 + 0.02
    assert after_abandon > 5 * after_answer


def test_survey_scores_are_worse_after_a_transfer(journey_events):
    transferred = {e["call_id"] for e in journey_events if e["type"] == "call.completed" and "to_queue" in e}
    scores = defaultdict(list)
    for e in journey_events:
        if e["type"] == "survey.completed":
            scores[e["call_id"] in transferred].append(e["nps"])
            assert e["customer_id"].startswith("cust-")
    assert len(scores[True]) > 30
    assert statistics.mean(scores[True]) < statistics.mean(scores[False]) - 1


def test_without_the_journey_flags_nothing_of_them_appears():
    events = list(simulate(plain(200, 200, 6, 60), seed=2, start_ms=START_MS, hours=6))
    assert not any(e["type"] == "survey.completed" or "to_queue" in e or "customer_id" in e for e in events)


def test_the_journey_flags_reach_the_model(tmp_path):
    out = tmp_path / "journeys.jsonl"
    argv = ["simulate", "--queues", "support,billing", "--customers", "500", "--recall-abandoned", "0.5",
            "--recall-answered", "0.1", "--transfer", "support:billing:0.1", "--surveys", "0.4", "--patience", "60",
            "--hours", "8", "--out", str(out)]
    assert main(argv) == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    check_visits(events)
    customers = Counter(e["customer_id"] for e in events if e["type"] == "call.enqueued")
    assert len(customers) <= 500 and max(customers.values()) > 1
    assert any(e["type"] == "survey.completed" for e in events)
    assert any(e.get("to_queue") == "billing" and e["type"] == "call.completed" for e in events)


@pytest.mark.parametrize(("argv", "message"), [
    (["--recall-abandoned", "0.3"], "need a customer pool"),
    (["--transfer", "support:nowhere:0.1"], "transfers to unknown queue"),
    (["--transfer", "elsewhere:support:0.1"], "from unknown queue"),
    (["--scenario", "demo", "--customers", "5"], "drop --customers"),
    (["--theory", "--surveys", "0.1"], "drop --surveys"),
])
def test_bad_journey_flags_get_a_clear_message(argv, message, capsys):
    assert main(["simulate", "--hours", "1", "--out", "-", *argv]) == 2
    assert message in capsys.readouterr().err
