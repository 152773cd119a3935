"""`streamer simulate`: synthetic call traffic to Kafka (paced) or to a JSONL file (as fast as possible)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamer.simulate.output import Progress
    from streamer.simulate.scenario import Scenario

HELP = "synthetic traffic (arrivals, handle times, patience, callbacks, staffing) to Kafka or a JSONL file"
DESCRIPTION = """\
Simulate a contact centre and write schema-v1 events.

Given only the traffic flags it runs one queue (`support`), no callbacks, no shifts, a flat arrival
rate: M/M/c (Erlang C), or M/M/c+M (Erlang A) with --patience. The defaults are the ContactCenters
MMC example: 252 calls/hour (4.2/min), 120 s AHT, 12 agents. --theory prints the steady-state
figures of those flags instead of simulating.

Output: --out FILE (or - for stdout) is written as fast as possible for --hours, from --start
(default 2026-06-01T08:00:00Z, so a seed gives the same bytes every time). Without --out the events
go to Kafka (topic --topic, else $STREAMER_TOPIC_EVENTS, else call-events; key call_id, agent events
keyed by agent_id), paced at --speed times
real time (default 1), with the simulated clock starting now; without --hours it runs until stopped.

examples:
  streamer simulate --hours 8 --out day.jsonl
  streamer simulate --calls-per-hour 300 --aht 180 --agents 18 --patience 90 --hours 100 --out -
  streamer simulate --scenario demo                 # live demo traffic to Kafka, endless
  streamer simulate --patience 60 --theory          # Erlang A figures for the defaults
  streamer simulate --customers 5000 --recall-abandoned 0.3 --transfer support:billing:0.05 \
      --queues support,billing --surveys 0.3 --patience 90 --hours 24 --out journeys.jsonl
