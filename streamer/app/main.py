"""The Faust app: topics, tables, the two stages' agents, the interval timer and the web pages.

Built by `create_app()` from the environment (see `streamer.app.settings`) and the metrics config
(`$STREAMER_CONFIG`). Everything here is wiring; the rules live in `streamer.core`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson

from streamer.app import bulk, gc_tuning, heap, records
from streamer.app.bulk import PartitionedTable, assigned_partitions, committed_offsets, quiet_monitor_class, raw_table
from streamer.app.customers import CustomerOutputs, CustomerStage
from streamer.app.health import Health
from streamer.app.heap import HeapTrimmer, malloc_trim
from streamer.app.settings import WorkerSettings, load_worker_settings
from streamer.app.shutdown import install_stop_deadline
from streamer.app.stage1 import CallStage, Outputs
from streamer.app.stage2 import QueueStage
from streamer.core.config import Config, load_config
from streamer.core.events import format_ts
from streamer.export import foresight_blocks

log = logging.getLogger(__name__)


class Pipeline:
    """The running pieces of one worker, for the web pages and the exporter to read."""

    def __init__(self, app: faust.App, settings: WorkerSettings, config: Config, health: Health,
                 calls: CallStage, queues: QueueStage, topics: dict[str, Any], queue_table: Any,
                 customers: CustomerStage) -> None:
        self.app, self.settings, self.config, self.health = app, settings, config, health
        self.calls, self.queues, self.topics, self.customers = calls, queues, topics, customers
        self.queue_table = queue_table  # a Faust table partitioned like call-outcomes, for routing by queue
        self.foresight = foresight_blocks.ForesightBlocks()  # what the pages show of it; refreshed by a timer
        self.heap = HeapTrimmer(settings.heap_trim_seconds, malloc_trim())
        self.started = time.time()

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        return consumer_lag(self.app)

    def progress(self) -> dict[str, Any]:
        """How far each stage of this worker has got, per owned partition: the offset of the last record
        fully processed (its effects in the tables, its facts sent), stage 1's stream time and idle
        state, stage 2's watermark; with the topic names. `streamer replay --wait` reads it."""
        s, idle_seconds = self.settings, self.config.limits.idle_seconds
        assigned = assigned_partitions(self.app, s.events_topic)
        events_committed = committed_offsets(self.app, s.events_topic)
        outcomes_committed = committed_offsets(self.app, s.outcomes_topic)
        stage1 = [{"partition": p, "offset": _processed(self.calls.applied.get(p), events_committed.get(p)),
                   "stream_time": format_ts(t) if t else None, "idle": idle}
                  for p, t, idle in self.calls.progress(assigned, idle_seconds)]
        outcome_partitions = sorted(assigned_partitions(self.app, s.outcomes_topic))
        # A partition whose state is not loaded yet may hold intervals not written: not processed yet.
        stage2 = [{"partition": p, "offset": _processed(self.queues.applied.get(p), outcomes_committed.get(p))
                   if p in self.queues.owned else None,
                   "watermark": format_ts(m) if (m := self.queues.watermark(p)) is not None else None,
                   # queues, groups and tenants alike (/api/queues lists queues only)
                   "intervals_pending": self.queues.partition_pending_intervals(p)
                   if p in self.queues.owned else None}
                  for p in outcome_partitions]
        contacts_committed = committed_offsets(self.app, s.contacts_topic)
        customers = [{**entry, "offset": _processed(entry["offset"], contacts_committed.get(entry["partition"]))
                      if entry["partition"] in self.customers.owned else None}
                     for entry in self.customers.progress(assigned_partitions(self.app, s.contacts_topic))]
        return {"topics": {"events": s.events_topic, "outcomes": s.outcomes_topic, "contacts": s.contacts_topic,
                           "intervals": s.intervals_topic, "dlq": s.dlq_topic},
                "idle_seconds": idle_seconds, "stage1": stage1, "customers": customers, "stage2": stage2}


def _processed(applied: int | None, committed: int | None) -> int | None:
    """The newest offset known processed: applied in this run, or below the group's commit."""
    known = [offset for offset in (applied, None if committed is None else committed - 1) if offset is not None]
    return max(known) if known else None


