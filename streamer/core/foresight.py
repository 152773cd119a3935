"""Foresight for one queue: expected wait, projected end-of-interval Service Level, agents needed.

Read from a live `QueueState` as of `now_ms` (docs/metrics.md "Foresight"), as an M/M/c+M queue whose
parameters are the queue's recent past:

- agents serving c: the queue's agents available, busy or in wrap-up (away agents serve nobody);
  without agent states, the agents the recent answers kept busy (answer rate × handle time);
- handle time: mean talk + wrap-up of the calls completed in the last 60 minutes (the day's when
  none, DEFAULT_AHT_SECONDS before any);
- arrival rate: callers entered in the last 30 minutes;
- patience: exponential, its rate θ the maximum-likelihood one of the last 60 minutes
  (abandons / total time waited by the answered and the abandoned); 0 without abandons.

Expected wait: a caller with k callers (or keep-position markers) ahead of it waits for k + 1
departures from the head of the queue; while j are ahead these come at rate c·μ + j·θ (an agent
frees up, or someone ahead hangs up): erlang.tagged_answer_wait. Projected Service Level: the
outcomes so far plus draws of the rest of the interval from the live state (`projection`). Agents
needed: the Erlang C / A steady state with the live rates (`agents_needed`).
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from typing import Any

from streamer.core import counters, erlang
from streamer.core.config import ATTRIBUTE_ARRIVAL
from streamer.core.queues import QueueState
from streamer.core.windows import MINUTE_MS, interval_end, interval_start, minute_of

DEFAULT_AHT_SECONDS = 180.0
HANDLE_WINDOW_MINUTES = 60
ARRIVAL_WINDOW_MINUTES = 30
PATIENCE_WINDOW_MINUTES = 60
# Draws of the rest of the interval behind a projected Service Level.
PROJECTION_RUNS = 200
SERVING_STATES = ("available", "busy", "wrap_up")

_I = counters.INDEX
_SLOTS = ("entered", "answered", "abandoned", "short_abandoned", "answered_wait_ms", "abandoned_wait_ms",
          "handled_calls", "handle_ms")


@dataclass(frozen=True, slots=True)
class Inputs:
    """The live parameters of a queue at one instant."""

    ahead: int  # callers and keep-position markers waiting
    available: int
    serving: int  # agents available, busy or in wrap-up
    logged_in: int
    aht_seconds: float
    arrival_rate: float  # per second
    hangup_rate: float  # θ, per second
    agents_known: bool = True  # False: no agent states for the queue, `serving` is estimated

    @property
    def capacity(self) -> float:
        """c·μ: the rate at which the queue's head is answered while every agent is busy."""
        return self.serving / self.aht_seconds


def _sums(state: QueueState, minutes: int, now_ms: int) -> dict[str, int]:
    """The few slots foresight reads, summed over the last `minutes` buckets (the current one included)."""
    out = dict.fromkeys(_SLOTS, 0)
    last = minute_of(now_ms)
    for minute in range(last - (minutes - 1) * MINUTE_MS, last + MINUTE_MS, MINUTE_MS):
        bucket = state.buckets.get(minute)
        if bucket is not None:
            for name in _SLOTS:
                out[name] += bucket[_I[name]]
    return out


def inputs(state: QueueState, now_ms: int) -> Inputs:
    hour = _sums(state, HANDLE_WINDOW_MINUTES, now_ms)
    if hour["handled_calls"]:
        aht = hour["handle_ms"] / hour["handled_calls"] / 1000
    elif state.totals[_I["handled_calls"]]:
        aht = state.totals[_I["handle_ms"]] / state.totals[_I["handled_calls"]] / 1000
    else:
        aht = DEFAULT_AHT_SECONDS
    aht = max(aht, 1.0)
    recent = _sums(state, ARRIVAL_WINDOW_MINUTES, now_ms)
    # The window's first minute is whole, the current one runs up to now.
    covered_s = ((ARRIVAL_WINDOW_MINUTES - 1) * MINUTE_MS + now_ms % MINUTE_MS + 1) / 1000
    arrival_rate = recent["entered"] / covered_s
    # The callers waiting now are at risk too (censored): leaving their time out would overstate θ.
    at_risk_ms = sum(max(0, now_ms - enqueued) for enqueued, _kind in state.waiting.values())
    waited_s = (hour["answered_wait_ms"] + hour["abandoned_wait_ms"] + at_risk_ms) / 1000
    hangup_rate = (hour["abandoned"] + hour["short_abandoned"]) / waited_s if waited_s > 0 else 0.0
    agents = state.agent_counts()
    serving = sum(agents[name] for name in SERVING_STATES)
    logged_in = serving + agents["away"]
    if not state.agents:
        # No agent states for this queue: as many agents as its recent answers kept busy.
        serving = max(1, math.ceil(recent["answered"] / covered_s * aht))
    return Inputs(len(state.waiting), agents["available"], serving, logged_in, aht, arrival_rate, hangup_rate,
                  bool(state.agents))


