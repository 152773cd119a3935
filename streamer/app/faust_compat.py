"""Where the pipeline leans on a Faust detail, in one place.

Faust's tables write to the changelog partition (and RocksDB store) of the *current event*. When a
batch from `stream.take_events()` mixes partitions, each partition's writes must run with one of its
own events as the current event, or a key would land in another partition's changelog and be lost
to the worker that recovers it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.stores.base import SerializedStore
from faust.streams import _current_event
from faust.tables.table import Table


@contextmanager
def as_current_event(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def raw_table(app: Any, name: str, partitions: int, options: dict[str, Any],
              keep: Callable[[bytes | None, bytes | None], bool] | None = None) -> Any:
    """A table of str keys and bytes values that we encode ourselves (orjson), skipping Faust's codecs.

    `keep(local, incoming)`, when given, decides whether a changelog record read back into the table
    (recovery, standby replicas) replaces the value held locally; by default it always does."""
    if keep is None:
        table = app.Table(name, partitions=partitions, key_type=str, value_type=bytes, options=options)
    else:
        table = app.tables.add(_GuardedTable(app, keep, name=name, beacon=app.tables.beacon, partitions=partitions,
                                             key_type=str, value_type=bytes, options=options))
    table.key_serializer = "raw"
    table.value_serializer = "raw"
    # The changelog topic was made with the serializers of the types (json for str keys); recovery reads
    # keys back through it, so make it again with the raw ones.
    table.changelog_topic = table._new_changelog_topic()
    return table


class _GuardedTable(Table):
    def __init__(self, app: Any, keep: Callable[[bytes | None, bytes | None], bool], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._keep = keep

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        newest: dict[bytes, bytes | None] = {}
        chosen = []
        for event in batch:
            key, value = event.message.key, event.message.value
            local = newest[key] if key in newest else self._local(key)
            if self._keep(local, value):
                newest[key] = value
                chosen.append(event)
        super().apply_changelog_batch(chosen)

    def _local(self, key: bytes) -> bytes | None:
        store = self.data
        if isinstance(store, SerializedStore):  # RocksDB: raw bytes in, raw bytes out
            return store._get(key)
        return store.get(key.decode())  # memory: the table's own keys and values


def assigned_partitions(app: Any, topic: str) -> set[int]:
    """The partitions of `topic` assigned to this worker now (none while it is not started)."""
    try:
        assignment = app.consumer.assignment()
    except Exception:  # not started or stopping
        return set()
    return {tp.partition for tp in assignment if tp.topic == topic}


def committed_offsets(app: Any, topic: str) -> dict[int, int]:
    """partition -> the next offset to read as committed by this worker's consumer group, for the
    assigned partitions of `topic` that have a commit."""
    committed = app.consumer._committed_offset
    return {tp.partition: offset for tp, offset in list(committed.items())
            if tp.topic == topic and offset is not None and tp.partition in assigned_partitions(app, topic)}


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
