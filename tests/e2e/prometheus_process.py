"""A real Prometheus server (Debian's `prometheus` binary) for end-to-end tests.

It listens on 127.0.0.1 at a free port, keeps its data in a temporary directory, scrapes the given
targets as job `streamer` and evaluates the given rule files; `stop()` ends it with SIGTERM (SIGKILL
after a deadline) and it dies with the test process, so nothing is left running.
`$STREAMER_PROMETHEUS` names another executable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from streamer.devkafka.process import die_with_parent
from tests.worker_process import free_port

PROMETHEUS_ENV = "STREAMER_PROMETHEUS"
JOB = "streamer"


class PrometheusError(RuntimeError):
    """Prometheus did not start, or answered a query with an error."""


def find_prometheus() -> str | None:
    """The Prometheus server executable: $STREAMER_PROMETHEUS if set, else `prometheus` on PATH."""
    configured = os.environ.get(PROMETHEUS_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("prometheus")


def scrape_config(targets: Sequence[str], rule_files: Sequence[Path], interval_seconds: int) -> dict[str, Any]:
    """A Prometheus configuration scraping `targets` as job `streamer` and evaluating `rule_files`."""
    interval = f"{interval_seconds}s"
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": list(targets)}]}],
    }


class PrometheusProcess:
    def __init__(self, executable: str, workdir: Path, targets: Sequence[str], rule_files: Sequence[Path],
                 interval_seconds: int = 1) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.config_path.write_text(yaml.safe_dump(scrape_config(targets, rule_files, interval_seconds)))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusProcess:
        args = [self.executable, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}"]
        with open(self.log_path, "ab") as log:
            # Ended by the kernel too if the test process is killed before it can stop the server.
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise PrometheusError(f"prometheus not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a Prometheus HTTP API answer; PrometheusError with its message on an error."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
        if answer.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) `expr` gives now."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets")["activeTargets"]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(30)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
