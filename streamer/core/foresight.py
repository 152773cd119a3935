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
import itertools
import math
import random
from collections.abc import Iterable, Iterator
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


class _Tail:
    """The expected in-interval hang-ups of the waiting callers from each place in line on, for callers
    no agent can reach before the interval ends (the projection's draws stop simulating there).

    With patience exponential, a caller waiting w0 now hangs up at now + X, X ~ Exp(θ); it counts as
    abandoned in this interval when X < end − now and w0 + X ≥ the short-abandon time, and within
    threshold when also w0 + X ≤ T. These chances depend on the caller alone, so suffix sums over the
    line give any tail's expectation at once."""

    __slots__ = ("abandoned", "within")

    def __init__(self, waiting: list[float], now_ms: int, end_ms: int, theta: float, threshold: int,
                 short: int) -> None:
        self.abandoned = [0.0] * (len(waiting) + 1)
        self.within = [0.0] * (len(waiting) + 1)
        if theta <= 0:
            return
        left = end_ms - now_ms

        def survives(x: float) -> float:
            return math.exp(-theta * x / 1000)

        for i in range(len(waiting) - 1, -1, -1):
            waited = now_ms - waiting[i]
            lo = max(0.0, short - waited)
            p_abandon = survives(lo) - survives(left) if lo < left else 0.0
            hi = min(left, threshold - waited)
            p_within = survives(lo) - survives(hi) if hi > lo else 0.0
            self.abandoned[i] = self.abandoned[i + 1] + p_abandon
            self.within[i] = self.within[i + 1] + p_within


def _arrivals_tail(since_ms: float, end_ms: int, rate_per_s: float, theta: float, threshold: int,
                   short: int) -> tuple[float, float]:
    """The expected in-interval (hang-ups, hang-ups within threshold) of the callers arriving from
    `since_ms` to the interval's end whom no agent reaches in it: Poisson arrivals at the live rate, one
    arriving with u ms left hanging up at X ~ Exp(θ), counted when short ≤ X < u, within threshold when
    also X ≤ T; integrated over u in closed form."""
    if theta <= 0 or rate_per_s <= 0:
        return 0.0, 0.0
    per_ms, theta_ms = rate_per_s / 1000, theta / 1000
    left = end_ms - since_ms
    stay_short = math.exp(-theta_ms * short)

    def hung_up(upto: float) -> float:
        # ∫ from `short` to `upto` of (e^(−θ·short) − e^(−θ·u)) du
        if upto <= short:
            return 0.0
        return stay_short * (upto - short) - (stay_short - math.exp(-theta_ms * upto)) / theta_ms

    abandoned = per_ms * hung_up(left)
    within = 0.0
    if threshold > short:
        within = hung_up(min(left, threshold))
        if left > threshold:
            within += (left - threshold) * (stay_short - math.exp(-theta_ms * threshold))
        within *= per_ms
    return abandoned, within


def _rest_of_interval(state: QueueState, live: Inputs, now_ms: int, end_ms: int, rng: random.Random,
                      waiting: list[float], tail: _Tail | None) -> tuple[list[float], int]:
    """One draw of the outcomes the interval still gets: (answered within T, answered, abandoned,
    abandoned within T), the callers waiting now (`waiting`, oldest first) and those arriving before
    `end_ms` served first come first served by the live agents, with exponential handle times and
    patience (memoryless, so a busy agent's remaining talk and a waiting caller's remaining patience
    are drawn afresh now); and the callers it simulated one by one.

    Once no agent frees up before the interval ends, the callers still in line and those still to
    come can only hang up within it: with `tail` (outcomes counted when they happen, and a line long
    enough to matter) they count by their expected hang-ups instead of a draw each, which bounds a
    draw's work by what the agents can answer in the interval, not by the length of the line."""
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
    theta = live.hangup_rate
    outcome = [0.0, 0.0, 0.0, 0.0]
    simulated = 0
    for enqueued in _line(waiting, live.arrival_rate, now_ms, end_ms, rng, lazy=tail is not None):
        if tail is not None and free[0] >= end_ms:
            if simulated < len(waiting):  # no arrival drawn yet: all of them are still to come
                outcome[2] += tail.abandoned[simulated]
                outcome[3] += tail.within[simulated]
                since = float(now_ms)
            else:  # this arrival is drawn; the stream after it is memoryless
                patience_end = enqueued + rng.expovariate(theta) * 1000 if theta > 0 else math.inf
                if patience_end < end_ms and patience_end - enqueued >= short:
                    outcome[2] += 1
                    outcome[3] += patience_end - enqueued <= threshold
                simulated += 1
                since = enqueued
            abandoned, within = _arrivals_tail(since, end_ms, live.arrival_rate, theta, threshold, short)
            outcome[2] += abandoned
            outcome[3] += within
            return outcome, simulated
        simulated += 1
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
    return outcome, simulated


def _line(waiting: list[float], rate_per_s: float, now_ms: int, end_ms: int, rng: random.Random,
          lazy: bool) -> Iterable[float]:
    """The line in service order: the callers waiting now, then arrivals at the live rate until the
    interval's end, drawn all at once (`lazy` False: the draws' order every projection had) or as
    they are reached."""
    arrivals = _arrivals(rate_per_s, now_ms, end_ms, rng)
    if lazy:
        return itertools.chain(waiting, arrivals)
    return waiting + list(arrivals)


