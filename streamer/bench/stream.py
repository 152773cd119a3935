"""The benchmark's traffic, all from the simulator's demo day (four queues, shifts, callbacks, overflow):

- history: the first N events of a run starting at a fixed past date, produced before the worker
  starts (throughput, ceiling, recovery);
- live: the same model's events restamped to the wall clock as they are sent (latency, warm-up);
- waiting calls: `call.enqueued` with no end, so calls stay in the live queue (memory).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from streamer.simulate.clock import format_ts, parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenarios import demo

HISTORY_START = "2026-06-01T00:00:00Z"

Event = dict[str, Any]


@dataclass(frozen=True)
class History:
    """What the worker must reach on the history: every record counted, every visit entered."""

    count: int
    entered: int  # queue visits (call.enqueued events): what stage 2's entered totals must reach
    queues: tuple[str, ...]
    simulated_hours: float


def history_events(count: int, seed: int) -> Iterator[Event]:
    """The first `count` events of an endless demo run from HISTORY_START (calls still open at the
    cut stay open: the worker sees them entered and waiting). The same every time for a seed."""
    return islice(simulate(demo(), seed=seed, start_ms=parse_start(HISTORY_START), hours=None), count)


def history(count: int, seed: int) -> History:
    produced, entered, queues, last = 0, 0, set(), ""
    for event in history_events(count, seed):
        produced += 1
        if event["type"] == "call.enqueued":
            entered += 1
            queues.add(event["queue"])
        last = event["ts"]
    hours = (parse_start(last) - parse_start(HISTORY_START)) / 3_600_000 if last else 0.0
    return History(produced, entered, tuple(sorted(queues)), hours)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def live(seed: int) -> Iterator[Event]:
    """Endless demo traffic; `restamp` each event as it is sent."""
    return simulate(demo(), seed=seed, start_ms=now_ms(), hours=None)


def restamp(event: Event) -> Event:
    """The event with its time set to now, so the live windows and gauges count it."""
    event["ts"] = format_ts(now_ms())
    return event


def waiting_call(call_id: str, queue: str) -> Event:
    """A caller entering `queue` now, with no end event to follow."""
    return {"event_id": f"{call_id}-1", "type": "call.enqueued", "ts": format_ts(now_ms()),
            "call_id": call_id, "queue": queue}
