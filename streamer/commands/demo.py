"""`streamer demo`: a local broker, a worker and live traffic, with the wallboard, on one command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HELP = "local broker + worker + simulated live traffic + wallboard, one command (Ctrl-C stops all)"
DESCRIPTION = """\
Start a local Kafka broker (or use $KAFKA_BOOTSTRAP_SERVERS), a worker and the traffic simulator's demo
day (four queues, callbacks offered), and serve the wallboard at http://127.0.0.1:6066/ with /metrics
beside it. Ctrl-C stops everything the demo started, the broker included; a broker it did not start
is left alone.

The traffic first backfills today so far (from local midnight, at least the last hour) at full
speed through the same broker and worker, so every tile is filled within a minute, then goes live.
Whatever the clock says, the live part is the morning rush of the simulated day (the day's profile
and shifts are moved to the local time), and billing loses 40 % of its agents to a meeting: within
minutes its Service Level turns red, callers and callback markers wait, callers abandon and the
bundled CallcenterServiceLevelBelowTarget alert fires. --real-clock keeps the profile on the local
clock instead; --no-backfill starts the traffic at now.

On a cluster of one's own (KAFKA_BOOTSTRAP_SERVERS) use fresh topics (STREAMER_TOPIC_EVENTS and
STREAMER_APP_ID): events older than the ones already in the topic would be late."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web-port", type=int, default=6066, metavar="N", help="wallboard/metrics port (6066)")
    parser.add_argument("--state-dir", metavar="DIR", default=None,
                        help="where the demo keeps broker data, worker state and logs "
                             "(default ~/.cache/streamer/demo)")
    parser.add_argument("--no-backfill", dest="backfill", action="store_false",
                        help="start the traffic now instead of replaying today so far first")
    parser.add_argument("--real-clock", action="store_true",
                        help="the simulated day follows the local clock (quiet at night) instead of going live "
                             "in its morning rush")
    parser.add_argument("--time-zone", metavar="ZONE", default=None,
                        help="the centre's IANA time zone, where today starts (default: this machine's)")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from streamer.demo.clock import local_time_zone
    from streamer.demo.runner import Demo, Traffic

    zone = args.time_zone or local_time_zone()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"streamer demo: --time-zone {zone!r} is not an IANA time zone (e.g. Europe/London)", file=sys.stderr)
        return 2

    state = Path(args.state_dir or Path(os.environ.get("STREAMER_CACHE_DIR", "~/.cache/streamer")) / "demo")
    state = state.expanduser()
    if (state / "worker-data").exists() and not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        import shutil

        shutil.rmtree(state / "worker-data")  # a fresh broker means fresh topics: old state would not match

    def say(line: str) -> None:
        print(f"demo: {line}", flush=True)

    try:
        traffic = Traffic(time_zone=zone, backfill=args.backfill, real_clock=args.real_clock)
        return Demo(args.web_port, state, os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None, say, traffic,
                    started).run()
    except Exception as exc:
        print(f"streamer demo: {exc}", file=sys.stderr)
        return 1
