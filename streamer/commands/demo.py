"""`streamer demo`: not built yet."""

from __future__ import annotations

import argparse
import sys

HELP = "demo (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("streamer demo is not built yet", file=sys.stderr)
    return 2
