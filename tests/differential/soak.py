"""The differential harness as a soak: N generated streams through real workers, clean and under faults.

    python -m tests.differential.soak --seeds 20                # 20 clean runs and 20 fault runs
    python -m tests.differential.soak --seeds 5 --first 1000 --no-faults --calls 6000

Starts its own broker(s) (ports from --port, default 19192 and 19193; data under --workdir), prints one
line per run and a summary, and exits 1 when any run found live and offline differing (each such line
names the seed, the step and the first differing interval and key).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from streamer.devkafka import LocalKafka
from tests.differential.generator import generate
from tests.differential.harness import Mismatch, run_clean, run_faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="runs of each kind (default 20)")
    parser.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--calls", type=int, default=1500, help="calls per stream (default 1500)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of call-events (default 4)")
    parser.add_argument("--no-faults", action="store_true", help="clean runs only")
    parser.add_argument("--no-clean", action="store_true", help="fault runs only")
    parser.add_argument("--port", type=int, default=19192, help="the clean runs' broker; the fault runs' is +1")
    parser.add_argument("--workdir", type=Path, help="keep logs and data here (default: a temporary dir)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="streamer-soak-"))
    failures = 0
    runs = 0
    began = time.monotonic()

    def say(line: str) -> None:
        print(line, flush=True)

    kinds = [kind for kind, off in (("clean", args.no_clean), ("faults", args.no_faults)) if not off]
    for kind in kinds:
        broker = LocalKafka(port=args.port + (kind == "faults"), data_dir=workdir / f"kafka-{kind}")
        broker.start(fresh=True, die_with_parent=True)
        try:
            for seed in range(args.first, args.first + args.seeds):
                runs += 1
                stream = generate(seed, partitions=args.partitions, calls=args.calls, today=kind == "clean"
                                  and seed % 5 == 0)
                run_dir = workdir / f"{kind}-{seed}"
                started = time.monotonic()
                try:
                    if kind == "clean":
                        result = run_clean(stream, run_dir, broker.bootstrap)
                    else:
                        result = run_faults(stream, run_dir, broker, say=lambda line: None)
                except Mismatch as error:
                    failures += 1
                    say(f"{kind} {str(error).splitlines()[0]}  [logs: {run_dir}]")
                    continue
                except Exception:
                    failures += 1
                    say(f"{kind} seed {seed}: error\n{traceback.format_exc()}")
                    continue
                say(f"{kind} {result.line()} ({time.monotonic() - started:.0f} s)")
                if args.workdir is None:
                    shutil.rmtree(run_dir, ignore_errors=True)
        finally:
            broker.stop()
    say(f"soak: {runs - failures}/{runs} runs equal live and offline in {time.monotonic() - began:.0f} s")
    if args.workdir is None and not failures:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
