"""A worker restarted after its data dir was deleted rebuilds its state from the changelog topics: the
final closed intervals equal `streamer report` on the same input."""

from __future__ import annotations

import re
import shutil
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

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_state_is_rebuilt_from_the_changelogs_after_the_data_dir_is_lost(tmp_path: Path,
                                                                          kafka_bootstrap: str) -> None:
    env = fault_env(tmp_path, kafka_bootstrap)
    events = fault_events(tmp_path / "events.jsonl", hours=2.0, seed=5)
    want = expected_intervals(events, env)

    datadir, log = tmp_path / "data", tmp_path / "worker.log"
    worker = WorkerProcess(env, datadir, log).start()
    replay = PacedReplay(events, env, speed=360.0, log_path=tmp_path / "replay.log")  # about 20 s
    try:
        time.sleep(8)  # well into the stream: calls in flight, intervals open
        worker.kill()
        shutil.rmtree(datadir)
        worker = WorkerProcess(env, datadir, log).start()
        replay.wait()
        got = settle(kafka_bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
    finally:
        replay.stop()
        worker.stop()
    # The second start had no local state: what it knew of the calls in flight came from the changelog.
    recovered = [int(n) for n in re.findall(r"stage 1 partition \d+: recovered (\d+) call", log.read_text())]
    assert sum(recovered) > 0
