"""Two workers in one group, one added and one removed mid-stream: no lost or doubled counts, and the
union of both workers' /metrics has each queue exactly once, with no stale series after a rebalance."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.integration.fault_support import (
    PacedReplay,
    difference,
    expected_intervals,
    fault_env,
    fault_events,
    settle,
)
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

QUEUES = {"sales", "support", "q1", "q2"}
QUEUE_LABEL = re.compile(r'^callcenter_\w+\{[^}]*queue="([^"]+)"', re.MULTILINE)


def exported_queues(worker: WorkerProcess) -> set[str]:
    return set(QUEUE_LABEL.findall(worker.get_text("/metrics")))


def wait_for_split(workers: list[WorkerProcess], timeout: float = 60.0) -> list[set[str]]:
    """Each worker's exported queues, once they cover every queue and no queue twice (a rebalance in
    progress passes through states with a queue nowhere; a stale series would never go away)."""
    deadline = time.monotonic() + timeout
    while True:
        exported = [exported_queues(worker) for worker in workers]
        union = set().union(*exported)
        if union == QUEUES and sum(map(len, exported)) == len(union):
            return exported
        if time.monotonic() > deadline:
            return exported
        time.sleep(1)


def test_a_worker_added_and_one_removed_mid_stream(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = fault_env(tmp_path, kafka_bootstrap)
    events = fault_events(tmp_path / "events.jsonl", hours=3.0, seed=17)
    want = expected_intervals(events, env)
    assert {key.split("|")[0] for key in want} == QUEUES

    first = WorkerProcess(env, tmp_path / "data-1", tmp_path / "worker-1.log").start()
    second: WorkerProcess | None = None
    # 3 hours in 36 s; the contract example's queues q1 and q2 appear after 2h20m of it (28 s).
    replay = PacedReplay(events, env, speed=300.0, log_path=tmp_path / "replay.log")
    try:
        time.sleep(4)
        second = WorkerProcess(env, tmp_path / "data-2", tmp_path / "worker-2.log").start()
        time.sleep(max(0.0, 30 - (time.monotonic() - replay.started)))
        split = wait_for_split([first, second])
        assert set().union(*split) == QUEUES and not split[0] & split[1], f"exported queues: {split}"
        assert all(split), f"both workers own a share of the queues: {split}"

        first.stop()  # removed mid-stream: the other takes over its partitions
        assert wait_for_split([second]) == [QUEUES]
        replay.wait()
        got = settle(kafka_bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + second.log_tail()
    finally:
        replay.stop()
        first.stop()
        if second is not None:
            second.stop()
