"""Stage 2: aggregate per queue. Facts keyed by queue in; minute buckets, totals, the live queue and
agents kept per owned queue (a `QueueState`, persisted to tables); closed intervals out.

Time here is a watermark: the minimum stream time over every stage-1 partition, so an interval never
closes only because one upstream partition ran ahead of the others. A queue idle for the idle period
(wall clock) closes its intervals anyway, so quiet queues and the end of a replay still close.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streamer.app import records
from streamer.app.health import Health
from streamer.app.stage1 import partition_of
from streamer.core import counters
from streamer.core.calls import Fact
from streamer.core.config import Config
from streamer.core.queues import QueueState
from streamer.core.windows import MINUTE_MS, interval_start

log = logging.getLogger(__name__)


class QueueStage:
    def __init__(self, config: Config, tables: dict[str, Any], upstream_partitions: int, partitions: int,
                 health: Health) -> None:
        self.config = config
        self.buckets = tables["buckets"]  # "queue|minute" -> counts
        self.totals = tables["totals"]  # queue -> counts, monotonic
        self.waiting = tables["waiting"]  # "queue|visit" -> [enqueued ms, kind]
        self.agents = tables["agents"]  # "queue|agent" -> state
        self.upstream_partitions = upstream_partitions
        self.partitions = partitions
        self.health = health
        self.owned: dict[int, dict[str, QueueState]] = {}  # partition -> queue -> state
        # partition -> upstream partition -> (stream time or None, idle)
        self.progress: dict[int, dict[int, tuple[int | None, bool]]] = {}
        self.last_fact_wall: dict[str, float] = {}
        self._next_prune: dict[str, int] = {}

    # --- ownership ------------------------------------------------------------------------------

    def queues(self) -> dict[str, QueueState]:
        """Every queue this worker owns now."""
        return {q: s for states in self.owned.values() for q, s in states.items()}

    def partition_states(self, partition: int) -> dict[str, QueueState]:
        states = self.owned.get(partition)
        if states is None:
            states = self.owned[partition] = self._recover(partition)
        return states

    def forget_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            for queue in self.owned.pop(partition, {}):
                self.last_fact_wall.pop(queue, None)
            self.progress.pop(partition, None)

    def _recover(self, partition: int) -> dict[str, QueueState]:
        states: dict[str, QueueState] = {}

        def state_of(queue: str) -> QueueState | None:
            if partition_of(queue, self.partitions) != partition:
                return None
            state = states.get(queue)
            if state is None:
                state = states[queue] = QueueState(queue, self.config.for_queue(queue))
            return state

        for queue, totals in self.totals.items():
            if (state := state_of(queue)) is not None:
                state.totals = list(totals)
        for key, bucket in self.buckets.items():
            queue, _, minute = key.rpartition("|")
            if (state := state_of(queue)) is not None:
                state.buckets[int(minute)] = list(bucket)
                state.dirty.add(interval_start(int(minute), state.settings))
        for key, (enqueued, kind) in self.waiting.items():
            queue, _, visit = key.partition("|")
            if (state := state_of(queue)) is not None:
                state.waiting[visit] = (enqueued, kind)
        for key, agent_state in self.agents.items():
            queue, _, agent = key.partition("|")
            if (state := state_of(queue)) is not None:
                state.agents[agent] = agent_state
        for state in states.values():
            if state.buckets:
                state.last_event_ts = max(state.buckets) + MINUTE_MS - 1
        if states:
            log.info("stage 2 partition %d: recovered %d queue(s): %s", partition, len(states), ", ".join(states))
        return states

    # --- processing -----------------------------------------------------------------------------

    def handle(self, key: str, value: bytes, partition: int) -> None:
        record = records.decode(value)
        kind = record["k"]
        states = self.partition_states(partition)
        if kind == records.PROGRESS:
            known = self.progress.setdefault(partition, {})
            previous = known.get(record["p"], (None, True))[0]
            stream_time = record["st"]
            if previous is not None and (stream_time is None or stream_time < previous):
                stream_time = previous  # a watermark never goes back
            known[record["p"]] = (stream_time, bool(record.get("idle")))
            return
        queue = key
        state = states.get(queue)
        if state is None:
            state = states[queue] = QueueState(queue, self.config.for_queue(queue))
        if kind == records.AGENT:
            agent_key = f"{queue}|{record['a']}"
            state.set_agent(record["a"], record["s"], record["ts"])
            if record["s"] == "logged_out":
                self.agents.pop(agent_key, None)
            else:
                self.agents[agent_key] = record["s"]
            return
        fact = Fact.from_list(record["f"])
        changes = state.apply(fact)
        self.last_fact_wall[queue] = time.monotonic()
        if changes.bucket is not None:
            self.buckets[f"{queue}|{changes.bucket}"] = state.buckets[changes.bucket]
        self.totals[queue] = state.totals
        if changes.waiting_added is not None:
            enqueued, waiting_kind = state.waiting[changes.waiting_added]
            self.waiting[f"{queue}|{changes.waiting_added}"] = [enqueued, waiting_kind]
        if changes.waiting_removed is not None:
            self.waiting.pop(f"{queue}|{changes.waiting_removed}", None)
        self._prune(state, fact.ts)

    def _prune(self, state: QueueState, now_ms: int) -> None:
        # Deleting needs the current event of this queue's partition (Faust's changelog rule), so old
        # buckets are dropped here, at most once per stream-time hour per queue.
        if now_ms < self._next_prune.get(state.queue, 0):
            return
        self._next_prune[state.queue] = now_ms + 3600 * 1000
        for minute in state.prune(now_ms):
            self.buckets.pop(f"{state.queue}|{minute}", None)

    # --- closing intervals ----------------------------------------------------------------------

    def watermark(self, partition: int) -> int | None:
        """Minimum stream time over the active upstream partitions; None until every one has reported."""
        known = self.progress.get(partition, {})
        if len(known) < self.upstream_partitions:
            return None
        active = [t for t, idle in known.values() if not idle and t is not None]
        if active:
            return min(active)
        times = [t for t, _ in known.values() if t is not None]
        return max(times) if times else None

    def due_intervals(self, idle_seconds: float) -> list[tuple[str, bytes]]:
        """Closed intervals to write now, as (key, value); marks them emitted."""
        out = []
        now = time.monotonic()
        grace = self.config.limits.grace_ms
        for partition, states in self.owned.items():
            watermark = self.watermark(partition)
            for queue, state in states.items():
                idle = now - self.last_fact_wall.get(queue, 0.0) >= idle_seconds
                for start in state.due_intervals(watermark, grace, idle):
                    block = state.closed_interval(start)
                    state.dirty.discard(start)
                    if not counters.is_empty(state.interval_counts(start)):
                        out.append((f"{queue}|{block['start']}", block))
        return out
