"""Run the demo's processes, watch them, and stop all of them (and only them) on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streamer.demo.board import empty_figures
from streamer.simulate.scenarios import demo_story

# Stop saying how far the board is after this long; the demo goes on.
FULL_BOARD_WATCH_SECONDS = 600.0


@dataclass(frozen=True)
class Traffic:
    """What the demo's traffic does: backfill today first, follow the local clock, in which zone."""

    time_zone: str
    backfill: bool = True
    real_clock: bool = False


def demo_config(time_zone: str) -> str:
    """The packaged demo settings with the centre's time zone."""
    text = (resources.files("streamer.demo") / "demo.toml").read_text(encoding="utf-8")
    return re.sub(r'^time_zone = ".*"$', f"time_zone = {json.dumps(time_zone)}", text, count=1, flags=re.M)


class Demo:
    def __init__(self, web_port: int, state_dir: Path, bootstrap: str | None, say: Callable[[str], None],
                 traffic: Traffic, started: float | None = None) -> None:
        self.web_port = web_port
        self.state_dir = state_dir
        self.external_bootstrap = bootstrap
        self.say = say
        self.traffic = traffic
        self.started = time.monotonic() if started is None else started
        self.broker = None
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.queues = [queue.name for queue in demo_story().queues]

    def run(self) -> int:
        stop = {"now": False}

        def on_signal(signum: int, _frame: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        try:
            bootstrap = self._broker()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            config = self.state_dir / "demo.toml"
            config.write_text(demo_config(self.traffic.time_zone), encoding="utf-8")
            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMER_CONFIG": str(config)}
            env.setdefault("STREAMER_APP_ID", "streamer-demo")
            # Faust's own per-message Prometheus sensor costs about a quarter of the worker's throughput
            # (docs/performance.md) and no dashboard or alert reads it: off, so the backfill lands sooner.
            env.setdefault("STREAMER_FAUST_METRICS", "false")
            logs = self.state_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            self._spawn("worker", [sys.executable, "-m", "streamer.cli", "worker", "--web-port", str(self.web_port),
                                   "--datadir", str(self.state_dir / "worker-data")], env, logs / "worker.log")
            self._wait_for_worker(logs / "worker.log")
            self._spawn("traffic", self._traffic_command(), env, logs / "traffic.log")
            url = f"http://127.0.0.1:{self.web_port}"
            self.say(f"wallboard   {url}/")
            self.say(f"group       {url}/?group=front")
            self.say(f"metrics     {url}/metrics")
            self.say(f"JSON API    {url}/api/queues")
            self.say(f"logs        {logs}/")
            self.say(self._traffic_story())
            watch_until = time.monotonic() + FULL_BOARD_WATCH_SECONDS
            while not stop["now"]:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        self.say(f"the {name} exited with {proc.returncode}; see {logs}/{name}.log")
                        return 1
                if watch_until and time.monotonic() < watch_until and self._board_full():
                    self.say(f"wallboard full: every tile of every queue shows a value, "
                             f"{time.monotonic() - self.started:.1f} s after start")
                    watch_until = 0.0
                time.sleep(0.5)
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            self._stop_all()

    def _traffic_command(self) -> list[str]:
        command = [sys.executable, "-m", "streamer.demo.traffic", "--time-zone", self.traffic.time_zone]
        if not self.traffic.backfill:
            command.append("--no-backfill")
        if self.traffic.real_clock:
            command.append("--real-clock")
        return command

    def _traffic_story(self) -> str:
        zone = self.traffic.time_zone
        first = (f"today so far (since local midnight in {zone}) is replayed at full speed, then traffic goes "
                 "live" if self.traffic.backfill else "traffic is live from now (no backfill)")
        clock = ("the simulated day follows the local clock" if self.traffic.real_clock
                 else "the simulated day is moved so that now is the morning rush: billing loses 40 % of its "
                      "agents to a meeting and breaches its Service Level within minutes")
        return f"{first}; {clock}. Ctrl-C stops everything."

    def _board_full(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/api/queues", timeout=2) as response:
                snapshot = json.loads(response.read())
        except (OSError, ValueError):
            return False
        return not empty_figures(snapshot, self.queues)

    def _broker(self) -> str:
        if self.external_bootstrap:
            self.say(f"using the Kafka cluster at {self.external_bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
            return self.external_bootstrap
        from streamer.devkafka import LocalKafka

        broker = LocalKafka(data_dir=self.state_dir / "kafka", progress=self.say)
        if broker.is_running():
            self.say(f"a demo broker is already running at {broker.bootstrap}; using it (and leaving it running)")
            return broker.bootstrap
        self.say("starting a local Kafka broker (the first run resolves it from Maven Central)...")
        bootstrap = broker.start(fresh=True)
        self.broker = broker
        self.say(f"Kafka is up at {bootstrap}")
        return bootstrap

    def _spawn(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.children.append((name, proc))

    def _wait_for_worker(self, log: Path, timeout: float = 120.0) -> None:
        self.say("starting the worker...")
        deadline = time.monotonic() + timeout
        _, proc = self.children[-1]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"the worker exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/api/queues", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the worker did not answer on port {self.web_port} within {timeout:.0f} s; see {log}")

    def _stop_all(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                self.say(f"stopping the {name}...")
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.children):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.broker is not None:
            self.say("stopping the Kafka broker...")
            self.broker.stop()
        self.say("stopped.")
