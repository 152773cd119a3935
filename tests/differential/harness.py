"""The live = offline differential harness: a generated stream through real `streamer worker` processes
on a real broker, with or without faults, against `streamer report` on the same events.

`run_clean` replays a stream at full speed with `streamer replay --wait` and checks, once the pipeline
says it has caught up: the closed intervals on `queue-intervals` equal the report's interval by
interval and key by key; the totals `replay --wait` printed equal the report's; every event is counted
by result and reason as the report counts it; the dead-letter topic holds every record not counted
(duplicates aside); and for a stream ending now, the "today" figures of /api/queues and /metrics equal
the sum of today's intervals.

`run_faults` replays the stream in segments, paced, with one fault per segment (SIGKILLs at random
moments, a broker stop and start, a second worker joining, one leaving, a worker restarted on an empty
data dir) and checks the intervals against the report on the events sent so far after each one.

Both are plain functions (no pytest), so `python -m tests.differential.soak` runs them for many seeds.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamer.app.catch_up import read_latest, wait_caught_up
from streamer.app.settings import load_worker_settings
from streamer.app.topics import ensure_topics
from streamer.core.config import GROUP, TENANT, parse_rollup_key, rollup_key
from streamer.core.counters import EXTRA_COUNT_KEYS, REPORT_COUNT_KEYS
from streamer.core.events import parse_ts
from tests.differential.generator import Stream
from tests.worker_process import WorkerProcess, unique_names

COUNT_KEYS = REPORT_COUNT_KEYS + EXTRA_COUNT_KEYS
# A killed member leaves the group only when its session times out; the broker's minimum (6 s) keeps
# each restart short. Offsets are committed as often as in production.
FAST_FAILOVER = {"BROKER_SESSION_TIMEOUT": "6", "BROKER_HEARTBEAT_INTERVAL": "1", "BROKER_REBALANCE_TIMEOUT": "20"}
CATCH_UP_TIMEOUT = 180.0
FAULTS = ("kill", "kill", "kill", "kill", "kill", "broker", "join", "leave", "empty_datadir")


class Mismatch(AssertionError):
    """Live and offline differ; the message names the seed, the step and the first difference."""


@dataclass
class RunResult:
    seed: int
    intervals: int = 0
    rollup_intervals: int = 0  # of them, groups' and tenants'
    steps: list[str] = field(default_factory=list)
    caught_up_seconds: list[float] = field(default_factory=list)
    per_file_differences: int = 0  # intervals a per-file (--partitions 1) report would get wrong

    def line(self) -> str:
        waits = ", ".join(f"{s:.1f}" for s in self.caught_up_seconds)
        return (f"seed {self.seed}: equal, {self.intervals} intervals ({self.rollup_intervals} of groups and "
                f"tenants), steps {' '.join(self.steps) or 'none'}; "
                f"caught up after {waits} s; a per-file report would differ in {self.per_file_differences}")


# --- the offline side -------------------------------------------------------------------------------

def offline(events: Path, config: Path, partitions: int) -> dict[str, Any]:
    """`streamer report` on the events, as a user runs it."""
    out = subprocess.run([sys.executable, "-m", "streamer.cli", "report", str(events), "--config", str(config),
                          "--partitions", str(partitions)], check=True, capture_output=True, timeout=300).stdout
    return orjson.loads(out)


def intervals_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The report's intervals keyed as on the queue-intervals topic: `queue|start` for a queue, the
    roll-up key for a group's or tenant's (`rollup_key(kind, name)|start`)."""
    out = {f"{queue}|{block['start']}": {"queue": queue, **block}
           for queue, data in report["queues"].items() for block in data["intervals"]}
    for kind, section in ((GROUP, "groups"), (TENANT, "tenants")):
        for name, data in report.get(section, {}).items():
            out.update((f"{rollup_key(kind, name)}|{block['start']}", {kind: name, **block})
                       for block in data["intervals"])
    return out


def queue_of(key: str) -> str | None:
    """The queue of an interval key; None for a group's or tenant's."""
    name = key.rpartition("|")[0]
    return None if parse_rollup_key(name) else name


