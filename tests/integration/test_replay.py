"""`streamer replay` and the Kafka sink against the real broker: every line arrives unchanged, keyed by
call id (agent events by agent id), invalid lines included; read back with an aiokafka consumer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import defaultdict

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.simulate.clock import parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenarios import plain
from streamer.sources.kafka_sink import KafkaUnavailable, send_events

pytestmark = pytest.mark.integration

PARTITIONS = 3
READ_TIMEOUT_SECONDS = 60.0
INVALID_LINES = [b'{"event_id": "junk", "type": ', b"[1, 2, 3]"]


def simulated_lines(hours: float = 0.5) -> list[bytes]:
    events = simulate(plain(252, 120, 12, 60), seed=11, start_ms=parse_start("2026-06-01T08:00:00Z"), hours=hours)
    return [orjson.dumps(event) for event in events]


async def new_topic(bootstrap: str) -> str:
    topic = f"replay-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def read_back(bootstrap: str, topic: str, expected: int) -> list:
    """All records of `topic` from the beginning, once `expected` have arrived (bounded wait)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records = []
    try:
        deadline = asyncio.get_running_loop().time() + READ_TIMEOUT_SECONDS
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        # Anything beyond the expected count would be a duplicate: give it a moment to show up.
        for batch in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


def expected_key(line: bytes) -> bytes | None:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    return (event["agent_id"] if event["type"] == "agent.state" else event["call_id"]).encode()


def check_records(records: list, lines: list[bytes]) -> None:
    assert sorted(r.value for r in records) == sorted(lines), "records differ from the lines sent"
    partitions_of_key = defaultdict(set)
    values_by_partition = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key == expected_key(record.value), record
        if record.key is not None:
            partitions_of_key[record.key].add(record.partition)
        values_by_partition[record.partition].append(record.value)
    assert all(len(p) == 1 for p in partitions_of_key.values()), "one key landed on two partitions"
    assert len({p for ps in partitions_of_key.values() for p in ps}) > 1, "keys should spread over partitions"
    # Within a partition the records keep the file's order.
    position = {line: i for i, line in enumerate(lines)}
    for values in values_by_partition.values():
        order = [position[v] for v in values]
        assert order == sorted(order)


def replay(bootstrap: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamer.cli", "replay", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        check=False,
    )


async def test_replay_sends_every_line_keyed_and_unchanged(kafka_bootstrap, tmp_path):
    topic = await new_topic(kafka_bootstrap)
    lines = simulated_lines()
    lines[10:10] = INVALID_LINES
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines[:5]) + b"\n\n" + b"\n".join(lines[5:]) + b"\n")  # a blank line too

    result = replay(kafka_bootstrap, str(path), "--topic", topic)

    assert result.returncode == 0, result.stderr.decode()
    assert f"sent {len(lines):,} records to {topic}".encode() in result.stdout
    assert b"2 line(s) are not a JSON object" in result.stderr
    check_records(await read_back(kafka_bootstrap, topic, len(lines)), lines)


async def test_replay_reads_stdin_and_paces_by_event_time(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap)
    lines = simulated_lines(hours=0.1)  # about 6 minutes of events, paced at 3600x

    result = replay(kafka_bootstrap, "-", "--topic", topic, "--speed", "3600", stdin=b"\n".join(lines) + b"\n")

    assert result.returncode == 0, result.stderr.decode()
    assert b"not a JSON object" not in result.stderr
    check_records(await read_back(kafka_bootstrap, topic, len(lines)), lines)


async def test_send_events_takes_an_async_stream_of_dicts(kafka_bootstrap):
    topic = await new_topic(kafka_bootstrap)
    events = list(simulate(plain(252, 120, 12), seed=5, start_ms=parse_start("2026-06-01T08:00:00Z"), hours=0.3))

    async def stream():
        for event in events:
            yield event

    assert await send_events(stream(), bootstrap=kafka_bootstrap, topic=topic) == len(events)
    check_records(await read_back(kafka_bootstrap, topic, len(events)), [orjson.dumps(e) for e in events])


def test_replay_says_what_to_do_when_the_file_is_missing(kafka_bootstrap, tmp_path):
    result = replay(kafka_bootstrap, str(tmp_path / "nothing.jsonl"))
    assert result.returncode == 2
    assert b"cannot read" in result.stderr


async def test_an_unreachable_broker_is_reported_with_the_fix():
    with pytest.raises(KafkaUnavailable, match="streamer kafka start"):
        await send_events([{"type": "call.enqueued", "call_id": "c1"}], bootstrap="127.0.0.1:1")
