"""Erlang C / Erlang A reference figures (streamer.core.erlang)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamer.core.erlang import ErlangA, ErlangC, agents_for_service_level, erlang_b, erlang_c, theory

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference-data"

# ../shared/reference-data/README.md: 4.2 calls/min, 2 min service, 12 agents, 20 s; patience 1 min.
CALLS_PER_HOUR, AHT, AGENTS, PATIENCE = 252.0, 120.0, 12, 60.0


def test_erlang_c_reproduces_the_reference_figures():
    model = ErlangC(CALLS_PER_HOUR, AHT, AGENTS)
    assert model.load_erlangs == pytest.approx(8.4)
    assert model.occupancy == pytest.approx(0.70)
    assert model.wait_probability == pytest.approx(0.184, abs=5e-4)
    assert model.service_level(20) == pytest.approx(0.899, abs=5e-4)
    assert model.asa_seconds == pytest.approx(6.1, abs=0.05)


def test_erlang_a_reproduces_the_reference_figures():
    model = ErlangA(CALLS_PER_HOUR, AHT, AGENTS, PATIENCE)
    assert model.abandon_probability == pytest.approx(0.0297, abs=5e-5)
    assert model.service_level_answered(20) == pytest.approx(0.974, abs=5e-4)


def _published(name: str, statistic: str) -> float:
    """The average of a statistic in a ContactCenters .res report: a header line naming the columns
    ("num. obs. min max average standard dev." or "func. of averages standard dev. num. obs."),
    then the values."""
    text = (REFERENCE / "contactcenters-examples" / name).read_text()
    header, values = text.split(f"==> {statistic}\n", 1)[1].splitlines()[:2]
    numbers = re.findall(r"[0-9.]+(?:E-?[0-9]+)?", values)
    return float(numbers[3] if header.split()[:2] == ["num.", "obs."] else numbers[0])


def test_theory_is_close_to_the_published_contactcenters_simulations():
    """MMC.res / MMCAb.res simulate 8-hour days that start empty, which sit slightly above steady state
    (less waiting in the first minutes), hence tolerances of a few thousandths."""
    if not (REFERENCE / "contactcenters-examples").is_dir():
        pytest.skip(f"reference data not found at {REFERENCE}")
    c = ErlangC(CALLS_PER_HOUR, AHT, AGENTS)
    assert c.service_level(20) == pytest.approx(_published("MMC.res", "Service level"), abs=0.005)
    assert c.asa_seconds / 60 == pytest.approx(_published("MMC.res", "Speed of answer"), abs=0.005)
    assert c.occupancy == pytest.approx(_published("MMC.res", "Occupancy ratio"), abs=0.01)
    a = ErlangA(CALLS_PER_HOUR, AHT, AGENTS, PATIENCE)
    arrivals_per_day = CALLS_PER_HOUR * 8
    assert a.abandon_probability == pytest.approx(
        _published("MMCAb.res", "Number of contacts having abandoned") / arrivals_per_day, abs=0.002
    )
    assert a.service_level_answered(20) == pytest.approx(_published("MMCAb.res", "Service level"), abs=0.003)
    assert a.asa_seconds / 60 == pytest.approx(_published("MMCAb.res", "Speed of answer"), abs=0.003)
    assert a.occupancy == pytest.approx(_published("MMCAb.res", "Occupancy ratio"), abs=0.01)


def test_erlang_b_and_c_match_the_tables():
    assert erlang_b(10.0, 10) == pytest.approx(0.21458, abs=1e-5)
    assert erlang_b(1.0, 1) == pytest.approx(0.5)
    # M/M/1: P(wait) = ρ.
    assert erlang_c(0.6, 1) == pytest.approx(0.6)
    assert erlang_c(5.0, 5) == 1.0


def test_mm1_closed_forms():
    model = ErlangC(calls_per_hour=30, aht_seconds=60, agents=1)  # ρ = 0.5
    assert model.wait_probability == pytest.approx(0.5)
    assert model.asa_seconds == pytest.approx(0.5 / (1 / 60 - 30 / 3600))
    assert model.service_level(0) == pytest.approx(0.5)


def test_erlang_a_tends_to_erlang_c_when_callers_never_hang_up():
    c = ErlangC(CALLS_PER_HOUR, AHT, AGENTS)
    a = ErlangA(CALLS_PER_HOUR, AHT, AGENTS, patience_seconds=1e9)
    assert a.wait_probability == pytest.approx(c.wait_probability, rel=1e-5)
    assert a.service_level(20) == pytest.approx(c.service_level(20), rel=1e-5)
    assert a.asa_seconds == pytest.approx(c.asa_seconds, rel=1e-4)
    assert a.abandon_probability < 1e-6


@pytest.mark.parametrize(("calls_per_hour", "aht", "agents", "patience"), [
    (252, 120, 12, 60), (252, 120, 8, 60), (600, 300, 40, 180), (40, 400, 3, 30),
])  # fmt: skip
def test_erlang_a_is_self_consistent(calls_per_hour, aht, agents, patience):
    model = ErlangA(calls_per_hour, aht, agents, patience)
    # Callers hang up at rate θ each while waiting: P(abandon) = θ · E[time in queue] (Little's law).
    mean_queue_time = (
        model.answer_probability * model.asa_seconds + model.abandon_probability * model.average_abandon_seconds
    )
    assert model.abandon_probability == pytest.approx(mean_queue_time / patience, rel=1e-9)
    # The waiting-time distribution: no wait at 0, every outcome by a long time, monotone between.
    assert model.service_level(0) == pytest.approx(1 - model.wait_probability)
    assert model.service_level(50 * patience) == pytest.approx(model.answer_probability, abs=1e-9)
    assert model.abandoned_within(50 * patience) == pytest.approx(model.abandon_probability, abs=1e-9)
    levels = [model.service_level(t) for t in (0, 5, 10, 20, 60, 300)]
    assert levels == sorted(levels)
    # Erlang A stays finite beyond 100 % load.
    assert 0 < model.occupancy <= 1


def test_erlang_c_refuses_an_unstable_queue():
    with pytest.raises(ValueError, match="never reaches a steady state"):
        ErlangC(calls_per_hour=360, aht_seconds=120, agents=12)


def test_bad_parameters_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="agents"):
        ErlangC(100, 120, 0)
    with pytest.raises(ValueError, match="patience"):
        ErlangA(100, 120, 5, 0)
    with pytest.raises(ValueError, match="handle time"):
        ErlangA(100, -1, 5, 60)


def test_staffing_is_the_fewest_agents_meeting_the_target():
    # Erlang C: 11 agents give 79.8 % in 20 s, 12 give 89.9 %.
    assert agents_for_service_level(CALLS_PER_HOUR, AHT, 0.8) == 12
    agents = agents_for_service_level(CALLS_PER_HOUR, AHT, 0.9, 20, PATIENCE)
    assert ErlangA(CALLS_PER_HOUR, AHT, agents, PATIENCE).service_level(20) >= 0.9
    assert ErlangA(CALLS_PER_HOUR, AHT, agents - 1, PATIENCE).service_level(20) < 0.9


def test_theory_summary_names_the_model():
    assert theory(CALLS_PER_HOUR, AHT, AGENTS)["model"].startswith("Erlang C")
    summary = theory(CALLS_PER_HOUR, AHT, AGENTS, PATIENCE)
    assert summary["model"].startswith("Erlang A")
    assert summary["abandon_probability"] == pytest.approx(0.0297, abs=5e-5)
