"""Operating-system facts about the broker process: its pid file, its command line, its ports."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def process_cmdline(pid: int) -> list[str] | None:
    """The argument vector of a process, or None when there is none to read: no such process, a
    zombie, or a process in the instant between exec and the kernel setting up its arguments."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:
        return None
    return raw.decode(errors="replace").rstrip("\0").split("\0")


def is_broker_process(pid: int, properties_file: Path) -> bool:
    """True when `pid` is a Java process running `kafka.Kafka` on exactly this properties file.

    The pid file alone is not trusted: after a crash or reboot its pid may belong to anything.
    """
    argv = process_cmdline(pid)
    if not argv:
        return False
    return Path(argv[0]).name == "java" and "kafka.Kafka" in argv and str(properties_file) in argv


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on host:port. SO_REUSEADDR, as the JVM sets it, so that the
    TIME_WAIT sockets of a broker that just stopped do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def has_exited(pid: int, child: subprocess.Popen[bytes] | None = None) -> bool:
    """True once `pid` is gone; reaps it when it is our own child, so it does not linger as a zombie."""
    if child is not None and child.pid == pid:
        return child.poll() is not None
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return True
    return not is_alive(pid)


def is_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie has exited; only its parent can reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The command name in parentheses may itself hold spaces or parentheses; the state follows it.
    state = stat.rpartition(")")[2].split()[0]
    return state != "Z"


def wait_for_exit(pid: int, timeout: float, child: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while not has_exited(pid, child):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(pid: int, timeout: float, child: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM (Kafka's controlled shutdown), then SIGKILL if it has not exited within `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_for_exit(pid, timeout, child):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_for_exit(pid, 30.0, child)


def die_with_parent() -> None:
    """Run in the child before exec: the kernel sends it SIGTERM when the thread that started it dies.

    Linux only; the parent is the starting *thread*, so start from a thread that lives as long as the
    process (the main thread).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
