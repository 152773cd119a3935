"""`streamer replay`: send a JSONL event file to Kafka, as fast as possible or paced by the events' `ts`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO

HELP = "send a JSONL event file to Kafka, as fast as possible or paced"
DESCRIPTION = """\
Send a JSONL file of schema-v1 events (- = stdin) to Kafka, one record per line, keyed by call_id
(agent.state by agent_id). Lines go byte for byte as they are in the file: a line that is not a JSON
object is still sent (without a key), so the worker's dead-letter topic shows it; they are counted
on stderr. Blank lines are skipped.

By default records go as fast as the broker takes them; --speed X paces them by their `ts` at X times
real time (1 = as they happened), starting from the first event.

The topic is --topic, else $STREAMER_TOPIC_EVENTS (the topic the worker reads), else call-events.

examples:
  streamer replay day.jsonl
  streamer replay day.jsonl --speed 60          # an hour of traffic per minute
  streamer simulate --hours 8 --out - | streamer replay -
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSONL events, - for stdin")
    parser.add_argument("--speed", type=float, metavar="X", help="pace by event time at X times real time")
    from streamer.sources.kafka_sink import TOPIC_HELP

    parser.add_argument("--topic", help=TOPIC_HELP)
    parser.add_argument(
        "--bootstrap",
        metavar="SERVERS",
        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )


class LineReader:
    """The non-blank lines of a binary stream, without their line ends; counts those that are not a
    JSON object."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.not_json = 0

    def __iter__(self) -> Iterator[bytes]:
        import orjson

        for raw in self._stream:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                is_object = isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError:
                is_object = False
            if not is_object:
                self.not_json += 1
            yield line


def _fail(message: str) -> int:
    print(f"streamer replay: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import asyncio

    from streamer.app.settings import SettingsError
    from streamer.sources.kafka_sink import KafkaUnavailable, bootstrap_servers, events_topic, send_events

    try:
        topic = events_topic(args.topic)
    except SettingsError as error:
        return _fail(str(error))
    if args.speed is not None and not args.speed > 0:
        return _fail(f"--speed must be > 0 (leave it out to send as fast as possible), got {args.speed}")
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as error:
        return _fail(f"cannot read {args.file}: {error.strerror}")
    lines = LineReader(stream)
    servers = bootstrap_servers(args.bootstrap)
    started = time.monotonic()
    try:
        sent = asyncio.run(send_events(lines, bootstrap=servers, topic=topic, speed=args.speed))
    except KafkaUnavailable as error:
        return _fail(str(error))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    elapsed = time.monotonic() - started
    if lines.not_json:
        print(
            f"replay: {lines.not_json:,} line(s) are not a JSON object; sent as they are, without a key, "
            "for the worker to dead-letter",
            file=sys.stderr,
        )
    rate = f", {sent / elapsed:,.0f} records/s" if elapsed > 0 else ""
    print(f"replay: sent {sent:,} records to {topic} at {servers} in {elapsed:.2f} s{rate}")
    return 0
