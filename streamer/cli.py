"""The one `streamer` command: each subcommand lives in `streamer.commands.<name>`.

A command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`; it keeps
heavy imports (faust, aiokafka) inside `run`, so `streamer report --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("worker", "report", "simulate", "replay", "ingest", "kafka", "demo", "bench", "backtest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamer",
        description="Real-time contact-centre queue metrics on Kafka (Service Level, ASA, abandonment).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"streamer.commands.{name}")
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    # `streamer worker` hands unknown options on to Faust's own worker command.
    if argv and argv[0] == "worker":
        args, extra = parser.parse_known_args(argv)
        args.faust_args = extra
    else:
        args = parser.parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`streamer simulate --out - | head`): stop quietly, as Unix tools do.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
