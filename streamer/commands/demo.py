"""`streamer demo`: a local broker, a worker and live traffic, with the wallboard, on one command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = "local broker + worker + simulated live traffic + wallboard, one command (Ctrl-C stops all)"
DESCRIPTION = """\
Start a local Kafka broker (or use $KAFKA_BOOTSTRAP_SERVERS), a worker and the traffic simulator's demo
day (four queues, callbacks offered, one queue breaching at its peaks) in real time, and serve the
wallboard at http://127.0.0.1:6066/ with /metrics beside it. Ctrl-C stops everything the demo started,
the broker included; a broker it did not start is left alone."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web-port", type=int, default=6066, metavar="N", help="wallboard/metrics port (6066)")
    parser.add_argument("--state-dir", metavar="DIR", default=None,
                        help="where the demo keeps broker data, worker state and logs "
                             "(default ~/.cache/streamer/demo)")


def run(args: argparse.Namespace) -> int:
    from streamer.demo.runner import Demo

    state = Path(args.state_dir or Path(os.environ.get("STREAMER_CACHE_DIR", "~/.cache/streamer")) / "demo")
    state = state.expanduser()
    if (state / "worker-data").exists() and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        import shutil

        shutil.rmtree(state / "worker-data")  # a fresh broker means fresh topics: old state would not match

    def say(line: str) -> None:
        print(f"demo: {line}", flush=True)

    try:
        return Demo(args.web_port, state, os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None, say).run()
    except Exception as exc:
        print(f"streamer demo: {exc}", file=sys.stderr)
        return 1
