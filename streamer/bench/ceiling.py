"""The ceiling: how fast a plain aiokafka consumer reads and decodes the benchmark topic here.

Nothing a worker does can be faster than reading the records and parsing their JSON in one Python
process on the same machine, so the worker's throughput is reported as a share of this figure,
measured in the same run (the machine's load changes from one run to the next).
"""

from __future__ import annotations

import asyncio
import time

import orjson


def ceiling_events_per_second(bootstrap: str, topic: str, expected: int, timeout: float = 300.0) -> float:
    return asyncio.run(_read(bootstrap, topic, expected, timeout))


async def _read(bootstrap: str, topic: str, expected: int, timeout: float) -> float:
    from aiokafka import AIOKafkaConsumer

    from streamer.app.settings import kafka_security

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False, client_id="streamer-bench-ceiling",
                                **kafka_security().client_kwargs())
    await consumer.start()
    try:
        # The clock starts once the consumer is connected: joining is not reading.
        began = time.monotonic()
        count = 0
        while count < expected:
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"the ceiling consumer read {count} of {expected} records of {topic} "
                                   f"in {timeout:.0f} s")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                count += len(records)
        return count / (time.monotonic() - began)
    finally:
        await consumer.stop()
