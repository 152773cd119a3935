"""Pipeline health of this worker: events by result and reason, newest event time, intervals emitted.

In-memory per process, as Prometheus counters are: a restart starts them at zero, which `rate()` and
`increase()` handle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Health:
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    last_event_ts: int = 0
    intervals_emitted: int = 0

    def count(self, result: str, reason: str = "", ts: int | None = None) -> None:
        self.events[(result, reason)] += 1
        if ts is not None and ts > self.last_event_ts:
            self.last_event_ts = ts
