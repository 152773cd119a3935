"""The soak: a simulated week of the demo day at full speed through one worker, its state read at every
simulated midnight, to show that what a worker holds is bounded (docs/pipeline.md, "Bounded state").

The week is produced to a topic of its own first, then one fresh worker reads it as fast as it can.
Each time the worker's stream time (`callcenter_last_event_timestamp_seconds`) passes a simulated
midnight the soak takes a reading:

- the worker's RSS (`VmRSS`);
- the live keys of each of its tables: every changelog topic of the worker's app is read from the
  start (incrementally, reading to its end offsets at each reading), and a key is live while its
  newest record is not a tombstone — what the table holds, read from Kafka, not from the worker;
- the size of its data dir (the RocksDB stores) on disk;
- the calls waiting in stage 2 (`callcenter_calls_waiting`).

A last reading follows once the worker has processed every event. State is bounded when these are
flat from day to day after the first day; the buckets of stage 2 grow for 49 hours of stream time
(BUCKET_RETENTION_MS: "today" across a DST change plus a day of corrections), then stay flat too.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.bench.broker import create_topic, produce
from streamer.bench.context import BenchContext
from streamer.bench.report import Figure
from streamer.bench.scrape import metric_sum, samples
from streamer.bench.worker import WorkerProcess
from streamer.simulate.clock import MS_PER_DAY, parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenarios import demo

SOAK_START = "2026-06-01T00:00:00Z"
CHANGELOG_SUFFIX = "-changelog"
POLL_SECONDS = 0.5
# The worker must get through the week; at 200 events/s a week of the demo day takes under an hour.
SOAK_TIMEOUT_SECONDS = 3600.0


@dataclass(frozen=True)
class Reading:
    day: float  # simulated days of stream time the worker has reached
    events: int  # events stage 1 has counted
    rss_bytes: int
    table_keys: dict[str, int]  # table → live keys
    datadir_bytes: int
    calls_waiting: int

    @property
    def live_keys(self) -> int:
        return sum(self.table_keys.values())

    def as_json(self) -> dict[str, Any]:
        return {"day": round(self.day, 3), "events": self.events, "rss_bytes": self.rss_bytes,
                "live_keys": self.live_keys, "table_keys": self.table_keys, "datadir_bytes": self.datadir_bytes,
                "calls_waiting": self.calls_waiting}


@dataclass
class SoakRun:
    days: float
    events: int
    seconds: float
    readings: list[Reading] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def after_first_day(self) -> list[Reading]:
        return [reading for reading in self.readings if reading.day >= 1.0]

    def spread(self, value: Callable[[Reading], float]) -> float:
        """How far a figure moved after the first day: max − min over the readings from day 1 on."""
        values = [value(reading) for reading in self.after_first_day()]
        return max(values) - min(values) if values else 0.0


class ChangelogKeys:
    """Live keys per changelog topic, read incrementally from the start with one consumer."""

    def __init__(self, bootstrap: str, app_id: str, topics: dict[str, int]) -> None:
        self._bootstrap = bootstrap
        self._prefix = f"{app_id}-"
        self._topics = topics  # topic → partitions
        self._alive: dict[str, dict[bytes, bool]] = {topic: {} for topic in topics}
        self._loop = asyncio.new_event_loop()
        self._consumer: Any = None

    def count(self) -> dict[str, int]:
        """Live keys of each topic once every record up to now is read."""
        self._loop.run_until_complete(self._drain())
        return {self.table_name(topic): sum(self._alive[topic].values()) for topic in self._topics}

    def table_name(self, topic: str) -> str:
        return topic.removeprefix(self._prefix).removesuffix(CHANGELOG_SUFFIX)

    async def _drain(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                              auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
            await self._consumer.start()
            partitions = [TopicPartition(topic, p) for topic, count in self._topics.items() for p in range(count)]
            self._consumer.assign(partitions)
            await self._consumer.seek_to_beginning(*partitions)
        partitions = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(partitions)
        while [tp for tp in partitions if await self._consumer.position(tp) < ends[tp]]:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=50_000)
            for tp, records in batches.items():
                alive = self._alive[tp.topic]
                for record in records:
                    alive[record.key] = record.value is not None

    def close(self) -> None:
        if self._consumer is not None:
            self._loop.run_until_complete(self._consumer.stop())
        self._loop.close()


def week(days: float, seed: int) -> Iterator[dict[str, Any]]:
    """The demo day for `days` simulated days from SOAK_START, its calls played to their end."""
    return simulate(demo(), seed=seed, start_ms=parse_start(SOAK_START), hours=days * 24)


def directory_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue  # a RocksDB file compacted away while we walked
    return total


def stream_day(metrics: str) -> float:
    """Simulated days since SOAK_START the worker's stream time has reached (0 before any event)."""
    newest = max((value for _, value in samples(metrics, "callcenter_last_event_timestamp_seconds")), default=0.0)
    return max(0.0, (newest * 1000 - parse_start(SOAK_START)) / MS_PER_DAY)


