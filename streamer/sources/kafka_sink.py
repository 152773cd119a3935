"""Send schema-v1 events to Kafka: keyed like the pipeline expects, batched, optionally paced.

Used by `streamer simulate`, `streamer replay`, the adapters' `--kafka` output and the benchmark.
Importing this module is cheap; aiokafka is imported when events are sent.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

DEFAULT_TOPIC = "call-events"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
# Deliveries awaited at most this many records behind the newest send: bounded memory, full batches.
MAX_IN_FLIGHT = 20_000

Item = Mapping[str, Any] | bytes


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached; the message says where and what to do."""


def bootstrap_servers(explicit: str | None = None) -> str:
    """The given servers, else `KAFKA_BOOTSTRAP_SERVERS`, else 127.0.0.1:9092."""
    return explicit or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


def record_key(event: Mapping[str, Any]) -> bytes | None:
    """The partitioning key: `agent_id` for agent.state, `call_id` for everything else."""
    key = event.get("agent_id") if event.get("type") == "agent.state" else event.get("call_id")
    return key.encode() if isinstance(key, str) else None


def event_time_seconds(ts: Any) -> float | None:
    """Epoch seconds of a schema-v1 `ts` (RFC 3339 with an offset, or integer epoch milliseconds);
    None when it is neither, so such a record is sent without pacing."""
    if isinstance(ts, int) and not isinstance(ts, bool):
        return ts / 1000.0
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts)
        except ValueError:
            return None
        return moment.timestamp() if moment.tzinfo is not None else None
    return None


def encode(item: Item) -> tuple[bytes | None, bytes, float | None]:
    """(key, value, event time in seconds) of an event dict, or of a raw line sent byte for byte
    (key and time taken from it when it parses as a JSON object, else none)."""
    if isinstance(item, bytes | bytearray | memoryview):
        value = bytes(item)
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None, value, None
        if not isinstance(event, dict):
            return None, value, None
        return record_key(event), value, event_time_seconds(event.get("ts"))
    return record_key(item), orjson.dumps(item), event_time_seconds(item.get("ts"))


class Pacer:
    """Spaces records by their event times at `speed` times real time, from the first timed record.

    Records whose time lies behind the schedule go at once; the schedule never moves back.
    """

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._speed = speed
        self._clock = clock
        self._origin: tuple[float, float] | None = None

    def delay(self, event_seconds: float | None) -> float:
        """Seconds to wait before sending a record of this event time."""
        if event_seconds is None:
            return 0.0
        now = self._clock()
        if self._origin is None:
            self._origin = (event_seconds, now)
            return 0.0
        first_event, first_wall = self._origin
        return max(0.0, first_wall + (event_seconds - first_event) / self._speed - now)


async def _items(events: Iterable[Item] | AsyncIterable[Item]) -> AsyncIterator[Item]:
    if isinstance(events, AsyncIterable):
        async for item in events:
            yield item
    else:
        for item in events:
            yield item


async def send_events(
    events: Iterable[Item] | AsyncIterable[Item],
    *,
    bootstrap: str | None = None,
    topic: str = DEFAULT_TOPIC,
    speed: float | None = None,
    linger_ms: int = 20,
    max_batch_size: int = 256 * 1024,
    client_id: str = "streamer-producer",
    producer_options: Mapping[str, Any] | None = None,
    last_offsets: dict[int, int] | None = None,
) -> int:
    """Send events to `topic` and return how many records were sent (all acknowledged).

    events: event dicts (serialized with orjson) or raw JSONL lines as `bytes`, sent as they are,
        valid or not, so a consumer's dead-letter handling sees exactly what the file held; a
        sync or async iterable, possibly endless.
    key: `call_id`, or `agent_id` for `agent.state` (none when the record has neither or does not
        parse). The record timestamp is the send time: event time travels in `ts` only.
    bootstrap: servers, default `KAFKA_BOOTSTRAP_SERVERS` or 127.0.0.1:9092.
    speed: None sends as fast as the broker takes them; X paces records by their `ts` at X times
        real time (1 = real time) from the first one; records without a usable `ts` are not held.
    linger_ms, max_batch_size, producer_options: batching and any other AIOKafkaProducer setting.
    last_offsets: when given, filled with partition -> offset of the last record delivered there.

    Raises KafkaUnavailable when the broker cannot be reached; a failed delivery raises aiokafka's
    error. The producer is flushed and closed on the way out, also when cancelled.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    from streamer.app.settings import SettingsError, kafka_security

    servers = bootstrap_servers(bootstrap)
    try:
        security = kafka_security()
    except SettingsError as error:  # the commands that send say it and stop, as for an unreachable broker
        raise KafkaUnavailable(str(error)) from None
    pacer = Pacer(speed) if speed is not None else None
    producer = AIOKafkaProducer(
        bootstrap_servers=servers,
        client_id=client_id,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        **security.client_kwargs(),
        **dict(producer_options or {}),
    )
    try:
        await producer.start()
    except KafkaConnectionError as error:
        await producer.stop()
        raise KafkaUnavailable(
            f"cannot reach Kafka at {servers} ({error}); start a local broker with `streamer kafka start` "
            "or point KAFKA_BOOTSTRAP_SERVERS (or --bootstrap) at a running one"
        ) from error
    sent = 0
    in_flight: deque[asyncio.Future[Any]] = deque()
    try:
        async for item in _items(events):
            key, value, event_seconds = encode(item)
            if pacer is not None:
                wait = pacer.delay(event_seconds)
                if wait > 0:
                    await asyncio.sleep(wait)
            in_flight.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(in_flight) > MAX_IN_FLIGHT:
                _note(await in_flight.popleft(), last_offsets)
        await producer.flush()
        for delivery in in_flight:
            _note(await delivery, last_offsets)
    finally:
        await producer.stop()
    return sent


def _note(metadata: Any, last_offsets: dict[int, int] | None) -> None:
    if last_offsets is not None and metadata.offset > last_offsets.get(metadata.partition, -1):
        last_offsets[metadata.partition] = metadata.offset
