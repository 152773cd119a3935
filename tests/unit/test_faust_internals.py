"""The faust-streaming internals `streamer/app/bulk.py` relies on, checked against the pinned version.

The bulk path mirrors some of Faust's own code (the drain loop, per-message acks, how a store applies
its changelog) and reads or writes private attributes. When faust-streaming changes any of them, these
tests fail with what changed, so the module is re-read against the new source before anything runs
silently differently or slower. A new version: update FAUST_VERSION and, after reviewing each diff, the
hashes below.
"""

from __future__ import annotations

import hashlib
import inspect
import tomllib
from pathlib import Path

import faust
import pytest
from faust.stores import memory, rocksdb
from faust.tables import base as tables_base
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from streamer.app import bulk

# sha256 (first 16 hex digits) of the source of the upstream code bulk.py mirrors or depends on.
MIRRORED = {
    "faust.transport.consumer.Consumer._drain_messages": (faust_consumer.Consumer._drain_messages,
                                                          "44a2500309e83c63"),
    "faust.transport.consumer.Consumer.getmany": (faust_consumer.Consumer.getmany, "4b168d84882a70d6"),
    "faust.transport.consumer.Consumer.ack": (faust_consumer.Consumer.ack, "5fcf41cf45153475"),
    "faust.transport.consumer.Consumer._new_offset": (faust_consumer.Consumer._new_offset, "1d2c7ea89a7ad4f1"),
    "faust.stores.rocksdb.Store.apply_changelog_batch": (rocksdb.Store.apply_changelog_batch, "ea3344d369fc4ab5"),
    "faust.stores.memory.Store._create_batch_iterator": (memory.Store._create_batch_iterator, "b082c8bcc0403823"),
    "faust.tables.base.Collection._on_changelog_sent": (tables_base.Collection._on_changelog_sent,
                                                        "60122c86a120d82c"),
}


def test_the_pinned_faust_version_is_installed_and_declared() -> None:
    assert faust.__version__ == bulk.FAUST_VERSION, (
        f"faust-streaming {faust.__version__} is installed, streamer/app/bulk.py was checked against "
        f"{bulk.FAUST_VERSION}: review the internals it uses, then update FAUST_VERSION")
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert f"faust-streaming[rocksdict]=={bulk.FAUST_VERSION}" in project["project"]["dependencies"]


@pytest.mark.parametrize("name", sorted(MIRRORED))
def test_mirrored_upstream_code_is_unchanged(name: str) -> None:
    function, expected = MIRRORED[name]
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == expected, (
        f"{name} changed in faust-streaming {faust.__version__} (source hash {digest}, checked: {expected}): "
        "streamer/app/bulk.py mirrors or depends on it; re-read it, adapt bulk.py, then update the hash")


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_consumer_internals_the_bulk_drain_loop_uses() -> None:
    consumer = faust_aiokafka.Consumer
    assert issubclass(bulk.BulkConsumer, consumer)
    assert faust_aiokafka.Transport.Consumer is consumer
    assert _parameters(consumer._wait_next_records) == ["self", "timeout"]
    assert _parameters(consumer._add_gap) == ["self", "tp", "offset_from", "offset_to"]
    assert _parameters(consumer._to_message) == ["self", "tp", "record"]
    for method in ("perform_seek", "commit", "highwater", "assignment", "wait_first", "sleep"):
        assert callable(getattr(consumer, method)), method
    assert faust_consumer.CONSUMER_FETCHING and faust_consumer.ack_lock is not None
    # attributes set in Consumer.__init__: read from its source, as instances need a running app
    init = inspect.getsource(faust_consumer.Consumer.__init__)
    for attribute in ("_acked", "_acked_index", "_read_offset", "_committed_offset", "_buffered_partitions",
                      "_commit_every"):
        assert f"self.{attribute} =" in init, attribute
    assert "_n_acked: int = 0" in inspect.getsource(faust_consumer.Consumer)
    assert "def flow_active" in inspect.getsource(faust_consumer.Consumer) or hasattr(consumer, "flow_active")
    assert "self.suspend_flow" in inspect.getsource(faust_consumer.Consumer)


def test_app_and_table_internals() -> None:
    app_source = inspect.getsource(faust.App)
    assert "_transport: Optional[TransportT] = None" in app_source
    assert "consumer_generation_id: int = 0" in inspect.getsource(faust.types.app.AppT)
    assert _parameters(faust_aiokafka.Producer.send)[:7] == ["self", "topic", "key", "value", "partition",
                                                           "timestamp", "headers"]
    assert rocksdb.Store.offset_key == b"__faust\0offset__"
    assert _parameters(rocksdb.Store.set_persisted_offset) == ["self", "tp", "offset"]
    assert _parameters(rocksdb.Store._db_for_partition) == ["self", "partition"]
    assert "self._key_partition" in inspect.getsource(memory.Store.__post_init__)
    assert "stream_inbound_time" in inspect.getsource(faust.sensors.monitor.Monitor)
    assert hasattr(faust.tables.table.Table, "_new_changelog_topic")
