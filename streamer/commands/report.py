"""`streamer report`: events (JSONL files, `-` for stdin) in, the interval report out."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

HELP = "offline report: JSONL events in, per-queue totals and intervals out (same core as the worker)"
DESCRIPTION = """\
Read schema-v1 events (one JSON object per line) from FILEs, or stdin for `-`, and print per queue the
totals over the whole input and every interval (15/30/60 minutes in the queue's time zone).
Invalid lines, duplicates, impossible transitions and late events are skipped and counted on stderr.
Exit status: 0, or 1 with --strict when any line was skipped, 2 for a bad command line or config."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL event files; `-` reads stdin")
    parser.add_argument("--format", choices=("json", "csv"), default="json", help="output format (default json)")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $STREAMER_CONFIG)")
    parser.add_argument("--partitions", type=_partitions, default=1, metavar="N",
                        help="judge lateness per partition of an N-partition call-events topic, as the worker "
                             "does (default 1: the input as one stream; docs/pipeline.md)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any line was skipped")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")


def _partitions(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1024:
        raise argparse.ArgumentTypeError(f"--partitions takes a whole number from 1 to 1024, got {text!r}")
    return int(text)


def _lines(paths: list[str]) -> Iterator[bytes]:
    for path in paths:
        if path == "-":
            yield from sys.stdin.buffer
        else:
            with open(path, "rb") as handle:
                yield from handle


def run(args: argparse.Namespace) -> int:
    import orjson

    from streamer.app import gc_tuning
    from streamer.core.config import ConfigError, load_config
    from streamer.core.report import Report

    gc_tuning.tune()  # the report holds every open call as a worker does: the same collector settings

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"streamer report: {exc}", file=sys.stderr)
        return 2
    # Against the wall clock, as the worker: an event dated beyond limits.max_future_seconds is rejected.
    report = Report(config, partitions=args.partitions, now_ms=time.time_ns() // 1_000_000)
    try:
        report.add_lines(_lines(args.files))
    except OSError as exc:
        print(f"streamer report: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.format == "json":
        text = orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = report.to_csv()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    skipped = report.skipped
    if skipped:
        total = sum(skipped.values())
        detail = ", ".join(f"{key} {n}" for key, n in skipped.items())
        print(f"streamer report: skipped {total} event(s): {detail}", file=sys.stderr)
    return 1 if args.strict and skipped else 0
