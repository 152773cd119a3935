"""Reading topics back in tests: the latest value per key of a compacted topic, or every record.

The clients take their TLS/SASL settings from the KAFKA_* environment, like every `streamer` command,
so the same helpers read a secured broker (tests/integration/test_kafka_security.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.app.settings import kafka_security


def client_kwargs() -> dict[str, Any]:
    return kafka_security().client_kwargs()


async def _read_all(bootstrap: str, topic: str, idle_ms: int = 1500) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, **client_kwargs())
    await consumer.start()
    records = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                return records
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()


def read_records(bootstrap: str, topic: str) -> list[Any]:
    return asyncio.run(_read_all(bootstrap, topic))


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> str:
    asyncio.run(_create_topic(bootstrap, topic, partitions))
    return topic


def latest_intervals(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """`queue|start` -> the newest interval document written for it (a compacted topic's view)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_records(bootstrap, topic):
        latest[record.key.decode()] = orjson.loads(record.value)
    return latest


def report_intervals(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The offline report's intervals keyed as on the queue-intervals topic."""
    out = {}
    for queue, data in report["queues"].items():
        for block in data["intervals"]:
            out[f"{queue}|{block['start']}"] = {"queue": queue, **block}
    return out
