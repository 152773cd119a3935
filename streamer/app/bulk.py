"""Every contact the pipeline has with faust-streaming's internals, in one place, for the version pinned
in pyproject.toml (`FAUST_VERSION`; tests/unit/test_faust_internals.py fails loudly when one of them
changes).

Faust stays the application: the consumer group and its rebalancing, the tables with their changelog
topics, recovery and standby replicas, the web server, the timers. Two things are done differently:

- **Records of the stages' topics reach them a partition batch at a time.** Faust hands every record
  to its stream machinery one by one (a task race per record in `Consumer._drain_messages`, the
  conductor, a channel queue, the stream iterator, per-record acks and sensors): about 60 µs of
  asyncio per record on these machines, more than the pipeline's own work. `BulkConsumer` replaces
  the drain loop: records of a routed topic go to its handler as the whole list aiokafka fetched for
  one partition, and are acknowledged (so Faust commits them) only once the handler has finished:
  at-least-once, with nothing acknowledged that was not processed, also when the worker stops or is
  cancelled mid-batch. Every other topic (the tables' changelogs: recovery, standby replicas) keeps
  Faust's own path.
- **Table writes go a batch at a time, changelog first.** `TableWriter` sends a batch's changed keys
  to the table's changelog partition, waits until Kafka has them, then writes them to the local store
  (RocksDB or memory) and records the changelog offset as the store's persisted offset, as Faust's
  recovery does. The local store is therefore never ahead of its changelog, so a worker restarted on
  its data dir and a worker rebuilding from the changelog hold the same rows.

A rebalance waits for the batch in flight (`BulkRoutes.idle()`), so a partition is handed over with
its effects complete; `stream_wait_empty` stays off (no Faust stream holds records).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.stores import memory as memory_store
from faust.transport.consumer import CONSUMER_FETCHING, ack_lock
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

FAUST_VERSION = "0.15.3"

log = logging.getLogger(__name__)

# (partition, records) -> None; the records are aiokafka ConsumerRecords of one partition, in offset
# order. The handler owns the batch's effects; returning means they are complete.
BatchHandler = Callable[[int, list[Any]], Awaitable[None]]


@dataclass
class BulkRoutes:
    """Which topics go to which batch handler, and the batches in flight."""

    handlers: dict[str, BatchHandler] = field(default_factory=dict)
    in_flight: set[asyncio.Future] = field(default_factory=set)
    batches: int = 0
    records: int = 0

    def add(self, topic: str, handler: BatchHandler) -> None:
        self.handlers[topic] = handler

    async def idle(self) -> None:
        """Wait for the batches in flight to finish (a rebalance calls this before handing over)."""
        pending = [task for task in self.in_flight if not task.done()]
        if pending:
            await asyncio.wait(pending)


class BulkConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, whose drain loop hands routed topics' records over a partition batch
    at a time. Everything else (subscription, rebalancing, commits, recovery) is Faust's."""

    _fetch_paused: set[TopicPartition] = set()  # noqa: RUF012 - replaced per instance, never mutated

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._syncing: set[asyncio.Future] = set()

    async def _drain_messages(self, fetcher: Any) -> None:  # mirrors Consumer._drain_messages
        routes: BulkRoutes = self.transport.routes  # type: ignore[attr-defined]
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self._fetch_only_active()
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    continue
                if not self.flow_active:
                    # As Faust's getmany: records fetched while the flow was stopped (a rebalance)
                    # are dropped and the partitions sought back to their committed offsets.
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning(f"exception performing seek when flow not active {exc}")
                    continue
                generation = self.app.consumer_generation_id
                routed = []
                for tp, batch in records.items():
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        break
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    handler = routes.handlers.get(tp.topic)
                    if handler is None:
                        await self._deliver_one_by_one(tp, batch)
                    elif batch := await self._new_records(tp, batch):
                        routed.append((tp, handler, batch))
                if routed:
                    await self._deliver_batches(routes, routed, generation)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        super().pause_partitions(tps)
        self._sync_fetching()

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        super().resume_partitions(tps)
        self._sync_fetching()

    def _sync_fetching(self) -> None:
        task = asyncio.ensure_future(self._fetch_only_active())
        self._syncing.add(task)
        task.add_done_callback(self._syncing.discard)

    async def _fetch_only_active(self) -> None:
        """Have aiokafka fetch only the partitions Faust delivers. Faust "pauses" a partition by leaving
        it out of the ones it drains (its tables' changelogs, outside recovery and standbys), but aiokafka
        keeps fetching it: records the worker itself just wrote pile up unconsumed, and aiokafka sends no
        new fetch to the broker while a partition's records wait, so the active partitions stall for up
        to a second at a time. Pausing them in aiokafka too stops that. Idempotent: it applies the
        pauses as they are when it runs."""
        try:
            assignment = self.assignment()
            consumer = self._thread._ensure_consumer()
        except Exception:  # not started, or stopping
            return
        idle = {TopicPartition(tp.topic, tp.partition) for tp in assignment if tp in self._paused_partitions}
        if idle == self._fetch_paused:
            return
        self._fetch_paused = idle

        async def apply() -> None:
            assigned = consumer.assignment()
            resume = [tp for tp in consumer.paused() if tp not in idle and tp in assigned]
            if resume:
                consumer.resume(*resume)
            pause = [tp for tp in idle if tp in assigned]
            if pause:
                consumer.pause(*pause)

        await self._thread.call_thread(apply)

    async def _deliver_one_by_one(self, tp: TP, batch: list[Any]) -> None:
        """Faust's own per-record path (changelog topics: recovery and standby replicas)."""
        read_offset = self._read_offset
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        for record in batch:
            r_offset = read_offset[tp]
            offset = record.offset
            if r_offset is not None and offset < r_offset:
                continue
            if r_offset and offset - r_offset > 1 and acks_enabled:
                await self._add_gap(tp, r_offset + 1, offset)
            await self._maybe_commit()
            message = self._to_message(tp, record)
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            read_offset[tp] = offset

    async def _new_records(self, tp: TP, batch: list[Any]) -> list[Any]:
        """The records of `batch` not read before (as Faust's drain loop, by the read offset); a gap
        before them (compaction, transaction markers) counts as acknowledged, as in Faust."""
        r_offset = self._read_offset[tp]
        if r_offset is not None:
            batch = [record for record in batch if record.offset >= r_offset]
        if batch and r_offset and batch[0].offset - 1 > r_offset:
            await self._add_gap(tp, r_offset + 1, batch[0].offset - 1)
        return batch

    async def _deliver_batches(self, routes: BulkRoutes, routed: list[tuple[TP, BatchHandler, list[Any]]],
                               generation: int) -> None:
        """Hand each partition's batch to its handler, all of them at once (their waits on Kafka overlap;
        a partition has one batch in flight at a time), then acknowledge each one that finished while
        its partition was still ours in the same generation: after a rebalance the new owner reads the
        batch again (its effects are idempotent)."""
        now = time.monotonic()
        for tp, _, _ in routed:
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            # Faust's slow-processing check reads this; its stream would set it per record.
            self.app.monitor.stream_inbound_time[tp] = now
        results, cancelled = await _complete(routes, [handler(tp.partition, batch) for tp, handler, batch in routed])
        failure = None
        for (tp, _, batch), result in zip(routed, results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            routes.batches += 1
            routes.records += len(batch)
            if self.app.consumer_generation_id == generation and tp in self.assignment():
                self._ack_range(tp, batch[0].offset, batch[-1].offset)
                self._read_offset[tp] = batch[-1].offset
        if failure is not None:
            raise failure
        if cancelled:
            raise asyncio.CancelledError
        await self._maybe_commit()

    def _ack_range(self, tp: TP, first: int, last: int) -> None:
        """Acknowledge offsets first..last, as Faust's `Consumer.ack` does one message at a time."""
        with ack_lock:
            committed = self._committed_offset[tp]
            acked_index = self._acked_index[tp]
            acked = self._acked[tp]
            new = [offset for offset in range(max(first, committed or 0), last + 1) if offset not in acked_index]
            acked_index.update(new)
            acked.extend(new)
            self._n_acked += len(new)

    async def _maybe_commit(self) -> None:
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()


async def _complete(routes: BulkRoutes, work: list[Awaitable[None]]) -> tuple[list[Any], bool]:
    """Run batch handlers to their end even when the drain loop is cancelled meanwhile (a worker
    stopping): a half-done batch would be safe (nothing is acknowledged) but cost a replay. Returns
    each handler's result or exception, and whether the loop was cancelled meanwhile."""
    tasks = [asyncio.ensure_future(one) for one in work]
    routes.in_flight = set(tasks)
    everything = asyncio.gather(*tasks, return_exceptions=True)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(everything), cancelled
        except asyncio.CancelledError:
            if everything.done():
                raise
            cancelled = True


class BulkTransport(faust_aiokafka.Transport):
    Consumer = BulkConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.routes = BulkRoutes()


def install(app: faust.App, topics: Iterable[Any]) -> BulkRoutes:
    """Give `app` the bulk consumer (before anything uses its transport) and subscribe it to `topics`,
    whose records the returned routes hand to their handlers."""
    if app._transport is not None:
        raise RuntimeError("install() must run before the app's transport is created")
    transport = BulkTransport(app.conf.broker_consumer, app)
    app.transport = transport
    for topic in topics:
        app.topics.add(topic)
    return transport.routes


# --- tables ------------------------------------------------------------------------------------------

class PartitionedTable:
    """A Faust table of str keys and bytes values, read and written one partition at a time.

    `write(partition, changes)`: every key's new value (None deletes it) is sent to the changelog
    partition; once Kafka has all of them they go to the local store (RocksDB or memory), with the
    newest changelog offset as the store's persisted offset (where Faust's recovery resumes reading).
    `rows(partition)`: the partition's rows in the local store (after Faust's recovery: the changelog's).
    """

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table

    @property
    def changelog(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def rows(self, partition: int) -> Iterator[tuple[str, bytes]]:
        store = self.table.data
        if isinstance(store, memory_store.Store):
            for key, value in list(store.data.items()):
                if store._key_partition.get(key) == partition:
                    yield key, value
            return
        offset_key = store.offset_key
        for key, value in store._db_for_partition(partition).items():
            if key != offset_key:
                yield key.decode(), value

    async def write(self, partition: int, changes: dict[str, bytes | None]) -> None:
        if not changes:
            return
        topic = self.changelog
        batches = Batches(self.app)
        for key, value in changes.items():
            batches.add(topic, partition, key.encode(), value)
        last = await batches.deliver()
        self._store(partition, changes, last[(topic, partition)])

    def _store(self, partition: int, changes: dict[str, bytes | None], offset: int) -> None:
        store = self.table.data
        if isinstance(store, memory_store.Store):
            for key, value in changes.items():
                if value is None:
                    store.data.pop(key, None)
                    store._key_partition.pop(key, None)
                else:
                    store.data[key] = value
                    store._key_partition[key] = partition
            return
        import rocksdict

        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in changes.items():
            if value is None:
                batch.delete(key.encode())
            else:
                batch.put(key.encode(), value)
        store._db_for_partition(partition).write(batch)
        store.set_persisted_offset(TP(self.changelog, partition), offset)


def raw_table(app: faust.App, name: str, partitions: int, options: dict[str, Any]) -> Any:
    """A table of str keys and bytes values that we encode ourselves (orjson), skipping Faust's codecs."""
    table = app.Table(name, partitions=partitions, key_type=str, value_type=bytes, options=options)
    table.key_serializer = "raw"
    table.value_serializer = "raw"
    # The changelog topic was made with the serializers of the types (json for str keys); recovery reads
    # keys back through it, so make it again with the raw ones.
    table.changelog_topic = table._new_changelog_topic()
    return table


class Batches:
    """Records for Kafka gathered into a few record batches per (topic, partition) and sent as such
    (aiokafka's `create_batch`/`send_batch` on Faust's producer): the per-record cost of the
    producer's `send` (a future, a metadata check and a partitioner call per record) is paid per batch.

    `add(...)` the records, then `await deliver()`: every record is in Kafka, in the order added per
    partition; returns the offset of the last record of each (topic, partition).
    """

    def __init__(self, app: faust.App) -> None:
        self.producer = app.producer._ensure_producer()
        self._open: dict[tuple[str, int], Any] = {}
        self._sent: list[tuple[tuple[str, int], Awaitable[Any], int]] = []  # (topic, partition), delivery, records

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            headers: list[tuple[str, bytes]] | None = None) -> None:
        where = (topic, partition)
        batch = self._open.get(where)
        if batch is None:
            batch = self._open[where] = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
            self._close(where)  # full: a new batch takes the record
            batch = self._open[where] = self.producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                raise ValueError(f"a record of {len(value or b'')} bytes does not fit a batch for {topic}")

    def _close(self, where: tuple[str, int]) -> None:
        batch = self._open.pop(where)
        batch.close()
        self._sent.append((where, self.producer.send_batch(batch, where[0], partition=where[1]),
                           batch.record_count()))

    async def deliver(self) -> dict[tuple[str, int], int]:
        for where in list(self._open):
            self._close(where)
        last: dict[tuple[str, int], int] = {}
        sent, self._sent = self._sent, []
        # send_batch waits for the previous batch of its partition to be drained, so submit in order
        deliveries = [(where, await submission, count) for where, submission, count in sent]
        for where, delivery, count in deliveries:
            metadata = await delivery
            last[where] = max(last.get(where, -1), metadata.offset + count - 1)
        return last


async def partition_count(app: faust.App, topic: str) -> int:
    """The number of partitions of `topic`, from the producer's metadata (fetched when missing)."""
    return len(await app.producer._ensure_producer().partitions_for(topic))


# --- reading Faust's state ---------------------------------------------------------------------------

def assigned_partitions(app: faust.App, topic: str) -> set[int]:
    """The partitions of `topic` assigned to this worker now (none while it is not started)."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # not started or stopping
        return set()
    return {tp.partition for tp in assignment if tp.topic == topic}


def committed_offsets(app: faust.App, topic: str) -> dict[int, int]:
    """partition -> the next offset to read as committed by this worker's consumer group, for the
    assigned partitions of `topic` that have a commit."""
    assigned = assigned_partitions(app, topic)
    committed = app.consumer._committed_offset
    return {tp.partition: offset for tp, offset in list(committed.items())
            if tp.topic == topic and offset is not None and tp.partition in assigned}


def read_offsets(app: faust.App, topic: str) -> dict[int, int]:
    """partition -> offset of the last record read by this worker (None entries left out)."""
    read = app.consumer._read_offset
    return {tp.partition: offset for tp, offset in list(read.items()) if tp.topic == topic and offset is not None}


def quiet_monitor_class() -> type:
    """A Faust Monitor that records nothing per message.

    Faust calls its monitor for every message in and out, every send and every table access; with the
    Prometheus monitor that is a measurable share of a worker's CPU (docs/performance.md). With
    STREAMER_FAUST_METRICS=false this one replaces it, and the faust_* metrics are not exported.
    """
    from faust.sensors.monitor import Monitor

    def ignore(*args: Any, **kwargs: Any) -> None:
        return None

    hot = ("on_message_in", "on_stream_event_in", "on_stream_event_out", "on_message_out", "on_table_get",
           "on_table_set", "on_table_del", "on_send_initiated", "on_send_completed", "on_send_error",
           "on_commit_initiated", "on_commit_completed", "on_topic_buffer_full", "on_assignment_start",
           "on_assignment_completed", "on_assignment_error", "on_rebalance_start", "on_rebalance_return",
           "on_rebalance_end", "on_web_request_start", "on_web_request_end", "on_threaded_producer_buffer_processed")
    return type("QuietMonitor", (Monitor,), {name: ignore for name in hot})
