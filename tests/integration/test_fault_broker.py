"""The broker stopped and restarted mid-stream: the worker, left running, recovers by itself, and the
final closed intervals equal `streamer report` on the same input.

This test runs its own broker (data under the test's tmp dir), since stopping the session's broker
would break the tests that share it. Its port is $STREAMER_TEST_FAULT_KAFKA_PORT, else one leased
outside the ephemeral range (streamer/ports.py): while the broker is down the worker keeps connecting
to that port, and a port inside the range could be handed to one of those connections as its own
source port (TCP self-connect), leaving the restarted broker with "Address already in use".
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.devkafka import LocalKafka
from streamer.ports import lease_port
from tests.integration.fault_support import (
    PacedReplay,
    create_topics,
    difference,
    expected_intervals,
    fault_env,
    fault_events,
    settle,
)
from tests.kafka_fixture import broker_of_its_own
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]

OUTAGE_SECONDS = 10


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    port = int(os.environ.get("STREAMER_TEST_FAULT_KAFKA_PORT") or lease_port())
    broker = LocalKafka(port=port, data_dir=tmp_path / "kafka")
    with broker_of_its_own(broker, "the broker of the broker-restart test") as started:
        yield started


def test_the_worker_recovers_by_itself_when_the_broker_comes_back(tmp_path: Path, own_broker: LocalKafka) -> None:
    env = fault_env(tmp_path, own_broker.bootstrap)
    events = fault_events(tmp_path / "events.jsonl", hours=2.0, seed=23)
    lines = events.read_bytes().splitlines(keepends=True)
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    before.write_bytes(b"".join(lines[: len(lines) // 2]))
    after.write_bytes(b"".join(lines[len(lines) // 2:]))
    want = expected_intervals(events, env)
    create_topics(env)

    worker = WorkerProcess(env, tmp_path / "data", tmp_path / "worker.log").start()
    try:
        PacedReplay(before, env, speed=600.0, log_path=tmp_path / "replay.log").wait()  # about 6 s
        own_broker.stop()
        time.sleep(OUTAGE_SECONDS)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker must outlive the outage"
        own_broker.start(die_with_parent=True)
        PacedReplay(after, env, speed=600.0, log_path=tmp_path / "replay.log").wait()
        got = settle(own_broker.bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
        assert worker.proc.poll() is None, "the worker keeps running"
    finally:
        worker.stop()
