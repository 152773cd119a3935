"""Shared pieces of the fault tests: the input, the offline truth, a paced replay, and the comparison.

Every fault test ends the same way: once the faults are over and the worker(s) have settled, the
newest value of every key on `queue-intervals` must equal `streamer report` on the same input.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from streamer.app.settings import load_worker_settings
from streamer.app.topics import ensure_topics
from streamer.core.events import parse_ts
from tests.kafka_io import latest_intervals, report_intervals
from tests.pipeline_input import NOISE, contract_events, simulated_events
from tests.worker_process import unique_names

CONFIG = """
[defaults]
time_zone = "Europe/London"
interval_minutes = 15

[queues.support]
interval_minutes = 30
threshold_seconds = 30

[limits]
grace_seconds = 60
idle_seconds = 3
"""

# A killed member leaves the group only when its session times out; the broker's minimum (6 s)
# keeps each restart of a fault test short. Offsets are committed as often as in production.
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1", "BROKER_REBALANCE_TIMEOUT": "20"}
SETTLE_TIMEOUT_SECONDS = 150.0


def fault_env(tmp_path: Path, bootstrap: str, partitions: int = 4) -> dict[str, str]:
    config = tmp_path / "streamer.toml"
    config.write_text(CONFIG)
    return {**unique_names("f"), **FAST_FAILOVER, "STREAMER_PARTITIONS": str(partitions),
            "STREAMER_CONFIG": str(config), "KAFKA_BOOTSTRAP_SERVERS": bootstrap}


def create_topics(env: dict[str, str]) -> None:
    """The pipeline's topics, as a worker would create them (before anything is sent to them)."""
    asyncio.run(ensure_topics(load_worker_settings(env), explicit_partitions=True))


def fault_events(path: Path, hours: float, seed: int) -> Path:
    """Simulated traffic with callbacks and overflow, the contract example, re-deliveries, noise, and
    events out of order: many by less than the grace period, a few held back until long after their
    interval closed (late, whatever partition they land in).

    Out-of-order input makes the late/not-late decisions depend on the stream time at each event:
    a worker that resumes after a crash with another stream time than it had would count otherwise.
    """
    lines = simulated_events(hours, seed) + contract_events()
    lines.sort(key=_ts)
    rng = random.Random(seed)
    for _ in range(len(lines) // 20):  # a little disorder, well within the grace period
        i = rng.randrange(len(lines) - 4)
        j = i + rng.randrange(1, 4)
        lines[i], lines[j] = lines[j], lines[i]
    for _ in range(10):  # held back until its interval (30 min at most) closed 5 minutes ago
        i = rng.randrange(len(lines) // 2)
        line = lines.pop(i)
        due = _ts(line) - _ts(line) % HALF_HOUR_MS + HALF_HOUR_MS + GRACE_MS + 5 * 60_000
        j = next((k for k in range(i, len(lines)) if _ts(lines[k]) >= due), len(lines))
        lines.insert(j, line)
    for _ in range(40):  # re-deliveries shortly after the original
        i = rng.randrange(len(lines) - 1)
        lines.insert(i + 1 + rng.randrange(5), lines[i])
    for noise in NOISE:
        lines.insert(rng.randrange(len(lines)), noise)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


HALF_HOUR_MS = 30 * 60_000
GRACE_MS = 60_000


def _ts(line: bytes) -> int:
    return parse_ts(orjson.loads(line)["ts"])


def offline_report(events: Path, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "streamer.cli", "report", str(events), "--config",
                          env["STREAMER_CONFIG"]], check=True, capture_output=True, timeout=120).stdout
    return orjson.loads(out)


def expected_intervals(events: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return report_intervals(offline_report(events, env))


class PacedReplay:
    """`streamer replay --speed X` in the background: the stream keeps flowing while faults happen."""

    def __init__(self, events: Path, env: dict[str, str], speed: float | None, log_path: Path) -> None:
        args = [sys.executable, "-m", "streamer.cli", "replay", str(events), "--topic", env["STREAMER_TOPIC_EVENTS"]]
        if speed is not None:
            args += ["--speed", str(speed)]
        self.log_path = log_path
        self.started = time.monotonic()
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env={**_os_environ(), **env}, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 120.0) -> None:
        code = self.proc.wait(timeout)
        assert code == 0, f"replay failed ({code}):\n{self.log_path.read_text(errors='replace')[-2000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def _os_environ() -> dict[str, str]:
    import os

    return dict(os.environ)


def settle(bootstrap: str, topic: str, want: dict[str, Any], timeout: float = SETTLE_TIMEOUT_SECONDS) -> dict:
    """The newest interval documents once they equal `want`, or what there is when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    got: dict = {}
    while time.monotonic() < deadline:
        got = latest_intervals(bootstrap, topic)
        if got == want:
            return got
        time.sleep(2)
    return got


def difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    """What differs between two interval sets, briefly: missing and extra keys, then changed counts."""
    lines = [f"missing: {sorted(set(want) - set(got))[:6]}", f"extra: {sorted(set(got) - set(want))[:6]}"]
    for key in sorted(set(got) & set(want)):
        diff = {k: (got[key].get(k), v) for k, v in want[key].items() if got[key].get(k) != v}
        if diff:
            lines.append(f"{key}: (got, want) {diff}")
    return "\n".join(lines[:20])
