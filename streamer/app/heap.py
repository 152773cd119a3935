"""Freed heap memory handed back to the operating system after the work that freed it.

glibc's malloc keeps what the process frees inside its heaps for reuse and returns to the kernel only
the free memory at the very top of the main heap. A worker frees a lot between its allocations that
stay: a batch's fetched records, its facts and serialized rows, the memtables RocksDB has flushed. So
after a burst (a replay, a catch-up, a morning's arrivals) the RSS stays near the burst's peak:
`streamer bench` saw 349 MB of RSS fall to 209 MB with one `malloc_trim(0)` after 100,000 callers had
entered (docs/performance.md). `malloc_trim(0)` gives back every whole free page inside the heaps.

It runs in a thread (ctypes releases the GIL), so the event loop goes on meanwhile; it takes about
10 ms on a heap of a few hundred MB. Where the C library has no `malloc_trim` (musl, macOS) nothing is
done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# A burst has ended when no record was handled for this long: trim then, not seconds later.
QUIET_SECONDS = 1.0
# A page this large (a /metrics of a few hundred queues: about 14 KB each) freed several times its size
# once it was sent: that is work to trim after, as a burst of events is.
LARGE_PAGE_BYTES = 1 << 20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def rss_bytes() -> int:
    """This process's resident set size (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class HeapTrimmer:
    """Decides when to trim, from the count of events the worker has read, and keeps the figures
    `/metrics` shows (`callcenter_worker_heap_trims_total`, `callcenter_worker_heap_released_bytes_total`).

    A trim is due when events were read or a large page was rendered since the last one, and either
    nothing of the kind happened for `QUIET_SECONDS` (a burst ended) or `every_seconds` have passed
    since the last trim (a long run of work). A worker with nothing to do never trims: there is
    nothing new to give back."""

    def __init__(self, every_seconds: float, trim: Callable[[int], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_seconds = every_seconds
        self._trim = trim
        self._clock = clock
        self.trims = 0
        self.released_bytes = 0
        self.last_seconds = 0.0  # how long the last trim took
        self._large_pages = 0
        now = clock()
        self._last_trim = now
        self._work = 0  # events read and large pages rendered, as of the last `due`
        self._work_changed_at = now
        self._work_trimmed = 0  # ... as of the last trim

    @property
    def enabled(self) -> bool:
        return self._trim is not None and self.every_seconds > 0

    def rendered(self, size: int) -> None:
        """A page of `size` bytes was rendered."""
        if size >= LARGE_PAGE_BYTES:
            self._large_pages += 1

    def due(self, events: int) -> bool:
        """`events`: the events the worker has read so far."""
        work = events + self._large_pages
        now = self._clock()
        if work != self._work:
            self._work, self._work_changed_at = work, now
        if not self.enabled or work == self._work_trimmed:
            return False
        return now - self._work_changed_at >= QUIET_SECONDS or now - self._last_trim >= self.every_seconds

    async def trim(self) -> None:
        """Trim now, in a thread: what was freed up to the last `due` goes back."""
        if self._trim is None:
            return
        work = self._work
        before = rss_bytes()
        started = time.perf_counter()
        await asyncio.to_thread(self._trim, 0)
        self.last_seconds = time.perf_counter() - started
        self.released_bytes += max(0, before - rss_bytes())
        self.trims += 1
        self._last_trim = self._clock()
        self._work_trimmed = work
