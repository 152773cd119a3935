"""End-to-end latency at a paced rate: from handing an event to the producer to seeing its effect in
the worker's /metrics.

Traffic: the simulator's demo events restamped to the wall clock as they are sent, paced at `rate`
events per second (probes included) by the project's producer (`send_events`, acks=all, 5 ms
linger). After a warm-up, every 50 ms one of those events is a probe: a `call.enqueued` on a queue of
its own (`TAG-probe`). The probes' call ids are chosen to hash to partition 0, so they pass stage 1
and, keyed by their queue, stage 2 in the order they were sent. The bench reads /metrics every 50 ms
(start to start); when `callcenter_calls_entered_total{queue="TAG-probe"}` has risen to n, the first
n probes are visible, and each one's latency is the time from its send to the end of that read. A
probe became visible between the start of the previous read and the end of this one, so each figure
is an upper bound, too high by at most one read period plus one read (reported as the resolution).
A read costs the worker about 6 ms of CPU, so the reads take about a tenth of its time: the figures
are those of a worker scraped far more often than Prometheus would.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from itertools import count

from streamer.bench import stream
from streamer.bench.scrape import metric_sum
from streamer.bench.worker import WorkerProcess
from streamer.core.partitioning import partition_of
from streamer.sources.kafka_sink import send_events

PROBE_EVERY_SECONDS = 0.05
READ_EVERY_SECONDS = 0.05
DRAIN_TIMEOUT_SECONDS = 30.0
PRODUCER_LINGER_MS = 5


@dataclass(frozen=True)
class LatencyRun:
    latencies: list[float]  # seconds, sorted; a probe never seen counts as infinite
    missing: int  # probes not visible within DRAIN_TIMEOUT_SECONDS after the traffic ended
    sent_per_second: float  # the rate achieved, probes included
    read_seconds: float  # median time of one /metrics read

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile, q in (0, 1]."""
        return self.latencies[max(0, math.ceil(q * len(self.latencies)) - 1)]

    @property
    def resolution_seconds(self) -> float:
        return READ_EVERY_SECONDS + self.read_seconds


def probe_ids(tag: str, partitions: int) -> Iterator[str]:
    """Call ids that Kafka's default partitioner puts in partition 0: the probes keep their order."""
    return (call_id for n in count() if partition_of(call_id := f"{tag}-probe-{n}", partitions) == 0)


def measure(worker: WorkerProcess, tag: str, rate: float, seconds: float, warmup: float, seed: int) -> LatencyRun:
    """Run paced traffic with probes into the (started) worker's events topic and time the probes."""
    return asyncio.run(_measure(worker, tag, rate, seconds, warmup, seed))


async def _measure(worker: WorkerProcess, tag: str, rate: float, seconds: float, warmup: float,
                   seed: int) -> LatencyRun:
    env = worker.env
    traffic = PacedTraffic(rate, seconds, warmup, seed, probe_ids(tag, int(env["STREAMER_PARTITIONS"])),
                           f"{tag}-probe")
    producing = asyncio.create_task(send_events(traffic.events(), bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
                                                topic=env["STREAMER_TOPIC_EVENTS"], linger_ms=PRODUCER_LINGER_MS,
                                                client_id="streamer-bench-latency"))
    latencies, reads = await _watch(worker, traffic, producing)
    sent = await producing
    missing = len(traffic.sent_at) - len(latencies)
    return LatencyRun(sorted(latencies) + [math.inf] * missing, missing, sent / (traffic.ended - traffic.began),
                      statistics.median(reads))


class PacedTraffic:
    """Live demo events at `rate` per second for `warmup` + `seconds`; after the warm-up, one probe
    every PROBE_EVERY_SECONDS among them, its send time kept in `sent_at`."""

    def __init__(self, rate: float, seconds: float, warmup: float, seed: int, probes: Iterator[str],
                 probe_queue: str) -> None:
        self.rate, self.seconds, self.warmup, self.seed = rate, seconds, warmup, seed
        self.probes, self.probe_queue = probes, probe_queue
        self.sent_at: list[float] = []
        self.began = self.ended = 0.0

    async def events(self) -> AsyncIterator[stream.Event]:
        traffic = stream.live(self.seed)
        self.began = time.monotonic()
        next_probe = self.began + self.warmup
        end = next_probe + self.seconds
        sent = 0
        while (now := time.monotonic()) < end:
            ahead = self.began + sent / self.rate - now
            if ahead > 0.002:
                await asyncio.sleep(ahead)
                continue
            sent += 1
            if now >= next_probe:
                next_probe += PROBE_EVERY_SECONDS
                self.sent_at.append(time.monotonic())
                yield stream.waiting_call(next(self.probes), self.probe_queue)
            else:
                yield stream.restamp(next(traffic))
        self.ended = time.monotonic()


async def _watch(worker: WorkerProcess, traffic: PacedTraffic,
                 producing: asyncio.Task[int]) -> tuple[list[float], list[float]]:
    import aiohttp

    sent_at = traffic.sent_at
    latencies: list[float] = []
    reads: list[float] = []
    drain_until: float | None = None
    async with aiohttp.ClientSession() as session:
        while True:
            asked = time.monotonic()
            async with session.get(worker.url + "/metrics") as response:
                text = await response.text()
            answered = time.monotonic()
            reads.append(answered - asked)
            entered = metric_sum(text, "callcenter_calls_entered_total", queue=traffic.probe_queue)
            visible = min(int(entered), len(sent_at))
            latencies.extend(answered - sent_at[n] for n in range(len(latencies), visible))
            if producing.done():
                producing.result()  # a failed producer stops the measurement with its error
                drain_until = drain_until or answered + DRAIN_TIMEOUT_SECONDS
                if len(latencies) >= len(sent_at) or answered > drain_until:
                    return latencies, reads
            worker.check_alive()
            await asyncio.sleep(max(0.0, READ_EVERY_SECONDS - (answered - asked)))
