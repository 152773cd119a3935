"""The worker killed with SIGKILL at a random table write of its own (a kill switch loaded into the
worker process), five times, restarted each time on its own data dir: the kill lands in the middle of
a batch's writes, where facts, call state and changelogs disagree, and the final closed intervals
still equal `streamer report` on the same input (nothing lost, nothing counted twice). Kills at random
moments of a stream are in the differential harness (tests/differential).
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
from pathlib import Path

import pytest

from tests.integration.fault_support import (
    PacedReplay,
    create_topics,
    difference,
    expected_intervals,
    fault_env,
    fault_events,
    settle,
)
from tests.worker_process import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

KILL_SWITCH = Path(__file__).parent / "kill_switch"
SEED = 20261123


def test_sigkill_in_the_middle_of_table_writes(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = fault_env(tmp_path, kafka_bootstrap)
    events = fault_events(tmp_path / "events.jsonl", hours=3.0, seed=SEED + 1)
    want = expected_intervals(events, env)
    create_topics(env)
    PacedReplay(events, env, speed=None, log_path=tmp_path / "replay.log").wait()

    rng = random.Random(SEED + 1)
    datadir, log = tmp_path / "data", tmp_path / "worker.log"
    switched = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(KILL_SWITCH), os.environ.get("PYTHONPATH")]))}
    kills = 0
    for _ in range(5):
        worker = WorkerProcess({**switched, "STREAMER_TEST_KILL_AT_WRITE": str(rng.randint(20, 600))}, datadir, log)
        with contextlib.suppress(RuntimeError):  # the switch may fire before the worker reports ready
            worker.start()
        try:
            code = worker.proc.wait(30)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            code = worker.kill()  # it had fewer writes left than the switch waits for: kill it anyway
        kills += code == -9
    worker = WorkerProcess(env, datadir, log).start()
    try:
        got = settle(kafka_bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
        assert kills == 5
    finally:
        worker.stop()