def expected_wait_seconds(live: Inputs, ahead: int | None = None) -> float:
    """Mean wait to an answer of a caller entering now behind `ahead` callers (default: all waiting)."""
    ahead = live.ahead if ahead is None else ahead
    if live.available > ahead:
        return 0.0  # a free agent answers it at once
    if live.serving == 0:
        return math.inf
    if not live.agents_known and ahead == 0:
        # Who is free is unknown: the steady state's mean wait of an answered call.
        steady = _steady_wait(live)
        if steady is not None:
            return steady
    return erlang.tagged_answer_wait(ahead - live.available, live.capacity, live.hangup_rate)


def _steady_wait(live: Inputs) -> float | None:
    calls_per_hour = live.arrival_rate * 3600
    if calls_per_hour <= 0:
        return 0.0
    if live.hangup_rate > 0:
        return erlang.ErlangA(calls_per_hour, live.aht_seconds, live.serving, 1.0 / live.hangup_rate).asa_seconds
    if live.arrival_rate * live.aht_seconds >= live.serving:
        return None
    return erlang.ErlangC(calls_per_hour, live.aht_seconds, live.serving).asa_seconds


def _rest_of_interval(state: QueueState, live: Inputs, now_ms: int, end_ms: int,
                      rng: random.Random) -> list[float]:
    """One draw of the outcomes the interval still gets: (answered within T, answered, abandoned,
    abandoned within T), the callers waiting now and those arriving before `end_ms` served first come
    first served by the live agents, with exponential handle times and patience (memoryless, so a busy
    agent's remaining talk and a waiting caller's remaining patience are drawn afresh now)."""
    settings = state.settings
    by_arrival = settings.attribute_to == ATTRIBUTE_ARRIVAL
    start_ms = interval_start(now_ms, settings)
    threshold, short = settings.threshold_ms, settings.short_abandon_ms
    mean_ms = live.aht_seconds * 1000
    busy = live.serving - live.available if live.agents_known else min(live.serving, round(
        live.arrival_rate * live.aht_seconds))
    free = [now_ms + rng.expovariate(1.0) * mean_ms for _ in range(max(0, busy))]
    free += [float(now_ms)] * max(0, live.serving - max(0, busy))
    heapq.heapify(free)
    callers = sorted(enqueued for enqueued, _kind in state.waiting.values())
    arrival = float(now_ms)
    if live.arrival_rate > 0:
        while True:
            arrival += rng.expovariate(live.arrival_rate) * 1000
            if arrival >= end_ms:
                break
            callers.append(arrival)
    theta = live.hangup_rate
    outcome = [0.0, 0.0, 0.0, 0.0]
    for enqueued in callers:
        counted_here = enqueued >= start_ms if by_arrival else None
        if counted_here is False:
            continue
        patience_end = max(enqueued, now_ms) + (rng.expovariate(theta) * 1000 if theta > 0 else math.inf)
        begin = max(enqueued, free[0]) if free else math.inf
        if begin <= patience_end:
            heapq.heapreplace(free, begin + rng.expovariate(1.0) * mean_ms)
            if by_arrival or begin < end_ms:
                outcome[1] += 1
                outcome[0] += begin - enqueued <= threshold
        elif (by_arrival or patience_end < end_ms) and patience_end - enqueued >= short:
            outcome[2] += 1
            outcome[3] += patience_end - enqueued <= threshold
    return outcome


