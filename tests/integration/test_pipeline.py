"""The live pipeline through a real broker and a real `streamer worker`: closed intervals on
queue-intervals equal `streamer report` on the same file; bad records land in the DLQ with a reason;
a restart neither loses nor double-counts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.fault_support import CONFIG, difference, offline_report, settle
from tests.kafka_io import read_records, report_intervals
from tests.pipeline_input import NOISE, build_event_file
from tests.worker_process import WorkerProcess, unique_names

pytestmark = pytest.mark.integration

def replay(path: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "streamer.cli", "replay", str(path), "--topic",
                    env["STREAMER_TOPIC_EVENTS"]], check=True, capture_output=True, timeout=120)


@pytest.fixture
def pipeline_env(tmp_path: Path, kafka_bootstrap: str) -> dict[str, str]:
    config = tmp_path / "streamer.toml"
    config.write_text(CONFIG)
    return {**unique_names(), "STREAMER_PARTITIONS": "4", "STREAMER_CONFIG": str(config),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}


def test_replay_matches_offline_report_and_dead_letters_bad_records(
    tmp_path: Path, kafka_bootstrap: str, pipeline_env: dict[str, str]
) -> None:
    events = build_event_file(tmp_path / "events.jsonl")
    want = report_intervals(offline_report(events, pipeline_env))
    assert len(want) > 10 and {"sales", "support", "q1", "q2"} <= {k.split("|")[0] for k in want}

    worker = WorkerProcess(pipeline_env, tmp_path / "data", tmp_path / "worker.log").start()
    try:
        replay(events, pipeline_env)
        got = settle(kafka_bootstrap, pipeline_env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()

        dead = read_records(kafka_bootstrap, pipeline_env["STREAMER_TOPIC_DLQ"])
        reasons = {dict(r.headers)["dlq.reason"].decode() for r in dead}
        assert {"invalid_json", "wrong_type", "unknown_type", "missing_field", "unknown_call"} <= reasons
        assert {r.value for r in dead} >= set(NOISE)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker must keep running"

        metrics = worker.get_text("/metrics")
        assert 'callcenter_events_total{reason="invalid_json",result="invalid"}' in metrics
        assert 'callcenter_calls_entered_total{queue="q1"} 7.0' in metrics
    finally:
        worker.stop()


def test_restart_neither_loses_nor_double_counts(
    tmp_path: Path, kafka_bootstrap: str, pipeline_env: dict[str, str]
) -> None:
    events = build_event_file(tmp_path / "events.jsonl", hours=1.5, seed=11)
    want = report_intervals(offline_report(events, pipeline_env))
    lines = events.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2:]))

    datadir, log = tmp_path / "data", tmp_path / "worker.log"
    worker = WorkerProcess(pipeline_env, datadir, log).start()
    try:
        replay(first, pipeline_env)
        time.sleep(5)  # let it process and commit part of the stream
    finally:
        worker.stop()
    worker = WorkerProcess(pipeline_env, datadir, log).start()
    try:
        replay(second, pipeline_env)
        got = settle(kafka_bootstrap, pipeline_env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()
    finally:
        worker.stop()
