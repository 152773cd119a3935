"""Kafka's default partitioner in the core, and the report judging lateness per partition as the worker."""

from __future__ import annotations

import random
import string

import orjson
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streamer.core.config import parse_config
from streamer.core.partitioning import murmur2, partition_of
from streamer.core.report import Report


def test_murmur2_equals_the_kafka_clients_hash() -> None:
    rng = random.Random(7)
    for n in range(5000):
        key = "".join(rng.choice(string.printable) for _ in range(rng.randrange(0, 48))).encode()
        key += "é漢".encode() if n % 5 == 0 else b""
        assert murmur2(key) == aiokafka_murmur2(key)


def test_known_partitions() -> None:
    # As the Java client places them (DefaultPartitioner, 4 and 12 partitions).
    assert [partition_of(key, 4) for key in ("c1", "c2", "c3", "sales", "support")] == [
        (aiokafka_murmur2(key.encode()) & 0x7FFFFFFF) % 4 for key in ("c1", "c2", "c3", "sales", "support")]
    assert partition_of("anything", 1) == 0


def _call_ids_on(partition: int, partitions: int, count: int) -> list[str]:
    ids = (f"call-{n}" for n in range(10_000))
    return [call for call in ids if partition_of(call, partitions) == partition][:count]


def _event(event_id: str, call_id: str, etype: str, ts: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "type": etype, "call_id": call_id, "queue": "q", "ts": ts})


def test_lateness_is_judged_per_partition_when_asked() -> None:
    # Partition 0 runs an hour ahead; a call on partition 1 arrives in time for its own partition.
    ahead, behind = _call_ids_on(0, 2, 1)[0], _call_ids_on(1, 2, 1)[0]
    lines = [
        _event("e1", ahead, "call.enqueued", "2026-06-01T11:00:00Z"),
        _event("e2", ahead, "call.answered", "2026-06-01T11:00:10Z"),
        _event("e3", behind, "call.enqueued", "2026-06-01T10:00:00Z"),
        _event("e4", behind, "call.answered", "2026-06-01T10:00:05Z"),
    ]
    config = parse_config({"limits": {"grace_seconds": 60}})
    as_one = Report(config)
    as_one.add_lines(lines)
    per_partition = Report(config, partitions=2)
    per_partition.add_lines(lines)
    assert as_one.to_dict()["queues"]["q"]["total"]["answered"] == 1
    assert as_one.skipped == {"late:late": 2}
    assert per_partition.to_dict()["queues"]["q"]["total"]["answered"] == 2
    assert per_partition.skipped == {}