def first_difference(got: dict[str, dict[str, Any]], want: dict[str, dict[str, Any]]) -> str | None:
    """The earliest interval (by start, then queue) that differs, and how; None when equal."""
    def order(key: str) -> tuple[int, str]:
        queue, _, start = key.rpartition("|")
        return parse_ts(start), queue

    for key in sorted(set(got) | set(want), key=order):
        if key not in got:
            return f"interval {key} is missing live (offline: {_counts(want[key])})"
        if key not in want:
            return f"interval {key} is live only: {_counts(got[key])}"
        names = set(got[key]) | set(want[key])
        for name in [*(k for k in COUNT_KEYS if k in names), *sorted(names - set(COUNT_KEYS))]:
            if got[key].get(name) != want[key].get(name):
                return (f"interval {key}, key {name!r}: live {got[key].get(name)!r}, offline {want[key].get(name)!r}"
                        f" ({sum(1 for k in want if k in got and got[k] != want[k])} interval(s) differ in all)")
    return None


def _counts(block: dict[str, Any]) -> str:
    return ", ".join(f"{k} {block[k]}" for k in COUNT_KEYS if block.get(k))


# --- the live side ----------------------------------------------------------------------------------

class Live:
    """The topics, worker processes and files of one run."""

    def __init__(self, workdir: Path, bootstrap: str, stream: Stream, standby_replicas: int = 0) -> None:
        self.workdir, self.bootstrap, self.stream = workdir, bootstrap, stream
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "streamer.toml"
        self.config.write_text(stream.config)
        self.env = {**unique_names(f"d{stream.seed}-"), **FAST_FAILOVER, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "STREAMER_PARTITIONS": str(stream.partitions), "STREAMER_CONFIG": str(self.config),
                    "STREAMER_STANDBY_REPLICAS": str(standby_replicas)}
        self.workers: list[WorkerProcess] = []
        self._started = 0
        self.fcr_checked = 0  # queues whose FCR decisions check_today compared
        asyncio.run(ensure_topics(load_worker_settings(self.env), explicit_partitions=True))

    def start_worker(self, datadir: Path | None = None) -> WorkerProcess:
        self._started += 1
        datadir = datadir or self.workdir / f"data-{self._started}"
        worker = WorkerProcess(self.env, datadir, self.workdir / f"worker-{self._started}.log").start(timeout=120)
        self.workers.append(worker)
        return worker

    def restart(self, worker: WorkerProcess, wipe: bool = False) -> WorkerProcess:
        """SIGKILL `worker` and start it again on its data dir (emptied with `wipe`)."""
        worker.kill()
        self.workers.remove(worker)
        if wipe:
            shutil.rmtree(worker.datadir, ignore_errors=True)
        return self.start_worker(worker.datadir)

    def stop_worker(self, worker: WorkerProcess) -> None:
        worker.stop()
        self.workers.remove(worker)

    def stop_all(self) -> None:
        for worker in list(self.workers):
            worker.stop()
        self.workers.clear()

    def replay(self, events: Path, speed: float | None = None, wait: bool = False) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "streamer.cli", "replay", str(events),
                "--topic", self.env["STREAMER_TOPIC_EVENTS"]]
        if speed is not None:
            args += ["--speed", str(speed)]
        if wait:
            args += ["--wait", "--wait-timeout", str(CATCH_UP_TIMEOUT)]
            for worker in self.workers:
                args += ["--worker", worker.url]
        done = subprocess.run(args, env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=CATCH_UP_TIMEOUT + 120)
        if done.returncode != 0:
            raise Mismatch(f"seed {self.stream.seed}: replay failed ({done.returncode}): {done.stderr[-2000:]}\n"
                           + self.log_tails())
        return done

    def wait_caught_up(self) -> float:
        """Wait until the workers have processed everything on the events topic and written its intervals."""
        ends = asyncio.run(_end_offsets(self.bootstrap, self.env["STREAMER_TOPIC_EVENTS"]))
        last = {partition: end - 1 for partition, end in ends.items() if end > 0}
        started = time.monotonic()
        try:
            asyncio.run(wait_caught_up([w.url for w in self.workers], self.env["STREAMER_TOPIC_EVENTS"], last,
                                       self.bootstrap, CATCH_UP_TIMEOUT))
        except RuntimeError as error:
            raise Mismatch(f"seed {self.stream.seed}: {error}\n{self.log_tails()}") from None
        return time.monotonic() - started

    def intervals(self) -> dict[str, dict[str, Any]]:
        return asyncio.run(read_latest(self.bootstrap, self.env["STREAMER_TOPIC_INTERVALS"]))

    def dead_letters(self) -> int:
        return sum(1 for _ in asyncio.run(_read_values(self.bootstrap, self.env["STREAMER_TOPIC_DLQ"])))

    def log_tails(self) -> str:
        return "\n".join(f"--- {w.log_path.name}\n{w.log_tail(15)}" for w in self.workers)


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp.partition: n for tp, n in (await consumer.end_offsets(list(consumer.assignment()))).items()}
    finally:
        await consumer.stop()


