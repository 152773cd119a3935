"""Live = offline on generated streams: a few seeds in CI, clean and under faults; `python -m
tests.differential.soak` runs as many as asked (docs/pipeline.md, "Live = offline")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.devkafka import DevKafkaError, LocalKafka
from streamer.ports import lease_port
from tests.differential.generator import generate
from tests.differential.harness import run_clean, run_faults

pytestmark = [pytest.mark.integration]

CLEAN_SEEDS = (101, 102, 103)
TODAY_SEED = 104
FAULT_SEEDS = (201, 202, 203)


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of the fault runs' own, since they stop and start it."""
    # Outside the ephemeral range and leased: the fault runs stop and restart it (streamer/ports.py).
    port = int(os.environ.get("STREAMER_TEST_HARNESS_KAFKA_PORT") or lease_port())
    broker = LocalKafka(port=port, data_dir=tmp_path_factory.mktemp("harness-kafka"))
    try:
        broker.start(fresh=True, die_with_parent=True)
    except DevKafkaError as error:
        pytest.fail(f"the broker of the fault runs did not start: {error}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", CLEAN_SEEDS)
def test_a_generated_stream_counts_live_as_offline(seed: int, tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_clean(generate(seed), tmp_path, kafka_bootstrap)
    assert result.intervals > 100 and result.rollup_intervals > 50
    print(result.line())


@pytest.mark.timeout(300)
def test_today_figures_equal_the_days_intervals(tmp_path: Path, kafka_bootstrap: str) -> None:
    result = run_clean(generate(TODAY_SEED, today=True), tmp_path, kafka_bootstrap)
    assert any(step.startswith("today") for step in result.steps)
    print(result.line())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_a_generated_stream_counts_live_as_offline_through_faults(seed: int, tmp_path: Path,
                                                                   own_broker: LocalKafka) -> None:
    result = run_faults(generate(seed), tmp_path, own_broker)
    assert sorted(result.steps) == sorted(("kill",) * 5 + ("broker", "join", "leave", "empty_datadir"))
    print(result.line())
