"""A real Faust worker on the real broker: records in, a counting agent with a table, results out.

The worker runs in its own process, started from this module (`python -m
tests.integration.test_faust_roundtrip worker`), with an app id and topic names unique to the run, so
runs never see each other's topics or consumer group. The test checks what Kafka holds afterwards: the
results topic, the table's changelog topic and the group's committed offset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.devkafka.errors import file_tail
from streamer.devkafka.process import die_with_parent

RUN_ID_ENV = "STREAMER_ROUNDTRIP_RUN_ID"
DATADIR_ENV = "STREAMER_ROUNDTRIP_DATADIR"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RECORDS_PER_KEY = {"queue-a": 5, "queue-b": 3, "queue-c": 1}
TOTAL_RECORDS = sum(RECORDS_PER_KEY.values())
# Bounds, not expectations: a worker normally answers within seconds; these only stop a hung run.
RESULTS_DEADLINE_SECONDS = 120.0
WORKER_STOP_SECONDS = 60.0


@dataclass(frozen=True)
class RoundtripNames:
    app_id: str
    source: str
    results: str
    table: str = "counts"

    @classmethod
    def for_run(cls, run_id: str) -> RoundtripNames:
        return cls(f"roundtrip-{run_id}", f"roundtrip-{run_id}-in", f"roundtrip-{run_id}-out")

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-{self.table}-changelog"


def build_app(names: RoundtripNames, bootstrap: str, datadir: str) -> faust.App:
    app = faust.App(
        names.app_id,
        broker=[f"kafka://{server.strip()}" for server in bootstrap.split(",")],
        store="memory://",
        datadir=datadir,
        topic_partitions=1,
    )
    source = app.topic(names.source, key_serializer="raw", value_serializer="raw")
    results = app.topic(names.results, key_serializer="raw", value_serializer="json")
    counts = app.Table(names.table, default=int, key_type=str, value_type=int, partitions=1)

    @app.agent(source)
    async def count_per_key(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = event.key.decode()
            counts[key] += 1
            await results.send(key=event.key, value={"key": key, "count": counts[key]})

    return app


@pytest.mark.integration
@pytest.mark.timeout(300)
async def test_counts_reach_table_changelog_and_results(kafka_bootstrap: str, tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex[:12]
    names = RoundtripNames.for_run(run_id)
    await _create_topics(kafka_bootstrap, [names.source, names.results])
    worker_log = tmp_path / "worker.log"
    worker = _start_worker(run_id, kafka_bootstrap, tmp_path, worker_log)
    try:
        await _produce_inputs(kafka_bootstrap, names.source)
        await _wait_for_records(kafka_bootstrap, names.results, TOTAL_RECORDS, worker, worker_log)
    finally:
        _stop_worker(worker)
    assert worker.returncode == 0, f"the worker did not stop cleanly:\n{file_tail(worker_log)}"

    results = await _read_all(kafka_bootstrap, names.results)
    counts_seen: dict[str, list[int]] = defaultdict(list)
    for key, value in results:
        body = json.loads(value)
        assert body["key"] == key.decode()
        counts_seen[body["key"]].append(body["count"])
    assert counts_seen == {key: list(range(1, n + 1)) for key, n in RECORDS_PER_KEY.items()}

    async with _admin(kafka_bootstrap) as admin:
        assert names.changelog in await admin.list_topics()
        committed = await admin.list_consumer_group_offsets(names.app_id)
    assert committed[TopicPartition(names.source, 0)].offset == TOTAL_RECORDS

    changelog = await _read_all(kafka_bootstrap, names.changelog)
    assert len(changelog) == TOTAL_RECORDS, "every table write produces one changelog record"
    final_counts = {json.loads(key): json.loads(value) for key, value in changelog}
    assert final_counts == RECORDS_PER_KEY


def _start_worker(run_id: str, bootstrap: str, tmp_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        RUN_ID_ENV: run_id,
        DATADIR_ENV: str(tmp_path / "faust-data"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    }
    # Faust's worker command sets web_enabled from its own flag (on by default), whatever the app says;
    # without the web server no port can collide with another worker on this machine.
    command = [sys.executable, "-m", __name__, "worker", "--without-web", "--loglevel", "info"]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _create_topics(bootstrap: str, topics: list[str]) -> None:
    async with _admin(bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1) for topic in topics])


async def _produce_inputs(bootstrap: str, topic: str) -> None:
    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all") as producer:
        for key, n in RECORDS_PER_KEY.items():
            for sequence in range(n):
                await producer.send_and_wait(topic, key=key.encode(), value=f"call-{sequence}".encode())


async def _wait_for_records(
    bootstrap: str, topic: str, expected: int, worker: subprocess.Popen[bytes], worker_log: Path
) -> None:
    """Return once `topic` holds `expected` records; fail early if the worker dies."""
    partition = TopicPartition(topic, 0)
    deadline = time.monotonic() + RESULTS_DEADLINE_SECONDS
    async with _reader(bootstrap) as consumer:
        consumer.assign([partition])
        seen = 0
        while seen < expected:
            if worker.poll() is not None:
                pytest.fail(f"the Faust worker exited with {worker.returncode}:\n{file_tail(worker_log, 40)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{topic} held {seen} of {expected} records after {RESULTS_DEADLINE_SECONDS:.0f} s; "
                    f"worker log:\n{file_tail(worker_log, 40)}"
                )
            batches = await consumer.getmany(partition, timeout_ms=500)
            seen += sum(len(records) for records in batches.values())


def _reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer outside any group: assigned partitions are read from their first record."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")


async def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) in partition 0 of `topic`, up to its end offset at the time of the call."""
    partition = TopicPartition(topic, 0)
    async with _reader(bootstrap) as consumer:
        consumer.assign([partition])
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[tuple[bytes, bytes]] = []
        while await consumer.position(partition) < end:
            batches = await consumer.getmany(partition, timeout_ms=1000)
            records += [(record.key, record.value) for batch in batches.values() for record in batch]
    return records


if __name__ == "__main__":
    build_app(
        RoundtripNames.for_run(os.environ[RUN_ID_ENV]),
        os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        os.environ[DATADIR_ENV],
    ).main()
