"""The port rule (streamer/ports.py): outside the kernel's ephemeral range, free on every address,
and never handed out twice on one machine, by one process or by two."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from streamer import ports
from streamer.ports import PortLeases, candidate_ports, ephemeral_range, is_bindable

LINUX_DEFAULT = (32768, 60999)


def test_the_kernels_range_is_read_and_a_bad_or_missing_file_falls_back(tmp_path: Path) -> None:
    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text("40000\t50000\n")
    assert ephemeral_range(range_file) == (40000, 50000)
    for broken in ("", "40000", "x y", "50000 40000", "80 90"):
        range_file.write_text(broken)
        assert ephemeral_range(range_file) == ports.FALLBACK_EPHEMERAL_RANGE
    assert ephemeral_range(tmp_path / "missing") == ports.FALLBACK_EPHEMERAL_RANGE


def test_candidates_avoid_the_ephemeral_range_and_the_configured_ports_below() -> None:
    linux = candidate_ports(LINUX_DEFAULT)
    assert (linux[0], linux[-1]) == (ports.LOWEST_PORT, 65535)
    assert not any(LINUX_DEFAULT[0] <= port <= LINUX_DEFAULT[1] for port in linux)
    assert 61000 in linux and 32767 in linux
    fallback = candidate_ports(ports.FALLBACK_EPHEMERAL_RANGE)
    assert (fallback[0], fallback[-1]) == (ports.LOWEST_PORT, 32767)
    # A range over all the high ports leaves the unprivileged ports below LOWEST_PORT.
    low_only = candidate_ports((10000, 65535))
    assert (low_only[0], low_only[-1]) == (1024, 9999)
    assert candidate_ports((1024, 65535)) == []


def test_this_machines_leases_are_outside_its_ephemeral_range(tmp_path: Path) -> None:
    low, high = ephemeral_range()
    leases = PortLeases(tmp_path / "ports.lock")
    leased = [leases.lease() for _ in range(50)]
    assert len(set(leased)) == 50
    assert not any(low <= port <= high for port in leased)
    assert all(port >= ports.LOWEST_PORT or high >= 65535 for port in leased)


def test_a_port_something_holds_is_not_bindable_and_a_leased_one_is_free() -> None:
    port = ports.lease_port()
    assert is_bindable(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not is_bindable(port)
    ports.release_port(port)


def test_a_port_in_use_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", ports.lease_port()))
        taken = occupant.getsockname()[1]
        monkeypatch.setattr(ports, "candidate_ports", lambda: [taken, taken + 1])
        assert PortLeases(tmp_path / "ports.lock").lease() == taken + 1


def test_released_ports_can_be_leased_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    only = ports.lease_port()
    ports.release_port(only)
    monkeypatch.setattr(ports, "candidate_ports", lambda: [only])
    leases = PortLeases(tmp_path / "ports.lock")
    assert leases.lease() == only
    with pytest.raises(ports.PortUnavailable, match="no free port"):
        leases.lease()
    leases.release(only)
    assert leases.lease() == only


def test_two_processes_never_lease_the_same_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both processes pick from the same two ports; the lock leaves each one its own, and this one
    finds nothing left while the other holds its lease, and gets it once the other has exited."""
    lock = tmp_path / "ports.lock"
    pair = sorted(PortLeases(tmp_path / "probe.lock").lease() for _ in range(2))
    child = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from streamer import ports
        ports.candidate_ports = lambda: {pair}
        leases = ports.PortLeases(Path({str(lock)!r}))
        print(leases.lease(), flush=True)
        sys.stdin.readline()  # hold the lease until told
    """)
    monkeypatch.setattr(ports, "candidate_ports", lambda: pair)
    mine = PortLeases(lock)
    holder = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        assert {held, mine.lease()} == set(pair)
        with pytest.raises(ports.PortUnavailable):
            mine.lease()
    finally:
        holder.communicate("\n", timeout=30)
    assert mine.lease() == held  # the kernel dropped the lock of the process that exited