def changelog_topics(bootstrap: str, app_id: str) -> dict[str, int]:
    """topic → partitions of every table changelog of the app."""
    return asyncio.run(_changelog_topics(bootstrap, app_id))


async def _changelog_topics(bootstrap: str, app_id: str) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = sorted(name for name in await admin.list_topics()
                       if name.startswith(f"{app_id}-") and name.endswith(CHANGELOG_SUFFIX))
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
    finally:
        await admin.close()


def read(worker: WorkerProcess, keys: ChangelogKeys, metrics: str, day: float) -> Reading:
    return Reading(day=day, events=round(metric_sum(metrics, "callcenter_events_total")), rss_bytes=worker.rss_bytes(),
                   table_keys=keys.count(), datadir_bytes=directory_bytes(worker.datadir),
                   calls_waiting=round(metric_sum(metrics, "callcenter_calls_waiting")))


def measure(ctx: BenchContext, days: float, seed: int) -> SoakRun:
    topic = f"{ctx.tag}-soak"
    create_topic(ctx.bootstrap, topic, ctx.partitions)
    count = sum(1 for _ in week(days, seed))
    ctx.say(f"soak: {days:g} simulated days of the demo day, {count:,} events; producing to {topic}")
    produce(week(days, seed), ctx.bootstrap, topic)
    worker = ctx.worker_group("soak", 1, topic)[0].start()
    app_id = worker.env["STREAMER_APP_ID"]
    run = SoakRun(days=days, events=count, seconds=0.0)
    keys: ChangelogKeys | None = None
    began = time.monotonic()
    deadline = began + SOAK_TIMEOUT_SECONDS
    next_day = 1
    try:
        while time.monotonic() < deadline:
            worker.check_alive()
            metrics = worker.metrics()
            counted = metric_sum(metrics, "callcenter_events_total")
            day = stream_day(metrics)
            done = counted >= count
            if day >= next_day or done:
                if keys is None:
                    keys = ChangelogKeys(ctx.bootstrap, app_id, changelog_topics(ctx.bootstrap, app_id))
                reading = read(worker, keys, metrics, day)
                run.readings.append(reading)
                ctx.say(f"soak: day {day:.2f}: {reading.events:,} events, RSS {reading.rss_bytes / 1e6:.1f} MB, "
                        f"{reading.live_keys:,} live keys {reading.table_keys}, data dir "
                        f"{reading.datadir_bytes / 1e6:.1f} MB, {reading.calls_waiting} calls waiting")
                next_day = int(day) + 1
            if done:
                run.seconds = time.monotonic() - began
                return run
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"the soak worker had not processed the week within {SOAK_TIMEOUT_SECONDS:.0f} s")
    finally:
        if keys is not None:
            keys.close()
        worker.stop()


def figures(run: SoakRun) -> list[Figure]:
    first = next((reading for reading in run.readings if reading.day >= 1.0), run.readings[0])
    last = run.readings[-1]
    return [
        Figure("soak_events_per_second", f"soak: {run.days:g} simulated days, one worker", "events/s",
               (run.events_per_second,)),
        Figure("soak_rss_bytes_day1", "soak: RSS after the first day", "bytes", (float(first.rss_bytes),)),
        Figure("soak_rss_bytes_end", "soak: RSS at the end", "bytes", (float(last.rss_bytes),)),
        Figure("soak_rss_spread_bytes", "soak: RSS max − min from day 1 on", "bytes",
               (run.spread(lambda r: r.rss_bytes),)),
        Figure("soak_live_keys_day1", "soak: live table keys after the first day", "", (float(first.live_keys),)),
        Figure("soak_live_keys_end", "soak: live table keys at the end", "", (float(last.live_keys),)),
        Figure("soak_datadir_bytes_end", "soak: data dir on disk at the end", "bytes", (float(last.datadir_bytes),)),
    ]


def context(run: SoakRun) -> dict[str, Any]:
    return {"soak_days": run.days, "soak_events": run.events, "soak_seconds": run.seconds,
            "soak_readings": [reading.as_json() for reading in run.readings]}
