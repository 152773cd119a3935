"""The demo's traffic: today so far at full speed (the backfill), then live, as one simulation.

One run of the traffic model, from the start of the backfill on (local midnight, or an hour ago),
goes to Kafka through the same producer as `streamer simulate`: each event is sent as soon as the
wall clock has reached its `ts`, so the events of the past go at once, in time order, and from "now"
on the simulation runs at real time. Calls waiting when the backfill reaches the present stay
waiting, agents keep their states: the backfill and the live traffic are one day.

Why in time order and through the same worker: lateness, the closing of intervals and the expiry of
calls go by stream time (the newest event time seen, docs/pipeline.md), never by the wall clock, so
a stream that starts at local midnight is not late however old it is; its facts land in the
buckets of their own minutes, so "today" and the sliding windows (which the worker reads against
its wall clock) hold them; its intervals close as the stream passes their end plus grace. Nothing is
dropped as long as the topic holds no newer events: a fresh demo broker holds none (see
`streamer demo --help` for a cluster of one's own).

The backfill sends calls' events in full and each agent's newest state only (see `on_the_clock`).

Run by `streamer demo` as `python -m streamer.demo.traffic`; it logs when the backfill has reached
the present and ends cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

from streamer.demo.clock import backfill_start, day_offset
from streamer.simulate.clock import format_ts, wall_clock_ms
from streamer.simulate.model import simulate
from streamer.simulate.scenarios import demo_story
from streamer.sources.kafka_sink import DEFAULT_TOPIC, KafkaUnavailable, event_time_seconds, send_events

TOPIC_ENV = "STREAMER_TOPIC_EVENTS"
AGENT_STATE = "agent.state"


def say(text: str) -> None:
    print(f"traffic: {text}", flush=True)


def demo_events(now_ms: int, tz: ZoneInfo, *, backfill: bool, real_clock: bool, seed: int) -> Iterator[dict[str, Any]]:
    """The demo day's events from the backfill's start (or from now), endless."""
    start_ms = backfill_start(now_ms, tz) if backfill else now_ms
    offset = day_offset(now_ms, tz, real_clock)
    return simulate(demo_story(), seed=seed, start_ms=start_ms, hours=None, day_offset_ms=offset)


async def on_the_clock(events: Iterator[dict[str, Any]], live_from_ms: int) -> AsyncIterator[dict[str, Any]]:
    """Each event once the wall clock has reached its time; says when the backfill is done.

    In the backfill an agent's state changes are held back and only the newest is sent, when the
    backfill reaches `live_from_ms`: agents are shown by their current state alone, and half of a
    day's events are agent changes, so the worker catches up twice as fast.
    """
    started = time.monotonic()
    backfilled = 0
    agents: dict[str, dict[str, Any]] = {}
    live = False
    for event in events:
        due = event_time_seconds(event["ts"])
        if not live and due is not None and due * 1000 > live_from_ms:
            live = True
            for latest in sorted(agents.values(), key=lambda held: held["ts"]):
                yield latest
            backfilled += len(agents)
            say(f"backfill done: {backfilled:,} events up to {format_ts(live_from_ms)} in "
                f"{time.monotonic() - started:.1f} s; live traffic from now on")
        if not live:
            if event["type"] == AGENT_STATE:
                agents[event["agent_id"]] = event
            else:
                backfilled += 1
                yield event
            continue
        wait = 0.0 if due is None else due - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        yield event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamer.demo.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--time-zone", required=True, help="the centre's IANA time zone (where today starts)")
    parser.add_argument("--no-backfill", dest="backfill", action="store_false", help="start now, not at midnight")
    parser.add_argument("--real-clock", action="store_true", help="the day's profile follows the local clock")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    now_ms = wall_clock_ms()
    events = demo_events(now_ms, ZoneInfo(args.time_zone), backfill=args.backfill, real_clock=args.real_clock,
                         seed=args.seed)
    topic = os.environ.get(TOPIC_ENV) or DEFAULT_TOPIC
    if args.backfill:
        say(f"backfilling from {format_ts(backfill_start(now_ms, ZoneInfo(args.time_zone)))} to topic {topic}")

    async def send() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await send_events(on_the_clock(events, now_ms), topic=topic)

    try:
        asyncio.run(send())
    except KafkaUnavailable as error:
        print(f"traffic: {error}", file=sys.stderr)
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
