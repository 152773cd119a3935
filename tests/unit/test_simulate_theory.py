"""The plain model agrees with Erlang C and Erlang A in steady state.

The figures are computed here from the generated events alone (enqueue, answer and abandon times),
and compared with `streamer.core.erlang` within a tolerance taken from the run itself: the run is
cut into BATCHES consecutive batches of equal simulated time, each batch gives one estimate, and the
mean of the batch estimates must lie within Z standard errors (sample standard deviation of the batch
estimates / √BATCHES) of the theory. Batches of 20+ simulated hours are far longer than the queue's
memory (minutes), so the batch estimates are nearly independent and the standardized error follows a
t distribution with BATCHES − 1 degrees of freedom: P(|t₄₉| > 5) ≈ 1e-5, so a correct model fails one
of these comparisons for fewer than 1 seed in 10,000. Each comparison also checks that the bound is
less than half of what one agent more or less would change in the theory, so the test can tell a
wrong model from a right one.

Parameters: the ContactCenters MMC / MMCAb examples (4.2 calls/min, 2 min mean service, 12 agents,
20 s threshold; patience mean 1 min for Erlang A), as listed in ../shared/reference-data/README.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import pytest

from streamer.core.erlang import ErlangA, ErlangC
from streamer.simulate.clock import parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenarios import plain

CALLS_PER_HOUR = 252.0
AHT_SECONDS = 120.0
AGENTS = 12
PATIENCE_SECONDS = 60.0
THRESHOLD_SECONDS = 20.0
HOURS = 1000
WARM_UP_HOURS = 1
BATCHES = 50
Z = 5.0
START = "2026-06-01T00:00:00Z"


@dataclass(frozen=True)
class Visit:
    arrival_hour: float
    wait_seconds: float
    answered: bool


def _epoch_seconds(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def visits_from_events(events: Iterable[dict]) -> list[Visit]:
    """One Visit per call of a single-queue run without callbacks: enqueue time and first outcome."""
    start = _epoch_seconds(START)
    entered: dict[str, float] = {}
    visits = []
    for event in events:
        kind = event["type"]
        if kind == "call.enqueued":
            entered[event["call_id"]] = _epoch_seconds(event["ts"])
        elif kind in ("call.answered", "call.abandoned"):
            arrival = entered.pop(event["call_id"])
            visits.append(
                Visit((arrival - start) / 3600.0, _epoch_seconds(event["ts"]) - arrival, kind == "call.answered")
            )
    assert not entered, f"{len(entered)} calls never got an outcome"
    return visits


def batch_estimate(visits: list[Visit], figure: Callable[[list[Visit]], float]) -> tuple[float, float]:
    """(mean of the batch estimates, its standard error) over BATCHES equal slices of simulated time."""
    width = (HOURS - WARM_UP_HOURS) / BATCHES
    batches: list[list[Visit]] = [[] for _ in range(BATCHES)]
    for visit in visits:
        if visit.arrival_hour >= WARM_UP_HOURS:
            batches[min(BATCHES - 1, int((visit.arrival_hour - WARM_UP_HOURS) / width))].append(visit)
    estimates = [figure(batch) for batch in batches]
    return statistics.fmean(estimates), statistics.stdev(estimates) / math.sqrt(BATCHES)


def share(visits: list[Visit], condition: Callable[[Visit], bool]) -> float:
    return sum(1 for v in visits if condition(v)) / len(visits)


def run_visits(patience: float | None) -> list[Visit]:
    scenario = plain(CALLS_PER_HOUR, AHT_SECONDS, AGENTS, patience)
    return visits_from_events(simulate(scenario, seed=2026, start_ms=parse_start(START), hours=HOURS))


def assert_agrees(name: str, visits: list[Visit], figure, theory_for: Callable[[int], float]) -> None:
    """The batch-means estimate of `figure` is within Z standard errors of `theory_for(AGENTS)`, and
    that bound is less than half the change one agent more or less makes to the theory."""
    theory = theory_for(AGENTS)
    estimate, standard_error = batch_estimate(visits, figure)
    bound = Z * standard_error
    one_agent = min(abs(theory_for(AGENTS - 1) - theory), abs(theory_for(AGENTS + 1) - theory))
    print(f"{name}: simulated {estimate:.5f} ± {standard_error:.5f} (SE), theory {theory:.5f}, bound {bound:.5f}")
    assert bound < one_agent / 2, f"{name}: tolerance {bound:.4g} too loose to tell {AGENTS} agents from ±1; run longer"
    assert abs(estimate - theory) <= bound, (
        f"{name}: simulated {estimate:.5f} differs from theory {theory:.5f} by more than {Z:g} SE ({bound:.5f})"
    )


def erlang_c(agents: int) -> ErlangC:
    return ErlangC(CALLS_PER_HOUR, AHT_SECONDS, agents)


def erlang_a(agents: int) -> ErlangA:
    return ErlangA(CALLS_PER_HOUR, AHT_SECONDS, agents, PATIENCE_SECONDS)


@pytest.fixture(scope="module")
def erlang_c_visits() -> list[Visit]:
    return run_visits(None)


@pytest.fixture(scope="module")
def erlang_a_visits() -> list[Visit]:
    return run_visits(PATIENCE_SECONDS)


def test_erlang_c_wait_probability(erlang_c_visits):
    assert_agrees(
        "Erlang C P(wait)", erlang_c_visits,
        lambda b: share(b, lambda v: v.wait_seconds > 0),
        lambda agents: erlang_c(agents).wait_probability,
    )  # fmt: skip


def test_erlang_c_service_level(erlang_c_visits):
    assert all(v.answered for v in erlang_c_visits)
    assert_agrees(
        "Erlang C SL(20 s) over all arrivals", erlang_c_visits,
        lambda b: share(b, lambda v: v.wait_seconds <= THRESHOLD_SECONDS),
        lambda agents: erlang_c(agents).service_level(THRESHOLD_SECONDS),
    )  # fmt: skip


def test_erlang_c_asa(erlang_c_visits):
    assert_agrees(
        "Erlang C ASA (s)", erlang_c_visits,
        lambda b: statistics.fmean(v.wait_seconds for v in b),
        lambda agents: erlang_c(agents).asa_seconds,
    )  # fmt: skip


def test_erlang_a_abandonment(erlang_a_visits):
    assert_agrees(
        "Erlang A abandonment", erlang_a_visits,
        lambda b: share(b, lambda v: not v.answered),
        lambda agents: erlang_a(agents).abandon_probability,
    )  # fmt: skip


def test_erlang_a_wait_probability(erlang_a_visits):
    assert_agrees(
        "Erlang A P(wait)", erlang_a_visits,
        lambda b: share(b, lambda v: v.wait_seconds > 0 or not v.answered),
        lambda agents: erlang_a(agents).wait_probability,
    )  # fmt: skip


def test_erlang_a_service_level_among_answered(erlang_a_visits):
    def level(batch: list[Visit]) -> float:
        return share([v for v in batch if v.answered], lambda v: v.wait_seconds <= THRESHOLD_SECONDS)

    assert_agrees(
        "Erlang A SL(20 s) among answered", erlang_a_visits, level,
        lambda agents: erlang_a(agents).service_level_answered(THRESHOLD_SECONDS),
    )  # fmt: skip


def test_erlang_a_service_level_over_all_arrivals(erlang_a_visits):
    assert_agrees(
        "Erlang A SL(20 s) over all arrivals", erlang_a_visits,
        lambda b: share(b, lambda v: v.answered and v.wait_seconds <= THRESHOLD_SECONDS),
        lambda agents: erlang_a(agents).service_level(THRESHOLD_SECONDS),
    )  # fmt: skip


def test_erlang_a_asa(erlang_a_visits):
    assert_agrees(
        "Erlang A ASA (s)", erlang_a_visits,
        lambda b: statistics.fmean(v.wait_seconds for v in b if v.answered),
        lambda agents: erlang_a(agents).asa_seconds,
    )  # fmt: skip


def test_erlang_a_abandoned_within_threshold(erlang_a_visits):
    assert_agrees(
        "Erlang A abandoned within 20 s over all arrivals", erlang_a_visits,
        lambda b: share(b, lambda v: not v.answered and v.wait_seconds <= THRESHOLD_SECONDS),
        lambda agents: erlang_a(agents).abandoned_within(THRESHOLD_SECONDS),
    )  # fmt: skip
