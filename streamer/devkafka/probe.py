"""Is the broker serving Kafka clients? Asked the way clients ask: a metadata request that lists it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


def broker_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when a Kafka admin client can connect and the cluster metadata lists at least one broker.

    The check runs on its own event loop in a worker thread, so it works whether or not the caller is
    inside a running loop (the CLI, pytest fixtures, async demo code).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devkafka-probe") as pool:
        return pool.submit(asyncio.run, _describe_cluster(bootstrap, timeout)).result()


async def _describe_cluster(bootstrap: str, timeout: float) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))
