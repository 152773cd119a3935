"""Is the broker serving Kafka clients? Asked the way clients ask: a metadata request that lists it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def broker_answers(bootstrap: str, timeout: float = 5.0, client_env: Mapping[str, str] | None = None) -> bool:
    """True when a Kafka admin client can connect and the cluster metadata lists at least one broker.

    `client_env` holds the client's KAFKA_* security settings (a `client.env`; default: plaintext).
    The check runs on its own event loop in a worker thread, so it works whether or not the caller is
    inside a running loop (the CLI, pytest fixtures, async demo code).
    """
    from streamer.app.settings import kafka_security

    security = kafka_security(client_env or {}).client_kwargs()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devkafka-probe") as pool:
        return pool.submit(asyncio.run, _describe_cluster(bootstrap, timeout, security)).result()


async def _describe_cluster(bootstrap: str, timeout: float, security: dict[str, Any]) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **security)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()
    return bool(cluster.get("brokers"))
