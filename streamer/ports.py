"""The ports local servers listen on when the project picks them (the bench's broker and workers, the
local broker's controller, the test brokers, workers and Prometheus): free now, outside the kernel's
ephemeral range, and leased so that no two processes on this machine hand out the same one.

Outside the ephemeral range: the kernel takes the source port of every outgoing connection from
that range. A client that keeps connecting to a local port nobody listens on (a worker while its
broker restarts) can be given that very port as its source and connect to itself (TCP simultaneous
open); the server, back up, then fails with "Address already in use". A port below the range is
never handed out that way, so a server that restarts gets its port back.

Leased: a port found free by a bind check is only free until someone else takes it, and a server that
restarts leaves it free for a while. Each port handed out is locked for the life of the process that
took it (or until `release_port`): a POSIX lock on the port's byte of one lock file in the cache dir
(`$STREAMER_CACHE_DIR/ports.lock`), which the kernel drops when the process ends, however it ends.
Processes that pick ports here skip locked ones; the bind check skips ports anything else holds.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import socket
import threading
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# When the kernel's range cannot be read (no /proc, another OS): the usual defaults together, Linux's
# 32768-60999 and the IANA 49152-65535 that BSD, macOS and Windows use.
FALLBACK_EPHEMERAL_RANGE = (32768, 65535)
# Ports are picked from here up: above the fixed ports people and the tests configure (Kafka 9092,
# Prometheus 9090, the worker's 6066, the test brokers' 19092...), below the ephemeral range.
LOWEST_PORT = 20000
LOWEST_UNPRIVILEGED_PORT = 1024
HIGHEST_PORT = 65535
MAX_ATTEMPTS = 500


class PortUnavailable(OSError):
    """No port outside the ephemeral range could be leased; the message says why."""


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (both ends included), or the fallback when unreadable."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return FALLBACK_EPHEMERAL_RANGE
    if not LOWEST_UNPRIVILEGED_PORT // 2 <= low <= high <= HIGHEST_PORT:
        return FALLBACK_EPHEMERAL_RANGE
    return low, high


def candidate_ports(ephemeral: tuple[int, int] | None = None) -> list[int]:
    """The ports this module picks from: LOWEST_PORT and up outside the ephemeral range, or, when the
    range covers all of those, the unprivileged ports below LOWEST_PORT outside it."""
    low, high = ephemeral or ephemeral_range()
    for first, last in ((LOWEST_PORT, HIGHEST_PORT), (LOWEST_UNPRIVILEGED_PORT, LOWEST_PORT - 1)):
        ports = [port for port in range(first, last + 1) if not low <= port <= high]
        if ports:
            return ports
    return []


def lease_port() -> int:
    """A port free on every local address, outside the ephemeral range, leased to this process until
    it exits or calls `release_port`. Raises PortUnavailable when there is none."""
    return _process_leases().lease()


def release_port(port: int) -> None:
    """Give a leased port back (once its server has stopped for good); unknown ports are ignored."""
    _process_leases().release(port)


def is_bindable(port: int) -> bool:
    """True when nothing on this machine holds `port` on any IPv4 address, not even a connection in
    TIME_WAIT: a bind to the wildcard address without SO_REUSEADDR succeeds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("", port))
        except OSError:
            return False
    return True


class PortLeases:
    """A process's leases on one lock file: the file is opened once (closing any descriptor of it
    would drop every POSIX lock the process holds on it), the ports leased are remembered."""

    def __init__(self, lock_path: Path) -> None:
        self._lock_path = lock_path
        self._fd: int | None = None
        self._held: set[int] = set()
        self._mutex = threading.Lock()
        self._random = random.Random()

    def lease(self) -> int:
        candidates = candidate_ports()
        if not candidates:
            low, high = ephemeral_range()
            raise PortUnavailable(f"the ephemeral port range {low}-{high} leaves no port to listen on safely: "
                                  f"narrow it (/proc/sys/net/ipv4/ip_local_port_range)")
        start = self._random.randrange(len(candidates))
        with self._mutex:
            fd = self._open()
            for step in range(min(MAX_ATTEMPTS, len(candidates))):
                port = candidates[(start + step) % len(candidates)]
                if port in self._held or not self._lock(fd, port):
                    continue
                if is_bindable(port):
                    self._held.add(port)
                    return port
                self._unlock(fd, port)
        raise PortUnavailable(f"no free port found in {MAX_ATTEMPTS} tries outside the ephemeral range "
                              f"(from {candidates[0]} to {candidates[-1]})")

    def release(self, port: int) -> None:
        with self._mutex:
            if port in self._held:
                self._held.discard(port)
                if self._fd is not None:
                    self._unlock(self._fd, port)

    def _open(self) -> int | None:
        """The lock file's descriptor; None when it cannot be made (leases then rest on the bind
        check alone, which still keeps ports outside the ephemeral range)."""
        if self._fd is None:
            try:
                self._lock_path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError:
                return None
        return self._fd

    @staticmethod
    def _lock(fd: int | None, port: int) -> bool:
        if fd is None:
            return True
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True

    @staticmethod
    def _unlock(fd: int | None, port: int) -> None:
        if fd is not None:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, port, os.SEEK_SET)


_LEASES: PortLeases | None = None
_LEASES_GUARD = threading.Lock()


def _process_leases() -> PortLeases:
    global _LEASES
    with _LEASES_GUARD:
        if _LEASES is None:
            from streamer.devkafka.settings import cache_root

            _LEASES = PortLeases(cache_root() / "ports.lock")
        return _LEASES
