"""Where the local broker keeps its jars and data, which Kafka it runs, and where clients find a broker.

Environment:
- `STREAMER_CACHE_DIR`: root of the jar cache and the data dirs (default `$XDG_CACHE_HOME/streamer`,
  else `~/.cache/streamer`).
- `STREAMER_KAFKA_VERSION`: the Apache Kafka release to run (default `DEFAULT_KAFKA_VERSION`).
- `KAFKA_BOOTSTRAP_SERVERS`: the broker every `streamer` command talks to (default `127.0.0.1:9092`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from streamer.devkafka.errors import DevKafkaError

DEFAULT_KAFKA_VERSION = "3.9.1"
DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
LOOPBACK_HOST = "127.0.0.1"
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def cache_root() -> Path:
    if configured := os.environ.get("STREAMER_CACHE_DIR"):
        return Path(configured).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg_cache) if xdg_cache else Path.home() / ".cache") / "streamer"


def kafka_version() -> str:
    return os.environ.get("STREAMER_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


def kafka_major(version: str) -> int:
    """The major release number; only KRaft-capable releases (3.x and later) are accepted."""
    match = _RELEASE.fullmatch(version)
    if match is None or int(match.group(1)) < 3:
        raise DevKafkaError(
            f"Kafka version {version!r} is not supported: give a release like 3.9.1 or 4.1.1 "
            "(STREAMER_KAFKA_VERSION); the local broker runs in KRaft mode, which needs Kafka 3.x or later."
        )
    return int(match.group(1))


def libs_dir(version: str) -> Path:
    return cache_root() / "kafka" / version / "libs"


def default_data_dir(port: int) -> Path:
    """One data dir per broker port, so several local brokers can run side by side."""
    return cache_root() / "kafka-data" / str(port)


def bootstrap_servers() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP_SERVERS


def local_broker_port(bootstrap: str) -> int:
    """The port of the first bootstrap server, which must be on this machine's loopback."""
    first = bootstrap.split(",")[0].strip().removeprefix("kafka://")
    host, separator, port = first.rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536:
        raise DevKafkaError(
            f"cannot read a port from KAFKA_BOOTSTRAP_SERVERS={bootstrap!r}: expected HOST:PORT, "
            "e.g. 127.0.0.1:9092"
        )
    if host.lower() not in _LOOPBACK_NAMES:
        raise DevKafkaError(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap!r} names a broker on {host}, but `streamer kafka` manages "
            "only a local development broker on 127.0.0.1: pass --port N, or unset KAFKA_BOOTSTRAP_SERVERS "
            "(an existing cluster needs no `streamer kafka` at all)"
        )
    return int(port)
