"""`streamer kafka`: not built yet."""

from __future__ import annotations

import argparse
import sys

HELP = "kafka (not built yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("streamer kafka is not built yet", file=sys.stderr)
    return 2
