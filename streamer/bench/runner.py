"""The whole bench in order: per workload (the demo day, a call-only workload) produce the history,
then per repeat the ceiling and a worker's throughput, then recovery of the last worker; then latency
at a paced rate, and memory; every figure with its target, and the context the figures need (load,
machine, settings)."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamer.bench import latency, memory, recovery, soak, stream, throughput
from streamer.bench.broker import broker, create_topic, delete_topics, produce
from streamer.bench.ceiling import ceiling_events_per_second
from streamer.bench.context import BenchContext
from streamer.bench.profile import Profile
from streamer.bench.report import Figure, Target
from streamer.bench.worker import WorkerProcess, package_root

MEASUREMENTS = ("throughput", "recovery", "latency", "memory", "soak")
# The soak reads a simulated week: it runs only when asked for (--only soak).
DEFAULT_MEASUREMENTS = ("throughput", "recovery", "latency", "memory")
WORKLOAD_LABELS = {"demo": "demo day", "calls": "call-only"}
KEY_PREFIX = {"demo": "", "calls": "calls_"}  # the demo's figures keep the keys they always had

CEILING_SHARE_TARGET = Target(True, 0.05)
P99_LATENCY_TARGET = Target(False, 0.25)
BYTES_PER_CALL_TARGET = Target(False, 2048)
BYTES_PER_QUEUE_TARGET = Target(False, 20 * 1024)
RECOVERY_TARGET = Target(False, 5.0)


@dataclass(frozen=True)
class BenchOptions:
    events: int = 200_000
    repeats: int = 3
    partitions: int = 4
    workers: int = 1
    latency_rate: float = 1000.0
    latency_seconds: float = 30.0
    latency_warmup_seconds: float = 5.0
    inflight: int = 100_000
    queues: int = 200
    memory_warmup_events: int = 5_000
    seed: int = 1
    soak_days: float = 7.0
    measurements: tuple[str, ...] = DEFAULT_MEASUREMENTS
    workloads: tuple[str, ...] = stream.WORKLOADS
    bootstrap: str | None = None
    broker_port: int | None = None
    workdir: Path | None = None
    profile: Path | None = None
    worker_source: Path | None = None


QUICK = {"events": 30_000, "repeats": 1, "latency_seconds": 4.0, "latency_warmup_seconds": 1.0, "inflight": 2_000,
         "queues": 20, "memory_warmup_events": 500}


@dataclass
class BenchResult:
    figures: list[Figure] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    profile: Profile | None = None


def run(options: BenchOptions, say: Callable[[str], None]) -> BenchResult:
    result = BenchResult()
    tag = f"bench{uuid.uuid4().hex[:6]}"
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="streamer-bench-"))
    result.context.update(_machine(options), load_average_start=list(os.getloadavg()))
    try:
        with broker(options.bootstrap, options.broker_port, workdir / "kafka", say) as choice:
            say(f"using {choice.description}; workers run streamer from {options.worker_source or package_root()}")
            result.context.update(bootstrap=choice.bootstrap, broker=choice.description)
            ctx = BenchContext(choice.bootstrap, tag, workdir, options.partitions, say, options.worker_source)
            try:
                _measure(ctx, options, result)
            finally:
                ctx.stop_all()
                _delete_run_topics(choice.bootstrap, tag, say)
    finally:
        if options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result.context["load_average_end"] = list(os.getloadavg())
    return result


def _delete_run_topics(bootstrap: str, tag: str, say: Callable[[str], None]) -> None:
    try:
        deleted = delete_topics(bootstrap, f"{tag}-")
    except Exception as exc:  # the run's own error, if any, matters more than the clean-up's
        say(f"could not delete the run's topics ({tag}-*): {exc!r}")
        return
    say(f"deleted the run's {len(deleted)} topics ({tag}-*)")


def _machine(options: BenchOptions) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "store": os.environ.get("STREAMER_STORE") or "rocksdb://",
            "worker_source": str(options.worker_source or package_root())}


def _measure(ctx: BenchContext, options: BenchOptions, result: BenchResult) -> None:
    wanted = set(options.measurements)
    result.context["partitions"] = options.partitions
    if "throughput" in wanted:
        _throughput(ctx, options, result, with_recovery="recovery" in wanted)
    if "latency" in wanted:
        _latency(ctx, options, result)
    if "memory" in wanted:
        _memory(ctx, options, result)
    if "soak" in wanted:
        run = soak.measure(ctx, options.soak_days, options.seed)
        result.figures += soak.figures(run)
        result.context.update(soak.context(run))


def _throughput(ctx: BenchContext, options: BenchOptions, result: BenchResult, with_recovery: bool) -> None:
    for workload in options.workloads:
        history = _produce_history(ctx, options, result, workload)
        last_group = _repeats(ctx, options, history, result, workload, keep_last=with_recovery)
        if with_recovery:
            _recovery(ctx, last_group, history, result, workload)
        if options.profile is not None:
            to = options.profile if workload == options.workloads[0] else \
                options.profile.with_name(f"{options.profile.stem}-{workload}{options.profile.suffix}")
            ctx.say(f"profile: one more worker run on the {WORKLOAD_LABELS[workload]} under py-spy ({to})")
            profiled = throughput.measure(ctx.worker_group(f"profile-{workload}", 1, ctx.history_topic(workload)),
                                          history, profile_to=to)
            if result.profile is None:
                result.profile = profiled.profile
            result.context[f"{KEY_PREFIX[workload]}profiled_events_per_second"] = profiled.events_per_second
        ctx.stop_all()


def _produce_history(ctx: BenchContext, options: BenchOptions, result: BenchResult,
                     workload: str) -> stream.History:
    history = stream.history(options.events, options.seed, workload)
    topic = ctx.history_topic(workload)
    ctx.say(f"history ({WORKLOAD_LABELS[workload]}): {history.count:,} events ({history.entered:,} queue visits "
            f"on {len(history.queues)} queues; {history.simulated_hours:.1f} simulated hours)")
    create_topic(ctx.bootstrap, topic, options.partitions)
    produced = produce(stream.history_events(options.events, options.seed, workload), ctx.bootstrap, topic)
    ctx.say(f"produced to {topic} ({options.partitions} partitions) at {produced:,.0f} events/s")
    prefix = KEY_PREFIX[workload]
    result.context.update(events=history.count, repeats=options.repeats, workers=options.workers,
                          workloads=list(options.workloads))
    result.context.update({f"{prefix}produce_events_per_second": produced, f"{prefix}stream_queue_visits":
                           history.entered, f"{prefix}simulated_hours": history.simulated_hours,
                           f"{prefix}queues": len(history.queues)})
    return history


def _repeats(ctx: BenchContext, options: BenchOptions, history: stream.History, result: BenchResult,
             workload: str, keep_last: bool) -> list[WorkerProcess]:
    """The ceiling and a worker group's throughput, per repeat; the last group is left running when
    `keep_last` (recovery restarts it)."""
    ceilings: list[float] = []
    runs: list[throughput.ThroughputRun] = []
    group: list[WorkerProcess] = []
    topic, label, prefix = ctx.history_topic(workload), WORKLOAD_LABELS[workload], KEY_PREFIX[workload]
    for repeat in range(1, options.repeats + 1):
        ceilings.append(ceiling_events_per_second(ctx.bootstrap, topic, history.count))
        ctx.say(f"{label}, repeat {repeat}: ceiling {ceilings[-1]:,.0f} events/s")
        group = ctx.worker_group(f"throughput-{workload}{repeat}", options.workers, topic)
        runs.append(run := throughput.measure(group, history))
        ctx.say(f"{label}, repeat {repeat}: {options.workers} worker(s) {run.events_per_second:,.0f} events/s over "
                f"{run.seconds:.1f} s, {100 * run.window_share:.0f} % of the stream "
                f"({run.events_per_cpu_second:,.0f} per CPU second)")
        if run.window_share < 0.5:
            ctx.say("the timed window held less than half of the stream (the workers started counting late): "
                    "give more --events")
        if repeat < options.repeats or not keep_last:
            for worker in group:
                worker.stop()
    result.figures += [
        Figure(f"{prefix}events_per_second", f"{label}: worker throughput, both stages", "events/s",
               tuple(r.events_per_second for r in runs)),
        Figure(f"{prefix}ceiling_events_per_second", f"{label}: ceiling, plain consumer + orjson", "events/s",
               tuple(ceilings)),
        Figure(f"{prefix}ceiling_share", f"{label}: worker throughput / ceiling", "ratio",
               tuple(r.events_per_second / c for r, c in zip(runs, ceilings, strict=True)), CEILING_SHARE_TARGET),
        Figure(f"{prefix}events_per_cpu_second", f"{label}: worker events per CPU second", "events/s",
               tuple(r.events_per_cpu_second for r in runs)),
        Figure(f"{prefix}worker_rss_bytes", f"{label}: worker RSS after the stream", "bytes",
               tuple(float(r.rss_bytes) for r in runs)),
    ]
    return group


def _recovery(ctx: BenchContext, group: list[WorkerProcess], history: stream.History, result: BenchResult,
              workload: str) -> None:
    for worker in group[1:]:
        worker.stop()  # the restarted member alone owns every partition, so it lists every queue
    label, prefix = WORKLOAD_LABELS[workload], KEY_PREFIX[workload]
    ctx.say(f"{label}, recovery: restarting the last worker on its data dir")
    run = recovery.measure(group[0], ctx.restart_of(group[0]), history)
    result.figures += [
        Figure(f"{prefix}recovery_seconds", f"{label}: recovery, start → queues served", "s", (run.queues_seconds,),
               RECOVERY_TARGET),
        Figure(f"{prefix}ready_seconds", f"{label}: recovery, start → Faust ready", "s", (run.ready_seconds,)),
    ]
    result.context.update({f"{prefix}recovery_stop_seconds": run.stop_seconds,
                           f"{prefix}recovery_state_intact": run.state_intact})
    if not run.state_intact:
        ctx.say(f"recovery: entered totals {run.entered:.0f} after the restart, expected {run.expected_entered}")


def _latency(ctx: BenchContext, options: BenchOptions, result: BenchResult) -> None:
    ctx.say(f"latency: {options.latency_rate:,.0f} events/s for {options.latency_warmup_seconds:.0f} s warm-up + "
            f"{options.latency_seconds:.0f} s with probes")
    worker = ctx.worker("latency").start()
    run = latency.measure(worker, ctx.tag, options.latency_rate, options.latency_seconds,
                          options.latency_warmup_seconds, options.seed)
    worker.stop()
    result.figures += [
        Figure("p50_latency_seconds", "latency p50, produce → /metrics", "s", (run.percentile(0.50),)),
        Figure("p99_latency_seconds", "latency p99", "s", (run.percentile(0.99),), P99_LATENCY_TARGET),
        Figure("max_latency_seconds", "latency max", "s", (run.latencies[-1],)),
        Figure("latency_events_per_second", "paced rate achieved", "events/s", (run.sent_per_second,)),
    ]
    result.context.update(latency_probes=len(run.latencies), latency_missing_probes=run.missing,
                          latency_resolution_seconds=run.resolution_seconds)


def _memory(ctx: BenchContext, options: BenchOptions, result: BenchResult) -> None:
    # One fresh worker per repeat: a single reading moves by a few hundred bytes per call with the
    # moment the stores flush their memtables and the allocator returns pages, so the median is given.
    runs = []
    for repeat in range(options.repeats):
        if options.repeats > 1:
            ctx.say(f"memory: repeat {repeat + 1}/{options.repeats}")
        worker = ctx.worker(f"memory{repeat + 1}" if repeat else "memory").start()
        runs.append(memory.measure(worker, f"{ctx.tag}m{repeat + 1}", options.inflight, options.queues,
                                   options.memory_warmup_events, options.seed, ctx.say,
                                   customers=options.inflight // 2))
        worker.stop()
    result.figures += [
        Figure("rss_bytes_per_inflight_call", f"RSS per waiting call ({options.inflight:,} calls)", "bytes",
               tuple(run.bytes_per_call for run in runs), BYTES_PER_CALL_TARGET),
        Figure("rss_bytes_per_queue", f"RSS per queue ({options.queues:,} queues)", "bytes",
               tuple(run.bytes_per_queue for run in runs), BYTES_PER_QUEUE_TARGET),
        Figure("rss_bytes_per_customer", f"RSS per tracked customer ({options.inflight // 2:,} customers)",
               "bytes", tuple(run.bytes_per_customer or 0.0 for run in runs)),
    ]
    result.context.update(memory_rss_before_bytes=[run.rss_before for run in runs],
                          memory_rss_with_calls_bytes=[run.rss_with_calls for run in runs],
                          memory_rss_with_queues_bytes=[run.rss_with_queues for run in runs],
                          memory_customers_growth_bytes=[run.customers_growth for run in runs],
                          memory_plain_growth_bytes=[run.plain_growth for run in runs])
