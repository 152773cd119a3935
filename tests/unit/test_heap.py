"""The heap trimmer: when a trim is due, and that glibc's malloc_trim really gives freed memory back."""

from __future__ import annotations

import asyncio

import pytest

from streamer.app import heap
from streamer.app.heap import LARGE_PAGE_BYTES, QUIET_SECONDS, HeapTrimmer
from streamer.app.settings import SettingsError, load_worker_settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trimmer(every: float = 10.0) -> tuple[HeapTrimmer, Clock, list[int]]:
    clock, calls = Clock(), []
    return HeapTrimmer(every, trim=lambda pad: calls.append(pad) or 1, clock=clock), clock, calls


def test_nothing_is_due_before_any_work() -> None:
    trim, clock, _ = trimmer()
    clock.now += 60
    assert not trim.due(0)


def test_a_trim_is_due_once_a_burst_of_events_has_stopped() -> None:
    trim, clock, calls = trimmer()
    assert not trim.due(500)  # events are still coming
    clock.now += QUIET_SECONDS / 2
    assert not trim.due(900)
    clock.now += QUIET_SECONDS / 2
    assert not trim.due(900)  # quiet for half the time only
    clock.now += QUIET_SECONDS / 2
    assert trim.due(900)
    asyncio.run(trim.trim())
    assert calls == [0] and trim.trims == 1
    clock.now += 30
    assert not trim.due(900), "nothing new since the trim"


def test_a_long_run_of_work_is_trimmed_every_period() -> None:
    trim, clock, _ = trimmer(every=10.0)
    events = 0
    trims_at = []
    for _ in range(25):  # events every half second for 12.5 s: never quiet
        events += 100
        clock.now += 0.5
        if trim.due(events):
            asyncio.run(trim.trim())
            trims_at.append(clock.now - 100)
    assert trims_at == [10.0]


def test_a_large_page_is_work_a_small_one_is_not() -> None:
    trim, clock, _ = trimmer()
    trim.rendered(LARGE_PAGE_BYTES - 1)
    clock.now += 5
    assert not trim.due(0)
    trim.rendered(LARGE_PAGE_BYTES)
    assert not trim.due(0)
    clock.now += QUIET_SECONDS
    assert trim.due(0)


def test_off_when_the_period_is_zero_or_the_library_has_no_trim() -> None:
    for off in (HeapTrimmer(0, trim=lambda pad: 1), HeapTrimmer(10, trim=None)):
        assert not off.enabled
        off.due(1000)
        assert not off.due(2000)


def test_the_period_setting_is_checked() -> None:
    assert load_worker_settings({}).heap_trim_seconds == 10
    assert load_worker_settings({"STREAMER_HEAP_TRIM_SECONDS": "0"}).heap_trim_seconds == 0
    for bad in ("-1", "ten", "3601"):
        with pytest.raises(SettingsError, match="STREAMER_HEAP_TRIM_SECONDS"):
            load_worker_settings({"STREAMER_HEAP_TRIM_SECONDS": bad})


def test_glibc_malloc_trim_gives_freed_heap_memory_back() -> None:
    trim = heap.malloc_trim()
    if trim is None:
        pytest.skip("this C library has no malloc_trim")
    # Blocks under the mmap threshold live inside the heap; keeping every tenth one pins the heap's top,
    # so freeing the others returns nothing to the OS until a trim.
    blocks = [bytearray(64 * 1024) for _ in range(3000)]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    kept = blocks[9::10]
    del blocks
    before = heap.rss_bytes()
    trimmer_ = HeapTrimmer(10, trim)
    trimmer_.due(1)
    asyncio.run(trimmer_.trim())
    released = before - heap.rss_bytes()
    assert released > 100 * 1024 * 1024, f"{released} bytes released"
    assert abs(trimmer_.released_bytes - released) < 1024 * 1024 and trimmer_.trims == 1
    assert len(kept) == 300
