"""Foresight (streamer.core.foresight) by hand-derived numbers, and `streamer backtest` on a simulated file."""

from __future__ import annotations

import math
import random

import orjson
import pytest

from streamer.cli import main
from streamer.core import calls, foresight
from streamer.core.config import QueueSettings
from streamer.core.erlang import ErlangC, tagged_answer_wait
from streamer.core.queues import CALLER, QueueState
from streamer.simulate import scenarios
from streamer.simulate.model import simulate

T0 = 1_780_300_800_000  # 2026-06-01T08:00:00Z, an interval start
MINUTE = 60_000


def fact(kind: str, visit: str, at_ms: int, enqueued_ms: int | None = None, **extra) -> calls.Fact:
    return calls.Fact(kind, "q1", visit, at_ms, at_ms if enqueued_ms is None else enqueued_ms, **extra)


def queue_with_agents(busy: int, available: int, settings: QueueSettings | None = None) -> QueueState:
    state = QueueState("q1", settings or QueueSettings())
    for n in range(busy):
        state.set_agent(f"b{n}", "busy", T0)
    for n in range(available):
        state.set_agent(f"a{n}", "available", T0)
    state.set_agent("away", "away", T0)
    return state


def test_erlang_c_reference_figures():
    # A = 252 × 120 / 3600 = 8.4 erlangs on 12 agents: P(wait) = 0.1839 (Erlang C), SL(20 s) =
    # 1 − 0.1839 · e^(−(12 − 8.4) · 20 / 120) = 1 − 0.1839 · 0.5488 = 0.8991, ASA = 0.1839 · 120 / 3.6 = 6.13 s.
    model = ErlangC(252, 120, 12)
    assert model.wait_probability == pytest.approx(0.1839, abs=5e-5)
    assert model.service_level(20) == pytest.approx(0.8991, abs=5e-5)
    assert model.asa_seconds == pytest.approx(6.13, abs=5e-3)


def test_tagged_wait_is_one_phase_per_caller_ahead_and_itself():
    # 12 agents of 120 s free up at 0.1/s: behind 2 callers, 3 phases of 10 s.
    assert tagged_answer_wait(2, 0.1, 0.0) == pytest.approx(30.0)
    # Hang-ups at 0.01/s each: phases of 1/0.11 + 1/0.12 + 1/0.13 s.
    assert tagged_answer_wait(2, 0.1, 0.01) == pytest.approx(9.0909 + 8.3333 + 7.6923, abs=1e-3)


def test_inputs_from_the_live_state():
    state = queue_with_agents(busy=11, available=1)
    now = T0 + 40 * MINUTE + 59_999  # the 30-minute window then covers exactly 1,800 s
    for n, handle_s in enumerate((100, 140)):
        state.apply(fact(calls.HANDLED, f"h{n}#1", now - 10 * MINUTE, value=handle_s * 1000))
    for n in range(63):  # 63 callers in 30 minutes: 126 an hour
        at = now - n * 25_000
        state.apply(fact(calls.ENTERED, f"c{n}#1", at))
        state.apply(fact(calls.ANSWERED, f"c{n}#1", at, at, wait_ms=0))
    # 3 abandons after 30 s each, against 3 × 30 s + 0 s of answered waiting: θ = 3 / 90 s.
    for n in range(3):
        state.apply(fact(calls.ABANDONED, f"c{n}#1", now - 20 * MINUTE, now - 20 * MINUTE - 30_000, wait_ms=30_000))
    live = foresight.inputs(state, now)
    assert live.aht_seconds == pytest.approx(120.0)
    assert live.arrival_rate * 3600 == pytest.approx(126.0)
    assert live.hangup_rate == pytest.approx(1 / 30)
    assert (live.serving, live.logged_in, live.available) == (12, 13, 1)


def test_expected_wait_by_position():
    state = queue_with_agents(busy=12, available=0)
    state.apply(fact(calls.HANDLED, "h#1", T0, value=120_000))
    state.waiting = {"w1#1": (T0, CALLER), "w2#1": (T0, CALLER)}
    live = foresight.inputs(state, T0 + 1000)
    # Behind 2 callers, 12 agents of 120 s and no abandons: 3 × 120 / 12 = 30 s.
    assert foresight.expected_wait_seconds(live) == pytest.approx(30.0)
    free = queue_with_agents(busy=9, available=3)
    free.waiting = {"w1#1": (T0, CALLER)}
    assert foresight.expected_wait_seconds(foresight.inputs(free, T0)) == 0.0


