"""Recovery: how long a worker stopped after the throughput run takes to serve its queues again.

The worker that processed the whole stream is stopped (SIGTERM) and started again on the same data
dir and consumer group. Timed from the new process's start, read every 0.1 s: the "Worker]: Ready"
log line, and the first /api/queues answer listing every queue of the stream (the figure). Then
the entered totals in /metrics must equal the stream's visits again: nothing lost, nothing counted
twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from streamer.bench.scrape import metric_sum
from streamer.bench.stream import History
from streamer.bench.worker import WorkerFailed, WorkerProcess

POLL_SECONDS = 0.1
TIMEOUT_SECONDS = 180.0
SETTLE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RecoveryRun:
    stop_seconds: float
    ready_seconds: float  # start → "Worker]: Ready"
    queues_seconds: float  # start → /api/queues lists every queue
    entered: float  # entered totals after the restart
    expected_entered: int

    @property
    def state_intact(self) -> bool:
        return self.entered == self.expected_entered


def measure(worker: WorkerProcess, again: WorkerProcess, history: History) -> RecoveryRun:
    """Stop `worker` and start `again` (the same member: settings, data dir) in its place."""
    stop_seconds = worker.stop()
    again.spawn()
    ready = listed = None
    while listed is None or ready is None:
        again.check_alive()
        elapsed = time.monotonic() - again.spawned_at
        if elapsed > TIMEOUT_SECONDS:
            raise WorkerFailed(f"the restarted worker did not list its queues within {TIMEOUT_SECONDS:.0f} s:\n"
                               f"{again.log_tail()}")
        if ready is None and again.logged_ready():
            ready = elapsed
        if listed is None and set(history.queues) <= _listed_queues(again):
            listed = elapsed
        time.sleep(POLL_SECONDS)
    entered = _settled_entered(again, history.entered)
    return RecoveryRun(stop_seconds, ready, listed, entered, history.entered)


def _listed_queues(worker: WorkerProcess) -> set[str]:
    try:
        body = worker.get("/api/queues", timeout=2)
    except OSError:
        return set()
    return {queue["queue"] for queue in orjson.loads(body)["queues"]}


def _settled_entered(worker: WorkerProcess, expected: int) -> float:
    """The entered totals once they equal `expected`, or as they stand after SETTLE_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        entered = metric_sum(worker.metrics(), "callcenter_calls_entered_total")
        if entered == expected or time.monotonic() > deadline:
            return entered
        time.sleep(0.5)