"""

DEFAULT_CALLS_PER_HOUR = 252.0
DEFAULT_AHT_SECONDS = 120.0
DEFAULT_AGENTS = 12
DEFAULT_CALLBACK_ACCEPT = 0.5
DEFAULT_CALLBACK_REACH = 0.9
TRAFFIC_FLAGS = {
    "calls_per_hour": "--calls-per-hour",
    "aht": "--aht",
    "agents": "--agents",
    "patience": "--patience",
    "queues": "--queues",
    "shared_agents": "--shared-agents",
    "handle_dist": "--handle-dist",
    "handle_cv": "--handle-cv",
    "wrap": "--wrap",
    "profile": "--profile",
    "callback_after": "--callback-after",
    "callback_accept": "--callback-accept",
    "callback_reach": "--callback-reach",
    "callback_scheduled": "--callback-scheduled",
    "overflow": "--overflow",
    "transfer": "--transfer",
    "customers": "--customers",
    "recall_answered": "--recall-answered",
    "recall_abandoned": "--recall-abandoned",
    "surveys": "--surveys",
}


def _positive(kind: type, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text}")
        return value

    return parse


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a probability must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability must be in [0, 1], got {text}")
    return value


def _overflow(text: str) -> tuple[str, str, float]:
    parts = text.split(":")
    try:
        source, target, after = parts
        seconds = float(after)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--overflow takes FROM:TO:SECONDS (e.g. vip:support:60), got {text!r}"
        ) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"--overflow delay must be ≥ 0 seconds, got {after}")
    return source, target, seconds


def _transfer(text: str) -> tuple[str, str, float]:
    parts = text.split(":")
    try:
        source, target, share = parts
        value = float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--transfer takes FROM:TO:SHARE (e.g. support:billing:0.05), got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--transfer share must be in [0, 1], got {share}")
    return source, target, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    traffic = parser.add_argument_group("traffic (the plain model)")
    traffic.add_argument(
        "--calls-per-hour",
        type=_positive(float, "--calls-per-hour"),
        metavar="N",
        help=f"Poisson arrival rate per queue (default {DEFAULT_CALLS_PER_HOUR:g})",
    )
    traffic.add_argument(
        "--aht",
        type=_positive(float, "--aht"),
        metavar="SECONDS",
        help=f"average handle time, talk plus wrap-up (default {DEFAULT_AHT_SECONDS:g})",
    )
    traffic.add_argument(
        "--agents",
        type=_positive(int, "--agents"),
        metavar="N",
        help=f"agents per queue, on duty all the run (default {DEFAULT_AGENTS})",
    )
    traffic.add_argument(
        "--patience",
        type=_positive(float, "--patience"),
        metavar="SECONDS",
        help="mean caller patience, exponential (default: callers never hang up)",
    )
    traffic.add_argument("--queues", metavar="A,B,…", help="queue names, each with the same traffic (default support)")
    traffic.add_argument(
        "--shared-agents",
        action="store_true",
        help="one pool of --agents agents serving every queue (default: a pool per queue)",
    )
    traffic.add_argument(
        "--handle-dist", choices=("exponential", "lognormal"), help="handle time shape (default exponential)"
    )
    traffic.add_argument(
        "--handle-cv",
        type=_positive(float, "--handle-cv"),
        metavar="CV",
        help="coefficient of variation of a lognormal handle time (default 1)",
    )
    traffic.add_argument(
        "--wrap", type=float, metavar="SECONDS", help="fixed wrap-up part of the handle time (default 0)"
    )
    traffic.add_argument(
        "--profile",
        choices=("flat", "day"),
        help="arrival rate by UTC hour: flat (default) or the demo's day curve (peak = --calls-per-hour)",
    )
    traffic.add_argument(
        "--callback-after",
        type=float,
        metavar="SECONDS",
        help="offer a callback when the expected wait at entry passes this (default: no offer)",
    )
    traffic.add_argument(
        "--callback-accept",
        type=_probability,
        metavar="P",
        help=f"share of callers accepting the offer (default {DEFAULT_CALLBACK_ACCEPT:g})",
    )
    traffic.add_argument(
        "--callback-reach",
        type=_probability,
        metavar="P",
        help=f"share of keep-position callbacks that reach the customer (default {DEFAULT_CALLBACK_REACH:g})",
    )
    traffic.add_argument(
        "--callback-scheduled",
        type=_probability,
        metavar="P",
        help="share of accepted callbacks scheduled for later instead of keeping the place (default 0)",
    )
    traffic.add_argument(
        "--overflow",
        type=_overflow,
        action="append",
        metavar="FROM:TO:SECONDS",
        help="move callers still waiting after SECONDS from queue FROM to TO (repeatable)",
    )
    traffic.add_argument(
        "--transfer",
        type=_transfer,
        action="append",
        metavar="FROM:TO:SHARE",
        help="agents of FROM transfer SHARE of their answered calls to TO after the talk (repeatable)",
    )
    customers = parser.add_argument_group("customers (off unless given)")
    customers.add_argument(
        "--customers",
        type=_positive(int, "--customers"),
        metavar="N",
        help="callers carry a pseudonymous customer_id drawn from N customers",
    )
    customers.add_argument(
        "--recall-answered",
        type=_probability,
        metavar="P",
        help="share of answered journeys whose customer calls again (after a day on average; needs --customers)",
    )
    customers.add_argument(
        "--recall-abandoned",
        type=_probability,
        metavar="P",
        help="share of abandoned journeys and failed callbacks whose customer calls again "
        "(after 10 minutes on average; needs --customers)",
    )
    customers.add_argument(
        "--surveys",
        type=_probability,
        metavar="P",
        help="share of answered journeys that send a post-call survey (NPS and CSAT) about 2 minutes later",
    )
    parser.add_argument(
        "--scenario",
        choices=("plain", "demo"),
        default="plain",
        help="plain: the traffic flags (default); demo: four queues, a day profile, shifts, callbacks",
    )
    parser.add_argument(
        "--theory",
        action="store_true",
        help="print the Erlang C / Erlang A steady-state figures of the plain model and exit",
    )
    parser.add_argument(
        "--threshold",
        type=_positive(float, "--threshold"),
        default=20.0,
        metavar="SECONDS",
        help="service level threshold for --theory (default 20)",
    )
    run = parser.add_argument_group("run and output")
    run.add_argument(
        "--hours",
        type=_positive(float, "--hours"),
        metavar="H",
        help="simulated hours of arrivals (required with --out; Kafka default: endless)",
    )
    run.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    run.add_argument(
        "--start", metavar="RFC3339", help="simulated start time (file default 2026-06-01T08:00:00Z; Kafka default now)"
    )
    run.add_argument("--out", metavar="FILE", help="write JSONL to FILE (- = stdout) instead of Kafka")
    run.add_argument(
        "--speed", type=float, metavar="X", help="Kafka pacing: X times real time (default 1; 0 = as fast as possible)"
    )
    from streamer.sources.kafka_sink import TOPIC_HELP

    run.add_argument("--topic", help=TOPIC_HELP)
    run.add_argument(
        "--bootstrap",
        metavar="SERVERS",
        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )


def _fail(message: str) -> int:
    print(f"streamer simulate: {message}", file=sys.stderr)
    return 2


def _plain_scenario(args: argparse.Namespace) -> Scenario:
    from streamer.simulate.scenario import CallbackOffer, Recall, Surveys
    from streamer.simulate.scenarios import DAY_PROFILE, DEFAULT_QUEUE, plain

    queues = [q.strip() for q in (args.queues or DEFAULT_QUEUE).split(",") if q.strip()]
    callback = None
    if args.callback_after is not None:
        callback = CallbackOffer(
            after_seconds=args.callback_after,
            accept=DEFAULT_CALLBACK_ACCEPT if args.callback_accept is None else args.callback_accept,
            reach=DEFAULT_CALLBACK_REACH if args.callback_reach is None else args.callback_reach,
            scheduled_share=0.0 if args.callback_scheduled is None else args.callback_scheduled,
        )
    return plain(
        args.calls_per_hour or DEFAULT_CALLS_PER_HOUR,
        args.aht or DEFAULT_AHT_SECONDS,
        args.agents or DEFAULT_AGENTS,
        args.patience,
        queues=queues,
        shared_agents=args.shared_agents,
        handle_distribution=args.handle_dist or "exponential",
        handle_cv=args.handle_cv or 1.0,
        wrap_seconds=args.wrap or 0.0,
        profile=DAY_PROFILE if args.profile == "day" else None,
        callback=callback,
        overflows=args.overflow or (),
        transfers=args.transfer or (),
        customers=args.customers,
        recall=None if args.recall_answered is None and args.recall_abandoned is None else Recall(
            after_answered=args.recall_answered or 0.0, after_abandoned=args.recall_abandoned or 0.0),
        surveys=None if args.surveys is None else Surveys(share=args.surveys),
    )


def _print_theory(args: argparse.Namespace) -> int:
    from streamer.core.erlang import theory

    figures = theory(
        args.calls_per_hour or DEFAULT_CALLS_PER_HOUR,
        args.aht or DEFAULT_AHT_SECONDS,
        args.agents or DEFAULT_AGENTS,
        args.patience,
        args.threshold,
    )
    print(json.dumps({"threshold_seconds": args.threshold, **figures}, indent=2))
    return 0


def _check_flags(args: argparse.Namespace) -> str | None:
    """What is wrong with this combination of flags, or None."""
    given = [flag for name, flag in TRAFFIC_FLAGS.items() if getattr(args, name) not in (None, False)]
    if args.scenario == "demo" and (given or args.theory):
        return f"--scenario demo sets its own traffic; drop {', '.join(given) or '--theory'}"
    beyond_erlang = [flag for flag in given if flag not in ("--calls-per-hour", "--aht", "--agents", "--patience")]
    if args.theory and beyond_erlang:
        erlang_flags = "--calls-per-hour, --aht, --agents, --patience"
        return f"--theory covers the Erlang C / A model of {erlang_flags}; drop {', '.join(beyond_erlang)}"
    if args.out is not None and args.speed is not None:
        return "--speed paces Kafka output; a file (--out) is written as fast as possible"
    if args.speed is not None and args.speed < 0:
        return f"--speed must be > 0 (or 0 for as fast as possible), got {args.speed}"
    if args.hours is None and not args.theory and (args.out is not None or args.speed == 0):
        return "an unpaced run needs an end: give --hours"
    return None


def run(args: argparse.Namespace) -> int:
    from streamer.simulate.clock import DEFAULT_FILE_START, parse_start, wall_clock_ms
    from streamer.simulate.model import simulate
    from streamer.simulate.output import Progress, write_jsonl
    from streamer.simulate.scenarios import demo
    from streamer.sources.kafka_sink import KafkaUnavailable

    problem = _check_flags(args)
    if problem:
        return _fail(problem)
    progress = Progress("simulate")
    try:
        if args.theory:
            return _print_theory(args)
        scenario = demo() if args.scenario == "demo" else _plain_scenario(args)
        to_file = args.out is not None
        if args.start is not None:
            start_ms = parse_start(args.start)
        else:
            start_ms = parse_start(DEFAULT_FILE_START) if to_file else wall_clock_ms()
        events = progress.track(simulate(scenario, seed=args.seed, start_ms=start_ms, hours=args.hours))
        if to_file:
            written = write_jsonl(events, args.out)
        else:
            speed = None if args.speed == 0 else (args.speed or 1.0)
            written = _send_to_kafka(progress, events, args, speed)
    except (ValueError, KafkaUnavailable) as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        progress.report(f"interrupted at {progress.last_ts}, {progress.count:,} events")
        return 130
    except StopRequested:
        progress.report(f"stopped at {progress.last_ts}, {progress.count:,} events")
        return 0
    elapsed = progress.elapsed
    progress.report(
        f"{written:,} events, {args.hours:g} simulated hours (calls played to their end at {progress.last_ts}) "
        f"in {elapsed:.2f} s, {args.hours / elapsed:,.1f} simulated hours/s"
    )
    return 0


def _send_to_kafka(
    progress: Progress, events: Iterator[dict[str, Any]], args: argparse.Namespace, speed: float | None
) -> int:
    """Send to Kafka; SIGTERM (a supervisor stopping an endless run) stops it cleanly: the events
    produced so far are flushed, then StopRequested is raised."""
    import asyncio
    import signal

    from streamer.sources.kafka_sink import bootstrap_servers, events_topic, send_events

    topic = events_topic(args.topic)
    pace = f"{speed:g}x real time" if speed else "as fast as possible"
    progress.report(f"sending to topic {topic} at {bootstrap_servers(args.bootstrap)}, {pace}")

    async def send() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await send_events(events, bootstrap=args.bootstrap, topic=topic, speed=speed)

    try:
        return asyncio.run(send())
    except asyncio.CancelledError:
        raise StopRequested from None


class StopRequested(Exception):
    """SIGTERM arrived while sending to Kafka."""
