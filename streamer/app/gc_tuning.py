"""Python's cyclic garbage collector, set for a worker that holds many long-lived objects.

Reference counting frees nearly everything the stages allocate per event (parsed events, facts,
rows, records): the per-event path makes no reference cycles. The cyclic collector still runs by
allocation counts, and with CPython's default thresholds (700, 10, 10) it scans each object that
outlives 700 allocations again and again while it moves through the generations: a batch's facts
and rows, every new call state, and at each full collection every object of the process (Faust's and
aiokafka's included). Stage 1 on the bench's call-only stream (offline, 120,000 events) spent
0.32-0.52 s in the collector with the defaults, 0.09-0.21 s with the thresholds below.

At start the thresholds are raised; once the worker is ready the objects made so far (modules, the
app, the recovered state) are frozen out of every later collection (`gc.freeze`), as long-running
servers do. Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

# A young collection every 5,000 net container allocations (a batch's temporaries mostly die before
# it), the middle generation every 100 of those, a full one every 10 of those (and only when a
# quarter of the long-lived objects are new, CPython's own rule).
THRESHOLDS = (5_000, 100, 10)


def tune() -> None:
    gc.set_threshold(*THRESHOLDS)


def freeze_startup_objects() -> None:
    """Keep what exists now out of every later collection (call once, when the worker is ready)."""
    gc.collect()
    gc.freeze()
