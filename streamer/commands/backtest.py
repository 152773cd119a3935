"""`streamer backtest`: the live foresight replayed over an event file and scored against what happened."""

from __future__ import annotations

import argparse
import sys
import time

HELP = "score the live foresight (expected wait, projected Service Level) on an event file against a naive one"
DESCRIPTION = """\
Run the core over schema-v1 events (JSONL FILEs in time order, `-` for stdin) as the live worker runs
it, and score its forecasts against what happened: at every caller's entry the expected wait shown
for the queue against the wait that caller had (answered calls), at each interval's midpoint the
projected Service Level against the interval's final one. A naive forecast is scored beside them
(expected wait = the queue's ASA of the last 15 minutes; projected Service Level = the interval's so
far). Prints a table per queue and, last, one JSON object with the totals (docs/foresight.md).
Exit status: 0, or 2 for a bad command line, config or unreadable file."""

PROGRESS_EVERY = 200_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSONL event files in time order; `-` reads stdin")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $STREAMER_CONFIG)")


def run(args: argparse.Namespace) -> int:
    import orjson

    from streamer.commands.report import _lines
    from streamer.core.backtest import Backtest
    from streamer.core.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"streamer backtest: {exc}", file=sys.stderr)
        return 2
    backtest = Backtest(config)
    started = time.monotonic()
    try:
        for n, line in enumerate(_lines(args.files), 1):
            if n % PROGRESS_EVERY == 0:
                print(f"streamer backtest: {n:,} lines, {time.monotonic() - started:.0f} s", file=sys.stderr)
            if line.strip():
                backtest.add_lines((line,))
    except OSError as exc:
        print(f"streamer backtest: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    result = backtest.finish()
    sys.stdout.write(table(result))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


def _cell(value: float | int | None, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(result: dict) -> str:
    head = ("queue", "calls", "EWT MAE s", "naive s", "intervals", "SL MAE", "naive SL")
    rows = [head]
    for name, row in [*result["queues"].items(), ("(all)", result)]:
        rows.append((name, _cell(row["calls_scored"], 0), _cell(row["ewt_mae_seconds"], 2),
                     _cell(row["naive_ewt_mae_seconds"], 2), _cell(row["intervals_scored"], 0),
                     _cell(row["projected_sl_mae"], 4), _cell(row["naive_sl_mae"], 4)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                  strict=True)))
                   + "\n" for r in rows)
