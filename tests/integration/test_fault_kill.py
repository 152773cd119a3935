"""The worker killed with SIGKILL, several times, restarted each time on its own data dir: the final
closed intervals equal `streamer report` on the same input (nothing lost, nothing counted twice).

Two ways to choose the moments, both from a seeded RNG: at random times while a paced replay streams
in, and at a random table write of the worker's own (a kill switch loaded into the worker process),
which lands in the middle of a batch's writes, where facts, call state and changelogs disagree.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
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


def test_sigkill_at_random_moments_of_a_paced_replay(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = fault_env(tmp_path, kafka_bootstrap)
    events = fault_events(tmp_path / "events.jsonl", hours=3.0, seed=SEED)
    want = expected_intervals(events, env)
    assert len(want) > 15

    rng = random.Random(SEED)
    datadir, log = tmp_path / "data", tmp_path / "worker.log"
    worker = WorkerProcess(env, datadir, log).start()
    # 3 hours of traffic in 30 s; a restart takes longer than a kill interval, so a backlog builds
    # up and the next kill often lands while the worker works through it.
    replay = PacedReplay(events, env, speed=360.0, log_path=tmp_path / "replay.log")
    try:
        for _ in range(4):
            time.sleep(rng.uniform(0.5, 4.0))
            worker.kill()
            worker = WorkerProcess(env, datadir, log).start()
        replay.wait()
        got = settle(kafka_bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
    finally:
        replay.stop()
        worker.stop()


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
