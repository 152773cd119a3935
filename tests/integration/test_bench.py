"""`streamer bench --quick` against the test broker: every measurement runs on real worker processes,
stdout is the figures table and, last, one JSON line with the required figures, and the run leaves no
topic behind. Nothing is asserted about speed: the machine decides that, and the figures of a quick
run mean little (docs/performance.md)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

pytestmark = pytest.mark.integration

REQUIRED = ("events_per_second", "ceiling_events_per_second", "ceiling_share", "events_per_cpu_second",
            "recovery_seconds", "calls_events_per_second", "calls_ceiling_events_per_second", "calls_ceiling_share",
            "calls_events_per_cpu_second", "calls_recovery_seconds", "p50_latency_seconds", "p99_latency_seconds",
            "rss_bytes_per_inflight_call", "rss_bytes_per_queue", "rss_bytes_per_customer")
TABLE_LABELS = ("demo day: worker throughput, both stages", "demo day: ceiling, plain consumer + orjson",
                "call-only: worker throughput, both stages", "call-only: ceiling, plain consumer + orjson",
                "latency p50", "latency p99", "RSS per waiting call", "RSS per queue",
                "demo day: recovery, start → queues served", "call-only: recovery, start → queues served")


async def topics_starting_with(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return [name for name in await admin.list_topics() if name.startswith(prefix)]
    finally:
        await admin.close()


@pytest.mark.timeout(900)
def test_quick_bench_prints_the_table_then_json_and_cleans_up(tmp_path: Path, kafka_bootstrap: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = subprocess.run([sys.executable, "-m", "streamer.cli", "bench", "--quick", "--bootstrap", kafka_bootstrap,
                          "--workdir", str(tmp_path / "bench")],
                         capture_output=True, text=True, timeout=840, check=False)
    with capsys.disabled():
        print(f"\n{run.stdout}")  # the figures, in the CI log
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"using the broker at {kafka_bootstrap} (--bootstrap)" in run.stderr

    lines = run.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    for key in REQUIRED:
        assert isinstance(summary[key], int | float) and summary[key] > 0, (key, summary[key])
    assert summary["recovery_state_intact"] is True, "the restarted worker must show the same entered totals"
    assert summary["calls_recovery_state_intact"] is True
    assert summary["latency_missing_probes"] == 0 and summary["latency_probes"] > 0

    table = lines[:-1]
    assert table[0].split() == ["figure", "median", "min", "max", "target", "met?"]
    for label in TABLE_LABELS:
        assert any(row.startswith(label) for row in table), f"no row {label!r} in:\n{run.stdout}"
    met_column = [row.split()[-1] for row in table[2:] if "≥" in row or "≤" in row]
    # ceiling share and recovery per workload, p99 latency, RSS per call and per queue
    assert len(met_column) == 7 and set(met_column) <= {"yes", "NO"}

    tag = re.search(r"deleted the run's \d+ topics \((\w+)-\*\)", run.stderr)
    assert tag is not None, run.stderr[-2000:]
    assert asyncio.run(topics_starting_with(kafka_bootstrap, tag.group(1))) == []


SOAK_KEYS = ("soak_events_per_second", "soak_rss_bytes_day1", "soak_rss_bytes_end", "soak_live_keys_day1",
             "soak_live_keys_end", "soak_datadir_bytes_end")


@pytest.mark.timeout(900)
def test_soak_reads_the_worker_state_every_simulated_day(tmp_path: Path, kafka_bootstrap: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A short soak (two simulated days): a reading per simulated midnight and one at the end, each with
    the worker's RSS, the live keys of every table from their changelogs, and the data dir size."""
    run = subprocess.run([sys.executable, "-m", "streamer.cli", "bench", "--only", "soak", "--soak-days", "2",
                          "--bootstrap", kafka_bootstrap, "--workdir", str(tmp_path / "bench")],
                         capture_output=True, text=True, timeout=840, check=False)
    with capsys.disabled():
        print(f"\n{run.stdout}")
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    for key in SOAK_KEYS:
        assert summary[key] > 0, (key, summary[key])
    readings = summary["soak_readings"]
    assert [int(reading["day"]) for reading in readings][:2] == [1, 2], readings
    assert readings[-1]["events"] == summary["soak_events"], "the last reading follows the whole stream"
    for reading in readings:
        assert "calls" in reading["table_keys"] and len(reading["table_keys"]) >= 2, reading["table_keys"]
        assert reading["rss_bytes"] > 0 and reading["datadir_bytes"] > 0
    assert "events_per_second" not in summary, "--only soak measures the soak alone"
