"""Where simulated events go: a JSONL file (or stdout), with progress on stderr for long runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from typing import IO, Any

import orjson

PROGRESS_EVERY_SECONDS = 5.0


class Progress:
    """Counts the events passing through `track` and reports the simulated time reached every few
    seconds (wall clock) on stderr."""

    def __init__(self, label: str, stream: IO[str] | None = None, every_seconds: float = PROGRESS_EVERY_SECONDS):
        self.label = label
        self.count = 0
        self.last_ts: str | None = None
        self._stream = stream if stream is not None else sys.stderr
        self._every = every_seconds
        self.started = time.monotonic()

    def track(self, events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        next_report = self.started + self._every
        for event in events:
            yield event
            # Counted once the consumer comes back for the next one: this one is written or sent.
            self.count += 1
            self.last_ts = event["ts"]
            now = time.monotonic()
            if now >= next_report:
                next_report = now + self._every
                self.report(f"reached {self.last_ts}, {self.count:,} events")

    def report(self, text: str) -> None:
        print(f"{self.label}: {text}", file=self._stream, flush=True)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def write_jsonl(events: Iterable[dict[str, Any]], out: str) -> int:
    """Write one JSON object per line to the file `out` (`-` = stdout) as fast as possible; returns the count."""
    written = 0
    sink = nullcontext(sys.stdout.buffer) if out == "-" else open(out, "wb", buffering=1 << 20)  # noqa: SIM115
    with sink as target:
        for event in events:
            target.write(orjson.dumps(event) + b"\n")
            written += 1
        target.flush()
    return written
