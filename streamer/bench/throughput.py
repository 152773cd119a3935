"""Sustained throughput of worker processes through both stages, on a stream produced beforehand.

The workers start on a topic that already holds the whole stream, and the bench reads their
/metrics every half second: stage 1's `callcenter_events_total` (every record read, by result) and
stage 2's `callcenter_calls_entered_total` (queue visits applied to the queue tables). The clock
starts at the first reading where every worker has counted an event (so start-up, the group join
and a second worker's rebalance are outside the window) and stops when both counts reach the
stream's totals; that moment is interpolated linearly between the two readings around it, so the
half-second reading period costs no resolution at the end. A read of /metrics costs the worker
about 6 ms of CPU with a handful of queues, so reading every half second takes about 1 % of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from streamer.bench.profile import Profile, Profiler
from streamer.bench.scrape import metric_sum
from streamer.bench.stream import History
from streamer.bench.worker import WorkerFailed, WorkerProcess

POLL_SECONDS = 0.5
STALL_SECONDS = 90.0
START_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    events: float  # stage 1: records counted, summed over the workers
    entered: float  # stage 2: queue visits applied, summed over the workers
    cpu_seconds: float  # summed over the workers
    all_counting: bool  # every worker has counted at least one record


@dataclass(frozen=True)
class ThroughputRun:
    events_per_second: float
    seconds: float
    events_per_cpu_second: float
    rss_bytes: int  # summed over the workers, at the end
    window_share: float  # share of the stream processed inside the timed window
    profile: Profile | None = None


def crossing(readings: list[Reading], value: Callable[[Reading], float], target: float) -> float:
    """When `value` reached `target`, interpolated between the readings around that moment."""
    if value(readings[0]) >= target:
        return readings[0].at
    for before, after in pairwise(readings):
        if value(after) >= target:
            share = (target - value(before)) / (value(after) - value(before))
            return before.at + share * (after.at - before.at)
    raise ValueError(f"never reached {target}")


def sustained(readings: list[Reading], events: int, entered: int) -> tuple[float, float, Reading, Reading]:
    """(events per second, seconds, the first reading of the window, the first complete reading)."""
    first = next(i for i, r in enumerate(readings) if r.all_counting)
    start = readings[first]
    if start.events >= events and first > 0:
        # Stage 1 was through the whole stream at its first reading: time from the reading before it,
        # when nothing was counted yet (a lower bound, off by up to one reading period).
        start = readings[first - 1]
    end = next(r for r in readings if r.events >= events and r.entered >= entered)
    if end.at <= start.at:
        raise ValueError(f"the workers processed the whole stream ({events} events) between two readings "
                         f"{POLL_SECONDS} s apart: give more --events to measure throughput")
    window = [r for r in readings if start.at <= r.at <= end.at]
    finished = max(crossing(window, lambda r: r.events, events), crossing(window, lambda r: r.entered, entered))
    seconds = finished - start.at
    return (events - start.events) / seconds, seconds, start, end


def read(workers: list[WorkerProcess]) -> Reading | None:
    """One reading of every worker, or None while one of them does not answer yet."""
    at = time.monotonic()
    events = entered = cpu = 0.0
    all_counting = True
    for worker in workers:
        worker.check_alive()
        try:
            text = worker.metrics()
        except OSError:
            return None
        counted = metric_sum(text, "callcenter_events_total")
        all_counting = all_counting and counted > 0
        events += counted
        entered += metric_sum(text, "callcenter_calls_entered_total")
        cpu += worker.cpu_seconds()
    return Reading(at, events, entered, cpu, all_counting)


def measure(workers: list[WorkerProcess], history: History, profile_to: Path | None = None) -> ThroughputRun:
    """Start `workers` (one consumer group) on the pre-produced history and time them through it.

    The workers are left running (the caller stops them, or restarts one to time recovery). With
    `profile_to`, py-spy samples the first worker during the window.
    """
    for worker in workers:
        worker.spawn()
    readings: list[Reading] = []
    profiler: Profiler | None = None
    began = last_change = time.monotonic()
    while True:
        reading = read(workers)
        now = time.monotonic()
        if (reading is None or not reading.all_counting) and now - began > START_TIMEOUT_SECONDS:
            raise WorkerFailed(f"the workers did not all start counting events within {START_TIMEOUT_SECONDS:.0f} s:"
                               f"\n{workers[0].log_tail()}")
        if reading is not None:
            if readings and (reading.events, reading.entered) != (readings[-1].events, readings[-1].entered):
                last_change = now
            readings.append(reading)
            if profile_to is not None and profiler is None and reading.all_counting:
                profiler = Profiler(workers[0].pid, profile_to)
            if reading.events >= history.count and reading.entered >= history.entered:
                break
            if now - last_change > STALL_SECONDS and reading.all_counting:
                raise WorkerFailed(
                    f"no progress for {STALL_SECONDS:.0f} s at {reading.events:.0f} of {history.count} events and "
                    f"{reading.entered:.0f} of {history.entered} queue visits:\n{workers[0].log_tail()}")
        time.sleep(POLL_SECONDS)
    profile = profiler.stop() if profiler is not None else None
    rate, seconds, start, end = sustained(readings, history.count, history.entered)
    cpu = end.cpu_seconds - start.cpu_seconds
    per_cpu = (end.events - start.events) / cpu if cpu > 0 else float("nan")
    window_share = (history.count - start.events) / history.count
    return ThroughputRun(rate, seconds, per_cpu, sum(w.rss_bytes() for w in workers), window_share, profile)
