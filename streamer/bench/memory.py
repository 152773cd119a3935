"""Memory per queue and per in-flight call: the worker's RSS growth as queues appear and calls wait.

A fresh worker first takes some live traffic (so its caches, tables and web page are warm). Then
`queues` new queues get two waiting callers each; then `calls` callers enter four more queues and
never leave. Once stage 2 shows them all waiting, the RSS growth divided by `calls` is the cost of
one in-flight call (stage 1's call state and stage 2's live-queue entry, in Python and in the
tables' stores); the growth of the queue step, less its callers at that per-call cost, divided by
`queues` is the cost of one queue. Last, `customers` more callers wait, each the first contact of a
customer of their own, between two steps of as many plain callers: its growth less theirs, per
caller, is the cost of one tracked customer (the customer stage's state: the contact, kept for the
repeat and FCR windows). RSS is read from /proc (VmRSS) as the median of five readings after
one /metrics read and a settling pause, in which the worker hands back what the step and the page
freed (streamer/app/heap.py), as it does after any burst of work. The queue step comes first
because it is small: after a hundred thousand calls, the stores' flushes move RSS by more than a few
hundred queues take.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

import orjson

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
    customers: int = 0
    customers_growth: int = 0  # RSS growth of the step of customers' first contacts
    plain_growth: float = 0.0  # mean RSS growth of the equal steps of plain callers around it

    @property
    def bytes_per_call(self) -> float:
        return (self.rss_with_calls - self.rss_with_queues) / self.calls

    @property
    def bytes_per_customer(self) -> float | None:
        if not self.customers:
            return None
        return (self.customers_growth - self.plain_growth) / self.customers

    @property
    def bytes_per_queue(self) -> float:
        growth = self.rss_with_queues - self.rss_before
        return (growth - self.queues * CALLS_PER_NEW_QUEUE * self.bytes_per_call) / self.queues


def measure(worker: WorkerProcess, tag: str, calls: int, queues: int, warmup_events: int, seed: int,
            say: Callable[[str], None], customers: int = 0) -> MemoryRun:
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
    if not customers:
        return MemoryRun(before, with_queues, with_calls, queues, calls)

    # A tracked customer's cost is the growth of a step of callers who are each a new customer's
    # first contact, less that of steps of as many plain callers just before and after it: the cost of
    # a waiting call falls as the stores' buffers fill, so the two neighbours bracket it.
    plain_before = plain_step(worker, send, f"{tag}-plain-a", customers, with_calls, say)
    say(f"memory: {customers} callers, each a new customer's first contact, entering {CALL_QUEUES} queues")
    customer_queues = [f"{tag}-customers-{n}" for n in range(CALL_QUEUES)]
    tracked_before = tracked_customers(worker)
    send(stream.waiting_call(f"{tag}-contact-{n}", customer_queues[n % CALL_QUEUES], f"{tag}-customer-{n}")
         for n in range(customers))
    wait_for(worker, lambda text: waiting(text, f"{tag}-customers-"), customers)
    deadline = time.monotonic() + 120
    while tracked_customers(worker) - tracked_before < customers and time.monotonic() < deadline:
        worker.check_alive()
        time.sleep(POLL_SECONDS)
    if tracked_customers(worker) - tracked_before < customers:
        raise WorkerFailed(f"the customer stage tracks {tracked_customers(worker) - tracked_before} of {customers} "
                           f"new customers after two minutes:\n{worker.log_tail()}")
    with_customers = settled_rss(worker)
    plain_after = plain_step(worker, send, f"{tag}-plain-b", customers, with_customers, say)
    return MemoryRun(before, with_queues, with_calls, queues, calls, customers,
                     with_customers - plain_before[1], (plain_before[0] + plain_after[0]) / 2)


def plain_step(worker: WorkerProcess, send: Callable[[Iterable[stream.Event]], None], prefix: str, count: int,
               rss_before: int, say: Callable[[str], None]) -> tuple[int, int]:
    """`count` plain callers entering and waiting: (RSS growth, RSS after)."""
    say(f"memory: {count} plain callers entering {CALL_QUEUES} queues")
    send(stream.waiting_call(f"{prefix}-{n}", f"{prefix}-q{n % CALL_QUEUES}") for n in range(count))
    wait_for(worker, lambda text: waiting(text, f"{prefix}-q"), count)
    after = settled_rss(worker)
    return after - rss_before, after


def tracked_customers(worker: WorkerProcess) -> int:
    """Customers the worker's customer stage holds now (its progress in /api/queues)."""
    progress = orjson.loads(worker.get("/api/queues")).get("progress", {})
    return sum(entry.get("customers") or 0 for entry in progress.get("customers", []))


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
    worker.metrics()
    time.sleep(SETTLE_SECONDS)
    values = []
    for _ in range(readings):
        values.append(worker.rss_bytes())
        time.sleep(0.2)
    return int(statistics.median(values))
