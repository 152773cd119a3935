"""A `streamer worker` subprocess per measurement, with its own app id, topics, data dir and web port,
so that its RSS and CPU time are its own and no two measurements share state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamer.ports import lease_port

READY_LINE = b"Worker]: Ready"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_DROPPED_ENV = ("STREAMER_CONFIG", "STREAMER_WEB_HOST")  # the bench runs the default metric settings on loopback


class WorkerFailed(RuntimeError):
    """A worker exited, did not start or stopped making progress; the message ends with its log."""


def package_root() -> Path:
    """The directory holding the `streamer` package this bench runs from."""
    import streamer

    return Path(streamer.__file__).resolve().parents[1]


def worker_environment(bootstrap: str, app_id: str, events_topic: str, partitions: int,
                       source: Path | None = None) -> dict[str, str]:
    """The process environment of one worker: this shell's, minus the metric config, plus fresh names.

    Other STREAMER_* settings pass through, so `STREAMER_STORE=memory:// streamer bench` measures
    that store. The worker runs the `streamer` package under `source` (default: the bench's own),
    first on its PYTHONPATH, so a change can be measured against its base in the same run.
    """
    env = {key: value for key, value in os.environ.items() if key not in _DROPPED_ENV}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "STREAMER_APP_ID": app_id,
        "STREAMER_TOPIC_EVENTS": events_topic,
        "STREAMER_TOPIC_OUTCOMES": f"{app_id}-call-outcomes",
        "STREAMER_TOPIC_INTERVALS": f"{app_id}-queue-intervals",
        "STREAMER_TOPIC_DLQ": f"{app_id}-call-events-dlq",
        "STREAMER_TOPIC_CONTACTS": f"{app_id}-call-contacts",
        "STREAMER_PARTITIONS": str(partitions),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source or package_root()), os.environ.get("PYTHONPATH")])),
    })
    return env


class WorkerProcess:
    def __init__(self, env: dict[str, str], datadir: Path, log_path: Path, web_port: int | None = None) -> None:
        self.env = env
        self.datadir = datadir
        self.log_path = log_path
        self.web_port = web_port or lease_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise WorkerFailed("the worker was never started")
        return self.proc.pid

    def spawn(self) -> WorkerProcess:
        """Start the process and return at once (see `wait_ready`)."""
        args = [sys.executable, "-m", "streamer.cli", "worker", "--web-port", str(self.web_port),
                "--datadir", str(self.datadir), "--loglevel", "info"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.spawned_at = time.monotonic()
            # `python -m` puts its working dir first on sys.path: the log's dir holds no package.
            self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.log_path.parent)
        return self

    def start(self, timeout: float = 180.0) -> WorkerProcess:
        return self.spawn().wait_ready(timeout)

    def wait_ready(self, timeout: float = 180.0) -> WorkerProcess:
        """Wait for Faust's "Ready" log line and an answer from the web server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.logged_ready() and self.answers("/api/queues"):
                return self
            time.sleep(0.2)
        self.kill()
        raise WorkerFailed(f"the worker was not ready within {timeout:.0f} s; its log ends with:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise WorkerFailed(f"the worker exited with code {self.proc.returncode}; its log ends with:\n"
                               f"{self.log_tail()}")

    def logged_ready(self) -> bool:
        try:
            return READY_LINE in self.log_path.read_bytes()
        except FileNotFoundError:
            return False

    def answers(self, path: str) -> bool:
        try:
            self.get(path, timeout=2)
        except OSError:
            return False
        return True

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def metrics(self) -> str:
        return self.get("/metrics").decode()

    def rss_bytes(self) -> int:
        """Resident set size now (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise WorkerFailed(f"no VmRSS in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "; comm may hold spaces
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def stop(self, timeout: float = 40.0) -> float:
        """SIGTERM, then SIGKILL after `timeout`; returns the seconds the stop took."""
        began = time.monotonic()
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return time.monotonic() - began

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