def create_app(settings: WorkerSettings | None = None, config: Config | None = None) -> faust.App:
    settings = settings or load_worker_settings()
    config = config or load_config()
    gc_tuning.tune()
    app = faust.App(
        settings.app_id,
        broker=settings.broker_urls,
        store=settings.store,
        topic_partitions=settings.event_partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        web_bind=settings.web_host,
        web_tables_enabled=settings.web_tables,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,  # the stages send record batches of their own (bulk.Batches)
        broker_credentials=settings.security.faust_credentials(),
        **({} if settings.faust_metrics else {"Monitor": quiet_monitor_class()}),
    )
    for warning in settings.security.warnings():
        log.warning("%s", warning)
    # The stages keep what they read in memory, so the stores serve recovery, not lookups: small caches
    # and memtables (Faust's defaults are a 2 GiB cache and 3 x 64 MB memtables per partition store).
    rocks = {"block_cache_size": settings.rocksdb_block_cache_mb * 1024 * 1024,
             "block_cache_compressed_size": settings.rocksdb_block_cache_mb * 1024 * 1024,
             "write_buffer_size": settings.rocksdb_write_buffer_mb * 1024 * 1024, "max_write_buffer_number": 2}
    raw = {"key_type": str, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.events_topic, partitions=settings.event_partitions, internal=True, **raw)
    outcomes = app.topic(settings.outcomes_topic, partitions=settings.outcome_partitions, internal=True, **raw)
    contacts = app.topic(settings.contacts_topic, partitions=settings.event_partitions, internal=True, **raw)
    intervals = app.topic(settings.intervals_topic, partitions=settings.outcome_partitions, internal=True,
                          compacting=True, **raw)
    dlq = app.topic(settings.dlq_topic, partitions=settings.event_partitions, internal=True,
                    retention=14 * 86400, **raw)

    health = Health()
    call_table = PartitionedTable(app, raw_table(app, "calls", settings.event_partitions, rocks))
    queue_table = PartitionedTable(app, raw_table(app, "queue-state", settings.outcome_partitions, rocks))
    customer_table = PartitionedTable(app, raw_table(app, "customers", settings.event_partitions, rocks))
    calls = CallStage(config, call_table.rows, settings.event_partitions, health)
    customers = CustomerStage(config, customer_table.rows, settings.event_partitions)
    # Stage 2's upstream: stage 1's partitions, then the customer stage's (CustomerStage.published_progress).
    queues = QueueStage(config, queue_table.rows, 2 * settings.event_partitions, settings.outcome_partitions, health)
    pipeline = Pipeline(app, settings, config, health, calls, queues,
                        {"events": events, "outcomes": outcomes, "contacts": contacts, "intervals": intervals,
                         "dlq": dlq}, queue_table.table, customers)
    app.pipeline = pipeline  # type: ignore[attr-defined]

    # The stages take their topics' records a partition batch at a time (streamer/app/bulk.py).
    routes = bulk.install(app, [events, contacts, outcomes])

    outputs: dict[str, Any] = {}

    async def partitions_of(topic: str) -> int:
        return await bulk.partition_count(app, topic)

    async def track_calls(partition: int, batch: list[Any]) -> None:
        if "calls" not in outputs:
            outputs["calls"] = Outputs(settings.outcomes_topic, await partitions_of(settings.outcomes_topic),
                                       settings.contacts_topic, await partitions_of(settings.contacts_topic),
                                       settings.dlq_topic, await partitions_of(settings.dlq_topic),
                                       lambda: bulk.Batches(app), call_table.write)
        await calls.handle(partition, batch, outputs["calls"])

    async def track_customers(partition: int, batch: list[Any]) -> None:
        if "customers" not in outputs:
            outputs["customers"] = CustomerOutputs(settings.outcomes_topic,
                                                   await partitions_of(settings.outcomes_topic),
                                                   lambda: bulk.Batches(app), customer_table.write)
        await customers.handle(partition, batch, outputs["customers"])

    async def aggregate_queues(partition: int, batch: list[Any]) -> None:
        await queues.handle(partition, batch, queue_table.write)

    routes.add(settings.events_topic, track_calls)
    routes.add(settings.contacts_topic, track_customers)
    routes.add(settings.outcomes_topic, aggregate_queues)

    @app.timer(settings.emit_every_seconds)
    async def publish_progress() -> None:
        # Stage 2 and the customer stage take their time from stage 1's partitions (a watermark).
        assigned = assigned_partitions(app, settings.events_topic)
        for partition, stream_time, idle in calls.progress(assigned, config.limits.idle_seconds):
            value = records.progress_record(partition, stream_time, idle)
            for topic, partitions in ((outcomes, settings.outcome_partitions), (contacts, settings.event_partitions)):
                for target in range(partitions):
                    await topic.send(value=value, partition=target)
        for upstream, watermark, idle in customers.published_progress(
                assigned_partitions(app, settings.contacts_topic)):
            value = records.progress_record(upstream, watermark, idle)
            for target in range(settings.outcome_partitions):
                await outcomes.send(value=value, partition=target)

    @app.timer(settings.emit_every_seconds)
    async def emit_closed_intervals() -> None:
        due = queues.due_intervals(config.limits.idle_seconds)
        deliveries = [await intervals.send(key=key.encode(), value=orjson.dumps(block)) for _, _, key, block in due]
        # Awaited, so "no interval pending" (/api/queues, `streamer replay --wait`) means on the topic.
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        for (queue, start, key, _), result in zip(due, results, strict=True):
            ok = not isinstance(result, BaseException)
            queues.delivered(queue, start, ok)
            if ok:
                health.intervals_emitted += 1
            else:
                log.warning("interval %s not written (%r); it is sent again", key, result)

    @app.timer(foresight_blocks.TICK_SECONDS)
    async def refresh_foresight() -> None:
        # Off the readers' path, a slice of the event loop at a time (streamer/export/foresight_blocks.py).
        if pipeline.foresight.readers():
            lag = sum(n for (topic, _), n in pipeline.consumer_lag().items() if topic == settings.events_topic)
            pipeline.foresight.refresh(queues.plain_queues(), int(time.time() * 1000),
                                       behind=lag > foresight_blocks.CATCH_UP_LAG_RECORDS)

    @app.timer(heap.QUIET_SECONDS)
    async def trim_heap() -> None:
        # What a burst of events freed goes back to the OS once it ends (streamer/app/heap.py). Stage 1's
        # records measure the work: the other stages' topics also carry the progress sent every second.
        if pipeline.heap.due(sum(health.events.values())):
            await pipeline.heap.trim()

    @app.task
    async def bound_shutdown() -> None:
        install_stop_deadline(asyncio.get_running_loop())

    assigned_at: dict[str, float] = {}
    frozen: list[bool] = []

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set, **kwargs: Any) -> None:
        assigned_at["at"] = time.monotonic()

    @app.on_rebalance_complete.connect
    async def on_recovered(app: faust.App, **kwargs: Any) -> None:
        # The stages load their partitions' state now, not at their first record: a restarted worker
        # serves its queues (and emits the intervals its predecessor left unwritten) at once.
        for partition in assigned_partitions(app, settings.events_topic):
            calls.tracker(partition)
        for partition in assigned_partitions(app, settings.contacts_topic):
            customers.partition(partition)
        for partition in assigned_partitions(app, settings.outcomes_topic):
            queues.partition_states(partition)
        if not frozen:
            frozen.append(True)
            gc_tuning.freeze_startup_objects()  # the app and what was recovered: no later collection scans them
        # Faust logs the steps of a recovery; this is the figure to watch: assignment to ready.
        started = assigned_at.pop("at", None)
        if started is not None:
            log.info("recovery: partitions assigned and tables restored in %.2f s", time.monotonic() - started)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set, **kwargs: Any) -> None:
        await routes.idle()  # the batch in flight finishes before its partition is handed over
        calls.forget_partitions({tp.partition for tp in revoked if tp.topic == settings.events_topic})
        customers.forget_partitions({tp.partition for tp in revoked if tp.topic == settings.contacts_topic})
        queues.forget_partitions({tp.partition for tp in revoked if tp.topic == settings.outcomes_topic})

    from streamer.export.web import install_pages

    install_pages(app, pipeline)
    return app


def consumer_lag(app: faust.App) -> dict[tuple[str, int], int]:
    """Records between the last one read and the end of each assigned partition."""
    consumer = app.consumer
    lag: dict[tuple[str, int], int] = {}
    try:
        assignment = consumer.assignment()
    except Exception:
        return lag
    for tp in assignment:
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        read = consumer._read_offset.get(tp)
        if highwater is not None:
            lag[(tp.topic, tp.partition)] = max(0, highwater - ((read + 1) if read is not None else 0))
    return lag
