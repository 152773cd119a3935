"""Tracks every call of a stream: admission, lateness, duplicates, expiry, forgetting finished calls.

`CallTracker` is what stage 1 of the live pipeline and the offline report both run: events in, facts
out. Its call store is any mutable mapping (a dict offline, a Faust table live, via a codec there),
so both give the same numbers by construction. Time is stream time: the newest event time seen.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass, field

from streamer.core import calls
from streamer.core import events as ev
from streamer.core.config import TENANT, Config, rollup_key
from streamer.core.windows import MINUTE_MS, interval_end, interval_start, is_late

# Result kinds of one event (a metric label: callcenter_events_total{result=...}).
PROCESSED = "processed"
DUPLICATE = "duplicate"
REJECTED = "rejected"
LATE = "late"
INVALID = "invalid"

QUEUE_NOT_ALLOWED = "queue_not_allowed"
TOO_MANY_QUEUES = "too_many_queues"
FUTURE_TIME = "future_time"


@dataclass(slots=True)
class Outcome:
    """What became of one event: its result kind, the reason when not processed, and the facts."""

    result: str
    reason: str = ""
    facts: list[calls.Fact] = field(default_factory=list)


class CallTracker:
    def __init__(self, config: Config, store: MutableMapping[str, calls.CallState] | None = None) -> None:
        self.config = config
        self.store: MutableMapping[str, calls.CallState] = {} if store is None else store
        self.stream_time = 0
        self.queues_seen: set[str] = set()
        self._due: list[tuple[int, str]] = []
        self._next_sweep = 0

    def process(self, event: ev.Event, now_ms: int | None = None) -> Outcome:
        """Apply one event. An agent event changes no call: it is processed (no facts) when every queue
        it names is admitted. With `now_ms` (a live worker's clock), an event dated further ahead than
        `limits.max_future_seconds` is rejected: it would move stream time past every real event."""
        if now_ms is not None and event.ts > now_ms + self.config.limits.max_future_ms:
            return Outcome(REJECTED, FUTURE_TIME)
        if event.type == ev.AGENT_STATE:
            return self._admit_agent(event)
        queue = event.queue or ""
        settings = self.config.for_queue(queue)
        if is_late(event.ts, self.stream_time, settings, self.config.limits.grace_ms):
            return Outcome(LATE, LATE)
        admits_queue = event.type == ev.CALL_ENQUEUED or event.type == ev.SURVEY_COMPLETED
        tenant_key = None
        if admits_queue:
            refusal = self._refusal(queue)
            if not refusal and event.tenant is not None:
                # A tenant's figures are a series of their own, so a new tenant takes a place under the cap.
                tenant_key = rollup_key(TENANT, event.tenant)
                if tenant_key not in self.queues_seen and len(self.queues_seen) + (queue not in self.queues_seen) \
                        >= self.config.limits.max_queues:
                    refusal = TOO_MANY_QUEUES
            if refusal:
                return Outcome(REJECTED, refusal)
        state = self.store.get(event.call_id or "")
        step = calls.apply(state, event, self.config.for_queue, self.config.rules)
        if step.rejected == calls.DUPLICATE:
            return Outcome(DUPLICATE, calls.DUPLICATE)
        if step.rejected:
            if step.state is not None:
                self.store[step.state.call_id] = step.state  # only the rejected event's id is new
            return Outcome(REJECTED, step.rejected)
        if step.state is not None:
            self.store[step.state.call_id] = step.state
            self._reschedule(state, step.state)
        if admits_queue:
            # Admitted only now: a rejected enqueue must not take a place under the cardinality cap.
            self.queues_seen.add(queue)
            if tenant_key is not None:
                self.queues_seen.add(tenant_key)
        if event.ts > self.stream_time:
            self.stream_time = event.ts
        return Outcome(PROCESSED, "", step.facts)

    def resume(self, stream_time: int) -> None:
        """Continue a stream whose events up to `stream_time` an earlier run processed (a restart): with
        that stream time and that run's next sweep, so the events that follow are decided as they were."""
        self.stream_time = stream_time
        self._next_sweep = stream_time - stream_time % MINUTE_MS + MINUTE_MS if stream_time else 0

    def advance(self) -> list[calls.Fact]:
        """Expire calls past the maximum age and forget finished calls whose intervals have all closed,
        ending the journey of a call that no next visit can continue any more.

        Cheap to call after every event: it does work at most once per minute of stream time.
        """
        if self.stream_time < self._next_sweep:
            return []
        self._next_sweep = self.stream_time - self.stream_time % MINUTE_MS + MINUTE_MS
        facts: list[calls.Fact] = []
        max_age = self.config.limits.max_call_age_ms
        while self._due and self._due[0][0] <= self.stream_time:
            _, call_id = heapq.heappop(self._due)
            state = self.store.get(call_id)
            if state is None:
                continue
            if state.is_open:
                step = calls.expire(state, self.stream_time, max_age)
                if step.facts:
                    facts.extend(step.facts)
                    self.store[call_id] = step.state  # type: ignore[assignment]
                    self._schedule(step.state)  # type: ignore[arg-type]
                else:
                    self._schedule(state)  # the entry was older than the call's deadline: re-arm it
            elif self._forget_at(state) <= self.stream_time:
                facts.extend(calls.close(state, self.config.rules))
                del self.store[call_id]
            else:
                self._schedule(state)
        return facts

    def rebuild_schedule(self) -> None:
        """Rebuild the in-memory deadlines from the store (after recovery of a persisted store)."""
        self._due = []
        for state in self.store.values():
            self._schedule(state)
            if state.queue:
                self.queues_seen.add(state.queue)

    # Every call in the store has an entry in `_due` at or before its deadline (`_due_of`): a change that
    # moves the deadline later keeps the earlier entry, which re-arms itself when it comes due.

    def _schedule(self, state: calls.CallState) -> None:
        heapq.heappush(self._due, (self._due_of(state), state.call_id))

    def _reschedule(self, before: calls.CallState | None, after: calls.CallState) -> None:
        due = self._due_of(after)
        if before is None or due < self._due_of(before):
            heapq.heappush(self._due, (due, after.call_id))

    def _due_of(self, state: calls.CallState) -> int:
        """When the call is next looked at: its visit's expiry while open, else when it may be forgotten."""
        if state.status != calls.ENDED:
            return state.enqueued_ts + self.config.limits.max_call_age_ms
        return self._forget_at(state)

    def _forget_at(self, state: calls.CallState) -> int:
        # Once the intervals of a finished call's events have closed, any re-delivery of them is late
        # and rejected as such, so the call's memory (its seen event ids) is no longer needed.
        limits = self.config.limits
        settings = self.config.for_queue(state.queue or "")
        waits_on = state.answered or state.callback is not None
        if waits_on and limits.max_call_age_ms >= settings.interval_minutes * MINUTE_MS + limits.grace_ms:
            forget = state.last_ts + limits.max_call_age_ms  # later than its interval's end plus grace
        else:
            end = interval_end(interval_start(state.last_ts, settings), settings)
            forget = end + limits.grace_ms
            if waits_on:
                # Talking, or a callback whose visit ended by policy: the completion or the callback's
                # result may come long after; wait for it up to the maximum age.
                forget = max(forget, state.last_ts + limits.max_call_age_ms)
        deadline = calls.journey_deadline(state, self.config.rules) if state.journey is not None else None
        if deadline is not None:
            # A journey waiting for its next visit ends once no event that could continue it can still
            # be accepted: then the sweep and a late next visit decide it alike.
            forget = max(forget, deadline + self.config.rules.settle_ms)
        return forget

    def _admit_agent(self, event: ev.Event) -> Outcome:
        # Agents can name queues no call has used yet, so they pass the allow-list and the cap too:
        # otherwise a flood of agent events could create any number of queues (and metric series).
        new = [queue for queue in dict.fromkeys(event.queues or ()) if queue not in self.queues_seen]
        limits = self.config.limits
        if limits.allowed_queues is not None and not limits.allowed_queues.issuperset(new):
            return Outcome(REJECTED, QUEUE_NOT_ALLOWED)
        if len(self.queues_seen) + len(new) > limits.max_queues:
            return Outcome(REJECTED, TOO_MANY_QUEUES)
        self.queues_seen.update(new)
        return Outcome(PROCESSED)

    def _refusal(self, queue: str) -> str:
        """Why a visit on `queue` cannot be admitted, or "" when it can."""
        if queue in self.queues_seen:
            return ""
        limits = self.config.limits
        if limits.allowed_queues is not None and queue not in limits.allowed_queues:
            return QUEUE_NOT_ALLOWED
        if len(self.queues_seen) >= limits.max_queues:
            return TOO_MANY_QUEUES
        return ""
