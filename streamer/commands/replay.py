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

With --wait it then waits until the pipeline has caught up: every record processed by both stages
and every interval they touched written to the intervals topic (the workers report how far they
are in /api/queues; give every worker of the group with --worker). It prints how long that took
and, per queue, the totals of the closed intervals on the topic within the file's time range; the
last intervals of a stream close once their queue has been idle for `limits.idle_seconds`.
Exit status 3 when the pipeline did not catch up within --wait-timeout.

examples:
  streamer replay day.jsonl
  streamer replay day.jsonl --speed 60          # an hour of traffic per minute
  streamer replay day.jsonl --wait              # ... and wait for the worker on 127.0.0.1:6066
  streamer simulate --hours 8 --out - | streamer replay -
"""

DEFAULT_WORKER = "http://127.0.0.1:6066"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSONL events, - for stdin")
    parser.add_argument("--speed", type=float, metavar="X", help="pace by event time at X times real time")
    parser.add_argument("--topic", default="call-events", help="Kafka topic (default call-events)")
    parser.add_argument("--wait", action="store_true",
                        help="after sending, wait until the pipeline has caught up and print the totals it wrote")
    parser.add_argument("--worker", action="append", metavar="URL",
                        help=f"a worker's web address, for --wait; repeat it for every worker of the group "
                             f"(default {DEFAULT_WORKER})")
    parser.add_argument("--wait-timeout", type=float, default=600.0, metavar="SECONDS",
                        help="give up waiting after this long (default 600)")
    parser.add_argument(
        "--bootstrap",
        metavar="SERVERS",
        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092)",
    )


class LineReader:
    """The non-blank lines of a binary stream, without their line ends; counts those that are not a
    JSON object, and keeps each queue's first event time and the file's last (for the totals of --wait)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.not_json = 0
        self.first_ts: dict[str, int] = {}
        self.last_ts = 0

    def __iter__(self) -> Iterator[bytes]:
        import orjson

        for raw in self._stream:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                self._note_span(event)
            else:
                self.not_json += 1
            yield line

    def _note_span(self, event: dict) -> None:
        from streamer.core.events import InvalidEvent, parse_ts

        queue = event.get("queue")
        try:
            ts = parse_ts(event.get("ts"))
        except InvalidEvent:
            return
        self.last_ts = max(self.last_ts, ts)
        if isinstance(queue, str):
            self.first_ts[queue] = min(self.first_ts.get(queue, ts), ts)

    @property
    def queue_spans(self) -> dict[str, tuple[int, int]]:
        """Per queue, the first event time of the queue to the last of the file: the intervals its
        events can touch (an expiry is counted later than the queue's last event)."""
        return {queue: (first, self.last_ts) for queue, first in self.first_ts.items()}


def _fail(message: str) -> int:
    print(f"streamer replay: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import asyncio

    from streamer.sources.kafka_sink import KafkaUnavailable, bootstrap_servers, send_events

    if args.speed is not None and not args.speed > 0:
        return _fail(f"--speed must be > 0 (leave it out to send as fast as possible), got {args.speed}")
    try:
        stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as error:
        return _fail(f"cannot read {args.file}: {error.strerror}")
    lines = LineReader(stream)
    servers = bootstrap_servers(args.bootstrap)
    started = time.monotonic()
    last_offsets: dict[int, int] = {}
    try:
        sent = asyncio.run(send_events(lines, bootstrap=servers, topic=args.topic, speed=args.speed,
                                       last_offsets=last_offsets))
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
    print(f"replay: sent {sent:,} records to {args.topic} at {servers} in {elapsed:.2f} s{rate}", flush=True)
    if args.wait:
        return _wait(args, servers, last_offsets, lines.queue_spans)
    return 0


def _wait(args: argparse.Namespace, servers: str, last_offsets: dict[int, int],
          spans: dict[str, tuple[int, int]]) -> int:
    import asyncio

    from streamer.app.catch_up import NotCaughtUp, read_latest, wait_caught_up
    from streamer.app.settings import kafka_security

    workers = args.worker or [DEFAULT_WORKER]
    security = kafka_security().client_kwargs()
    try:
        caught = asyncio.run(wait_caught_up(workers, args.topic, last_offsets, servers, args.wait_timeout, security))
    except NotCaughtUp as error:
        print(f"streamer replay: {error}", file=sys.stderr)
        return 3
    print(f"replay: caught up {caught.seconds:.1f} s after the last record was delivered: every record processed "
          f"and every interval written to {caught.intervals_topic}")
    latest = asyncio.run(read_latest(servers, caught.intervals_topic, security))
    for queue, line in interval_totals(latest, spans).items():
        print(f"replay: {queue}: {line}")
    return 0


def interval_totals(latest: dict[str, dict], spans: dict[str, tuple[int, int]]) -> dict[str, str]:
    """Per queue of the file: the intervals on the topic that overlap its events' time span, summed."""
    from streamer.core.counters import EXTRA_COUNT_KEYS, REPORT_COUNT_KEYS
    from streamer.core.events import parse_ts

    keys = REPORT_COUNT_KEYS + EXTRA_COUNT_KEYS
    sums: dict[str, dict[str, int]] = {}
    counted: dict[str, int] = {}
    for doc in latest.values():
        queue = doc.get("queue")
        if queue not in spans:
            continue
        first, last = spans[queue]
        if parse_ts(doc["start"]) <= last and parse_ts(doc["end"]) > first:
            block = sums.setdefault(queue, dict.fromkeys(keys, 0))
            counted[queue] = counted.get(queue, 0) + 1
            for key in keys:
                block[key] += doc.get(key) or 0
    return {queue: f"{counted[queue]} intervals, " + ", ".join(f"{key} {n}" for key, n in sums[queue].items())
            for queue in sorted(sums)}
