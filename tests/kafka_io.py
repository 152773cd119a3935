"""Reading topics back in tests: the latest value per key of a compacted topic, or every record."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer


async def _read_all(bootstrap: str, topic: str, idle_ms: int = 1500) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
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