def test_agents_needed_is_the_erlang_c_staffing_of_the_live_rates():
    state = queue_with_agents(busy=5, available=0, settings=QueueSettings(target=0.8))
    live = foresight.Inputs(ahead=0, available=0, serving=5, logged_in=5, aht_seconds=120.0,
                            arrival_rate=252 / 3600, hangup_rate=0.0)
    # Erlang C, 8.4 erlangs: 11 agents give SL(20 s) 0.7981 < 0.8, 12 give 0.8991.
    assert foresight.agents_needed(state, live) == 12
    assert foresight.agents_needed(state, foresight.Inputs(0, 0, 5, 5, 120.0, 0.0, 0.0)) == 0


def test_projection_adds_the_callers_waiting_to_the_outcomes_so_far():
    # So far 8 of 10 answered within 20 s; two callers waiting 30 s already, two agents free, nobody
    # else coming: both are answered now, late, so the interval ends at 8 / 12.
    state = queue_with_agents(busy=0, available=2, settings=QueueSettings(target=0.6))
    start = T0 - 60 * MINUTE  # the entries are older than the arrival window
    for n in range(10):
        state.apply(fact(calls.ENTERED, f"c{n}#1", start))
    for n in range(10):
        wait = 5_000 if n < 8 else 40_000
        state.apply(fact(calls.ANSWERED, f"c{n}#1", T0 + n * 1000, T0 + n * 1000 - wait, wait_ms=wait))
    now = T0 + 7 * MINUTE
    state.waiting = {"w1#1": (now - 30_000, CALLER), "w2#1": (now - 30_000, CALLER)}
    level, chance = foresight.projection(state, now)
    assert level == pytest.approx(8 / 12)
    assert chance == 1.0
    view = foresight.forecast(state, now)
    assert view["projected_service_level"] == pytest.approx(8 / 12)
    assert view["agents_logged_in"] == 3 and view["arrivals_per_hour"] == 0.0 and view["agents_needed"] == 0


def long_line(waiting: int, busy: int = 10, patience_s: float = 120.0) -> tuple[QueueState, int]:
    """A queue with `waiting` callers in line (one every 100 ms up to now), `busy` agents, 2 minutes of
    handle time and exponential patience of mean `patience_s` (as its live parameters)."""
    state = queue_with_agents(busy=busy, available=0)
    now = T0 + 7 * MINUTE
    state.apply(fact(calls.HANDLED, "h#1", now - MINUTE, value=120_000))
    state.waiting = {f"w{n}#1": (now - n * 100, CALLER) for n in range(waiting)}
    return state, now


def test_the_unreachable_tail_counts_its_expected_hang_ups():
    # 10 agents of 2 minutes answer about 40 callers in the 8 minutes left and patience of 20 minutes
    # thins the line slowly: most of a line of 400 can only hang up in the interval. Counted by
    # expectation, they give what draws one by one give.
    state, now = long_line(400)
    live = foresight.Inputs(ahead=400, available=0, serving=10, logged_in=10, aht_seconds=120.0,
                            arrival_rate=0.05, hangup_rate=1 / 1200)
    end = T0 + 15 * MINUTE
    waiting = sorted(enqueued for enqueued, _kind in state.waiting.values())
    tail = foresight._Tail(waiting, now, end, live.hangup_rate, state.settings.threshold_ms,
                           state.settings.short_abandon_ms)
    rng = random.Random(1)
    draws = [foresight._rest_of_interval(state, live, now, end, rng, waiting, None)[0] for _ in range(400)]
    counted = [foresight._rest_of_interval(state, live, now, end, rng, waiting, tail) for _ in range(400)]
    for slot in range(4):
        mean_drawn = sum(d[slot] for d in draws) / len(draws)
        mean_counted = sum(c[slot] for c, _ in counted) / len(counted)
        assert mean_counted == pytest.approx(mean_drawn, rel=0.03, abs=0.3), slot
    # Each draw simulated only the callers the agents could reach, not the line.
    assert max(simulated for _, simulated in counted) < 150