def _arrivals(rate_per_s: float, now_ms: int, end_ms: int, rng: random.Random) -> Iterator[float]:
    arrival = float(now_ms)
    if rate_per_s <= 0:
        return
    while True:
        arrival += rng.expovariate(rate_per_s) * 1000
        if arrival >= end_ms:
            return
        yield arrival


# A line at least this long has its unreachable tail counted by expectation (`_Tail`); shorter ones are
# drawn caller by caller (what a wallboard's queues hold nearly always).
TAIL_FROM_CALLERS = 200
# Callers simulated one by one over all the draws of one projection: past it, the projection stops at
# the draws it has (at least MIN_PROJECTION_RUNS), so a scrape stays cheap whatever the queue holds.
PROJECTION_CALLER_BUDGET = 20_000
MIN_PROJECTION_RUNS = 10


def projection(state: QueueState, now_ms: int, live: Inputs | None = None,
               runs: int = PROJECTION_RUNS) -> tuple[float | None, float | None]:
    """(projected end-of-interval Service Level, chance of reaching the target) under the queue's
    formula: the interval's outcomes so far plus up to `runs` draws of the rest of the interval
    (`_rest_of_interval`; fewer, never under MIN_PROJECTION_RUNS, once PROJECTION_CALLER_BUDGET callers
    have been simulated); the projection is the median draw, the chance the share of draws at or
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
    waiting = sorted(enqueued for enqueued, _kind in state.waiting.values())
    tail = None
    if len(waiting) >= TAIL_FROM_CALLERS and settings.attribute_to != ATTRIBUTE_ARRIVAL:
        tail = _Tail(waiting, now_ms, end, live.hangup_rate, settings.threshold_ms, settings.short_abandon_ms)
    levels = []
    simulated = 0
    for done in range(runs):
        if simulated >= PROJECTION_CALLER_BUDGET and done >= MIN_PROJECTION_RUNS:
            break
        rest, callers = _rest_of_interval(state, live, now_ms, end, rng, waiting, tail)
        simulated += callers
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
# More callers than this waiting on average in the steady state of an agent count: not in reach.
MAX_STEADY_BACKLOG = 10_000
# Hang-ups rarer than this per handle time change the steady state less than its own inputs' noise:
# Erlang C stands in for Erlang A, whose state space grows as patience does.
NEGLIGIBLE_PATIENCE_RATE = 0.01


def _steady(live: Inputs, serving: int, threshold_s: float) -> tuple[float, float, float] | None:
    """(P answered within T, P answered, P hung up within T) of the steady state with the live rates and
    `serving` agents; None when it has none (no patience and a load of `serving` erlangs or more)."""
    calls_per_hour = live.arrival_rate * 3600
    theta, capacity = live.hangup_rate, serving / live.aht_seconds
    if theta > 0 and (live.arrival_rate - capacity) / theta > MAX_STEADY_BACKLOG:
        # Only hang-ups would hold such a line in check: its steady state has more callers waiting than
        # any target allows (and Erlang A's state space would run to millions).
        return None
    if theta * live.aht_seconds >= NEGLIGIBLE_PATIENCE_RATE:
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


FORESIGHT_REFRESH_MS = 5_000


# A block without a projection (a worker catching up, an interval without outcomes yet) is recomputed
# sooner: the figure appears as soon as the state allows, not up to FORESIGHT_REFRESH_MS later.
UNDEFINED_REFRESH_MS = 1_000


def due(state: QueueState, now_ms: int) -> bool:
    """Whether the queue's foresight block is missing or older than FORESIGHT_REFRESH_MS
    (UNDEFINED_REFRESH_MS while its projection is undefined)."""
    memo = state.foresight_memo
    if memo is None:
        return True
    refresh = FORESIGHT_REFRESH_MS if memo[1].get("projected_service_level") is not None else UNDEFINED_REFRESH_MS
    return not 0 <= now_ms - memo[0] < refresh


def computed_at(state: QueueState) -> int | None:
    """When the queue's last foresight block was computed for (None: never)."""
    return None if state.foresight_memo is None else state.foresight_memo[0]


def last_block(state: QueueState) -> dict[str, Any] | None:
    """The queue's last foresight block, however old (None: never computed)."""
    return None if state.foresight_memo is None else state.foresight_memo[1]


def forecast(state: QueueState, now_ms: int) -> dict[str, Any]:
    """The foresight block of the JSON API (docs/api.md), computed at most once every
    FORESIGHT_REFRESH_MS per queue, events or not: its draws cost milliseconds per queue, a worker
    serving many queues is read by wallboards and scrapes every few seconds, and a forecast a few
    seconds old serves them all. Computed for the whole second, so a state gives one answer."""
    if not due(state, now_ms):
        return state.foresight_memo[1]  # type: ignore[index]
    at = now_ms // 1000 * 1000
    block = _forecast(state, at)
    state.foresight_memo = (at, block)
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
