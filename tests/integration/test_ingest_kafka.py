"""`streamer ingest asterisk --kafka` on the real broker: the real queue_log arrives whole, keyed by
call (agents by agent), equal to the JSONL output; a follower sends every line once across a
rotation and a restart. Topic names are unique to the run; the test reads each topic up to its end
offsets after the sender has exited (all records acknowledged), so it counts exactly."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.sources.asterisk import QueueLogMapper

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_QUEUE_LOG = PROJECT_ROOT.parent / "shared" / "reference-data" / "asterisk-queue-log" / "queue_log"
INGEST = [sys.executable, "-m", "streamer.cli", "ingest", "asterisk"]
PARTITIONS = 3
# Bounds that only stop a hung run.
COMMAND_SECONDS = 120
READ_SECONDS = 60

LINES = [
    "1700000001|m1|sales|Local/2001@agents|ADDMEMBER|",
    "1700000010|c1|sales|NONE|ENTERQUEUE||5550001|1",
    "1700000022|c1|sales|Agent/2001|CONNECT|12|b1|3",
    "1700000140|c1|sales|Agent/2001|COMPLETECALLER|12|118|1",
    "1700000200|c2|sales|NONE|ENTERQUEUE||5550002|1",
    "1700000230|c2|sales|NONE|ABANDON|1|1|30",
    "1700000300|NONE|NONE|Agent/2001|OUTDIAL|Cda880bf7f1",
    "1700000400|c3|sales|NONE|ENTERQUEUE||5550003|1",
    "1700000700|c3|sales|NONE|EXITWITHTIMEOUT|1|1|300",
]


async def create_topic(bootstrap: str) -> str:
    topic = f"ingest-asterisk-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def read_topic(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, dict]]:
    """Every record now in the topic: (partition, key, value), in offset order per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[tuple[int, bytes | None, dict]] = []
        async with asyncio.timeout(READ_SECONDS):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                batch = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batch.items():
                    records += [(tp.partition, m.key, json.loads(m.value)) for m in messages]
        return records
    finally:
        await consumer.stop()


def ingest(*args: str | Path) -> str:
    done = subprocess.run(
        [*INGEST, *map(str, args)], capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def expected_key(event: dict) -> bytes:
    return (event["agent_id"] if event["type"] == "agent.state" else event["call_id"]).encode()


def by_id(events: Iterable[dict]) -> list[dict]:
    return sorted(events, key=lambda event: event["event_id"])


def test_the_real_queue_log_arrives_whole_and_keyed(kafka_bootstrap):
    topic = asyncio.run(create_topic(kafka_bootstrap))
    jsonl = [json.loads(line) for line in ingest(REAL_QUEUE_LOG).splitlines()]
    assert ingest(REAL_QUEUE_LOG, "--kafka", "--bootstrap", kafka_bootstrap, "--topic", topic) == ""

    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert len(records) == len(jsonl) == 549
    assert all(key == expected_key(value) for _, key, value in records)
    # One key, one partition, its events in file order.
    partition_of: dict[bytes | None, int] = {}
    for partition, key, _ in records:
        assert partition_of.setdefault(key, partition) == partition
    for key in partition_of:
        assert [v for _, k, v in records if k == key] == [e for e in jsonl if expected_key(e) == key]


def test_a_kafka_follower_sends_every_line_once_across_rotation_and_restart(kafka_bootstrap, tmp_path):
    topic = asyncio.run(create_topic(kafka_bootstrap))
    log = tmp_path / "queue_log"
    follow = [log, "--follow", "--kafka", "--bootstrap", kafka_bootstrap, "--topic", topic]
    follow += ["--exit-after-idle", "0.3", "--poll-interval", "0.02"]

    log.write_text("".join(line + "\n" for line in LINES[:4]))
    ingest(*follow)
    first = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert by_id(value for _, _, value in first) == by_id(QueueLogMapper().map_lines(LINES[:4]))
    assert (tmp_path / "queue_log.pos").exists()

    with open(log, "a") as writer:
        writer.write(LINES[4] + "\n")
    log.rename(tmp_path / "queue_log.1")
    log.write_text("".join(line + "\n" for line in LINES[5:]))
    ingest(*follow)
    ingest(*follow)  # nothing new: nothing sent

    records = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert by_id(value for _, _, value in records) == by_id(QueueLogMapper().map_lines(LINES))
    assert all(key == expected_key(value) for _, key, value in records)
