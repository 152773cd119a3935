"""`streamer ingest SOURCE …`: real ACD/PBX logs → schema v1 events, as JSONL on stdout or to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from streamer.sources.asterisk import Event, QueueLogMapper, QueueMapError, parse_queue_map, parse_transfer_queues
from streamer.sources.follow import (
    FileFollower,
    FilePosition,
    LineBatch,
    PositionFile,
    PositionFileError,
)
from streamer.sources.kafka_sink import TOPIC_HELP, KafkaUnavailable, events_topic

HELP = "turn a PBX log (Asterisk queue_log) into schema v1 events, as JSONL or to Kafka"
DESCRIPTION = """\
Turn a real source into schema v1 call events (see docs/sources.md for the mapping).

  streamer ingest asterisk /var/log/asterisk/queue_log > events.jsonl
  streamer ingest asterisk /var/log/asterisk/queue_log --follow --kafka

Sources: asterisk (app_queue queue_log)."""

ASTERISK_DESCRIPTION = """\
Read an Asterisk app_queue queue_log (epoch|uniqueid|queue|agent|EVENT|data…) and write schema v1
events: JSONL on stdout, or to Kafka with --kafka (topic --topic, else $STREAMER_TOPIC_EVENTS, else
call-events). Lines this adapter does not know (vendor additions such as PBXware's OUT* lines) are
skipped and counted; a summary goes to stderr.

--follow tails the file like `tail -F`: it survives log rotation (rename or copytruncate) and, with its
position file (default PATH.pos), a restart: it resumes after the last line it delivered. Event ids
are stable, so lines sent again after a crash are dropped downstream as duplicates.

Caller numbers become `customer_id` only as a hash: set STREAMER_CUSTOMER_ID_KEY to a secret to key it
(an unkeyed hash of a phone number can be reversed by trying every number)."""

CUSTOMER_KEY_ENV = "STREAMER_CUSTOMER_ID_KEY"
# How often a busy follower saves its position: a crash sends at most this much again.
SAVE_INTERVAL_SECONDS = 1.0
KAFKA_CHUNK_EVENTS = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", metavar="SOURCE", required=True)
    asterisk = sources.add_parser(
        "asterisk",
        help="Asterisk app_queue queue_log",
        description=ASTERISK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    asterisk.add_argument("path", metavar="PATH", type=Path, help="the queue_log file")
    asterisk.add_argument(
        "--follow", action="store_true", help="keep reading as the file grows, across rotations and restarts"
    )
    asterisk.add_argument(
        "--kafka", action="store_true", help="send to Kafka (see --topic) instead of stdout"
    )
    asterisk.add_argument(
        "--position-file",
        metavar="F",
        type=Path,
        help="where the read position is kept (default with --follow: PATH.pos); without --follow, "
        "reads only what was added since the last run",
    )
    asterisk.add_argument(
        "--queue-map",
        metavar="ASTERISK=QUEUE",
        action="append",
        default=[],
        help="rename a queue, e.g. --queue-map 'IT=it-helpdesk' (repeatable; others keep their name)",
    )
    asterisk.add_argument(
        "--transfer-queue",
        metavar="EXTEN[@CONTEXT]=QUEUE",
        action="append",
        default=[],
        help="a (BLIND)TRANSFER to this extension puts the call in this Asterisk queue: the transfer is a "
        "hand-off, e.g. --transfer-queue '600@from-internal=support' (repeatable)",
    )
    asterisk.add_argument("--tenant", help="set the `tenant` field of every event")
    asterisk.add_argument(
        "--bootstrap",
        metavar="SERVERS",
        help="Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )
    asterisk.add_argument("--topic", help=TOPIC_HELP)
    asterisk.add_argument(
        "--poll-interval",
        metavar="SECONDS",
        type=float,
        default=0.2,
        help="with --follow: how often to look for new lines and rotations (default 0.2)",
    )
    asterisk.add_argument(
        "--exit-after-idle",
        metavar="SECONDS",
        type=float,
        help="with --follow: stop after this long without a new line (default: run until stopped)",
    )


def run(args: argparse.Namespace) -> int:
    if args.source == "asterisk":
        return _run_asterisk(args)
    print(f"streamer ingest: unknown source {args.source!r}", file=sys.stderr)
    return 2


def _fail(message: str) -> int:
    print(f"streamer ingest asterisk: {message}", file=sys.stderr)
    return 2


def _run_asterisk(args: argparse.Namespace) -> int:
    for name in ("poll_interval", "exit_after_idle"):
        value = getattr(args, name)
        if value is not None and value < 0:
            return _fail(f"--{name.replace('_', '-')} must be zero or more seconds, not {value}")
    try:
        queue_map = parse_queue_map(args.queue_map)
        transfer_queues = parse_transfer_queues(args.transfer_queue)
    except QueueMapError as exc:
        return _fail(str(exc))
    if args.kafka:
        try:
            args.topic = events_topic(args.topic)
        except ValueError as exc:
            return _fail(str(exc))
    path: Path = args.path
    if not args.follow and not path.is_file():
        return _fail(f"{path} is not a file: give the path of an Asterisk queue_log")

    position_path = args.position_file or (path.with_name(path.name + ".pos") if args.follow else None)
    store = PositionFile(position_path) if position_path else None
    try:
        start, state = store.load() if store else (None, {})
    except PositionFileError as exc:
        return _fail(str(exc))

    key = os.environ.get(CUSTOMER_KEY_ENV, "").encode() or None
    mapper = QueueLogMapper(queue_map, tenant=args.tenant, customer_key=key, transfer_queues=transfer_queues)
    mapper.restore(state)
    stop = threading.Event()
    follower = FileFollower(
        path,
        start=start,
        follow=args.follow,
        read_unterminated_tail=store is None,
        poll_interval=args.poll_interval,
        exit_after_idle=args.exit_after_idle,
        stop=stop,
    )
    checkpoints = _Checkpoints(store, mapper.state)
    try:
        with _stopping_on_signals(stop):
            if args.kafka:
                asyncio.run(_deliver_to_kafka(follower, mapper, checkpoints, args))
            else:
                _deliver_to_stdout(follower, mapper, checkpoints)
    except FileNotFoundError as exc:
        return _fail(str(exc))
    except KafkaUnavailable as exc:
        resume = "it resumes from its position file" if store else "nothing was sent"
        return _fail(f"{exc}; {resume}")
    except BrokenPipeError:
        # The reader of stdout went away (`| head`); silence Python's own complaint at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _fail(f"stdout was closed; {mapper.stats.summary()}")
    finally:
        _print_notices(follower.notices)
    print(f"streamer ingest asterisk: {mapper.stats.summary()}", file=sys.stderr)
    return 0


class _Checkpoints:
    """Saves the position after delivered batches: at once when the reader catches up, changes
    file or stops, otherwise at most every SAVE_INTERVAL_SECONDS (an fsync per batch would cost
    more than the mapping)."""

    def __init__(self, store: PositionFile | None, state: Callable[[], dict[str, Any]]) -> None:
        self.store = store
        self.state = state
        self.unsaved: FilePosition | None = None
        self.saved_at = time.monotonic()

    def delivered(self, position: FilePosition, *, at_once: bool) -> None:
        if self.store is None:
            return
        self.unsaved = position
        if at_once or time.monotonic() - self.saved_at >= SAVE_INTERVAL_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.store is not None and self.unsaved is not None:
            self.store.save(self.unsaved, self.state())
            self.unsaved = None
            self.saved_at = time.monotonic()


def _deliver_to_stdout(follower: FileFollower, mapper: QueueLogMapper, checkpoints: _Checkpoints) -> None:
    import orjson

    out = sys.stdout.buffer
    for batch in follower.batches():
        if batch.lines:
            out.write(b"".join(orjson.dumps(event) + b"\n" for event in mapper.map_lines(batch.lines)))
            out.flush()
        checkpoints.delivered(batch.position, at_once=not batch.lines)
        _print_notices(follower.notices)
    checkpoints.flush()


def _gather(batches: Iterator[LineBatch], mapper: QueueLogMapper) -> tuple[list[Event], LineBatch | None, bool]:
    """Events of the next batches, up to the reader catching up or KAFKA_CHUNK_EVENTS: one producer
    and one acknowledged send per chunk rather than per read. Returns (events, last batch, ended)."""
    events: list[Event] = []
    last = None
    for batch in batches:
        last = batch
        events.extend(mapper.map_lines(batch.lines))
        if not batch.lines or len(events) >= KAFKA_CHUNK_EVENTS:
            return events, last, False
    return events, last, True


async def _deliver_to_kafka(
    follower: FileFollower, mapper: QueueLogMapper, checkpoints: _Checkpoints, args: argparse.Namespace
) -> None:
    from streamer.sources.kafka_sink import send_events

    batches = follower.batches()
    ended = False
    while not ended:
        # The reader blocks while it waits for lines: keep it off the event loop.
        events, last, ended = await asyncio.to_thread(_gather, batches, mapper)
        if events:
            # Returns once the broker has acknowledged every record (acks=all).
            await send_events(events, bootstrap=args.bootstrap, topic=args.topic)
        if last is not None:
            checkpoints.delivered(last.position, at_once=True)
        _print_notices(follower.notices)
    checkpoints.flush()


def _print_notices(notices: list[str]) -> None:
    while notices:
        print(f"streamer ingest asterisk: {notices.pop(0)}", file=sys.stderr)


@contextlib.contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT end the reading at the next batch, after the batch in hand is delivered
    and its position saved, rather than in the middle of a write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
