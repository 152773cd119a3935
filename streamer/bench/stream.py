"""The benchmark's traffic: the simulator's demo day (four queues, shifts, callbacks, overflow, about
half the events agent states), and a call-only workload (40 queues, three events per call, about
13,000 calls in flight, no agent events):

- history: the first N events of a workload starting at a fixed past date, produced before the worker
  starts (throughput, ceiling, recovery);
- live: the same model's events restamped to the wall clock as they are sent (latency, warm-up);
- waiting calls: `call.enqueued` with no end, so calls stay in the live queue (memory).
"""

from __future__ import annotations

import heapq
import random
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


WORKLOADS = ("demo", "calls")
CALL_ONLY_QUEUES = 40
CALL_ONLY_ARRIVALS_PER_SECOND = 22.0
CALL_ONLY_MEAN_WAIT_MS = 60_000
CALL_ONLY_MEAN_TALK_MS = 540_000  # with the wait, about 13,000 calls in flight at that arrival rate


def call_only_events(seed: int, start_ms: int) -> Iterator[Event]:
    """An endless call-only workload: Poisson arrivals over 40 queues, every call enqueued, answered
    after an exponential wait and completed after an exponential talk; events in time order."""
    rng = random.Random(seed)
    pending: list[tuple[int, int, Event]] = []
    at, n = start_ms, 0
    while True:
        at += int(rng.expovariate(CALL_ONLY_ARRIVALS_PER_SECOND / 1000)) + 1
        while pending and pending[0][0] <= at:
            yield heapq.heappop(pending)[2]
        n += 1
        call, queue = f"b{seed}-{n}", f"q{rng.randrange(CALL_ONLY_QUEUES):02d}"
        answered = at + int(rng.expovariate(1 / CALL_ONLY_MEAN_WAIT_MS))
        completed = answered + int(rng.expovariate(1 / CALL_ONLY_MEAN_TALK_MS)) + 1
        yield {"event_id": f"{call}-1", "type": "call.enqueued", "ts": format_ts(at), "call_id": call,
               "queue": queue}
        for ts, order, etype in ((answered, 2, "call.answered"), (completed, 3, "call.completed")):
            heapq.heappush(pending, (ts, n * 4 + order, {"event_id": f"{call}-{order}", "type": etype,
                                                        "ts": format_ts(ts), "call_id": call, "queue": queue}))


def history_events(count: int, seed: int, workload: str = "demo") -> Iterator[Event]:
    """The first `count` events of an endless run of the workload from HISTORY_START (calls still
    open at the cut stay open: the worker sees them entered and waiting). The same every time for a
    seed."""
    start = parse_start(HISTORY_START)
    if workload == "calls":
        return islice(call_only_events(seed, start), count)
    return islice(simulate(demo(), seed=seed, start_ms=start, hours=None), count)


def history(count: int, seed: int, workload: str = "demo") -> History:
    produced, entered, queues, last = 0, 0, set(), ""
    for event in history_events(count, seed, workload):
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


def waiting_call(call_id: str, queue: str, customer_id: str | None = None) -> Event:
    """A caller entering `queue` now, with no end event to follow (a contact of `customer_id` if given)."""
    event = {"event_id": f"{call_id}-1", "type": "call.enqueued", "ts": format_ts(now_ms()),
             "call_id": call_id, "queue": queue}
    if customer_id is not None:
        event["customer_id"] = customer_id
    return event
