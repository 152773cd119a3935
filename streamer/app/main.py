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

from streamer.app import records
from streamer.app.faust_compat import as_current_event, quiet_monitor_class, raw_table
from streamer.app.health import Health
from streamer.app.settings import WorkerSettings, load_worker_settings
from streamer.app.shutdown import install_stop_deadline
from streamer.app.stage1 import CallStage, newer_row
from streamer.app.stage2 import QueueStage
from streamer.core.config import Config, load_config

log = logging.getLogger(__name__)


class Pipeline:
    """The running pieces of one worker, for the web pages and the exporter to read."""

    def __init__(self, app: faust.App, settings: WorkerSettings, config: Config, health: Health,
                 calls: CallStage, queues: QueueStage, topics: dict[str, Any]) -> None:
        self.app, self.settings, self.config, self.health = app, settings, config, health
        self.calls, self.queues, self.topics = calls, queues, topics
        self.started = time.time()

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        return consumer_lag(self.app)


def create_app(settings: WorkerSettings | None = None, config: Config | None = None) -> faust.App:
    settings = settings or load_worker_settings()
    config = config or load_config()
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
        stream_buffer_maxsize=4096,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        producer_linger=0.005,
        broker_credentials=settings.security.faust_credentials(),
        **({} if settings.faust_metrics else {"Monitor": quiet_monitor_class()}),
    )
    for warning in settings.security.warnings():
        log.warning("%s", warning)
    # A memtable is flushed when it reaches write_buffer_size: Faust's 64 MB would let each database
    # hold that much of its recent writes in RAM (a week of the demo day never fills it: RSS grew all
    # week in `streamer bench --only soak`), so the worker's memory would depend on its age.
    rocks = {"block_cache_size": settings.rocksdb_block_cache_mb * 1024 * 1024,
             "block_cache_compressed_size": settings.rocksdb_block_cache_mb * 1024 * 1024,
             "write_buffer_size": settings.rocksdb_write_buffer_mb * 1024 * 1024}
    raw = {"key_type": str, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.events_topic, partitions=settings.event_partitions, internal=True, **raw)
    outcomes = app.topic(settings.outcomes_topic, partitions=settings.outcome_partitions, internal=True, **raw)
    intervals = app.topic(settings.intervals_topic, partitions=settings.outcome_partitions, internal=True,
                          compacting=True, **raw)
    dlq = app.topic(settings.dlq_topic, partitions=settings.event_partitions, internal=True,
                    retention=14 * 86400, **raw)

    def table(name: str, partitions: int) -> Any:
        return raw_table(app, name, partitions, rocks)

    health = Health()
    calls = CallStage(config, raw_table(app, "calls", settings.event_partitions, rocks, keep=newer_row),
                      settings.event_partitions, health)
    queue_tables = {name: table(f"queue-{name}", settings.outcome_partitions)
                    for name in ("buckets", "waiting", "agents")}
    queues = QueueStage(config, queue_tables, settings.event_partitions, settings.outcome_partitions, health)
    pipeline = Pipeline(app, settings, config, health, calls, queues,
                        {"events": events, "outcomes": outcomes, "intervals": intervals, "dlq": dlq})
    app.pipeline = pipeline  # type: ignore[attr-defined]

    @app.agent(events, concurrency=1)
    async def track_calls(stream: Any) -> None:
        # Batches amortise Faust's per-record costs; Faust acks a batch only after this body ran.
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            per_queue: dict[str, tuple[list, list]] = {}
            dead = []
            done = []
            for partition, part in assigned_parts(app, settings.events_topic, batch).items():
                output = calls.process(partition, [(event.message.offset, event.message.value) for event in part])
                done.append((partition, part[-1], output))
                for queue, facts in output.facts.items():
                    per_queue.setdefault(queue, ([], []))[0].extend(facts)
                for queue, agent_states in output.agents.items():
                    per_queue.setdefault(queue, ([], []))[1].extend(agent_states)
                dead.extend((part[index].message, reason, detail) for index, reason, detail in output.dead)
            sent = [await outcomes.send(key=queue.encode(), value=records.batch_record(facts, agent_states))
                    for queue, (facts, agent_states) in per_queue.items()]
            sent.extend([await dlq.send(key=message.key, value=message.value, headers=records.dead_letter_headers(
                reason, detail, message.topic, message.partition, message.offset)) for message, reason, detail in dead])
            # Delivered before the call table records the batch: a crash in between makes the restarted
            # worker send them again (stage 2 counts a fact once), never lose them.
            await asyncio.gather(*sent)
            for partition, last, output in done:
                with as_current_event(last):
                    if calls.flush(partition, last.message.offset, output):
                        calls.published[partition] = output.tracker.stream_time

    @app.agent(outcomes, concurrency=1)
    async def aggregate_queues(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_seconds):
            for partition, part in assigned_parts(app, settings.outcomes_topic, batch).items():
                for event in part:
                    key = event.message.key
                    queues.handle(key.decode() if isinstance(key, bytes) else (key or ""), event.message.value,
                                  partition)
                with as_current_event(part[-1]):
                    queues.flush(partition)

    @app.timer(settings.emit_every_seconds)
    async def publish_progress() -> None:
        assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.events_topic}
        for partition, stream_time, idle in calls.progress(assigned, config.limits.idle_seconds):
            value = records.progress_record(partition, stream_time, idle)
            for target in range(settings.outcome_partitions):
                await outcomes.send(value=value, partition=target)

    @app.timer(settings.emit_every_seconds)
    async def emit_closed_intervals() -> None:
        for key, block in queues.due_intervals(config.limits.idle_seconds):
            await intervals.send(key=key.encode(), value=orjson.dumps(block))
            health.intervals_emitted += 1

    @app.task
    async def bound_shutdown() -> None:
        install_stop_deadline(asyncio.get_running_loop())

    assigned_at: dict[str, float] = {}

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set, **kwargs: Any) -> None:
        assigned_at["at"] = time.monotonic()

    @app.on_rebalance_complete.connect
    async def on_recovered(app: faust.App, **kwargs: Any) -> None:
        # Faust logs the steps of a recovery; this is the figure to watch: assignment to ready.
        started = assigned_at.pop("at", None)
        if started is not None:
            log.info("recovery: partitions assigned and tables restored in %.2f s", time.monotonic() - started)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set, **kwargs: Any) -> None:
        calls.forget_partitions({tp.partition for tp in revoked if tp.topic == settings.events_topic})
        queues.forget_partitions({tp.partition for tp in revoked if tp.topic == settings.outcomes_topic})

    from streamer.export.web import install_pages

    install_pages(app, pipeline)
    return app


def assigned_parts(app: faust.App, topic: str, batch: list[Any]) -> dict[int, list[Any]]:
    """A batch's events grouped by partition, each group in offset order, without the partitions this
    worker no longer owns: a batch gathered before a rebalance is read again by their new owner, and
    acting on it here would recreate state (and stale metric series) for partitions owned elsewhere."""
    assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
    groups: dict[int, list[Any]] = {}
    for event in batch:
        if event.message.partition in assigned:
            groups.setdefault(event.message.partition, []).append(event)
    return groups


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
