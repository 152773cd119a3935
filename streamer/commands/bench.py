"""`streamer bench`: throughput, ceiling, latency, memory and recovery of real worker processes."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace
from pathlib import Path

HELP = "the benchmark: throughput, latency, memory and recovery of a real worker (figures printed, nothing asserted)"
DESCRIPTION = """\
Measure real `streamer worker` processes against a real broker, with the simulator's demo traffic:

  1. the ceiling: a plain aiokafka consumer reading and decoding (orjson) the benchmark topic;
  2. a worker's sustained throughput through both stages to updated tables (events/s), on two
     workloads: the demo day and a call-only workload (many queues, many calls in flight);
  3. end-to-end latency, event produced -> visible in /metrics, at a paced rate;
  4. memory: RSS growth per waiting (in-flight) call and per queue;
  5. recovery: a restarted worker's time to serve its queues again;
  6. (only with --only soak) a simulated week through one worker: RSS, live table keys and data dir
     at every simulated midnight, flat after the first day when state is bounded.

Throughput and the ceiling are medians over --repeats. The broker: --bootstrap, else
$KAFKA_BOOTSTRAP_SERVERS, else a local broker started for the run on a port of its own (and stopped at
the end). Every topic the run creates is deleted at the end. Progress goes to stderr; stdout gets a
table (figure, median, min, max, target, met?) and, as its last line, one JSON object.
The method: docs/performance.md.

examples:
  streamer bench                                   # the full run (about ten minutes here)
  streamer bench --quick                           # a small run, as in CI
  streamer bench --only throughput --repeats 5 --partitions 8
  streamer bench --only throughput --profile worker.txt   # py-spy's collapsed stacks + top costs
  streamer bench --only soak                       # a simulated week through one worker: state stays flat
  git archive HEAD streamer | tar -x -C /tmp/base && streamer bench --worker-source /tmp/base
"""


def _positive(kind: type, flag: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{flag} must be > 0, got {text}")
        return value

    return parse


def _measurements(text: str) -> tuple[str, ...]:
    from streamer.bench.runner import MEASUREMENTS

    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chosen if name not in MEASUREMENTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated list of {', '.join(MEASUREMENTS)}; "
                                         f"got {text!r}")
    if "recovery" in chosen and "throughput" not in chosen:
        raise argparse.ArgumentTypeError("recovery restarts the throughput run's worker: add throughput to --only")
    return chosen


def _workloads(text: str) -> tuple[str, ...]:
    from streamer.bench.stream import WORKLOADS

    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    if not chosen or any(name not in WORKLOADS for name in chosen):
        raise argparse.ArgumentTypeError(f"--workload takes a comma-separated list of {', '.join(WORKLOADS)}; "
                                         f"got {text!r}")
    return chosen


def _source_dir(text: str) -> Path:
    path = Path(text).expanduser().resolve()
    if not (path / "streamer" / "cli.py").is_file():
        raise argparse.ArgumentTypeError(f"--worker-source {text}: no streamer/cli.py under it; give the directory "
                                         "that holds the streamer package")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=_positive(int, "--events"), metavar="N",
                        help="events in the throughput stream (default 200000; --quick 6000)")
    parser.add_argument("--repeats", type=_positive(int, "--repeats"), metavar="R",
                        help="throughput and ceiling runs, the median reported (default 3; --quick 1)")
    parser.add_argument("--partitions", type=_positive(int, "--partitions"), metavar="P",
                        help="partitions of the events topic (default 4)")
    parser.add_argument("--workers", type=_positive(int, "--workers"), metavar="W",
                        help="worker processes sharing the throughput stream (default 1)")
    parser.add_argument("--latency-rate", type=_positive(float, "--latency-rate"), metavar="EVENTS_PER_S",
                        help="paced rate of the latency run (default 1000)")
    parser.add_argument("--latency-seconds", type=_positive(float, "--latency-seconds"), metavar="S",
                        help="probed seconds of the latency run, after a warm-up (default 30; --quick 4)")
    parser.add_argument("--inflight", type=_positive(int, "--inflight"), metavar="N",
                        help="waiting calls for the memory figure (default 100000; --quick 2000)")
    parser.add_argument("--queues", type=_positive(int, "--queues"), metavar="M",
                        help="new queues for the per-queue memory figure (default 200; --quick 20)")
    parser.add_argument("--seed", type=int, help="simulator seed (default 1)")
    parser.add_argument("--only", type=_measurements, metavar="LIST",
                        help="measure only these: throughput (with the ceiling), recovery, latency, memory; "
                             "soak (a simulated week through one worker, bounded state) runs only when named")
    parser.add_argument("--soak-days", type=_positive(float, "--soak-days"), metavar="D",
                        help="simulated days of the soak (default 7)")
    parser.add_argument("--workload", type=_workloads, metavar="LIST", dest="workloads",
                        help="throughput workloads: demo (the simulator's demo day), calls (40 queues, three events "
                             "per call, about 13,000 calls in flight, no agent events); default both")
    parser.add_argument("--quick", action="store_true",
                        help="a small run for CI: figures are printed but mean little")
    parser.add_argument("--bootstrap", metavar="SERVERS",
                        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS, else a local broker "
                             "started for the run)")
    parser.add_argument("--broker-port", type=_positive(int, "--broker-port"), metavar="N",
                        help="port of the local broker started when no broker is given (default: a free port)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="keep worker data and logs here (default: a temporary dir, removed at the end)")
    parser.add_argument("--worker-source", type=_source_dir, metavar="DIR",
                        help="run the workers from the streamer package under DIR, e.g. a base commit's "
                             "`git archive HEAD streamer | tar -x -C DIR`, to compare a change in the same "
                             "conditions (default: this installation)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="after the throughput repeats, one more run under py-spy: collapsed stacks to FILE "
                             "and the top costs printed")


def options_from(args: argparse.Namespace):
    from streamer.bench.runner import QUICK, BenchOptions

    options = BenchOptions(**QUICK) if args.quick else BenchOptions()
    given = {"measurements": args.only, "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds,
             **{name: getattr(args, name, None) for name in (f.name for f in fields(BenchOptions))
                if name not in ("measurements", "latency_rate", "latency_seconds")}}
    return replace(options, **{name: value for name, value in given.items() if value is not None})


def run(args: argparse.Namespace) -> int:
    from streamer.bench import report
    from streamer.bench.profile import ProfilerMissing, py_spy
    from streamer.bench.runner import run as run_bench

    def say(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    options = options_from(args)
    if options.profile is not None:
        try:
            py_spy()
        except ProfilerMissing as exc:
            print(f"streamer bench: {exc}", file=sys.stderr)
            return 2
    try:
        result = run_bench(options, say)
    except Exception as exc:
        print(f"streamer bench: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    print(report.table(result.figures))
    if result.profile:
        print()
        print(report.profile_table(result.profile))
    print(report.summary_json(result.figures, result.context), flush=True)
    return 0
