"""The worker's collector settings: raised thresholds, and start-up objects frozen out of collections,
with cycles made afterwards still collected."""

from __future__ import annotations

import gc
import weakref

from streamer.app import gc_tuning


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_thresholds_are_raised_and_later_cycles_still_collected() -> None:
    before = gc.get_threshold()  # another test may have built an app, which tunes already
    try:
        gc.set_threshold(700, 10, 10)  # CPython's defaults
        gc_tuning.tune()
        assert gc.get_threshold() == gc_tuning.THRESHOLDS
        assert gc_tuning.THRESHOLDS[0] > 700 and gc_tuning.THRESHOLDS[1] > 10
        kept = Node()
        gc_tuning.freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle made after the freeze
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
        assert kept.other is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
