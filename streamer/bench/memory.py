"""Memory per queue and per in-flight call: the worker's RSS growth as queues appear and calls wait.

A fresh worker first takes some live traffic (so its caches, tables and web page are warm). Then
`queues` new queues get two waiting callers each; then `calls` callers enter four more queues and
never leave. Once stage 2 shows them all waiting, the RSS growth divided by `calls` is the cost of
one in-flight call (stage 1's call state and stage 2's live-queue entry, in Python and in the
tables' stores); the growth of the queue step, less its callers at that per-call cost, divided by
`queues` is the cost of one queue. RSS is read from /proc (VmRSS) after a settling pause, as the
median of five readings, each time after one /metrics read so the page's own allocations weigh on
every reading. The queue step comes first because it is small: after a hundred thousand calls, the
stores' flushes move RSS by more than a few hundred queues take.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

from streamer.bench import stream
from streamer.bench.scrape import metric_sum, samples
from streamer.bench.worker import WorkerFailed, WorkerProcess
from streamer.sources.kafka_sink import send_events

CALL_QUEUES = 4
CALLS_PER_NEW_QUEUE = 2
SETTLE_SECONDS = 3.0
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class MemoryRun:
    rss_before: int  # after the warm-up
    rss_with_queues: int
    rss_with_calls: int
    queues: int
    calls: int

    @property
    def bytes_per_call(self) -> float:
        return (self.rss_with_calls - self.rss_with_queues) / self.calls

    @property
    def bytes_per_queue(self) -> float:
        growth = self.rss_with_queues - self.rss_before
        return (growth - self.queues * CALLS_PER_NEW_QUEUE * self.bytes_per_call) / self.queues


def measure(worker: WorkerProcess, tag: str, calls: int, queues: int, warmup_events: int, seed: int,
            say: Callable[[str], None]) -> MemoryRun:
    """Measure on a started, fresh worker."""

    def send(events: Iterable[stream.Event]) -> None:
        asyncio.run(send_events(events, bootstrap=worker.env["KAFKA_BOOTSTRAP_SERVERS"],
                                topic=worker.env["STREAMER_TOPIC_EVENTS"], client_id="streamer-bench-memory"))

    send(stream.restamp(event) for event in islice(stream.live(seed), warmup_events))
    wait_for(worker, lambda text: metric_sum(text, "callcenter_events_total"), warmup_events)
    before = settled_rss(worker)

    say(f"memory: {queues} new queues with {CALLS_PER_NEW_QUEUE} waiting callers each")
    send(stream.waiting_call(f"{tag}-qcall-{n}", f"{tag}-queue-{n // CALLS_PER_NEW_QUEUE}")
         for n in range(queues * CALLS_PER_NEW_QUEUE))
    wait_for(worker, lambda text: waiting(text, f"{tag}-queue-"), queues * CALLS_PER_NEW_QUEUE)
    with_queues = settled_rss(worker)

    call_queues = [f"{tag}-calls-{n}" for n in range(CALL_QUEUES)]
    say(f"memory: {calls} callers entering {CALL_QUEUES} queues and waiting")
    send(stream.waiting_call(f"{tag}-wait-{n}", call_queues[n % CALL_QUEUES]) for n in range(calls))
    wait_for(worker, lambda text: waiting(text, f"{tag}-calls-"), calls)
    with_calls = settled_rss(worker)
    return MemoryRun(before, with_queues, with_calls, queues, calls)


def waiting(text: str, queue_prefix: str) -> float:
    """Callers waiting now in the queues whose names start with `queue_prefix` (stage 2's live queue)."""
    return sum(value for labels, value in samples(text, "callcenter_calls_waiting")
               if labels.get("kind") == "caller" and labels.get("queue", "").startswith(queue_prefix))


def wait_for(worker: WorkerProcess, value: Callable[[str], float], target: float) -> None:
    """Read /metrics until `value` of it reaches `target`; fail when it stops moving for a minute."""
    last, last_change = -1.0, time.monotonic()
    while True:
        worker.check_alive()
        now_value = value(worker.metrics())
        if now_value >= target:
            return
        if now_value != last:
            last, last_change = now_value, time.monotonic()
        elif time.monotonic() - last_change > 60:
            raise WorkerFailed(f"stuck at {now_value:.0f} of {target:.0f} for a minute:\n{worker.log_tail()}")
        time.sleep(POLL_SECONDS)


def settled_rss(worker: WorkerProcess, readings: int = 5) -> int:
    time.sleep(SETTLE_SECONDS)
    worker.metrics()
    values = []
    for _ in range(readings):
        values.append(worker.rss_bytes())
        time.sleep(0.2)
    return int(statistics.median(values))
