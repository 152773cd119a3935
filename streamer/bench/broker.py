"""The broker the bench runs against, and the topics it makes there.

Given `--bootstrap` or $KAFKA_BOOTSTRAP_SERVERS the bench uses that broker, with the TLS/SASL settings
of the KAFKA_* environment like every command (checked before anything runs); otherwise it starts a
local plaintext one (LocalKafka) on a port of its own with a fresh data dir, and stops it at the end.
Every topic the bench creates (its own and the workers' changelogs) starts with the run's tag and is
deleted at the end, so a shared broker is left as it was found.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.app.preflight import check_kafka_now
from streamer.app.settings import kafka_security
from streamer.ports import lease_port
from streamer.sources.kafka_sink import send_events

CLIENT_SETTINGS_PREFIX = "KAFKA_"


@dataclass(frozen=True)
class BrokerChoice:
    bootstrap: str
    description: str  # said to the user: which broker, and why that one


@contextmanager
def broker(bootstrap: str | None, port: int | None, data_dir: Path,
           say: Callable[[str], None]) -> Iterator[BrokerChoice]:
    """The given broker, $KAFKA_BOOTSTRAP_SERVERS, or a local broker started now and stopped on exit."""
    if bootstrap:
        check_kafka_now(bootstrap, kafka_security())
        yield BrokerChoice(bootstrap, f"the broker at {bootstrap} (--bootstrap)")
        return
    if env := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        check_kafka_now(env, kafka_security())
        yield BrokerChoice(env, f"the broker at {env} (KAFKA_BOOTSTRAP_SERVERS)")
        return
    from streamer.devkafka import LocalKafka

    local = LocalKafka(port=port or lease_port(), data_dir=data_dir, progress=say)
    say(f"no --bootstrap and no KAFKA_BOOTSTRAP_SERVERS: starting a local broker on port {local.port}")
    address = local.start(fresh=True, die_with_parent=True)
    try:
        with _client_environment(local.client_settings()):
            yield BrokerChoice(address, f"a local broker started for this run at {address} (stopped at the end)")
    finally:
        say(f"stopping the local broker at {address}")
        local.stop()


@contextmanager
def _client_environment(settings: dict[str, str]) -> Iterator[None]:
    """The bench's clients and workers (which inherit the environment) talk to its own broker with that
    broker's settings, as if its client.env had been loaded: other KAFKA_* settings are set aside."""
    saved = {key: value for key, value in os.environ.items() if key.startswith(CLIENT_SETTINGS_PREFIX)}
    for key in saved:
        del os.environ[key]
    os.environ.update(settings)
    try:
        yield
    finally:
        for key in [key for key in os.environ if key.startswith(CLIENT_SETTINGS_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    asyncio.run(_create_topic(bootstrap, name, partitions))


async def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000,
                                **kafka_security().client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def delete_topics(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix`; returns their names."""
    return asyncio.run(_delete_topics(bootstrap, prefix))


async def _delete_topics(bootstrap: str, prefix: str) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000,
                                **kafka_security().client_kwargs())
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics() if name.startswith(prefix))
        if names:
            await admin.delete_topics(names)
        return names
    finally:
        await admin.close()


def produce(events: Iterable[Any], bootstrap: str, topic: str) -> float:
    """Send events as fast as the broker takes them (acks=all); returns events per second."""
    began = time.monotonic()
    sent = asyncio.run(send_events(events, bootstrap=bootstrap, topic=topic, client_id="streamer-bench"))
    return sent / (time.monotonic() - began)
