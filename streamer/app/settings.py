"""Worker settings from the environment, checked at start-up with messages that name the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


class SettingsError(ValueError):
    """A worker setting that cannot be used; the message names the variable and why."""


def bootstrap_servers(env: Mapping[str, str] | None = None) -> str:
    """The broker list every command uses: $KAFKA_BOOTSTRAP_SERVERS, else the local broker."""
    env = os.environ if env is None else env
    value = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or DEFAULT_BOOTSTRAP
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS = {value!r}: expected host:port[,host:port...], e.g. 127.0.0.1:9092"
            )
    return value


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    app_id: str = "streamer"
    events_topic: str = "call-events"
    outcomes_topic: str = "call-outcomes"
    intervals_topic: str = "queue-intervals"
    dlq_topic: str = "call-events-dlq"
    event_partitions: int = 4
    outcome_partitions: int = 4
    replication_factor: int = 1
    standby_replicas: int = 0
    store: str = "rocksdb://"
    rocksdb_block_cache_mb: int = 16
    web_host: str = "127.0.0.1"
    web_tables: bool = False
    emit_every_seconds: float = 1.0
    batch_size: int = 2000
    faust_metrics: bool = True
    batch_seconds: float = 0.05

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{server.strip()}" for server in self.bootstrap.split(",")]


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} = {raw!r}: must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} = {raw!r}: must be between {low} and {high}")
    return value


def _topic(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "") or default
    if not value or len(value) > 249 or not all(c.isalnum() or c in "._-" for c in value):
        raise SettingsError(f"{name} = {value!r}: a Kafka topic name uses only letters, digits, '.', '_', '-'")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} = {raw!r}: must be true or false")


def load_worker_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    env = os.environ if env is None else env
    store = env.get("STREAMER_STORE", "") or "rocksdb://"
    if store not in ("rocksdb://", "memory://"):
        raise SettingsError(f"STREAMER_STORE = {store!r}: must be rocksdb:// or memory://")
    events_partitions = _int(env, "STREAMER_PARTITIONS", 4, 1, 1024)
    return WorkerSettings(
        bootstrap=bootstrap_servers(env),
        app_id=_topic(env, "STREAMER_APP_ID", "streamer"),
        events_topic=_topic(env, "STREAMER_TOPIC_EVENTS", "call-events"),
        outcomes_topic=_topic(env, "STREAMER_TOPIC_OUTCOMES", "call-outcomes"),
        intervals_topic=_topic(env, "STREAMER_TOPIC_INTERVALS", "queue-intervals"),
        dlq_topic=_topic(env, "STREAMER_TOPIC_DLQ", "call-events-dlq"),
        event_partitions=events_partitions,
        outcome_partitions=_int(env, "STREAMER_OUTCOME_PARTITIONS", events_partitions, 1, 1024),
        replication_factor=_int(env, "STREAMER_REPLICATION_FACTOR", 1, 1, 16),
        standby_replicas=_int(env, "STREAMER_STANDBY_REPLICAS", 0, 0, 8),
        store=store,
        rocksdb_block_cache_mb=_int(env, "STREAMER_ROCKSDB_BLOCK_CACHE_MB", 16, 1, 65536),
        web_host=env.get("STREAMER_WEB_HOST", "") or "127.0.0.1",
        web_tables=_bool(env, "STREAMER_WEB_TABLES", False),
        faust_metrics=_bool(env, "STREAMER_FAUST_METRICS", True),
    )
