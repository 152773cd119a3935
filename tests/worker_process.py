"""A real `streamer worker` process for integration and end-to-end tests.

Each worker gets its own app id, topics, data dir and web port, so tests never see each other's
state; `stop()` ends it with SIGTERM (SIGKILL after a deadline) and nothing is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from streamer.ports import lease_port


def free_port() -> int:
    """A port for a test server: outside the ephemeral range and leased to this test session
    (streamer/ports.py), so a server that restarts on it gets it back."""
    return lease_port()


def unique_names(prefix: str = "t") -> dict[str, str]:
    """Environment naming a fresh app id and fresh topics."""
    tag = f"{prefix}{uuid.uuid4().hex[:8]}"
    return {
        "STREAMER_APP_ID": tag,
        "STREAMER_TOPIC_EVENTS": f"{tag}-call-events",
        "STREAMER_TOPIC_OUTCOMES": f"{tag}-call-outcomes",
        "STREAMER_TOPIC_INTERVALS": f"{tag}-queue-intervals",
        "STREAMER_TOPIC_DLQ": f"{tag}-call-events-dlq",
        "STREAMER_TOPIC_CONTACTS": f"{tag}-call-contacts",
    }


class WorkerProcess:
    def __init__(self, env: dict[str, str], datadir: Path, log_path: Path, web_port: int | None = None,
                 config: Path | None = None) -> None:
        self.env = {**os.environ, **env}
        self.datadir = datadir
        self.log_path = log_path
        self.web_port = web_port or free_port()
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        args = [sys.executable, "-m", "streamer.cli", "worker", "--web-port", str(self.web_port),
                "--datadir", str(self.datadir), "--loglevel", "info"]
        if self.config is not None:
            args += ["--config", str(self.config)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if b"Worker]: Ready" in self.log_path.read_bytes() and self._answers():
                return self
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"worker not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/api/queues", timeout=2):
                return True
        except OSError:
            return False

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.read().decode()

    def stop(self, timeout: float = 40.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