async def _read_values(bootstrap: str, topic: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            values.extend(record.value for records in batch.values() for record in records)
        return values
    finally:
        await consumer.stop()


# --- checks -----------------------------------------------------------------------------------------

def check_intervals(live: Live, events: Path, step: str) -> dict[str, dict[str, Any]]:
    want = intervals_of(offline(events, live.config, live.stream.partitions))
    got = live.intervals()
    difference = first_difference(got, want)
    if difference:
        raise Mismatch(f"seed {live.stream.seed}, after {step}: {difference}\n{live.log_tails()}")
    return want


def _replay_totals(output: str) -> dict[str, dict[str, int]]:
    totals = {}
    for queue, rest in re.findall(r"^replay: (\S+): \d+ intervals, (.*)$", output, re.MULTILINE):
        totals[queue] = {name: int(n) for name, n in (pair.rsplit(" ", 1) for pair in rest.split(", "))}
    return totals


def _metric_families(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    samples = []
    for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        samples.append((dict(re.findall(r'(\w+)="([^"]*)"', labels)), float(value)))
    return samples


def check_counts_and_dead_letters(live: Live, report: dict[str, Any], results: dict[str, int]) -> None:
    """Every record counted by result and reason as the report counts it, and in the DLQ when not
    counted (duplicates aside): nothing lost, nothing counted twice (runs without faults only)."""
    seen: dict[str, int] = {}
    for worker in live.workers:
        for labels, value in _metric_families(worker.get_text("/metrics"), "callcenter_events_total"):
            key = f"{labels['result']}:{labels['reason']}"
            seen[key] = seen.get(key, 0) + int(value)
    seen = {key: n for key, n in seen.items() if not key.startswith("processed:")}
    if seen != results:
        raise Mismatch(f"seed {live.stream.seed}: events by result and reason live {seen}, offline {results}")
    dead = live.dead_letters()
    expected = sum(n for key, n in results.items() if not key.startswith("duplicate:"))
    if dead != expected:
        raise Mismatch(f"seed {live.stream.seed}: {dead} dead letters, {expected} records were not counted")


def check_exported_once(live: Live, step: str) -> None:
    """Across the workers' /metrics, every queue with counts is exported by exactly one worker: the
    owner of its partition, with no series left behind by a rebalance."""
    queue_label = re.compile(r'^callcenter_calls_entered_total\{queue="([^"]+)"\}', re.MULTILINE)
    exported = [set(queue_label.findall(worker.get_text("/metrics"))) for worker in live.workers]
    counted = {queue for key in live.intervals() if (queue := queue_of(key)) is not None}
    twice = {queue for i, mine in enumerate(exported) for queue in mine
             if any(queue in other for other in exported[i + 1:])}
    missing = counted - set().union(*exported)
    if twice or missing:
        raise Mismatch(f"seed {live.stream.seed}, after {step}: queues exported by two workers {sorted(twice)}, "
                       f"by none {sorted(missing)}")


def check_today(live: Live, want: dict[str, dict[str, Any]]) -> None:
    """The "today" figures of /api/queues and /metrics equal the sum of today's intervals; and, for a
    queue whose day holds the whole stream, today's first-contact-resolution decisions (live: counted
    when decided) equal the report's decided while reading the events (`decided_before_the_end`)."""
    offline_fcr: dict[str, dict[str, int]] | None = None
    for worker in live.workers:
        metrics = worker.get_text("/metrics")
        offered = {labels["queue"]: int(v) for labels, v in _metric_families(metrics, "callcenter_calls_offered")
                   if labels["window"] == "today"}
        answered = {labels["queue"]: int(v) for labels, v in _metric_families(metrics, "callcenter_calls_answered")
                    if labels["window"] == "today"}
        for view in worker.get_json("/api/queues")["queues"]:
            today = view["windows"]["today"]
            first, end = parse_ts(today["start"]), parse_ts(today["end"])
            sums = dict.fromkeys(COUNT_KEYS, 0)
            for key, block in want.items():
                if queue_of(key) == view["queue"] and first <= parse_ts(block["start"]) < end:
                    for name in COUNT_KEYS:
                        sums[name] += block[name]
            shown = {name: today[name] for name in COUNT_KEYS}
            if first <= live.stream.start_ms and live.stream.end_ms < end:
                decided = {name: today.get(name) for name in ("fcr_resolved", "fcr_unresolved")}
                offline_fcr = offline_fcr if offline_fcr is not None else decided_before_the_end(live)
                offline_decided = offline_fcr.get(view["queue"], {"fcr_resolved": 0, "fcr_unresolved": 0})
                if decided != offline_decided:
                    raise Mismatch(f"seed {live.stream.seed}: queue {view['queue']} FCR decided today in /api/queues "
                                   f"{decided}, in the report {offline_decided}")
                live.fcr_checked += 1
            if shown != sums:
                raise Mismatch(f"seed {live.stream.seed}: queue {view['queue']} today in /api/queues {shown}, "
                               f"sum of today's intervals {sums}")
            if (offered.get(view["queue"]), answered.get(view["queue"])) != (sums["entered"], sums["answered"]):
                raise Mismatch(f"seed {live.stream.seed}: queue {view['queue']} today in /metrics offered "
                               f"{offered.get(view['queue'])} answered {answered.get(view['queue'])}, intervals {sums}")


def decided_before_the_end(live: Live) -> dict[str, dict[str, int]]:
    """Per queue, the FCR decisions a live worker has made once it has processed the events: the
    report's while reading them, without the ones it makes only because its input ends
    (`CustomerTracker.flush`: an unresolved contact whose decision waits `settle_ms` past its later
    contact, for an earlier one that could still arrive). A live input never ends: those stay pending
    until time moves on."""
    from streamer.core.config import load_config
    from streamer.core.counters import INDEX
    from streamer.core.report import Report

    report = Report(load_config(live.config), partitions=live.stream.partitions,
                    now_ms=time.time_ns() // 1_000_000)
    for line in live.stream.lines:
        report.add_line(line)
    return {queue: {name: book.total[INDEX[name]] for name in ("fcr_resolved", "fcr_unresolved")}
            for queue, book in report.queues.items()}


def _per_file_differences(live: Live, events: Path, want: dict[str, dict[str, Any]]) -> int:
    per_file = intervals_of(offline(events, live.config, 1))
    return sum(1 for key in set(want) | set(per_file) if want.get(key) != per_file.get(key))


# --- runs -------------------------------------------------------------------------------------------

def write_stream(stream: Stream, path: Path) -> Path:
    path.write_bytes(b"\n".join(stream.lines) + b"\n")
    return path


def run_clean(stream: Stream, workdir: Path, bootstrap: str) -> RunResult:
    """One worker, the whole stream at full speed through `streamer replay --wait`, every check."""
    workdir.mkdir(parents=True, exist_ok=True)
    events = write_stream(stream, workdir / "events.jsonl")
    live = Live(workdir, bootstrap, stream)
    result = RunResult(stream.seed)
    try:
        live.start_worker()
        started = time.monotonic()
        done = live.replay(events, wait=True)
        result.caught_up_seconds.append(time.monotonic() - started)
        report = offline(events, live.config, stream.partitions)
        want = check_intervals(live, events, "the whole stream")
        result.intervals = len(want)
        result.rollup_intervals = sum(1 for key in want if queue_of(key) is None)
        totals = {queue: {k: data["total"][k] for k in COUNT_KEYS} for queue, data in report["queues"].items()}
        printed = _replay_totals(done.stdout)
        if printed != totals:
            raise Mismatch(f"seed {stream.seed}: `replay --wait` printed {printed}, the report's totals are {totals}")
        skipped = subprocess.run([sys.executable, "-m", "streamer.cli", "report", str(events), "--config",
                                  str(live.config), "--partitions", str(stream.partitions), "--output", os.devnull],
                                 capture_output=True, text=True, timeout=300).stderr
        check_counts_and_dead_letters(live, report, _skipped(skipped))
        if "today_midnight" in stream.notes:
            check_today(live, want)
            result.steps.append("today" if not live.fcr_checked else f"today+fcr({live.fcr_checked} queues)")
        result.per_file_differences = _per_file_differences(live, events, want)
        return result
    finally:
        live.stop_all()


def _skipped(stderr: str) -> dict[str, int]:
    match = re.search(r"skipped \d+ event\(s\): (.*)", stderr)
    if not match:
        return {}
    return {key: int(n) for key, n in (part.rsplit(" ", 1) for part in match.group(1).split(", "))}


def run_faults(stream: Stream, workdir: Path, broker: Any, rng_seed: int | None = None,
               say: Callable[[str], None] = lambda line: None) -> RunResult:
    """The stream in one segment per fault, paced; after each, the intervals equal the report on the
    events sent so far. `broker` is a LocalKafka of the run's own (it is stopped and started)."""
    rng = random.Random(stream.seed if rng_seed is None else rng_seed)
    faults = list(FAULTS)
    rng.shuffle(faults)
    if faults.index("leave") < faults.index("join"):  # the second worker joins before one leaves
        i, j = faults.index("leave"), faults.index("join")
        faults[i], faults[j] = faults[j], faults[i]
    segments = _segments(stream.lines, len(faults))
    # Every other seed runs with a standby replica of each table partition on the other worker.
    live = Live(workdir, broker.bootstrap, stream, standby_replicas=stream.seed % 2)
    result = RunResult(stream.seed)
    sent = workdir / "sent.jsonl"
    sent.write_bytes(b"")
    try:
        live.start_worker()
        for index, (fault, lines) in enumerate(zip(faults, segments, strict=True)):
            part = workdir / f"segment-{index}.jsonl"
            part.write_bytes(b"\n".join(lines) + b"\n")
            with sent.open("ab") as out:
                out.write(part.read_bytes())
            span = _span_seconds(lines)
            speed = max(1.0, span / rng.uniform(4.0, 7.0))  # each segment streams for 4 to 7 s
            say(f"seed {stream.seed}: segment {index + 1}/{len(faults)}, {len(lines)} records, fault {fault}")
            _during(lambda part=part, speed=speed: live.replay(part, speed=speed),
                    lambda fault=fault: _inject(fault, live, broker, rng), rng.uniform(0.5, 3.5),
                    before=fault != "broker")
            result.caught_up_seconds.append(live.wait_caught_up())
            want = check_intervals(live, sent, f"segment {index + 1} ({fault})")
            check_exported_once(live, f"segment {index + 1} ({fault})")
            result.steps.append(fault)
            result.intervals = len(want)
            result.rollup_intervals = sum(1 for key in want if queue_of(key) is None)
        return result
    finally:
        live.stop_all()


def _segments(lines: list[bytes], count: int) -> list[list[bytes]]:
    size = -(-len(lines) // count)
    return [lines[i * size:(i + 1) * size] for i in range(count)]


def _span_seconds(lines: list[bytes]) -> float:
    times = []
    for line in lines:
        try:
            times.append(parse_ts(orjson.loads(line)["ts"]))
        except Exception:  # noise lines carry no usable time
            continue
    return (max(times) - min(times)) / 1000 if len(times) > 1 else 1.0


def _during(stream_it: Callable[[], Any], fault: Callable[[], None], after_seconds: float, before: bool) -> None:
    """Run `stream_it`; `after_seconds` into it, the fault (a broker outage waits for the records to be
    sent: the producer of a replay gives up on a broker that is away for long)."""
    if not before:
        stream_it()
        fault()
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            stream_it()
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(after_seconds)
    fault()
    thread.join()
    if errors:
        raise errors[0]


def _inject(fault: str, live: Live, broker: Any, rng: random.Random) -> None:
    if fault == "kill":
        live.restart(rng.choice(live.workers))
    elif fault == "empty_datadir":
        live.restart(rng.choice(live.workers), wipe=True)
    elif fault == "join":
        live.start_worker()
    elif fault == "leave":
        live.stop_worker(live.workers[0])
    elif fault == "broker":
        broker.stop()
        time.sleep(8)
        broker.start(die_with_parent=True)
    else:
        raise ValueError(fault)
