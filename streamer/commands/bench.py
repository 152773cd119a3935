"""`streamer bench`: not built yet."""

from __future__ import annotations

import argparse
import sys

HELP = "bench (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("streamer bench is not built yet", file=sys.stderr)
    return 2