def projection(state: QueueState, now_ms: int, live: Inputs | None = None,
               runs: int = PROJECTION_RUNS) -> tuple[float | None, float | None]:
    """(projected end-of-interval Service Level, chance of reaching the target) under the queue's
    formula: the interval's outcomes so far plus `runs` draws of the rest of the interval
    (`_rest_of_interval`); the projection is the median draw, the chance the share of draws at or
    above the target. The draws are seeded by the queue and the instant, so a state gives one answer."""
    live = inputs(state, now_ms) if live is None else live
    settings = state.settings
    start = interval_start(now_ms, settings)
    end = interval_end(start, settings)
    so_far = state.interval_counts(start)
    base = (so_far[_I["answered_within_threshold"]], so_far[_I["answered"]], so_far[_I["abandoned"]],
            so_far[_I["abandoned_within_threshold"]])
    if live.serving <= 0:
        level = counters.service_level(so_far, settings)
        return level, None if level is None else float(level >= settings.target)
    rng = random.Random(f"{state.queue}|{now_ms}")
    levels = []
    for _ in range(runs):
        rest = _rest_of_interval(state, live, now_ms, end, rng)
        level = counters.service_level_of(base[0] + rest[0], base[1] + rest[1], base[2] + rest[2],
                                          base[3] + rest[3], so_far[_I["dequeued"]], settings)
        if level is not None:
            levels.append(level)
    if not levels:
        return None, None
    levels.sort()
    middle = len(levels) // 2
    median = levels[middle] if len(levels) % 2 else (levels[middle - 1] + levels[middle]) / 2
    return median, sum(level >= settings.target for level in levels) / len(levels)


def projected_service_level(state: QueueState, now_ms: int, live: Inputs | None = None) -> float | None:
    return projection(state, now_ms, live)[0]


MAX_EXTRA_AGENTS = 500


def _steady(live: Inputs, serving: int, threshold_s: float) -> tuple[float, float, float] | None:
    """(P answered within T, P answered, P hung up within T) of the steady state with the live rates and
    `serving` agents; None when it has none (no patience and a load of `serving` erlangs or more)."""
    calls_per_hour = live.arrival_rate * 3600
    if live.hangup_rate > 0:
        model = erlang.ErlangA(calls_per_hour, live.aht_seconds, serving, 1.0 / live.hangup_rate)
        within, abandoned_within = model._outcomes_within(threshold_s)
        return within, model.answer_probability, abandoned_within
    if live.arrival_rate * live.aht_seconds >= serving:
        return None
    return erlang.ErlangC(calls_per_hour, live.aht_seconds, serving).service_level(threshold_s), 1.0, 0.0


def agents_needed(state: QueueState, live: Inputs) -> int | None:
    """The fewest agents whose steady state, with the live arrival rate, handle time and patience,
    reaches the queue's target under its formula; 0 when nobody calls, None for no target in reach."""
    settings = state.settings
    if live.arrival_rate <= 0:
        return 0
    threshold_s = settings.threshold_ms / 1000
    fewest = max(1, math.floor(live.arrival_rate * live.aht_seconds))
    for agents in range(fewest, fewest + MAX_EXTRA_AGENTS):
        steady = _steady(live, agents, threshold_s)
        if steady is None:
            continue
        within, answered, abandoned_within = steady
        level = counters.service_level_of(within, answered, 1.0 - answered, abandoned_within, 0.0, settings)
        if level is not None and level >= settings.target:
            return agents
    return None


def forecast(state: QueueState, now_ms: int) -> dict[str, Any]:
    """The foresight block of the JSON API (docs/api.md), computed at most once a second while no
    event comes (200 draws cost milliseconds; a wallboard and a scrape ask for it every few seconds)."""
    key = (now_ms // 1000, state.last_event_ts, len(state.waiting))
    if state.foresight_memo is not None and state.foresight_memo[0] == key:
        return state.foresight_memo[1]
    block = _forecast(state, key[0] * 1000)
    state.foresight_memo = (key, block)
    return block


def _forecast(state: QueueState, now_ms: int) -> dict[str, Any]:
    live = inputs(state, now_ms)
    ewt = expected_wait_seconds(live)
    projected, chance = projection(state, now_ms, live)
    return {
        "ewt_seconds": round(ewt, 3) if math.isfinite(ewt) else None,
        "projected_service_level": projected,
        "chance_of_target": chance,
        "agents_needed": agents_needed(state, live),
        "agents_logged_in": live.logged_in,
        "agents_serving": live.serving,
        "aht_seconds": round(live.aht_seconds, 3),
        "arrivals_per_hour": round(live.arrival_rate * 3600, 3),
        "patience_seconds": round(1.0 / live.hangup_rate, 3) if live.hangup_rate > 0 else None,
    }
