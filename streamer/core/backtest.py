"""Backtest of the foresight: the core run over an event stream in time order, its forecasts scored.

Each queue is followed as stage 2 follows it (a `QueueState` fed the call tracker's facts and the agent
states), and at two kinds of moments a forecast is taken and later compared with what happened:

- at every caller's entry, the expected wait shown then against the wait it had, when it is answered;
  the naive forecast beside it is the queue's ASA of the last 15 minutes (0 without answers);
- at each interval's midpoint, the projected Service Level against the interval's final one; the naive
  forecast is the interval's Service Level so far (intervals where either is undefined are not scored).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamer.core import calls, counters, foresight
from streamer.core import events as ev
from streamer.core.config import Config, parse_rollup_key
from streamer.core.queues import QueueState
from streamer.core.tracker import PROCESSED, CallTracker
from streamer.core.windows import interval_end, interval_start


@dataclass(slots=True)
class QueueScore:
    calls: int = 0
    ewt_error: float = 0.0
    naive_ewt_error: float = 0.0
    intervals: int = 0
    sl_error: float = 0.0
    naive_sl_error: float = 0.0

    def row(self) -> dict[str, Any]:
        return {
            "calls_scored": self.calls,
            "ewt_mae_seconds": _mean(self.ewt_error, self.calls),
            "naive_ewt_mae_seconds": _mean(self.naive_ewt_error, self.calls),
            "intervals_scored": self.intervals,
            "projected_sl_mae": _mean(self.sl_error, self.intervals),
            "naive_sl_mae": _mean(self.naive_sl_error, self.intervals),
        }


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


@dataclass(slots=True)
class _Followed:
    state: QueueState
    next_midpoint: int
    shown: dict[str, tuple[float, float]] = field(default_factory=dict)  # visit -> (EWT, naive)
    projected: dict[int, tuple[float, float | None]] = field(default_factory=dict)  # interval -> (SL, naive)


class Backtest:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.tracker = CallTracker(self.config)
        self.queues: dict[str, _Followed] = {}
        self.scores: dict[str, QueueScore] = {}
        self.events = 0

    def _followed(self, queue: str, ts: int) -> _Followed:
        followed = self.queues.get(queue)
        if followed is None:
            settings = self.config.for_queue(queue)
            start = interval_start(ts, settings)
            midpoint = (start + interval_end(start, settings)) // 2
            if midpoint < ts:
                following = interval_end(start, settings)
                midpoint = (following + interval_end(following, settings)) // 2
            followed = self.queues[queue] = _Followed(QueueState(queue, settings), midpoint)
            self.scores[queue] = QueueScore()
        return followed

    def add_lines(self, lines: Iterable[bytes | str]) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                event = ev.parse_event(line)
            except ev.InvalidEvent:
                continue
            self.add_event(event)

    def add_event(self, event: ev.Event) -> None:
        self.events += 1
        self._midpoints(event.ts)
        outcome = self.tracker.process(event)
        if outcome.result != PROCESSED:
            return
        if event.type == ev.AGENT_STATE:
            for queue in event.queues or ():
                self._followed(queue, event.ts).state.set_agent(event.agent_id or "", event.state or "", event.ts)
            return
        self._apply(outcome.facts)
        self._apply(self.tracker.advance())

    def _midpoints(self, now_ms: int) -> None:
        """Take the midpoint forecasts of the intervals whose midpoint has passed before `now_ms`."""
        for followed in self.queues.values():
            state = followed.state
            while followed.next_midpoint <= now_ms:
                at = followed.next_midpoint
                start = interval_start(at, state.settings)
                projected = foresight.projected_service_level(state, at)
                naive = counters.service_level(state.interval_counts(start), state.settings)
                if projected is not None:
                    followed.projected[start] = (projected, naive)
                following = interval_end(start, state.settings)
                followed.next_midpoint = (following + interval_end(following, state.settings)) // 2

    def _apply(self, facts: list[calls.Fact]) -> None:
        for fact in facts:
            if parse_rollup_key(fact.queue) is not None:
                continue  # groups and tenants have no line of their own to forecast
            followed = self._followed(fact.queue, fact.ts)
            state = followed.state
            if fact.kind == calls.ENTERED:
                live = foresight.inputs(state, fact.ts)
                naive = counters.asa_seconds(state.window("15m", fact.ts)[2]) or 0.0
                ewt = foresight.expected_wait_seconds(live)
                # No agent serving the queue: the model has no wait to give, the naive one stands in.
                followed.shown[fact.visit_id] = (ewt if math.isfinite(ewt) else naive, naive)
            elif fact.is_outcome:
                shown = followed.shown.pop(fact.visit_id, None)
                if shown is not None and fact.kind == calls.ANSWERED and fact.wait_ms is not None:
                    wait = fact.wait_ms / 1000
                    score = self.scores[fact.queue]
                    score.calls += 1
                    score.ewt_error += abs(shown[0] - wait)
                    score.naive_ewt_error += abs(shown[1] - wait)
            state.apply(fact)

    def finish(self) -> dict[str, Any]:
        """Score the interval forecasts against the final counts: a table's rows and the totals."""
        total = QueueScore()
        rows: dict[str, dict[str, Any]] = {}
        for queue in sorted(self.queues):
            followed = self.queues[queue]
            score = self.scores[queue]
            for start, (projected, naive) in followed.projected.items():
                final = counters.service_level(followed.state.interval_counts(start), followed.state.settings)
                if final is None or naive is None:
                    continue
                score.intervals += 1
                score.sl_error += abs(projected - final)
                score.naive_sl_error += abs(naive - final)
            rows[queue] = score.row()
            for name in QueueScore.__slots__:
                setattr(total, name, getattr(total, name) + getattr(score, name))
        return {**total.row(), "events": self.events, "queues": rows}
