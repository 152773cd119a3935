"""The foresight blocks /metrics and the JSON API show, refreshed off the readers' path.

A block costs milliseconds per queue (streamer/core/foresight.py: up to some tens of ms for a busy
queue), and the blocks of every queue fall due together. Computed by the read that found them due,
they held up the worker's event loop for all queues at once every few seconds: `streamer bench`'s
latency p99 was 0.18 s without foresight and 0.43 to 1.5 s with it. So a read only shows each queue's
last block (all nulls until its first one is computed), and a timer refreshes the due blocks,
stalest first, spending at most TICK_BUDGET_SECONDS of the event loop per tick (at least one queue),
so the stream waits for one slice at most and foresight takes at most a tenth of the worker. With
many queues the blocks refresh more slowly instead. Nobody reading, nothing is computed.

A worker catching up (a restart after downtime, a replay: more than CATCH_UP_LAG_RECORDS call events
behind the end of its partitions) holds queue states of a past moment, so a block for now says little
and its cost slows the catch-up (`streamer bench` on 40 queues: 6.5 % of the worker's samples). Then
a queue's block is computed when it has none and otherwise at most every CATCH_UP_REFRESH_MS; once
the worker has caught up, every block computed meanwhile is due at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from streamer.core import foresight
from streamer.core.queues import QueueState

# Blocks are refreshed while someone has read them within this many seconds.
READERS_GONE_SECONDS = 60.0
TICK_SECONDS = 0.2
TICK_BUDGET_SECONDS = 0.02
CATCH_UP_LAG_RECORDS = 5_000
CATCH_UP_REFRESH_MS = 30_000
# What a queue shows before its first block: every figure unknown.
PENDING = {"ewt_seconds": None, "projected_service_level": None, "chance_of_target": None, "agents_needed": None,
           "agents_logged_in": None, "agents_serving": None, "aht_seconds": None, "arrivals_per_hour": None,
           "patience_seconds": None}


class ForesightBlocks:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 work_clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock, self.work_clock = clock, work_clock
        self.read_at: float | None = None
        self.computed_behind: set[str] = set()  # queues whose last block was computed while catching up

    def read(self, states: Mapping[str, QueueState]) -> dict[str, dict[str, Any]]:
        """Queue -> its last foresight block (PENDING before its first)."""
        self.read_at = self.clock()
        return {queue: foresight.last_block(state) or dict(PENDING) for queue, state in states.items()}

    def readers(self) -> bool:
        return self.read_at is not None and self.clock() - self.read_at <= READERS_GONE_SECONDS

    def refresh(self, states: Mapping[str, QueueState], now_ms: int, behind: bool = False,
                budget_seconds: float = TICK_BUDGET_SECONDS) -> list[str]:
        """Recompute due blocks, never computed and then stalest first, until the budget is spent
        (at least one); returns the queues refreshed. `behind`: the worker is catching up."""
        if not self.readers():
            return []
        began = self.work_clock()
        due = sorted((at if (at := foresight.computed_at(state)) is not None else -1, queue)
                     for queue, state in states.items() if self._due(queue, state, now_ms, behind))
        done = []
        for _, queue in due:
            if done and self.work_clock() - began >= budget_seconds:
                break
            states[queue].foresight_memo = None  # due by this object's rules, which forecast() does not know
            foresight.forecast(states[queue], now_ms)
            done.append(queue)
            if behind:
                self.computed_behind.add(queue)
            else:
                self.computed_behind.discard(queue)
        return done

    def _due(self, queue: str, state: QueueState, now_ms: int, behind: bool) -> bool:
        at = foresight.computed_at(state)
        if at is None:
            return True
        if behind:
            return not 0 <= now_ms - at < CATCH_UP_REFRESH_MS
        if queue in self.computed_behind:
            return True  # computed while catching up: the oldest, so replaced first
        return foresight.due(state, now_ms)