def test_the_expected_hang_ups_of_callers_still_to_come_in_closed_form():
    # Against a midpoint sum over arrival times: 0.1 calls/s for 10 minutes, patience 60 s, short 5 s,
    # threshold 20 s.
    rate, theta, end, short, threshold = 0.1, 1 / 60, 600_000, 5_000, 20_000
    abandoned, within = foresight._arrivals_tail(0.0, end, rate, theta, threshold, short)
    steps = 60_000
    sum_abandoned = sum_within = 0.0
    for i in range(steps):
        left = end - (i + 0.5) * end / steps
        if left > short:
            stay = math.exp(-theta * short / 1000)
            sum_abandoned += stay - math.exp(-theta * left / 1000)
            sum_within += stay - math.exp(-theta * min(left, threshold) / 1000)
    per_step = rate * end / 1000 / steps
    assert abandoned == pytest.approx(sum_abandoned * per_step, rel=1e-4)
    assert within == pytest.approx(sum_within * per_step, rel=1e-4)
    assert foresight._arrivals_tail(0.0, end, rate, 0.0, threshold, short) == (0.0, 0.0)


def test_a_projection_of_a_huge_line_stays_within_its_budget(monkeypatch):
    # 25,000 callers waiting and arrivals of 10 a second: the projection simulates a bounded number of
    # callers, whatever the line holds, and still gives its median and chance.
    state, now = long_line(25_000)
    live = foresight.Inputs(ahead=25_000, available=0, serving=10, logged_in=10, aht_seconds=120.0,
                            arrival_rate=10.0, hangup_rate=1 / 600)
    simulated = []
    original = foresight._rest_of_interval

    def counting(*args):
        outcome, callers = original(*args)
        simulated.append(callers)
        return outcome, callers

    monkeypatch.setattr(foresight, "_rest_of_interval", counting)
    level, chance = foresight.projection(state, now, live)
    assert level is not None and 0.0 <= level <= 1.0 and chance is not None
    assert sum(simulated) <= foresight.PROJECTION_CALLER_BUDGET + max(simulated)
    assert len(simulated) >= foresight.MIN_PROJECTION_RUNS
    # Without a tail (outcomes counted for the interval of arrival) the budget still ends the draws.
    simulated.clear()
    by_arrival = QueueState("q1", QueueSettings(attribute_to="arrival"))
    by_arrival.waiting = state.waiting
    foresight.projection(by_arrival, now, live)
    assert len(simulated) == foresight.MIN_PROJECTION_RUNS


def test_agents_needed_of_a_line_only_hang_ups_could_hold_is_found_quickly():
    # 14 calls a second of 3 minutes (2,520 erlangs) with patience of days: Erlang C stands in for
    # Erlang A, and agent counts whose steady line would exceed MAX_STEADY_BACKLOG are skipped.
    state = QueueState("q1", QueueSettings())
    live = foresight.Inputs(ahead=25_000, available=0, serving=10, logged_in=10, aht_seconds=180.0,
                            arrival_rate=14.0, hangup_rate=1 / 150_000)
    needed = foresight.agents_needed(state, live)
    assert needed is not None and 2_520 < needed < 2_600
    moderate = foresight.Inputs(ahead=0, available=0, serving=10, logged_in=10, aht_seconds=180.0,
                                arrival_rate=14.0, hangup_rate=1 / 1000)
    # 100 agents of 3 minutes: 13.4 calls a second in excess, held only by θ = 1/1000 s: 13,400 waiting.
    assert foresight._steady(moderate, 100, 20.0) is None
    assert foresight._steady(moderate, 2_000, 20.0) is not None  # 2.9 in excess: 2,900 waiting


def _write_day(path, seed: int) -> None:
    scenario = scenarios.plain(252, 120, 12)
    with path.open("wb") as out:
        for event in simulate(scenario, seed=seed, start_ms=T0, hours=2):
            out.write(orjson.dumps(event) + b"\n")


def test_backtest_scores_a_simulated_file(tmp_path, capsys):
    results = []
    for seed in (1, 2):
        path = tmp_path / f"day{seed}.jsonl"
        _write_day(path, seed)
        answered = sum(1 for line in path.open("rb") if orjson.loads(line)["type"] == "call.answered")
        assert main(["backtest", str(path)]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0].split()[:3] == ["queue", "calls", "EWT"]
        result = orjson.loads(lines[-1])
        assert {"calls_scored", "ewt_mae_seconds", "naive_ewt_mae_seconds", "intervals_scored", "projected_sl_mae",
                "naive_sl_mae"} <= result.keys()
        assert result["calls_scored"] == answered  # every answered caller was entered in the file
        assert result["intervals_scored"] == 8  # two hours of 15-minute intervals, each with a midpoint
        for key in ("ewt_mae_seconds", "naive_ewt_mae_seconds", "projected_sl_mae", "naive_sl_mae"):
            assert math.isfinite(result[key]) and result[key] > 0
        results.append(result)
    assert results[0]["ewt_mae_seconds"] != results[1]["ewt_mae_seconds"]
