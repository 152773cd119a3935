"""The call state machine: one call's events in, one outcome per queue visit out.

A call moves through queue visits (an overflow ends one visit and the next queue starts another). Each
transition yields `Fact`s that the counters and the live queue consume; anything a call cannot do
(a second outcome, an answer for an unknown call, ...) yields a rejection reason and changes nothing.
The callback policy lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.core import events as ev
from streamer.core.config import (
    POLICY_FLOW_OUT,
    POLICY_REMOVED_FROM_QUEUE,
    QueueSettings,
)

# Fact kinds. Outcomes end a visit; the others only count or change the live queue.
ENTERED = "entered"
CALLBACK_REQUESTED = "callback_requested"
CALLBACK_CONNECTED = "callback_connected"
CALLBACK_FAILED = "callback_failed"
ANSWERED = "answered"
ABANDONED = "abandoned"
SHORT_ABANDONED = "short_abandoned"
DEQUEUED = "dequeued"
EXPIRED = "expired"
OUTCOMES = frozenset({ANSWERED, ABANDONED, SHORT_ABANDONED, DEQUEUED, EXPIRED})

# Visit status.
WAITING = "waiting"  # a live caller in the queue
MARKER = "marker"  # a keep-position callback marker holding the caller's place
ENDED = "ended"

# Rejection reasons (DESIGN.md "bad input"); duplicates are reported apart from these.
DUPLICATE = "duplicate"
UNKNOWN_CALL = "unknown_call"
ALREADY_QUEUED = "already_queued"
VISIT_ENDED = "visit_ended"
WRONG_QUEUE = "wrong_queue"
NO_CALLBACK = "no_callback"
BEFORE_ENQUEUE = "before_enqueue"
CALLBACK_ALREADY_REQUESTED = "callback_already_requested"
MARKER_ANSWERED = "marker_answered"
NOT_ANSWERED = "not_answered"

# Enough to recognise every re-delivery of one call's events; a call has a handful.
MAX_SEEN_EVENT_IDS = 64


@dataclass(slots=True)
class Fact:
    """Something that happened to one queue visit, to be counted at `ts` (or at arrival)."""

    kind: str
    queue: str
    visit_id: str
    ts: int
    enqueued_ts: int
    wait_ms: int | None = None
    callback: str | None = None  # keep_position | scheduled, for callback facts and their outcomes
    reason: str | None = None  # dequeue reason

    @property
    def is_outcome(self) -> bool:
        return self.kind in OUTCOMES

    def to_list(self) -> list:
        return [self.kind, self.queue, self.visit_id, self.ts, self.enqueued_ts, self.wait_ms, self.callback,
                self.reason]

    @classmethod
    def from_list(cls, data: list) -> Fact:
        return cls(*data)


@dataclass(slots=True)
class CallState:
    """What is remembered of one call between its events (kept small: it is stored per call)."""

    call_id: str
    visits: int = 0
    queue: str | None = None
    enqueued_ts: int = 0
    status: str = ENDED
    callback: str | None = None  # the callback request of the current visit
    answered: bool = False  # the last visit ended with an answer (completion may follow)
    last_ts: int = 0
    seen: list[str] = field(default_factory=list)

    @property
    def visit_id(self) -> str:
        return f"{self.call_id}#{self.visits}"

    @property
    def is_open(self) -> bool:
        return self.status != ENDED

    def to_list(self) -> list:
        return [self.call_id, self.visits, self.queue, self.enqueued_ts, self.status, self.callback,
                self.answered, self.last_ts, self.seen]

    @classmethod
    def from_list(cls, data: list) -> CallState:
        return cls(*data)


@dataclass(slots=True)
class Step:
    """The result of applying one event: the new state (None: forget the call), facts, or a rejection."""

    state: CallState | None
    facts: list[Fact] = field(default_factory=list)
    rejected: str | None = None


SettingsFor = Callable[[str], QueueSettings]


def apply(state: CallState | None, event: ev.Event, settings_for: SettingsFor) -> Step:
    """Apply one call event to the call's state. Never mutates `state`.

    A rejected event changes no visit, but its id is remembered like any other: a redelivery is then a
    duplicate, not judged again against a later state in which it might fit (a replay after a restart
    must give the numbers of the first run).
    """
    if state is not None and event.event_id in state.seen:
        return Step(state, rejected=DUPLICATE)
    step = _transition(state, event, settings_for)
    if step.rejected and state is not None:
        step.state = _remember(state, event)
    return step


def _transition(state: CallState | None, event: ev.Event, settings_for: SettingsFor) -> Step:
    if event.type == ev.CALL_ENQUEUED:
        return _enqueue(state, event)
    if state is None:
        return Step(None, rejected=UNKNOWN_CALL)
    if event.type == ev.CALL_COMPLETED:
        return _complete(state, event)
    if not state.is_open:
        if event.type in (ev.CALLBACK_CONNECTED, ev.CALLBACK_FAILED) and state.callback is not None:
            # The callback's visit already ended by policy (scheduled, removed, flowed out): a later
            # result is counted as a callback result but changes no queue outcome.
            return _callback_result_after_visit(state, event)
        if event.type == ev.CALL_ABANDONED and state.callback is not None and event.queue == state.queue:
            # The caller hangs up after a request that ended the visit by policy: expected, no outcome.
            return Step(_copy(state, event))
        return Step(state, rejected=VISIT_ENDED)
    if event.queue != state.queue:
        return Step(state, rejected=WRONG_QUEUE)
    if event.ts < state.enqueued_ts:
        return Step(state, rejected=BEFORE_ENQUEUE)
    settings = settings_for(state.queue)
    handler = _HANDLERS[event.type]
    return handler(state, event, settings)


def expire(state: CallState, now_ms: int, max_age_ms: int) -> Step:
    """Expire an open visit that has waited past the maximum call age (as of stream time `now_ms`)."""
    if not state.is_open or now_ms < state.enqueued_ts + max_age_ms:
        return Step(state)
    at = state.enqueued_ts + max_age_ms
    fact = _fact(state, EXPIRED, at)
    new = _copy(state, None)
    new.status = ENDED
    return Step(new, [fact])


def _enqueue(state: CallState | None, event: ev.Event) -> Step:
    if state is not None and state.is_open:
        return Step(state, rejected=ALREADY_QUEUED)
    new = _copy(state, event) if state is not None else CallState(event.call_id or "", seen=[event.event_id],
                                                                     last_ts=event.ts)
    new.visits += 1
    new.queue = event.queue
    new.enqueued_ts = event.ts
    new.status = WAITING
    new.callback = None
    new.answered = False
    return Step(new, [_fact(new, ENTERED, event.ts)])


def _answer(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    if state.status == MARKER:
        return Step(state, rejected=MARKER_ANSWERED)
    return _end(state, event, ANSWERED)


def _abandon(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    wait = event.ts - state.enqueued_ts
    if state.status == MARKER:
        # A caller who accepted a keep-position callback hangs up: expected, and the marker keeps
        # waiting for the agent's call back.
        return Step(_copy(state, event))
    kind = SHORT_ABANDONED if wait < settings.short_abandon_ms else ABANDONED
    return _end(state, event, kind)


def _dequeue(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    return _end(state, event, DEQUEUED, reason=event.reason)


def _request_callback(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    if state.callback is not None:
        return Step(state, rejected=CALLBACK_ALREADY_REQUESTED)
    mode = event.mode or "scheduled"
    new = _copy(state, event)
    new.callback = mode
    requested = _fact(new, CALLBACK_REQUESTED, event.ts, callback=mode)
    if settings.callback_policy == POLICY_FLOW_OUT:
        outcome = _fact(new, DEQUEUED, event.ts, callback=mode, reason="callback")
    elif settings.callback_policy == POLICY_REMOVED_FROM_QUEUE:
        outcome = _fact(new, ANSWERED, event.ts, callback=mode)
    elif mode == "scheduled":
        # COPC: a callback without its place is an abandon at the moment it is requested.
        outcome = _fact(new, ABANDONED, event.ts, callback=mode)
    else:
        new.status = MARKER
        return Step(new, [requested])
    new.status = ENDED
    return Step(new, [requested, outcome])


def _callback_connected(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    if state.status != MARKER:
        return Step(state, rejected=NO_CALLBACK)
    step = _end(state, event, ANSWERED, callback=state.callback)
    step.facts.insert(0, _fact(state, CALLBACK_CONNECTED, event.ts, callback=state.callback))
    step.state.callback = None  # type: ignore[union-attr]  # one result per request
    return step


def _callback_failed(state: CallState, event: ev.Event, settings: QueueSettings) -> Step:
    if state.status != MARKER:
        return Step(state, rejected=NO_CALLBACK)
    step = _end(state, event, ABANDONED, callback=state.callback)
    step.facts.insert(0, _fact(state, CALLBACK_FAILED, event.ts, callback=state.callback))
    step.state.callback = None  # type: ignore[union-attr]  # one result per request
    return step


def _callback_result_after_visit(state: CallState, event: ev.Event) -> Step:
    kind = CALLBACK_CONNECTED if event.type == ev.CALLBACK_CONNECTED else CALLBACK_FAILED
    if event.queue != state.queue:
        return Step(state, rejected=WRONG_QUEUE)
    new = _copy(state, event)
    fact = _fact(new, kind, event.ts, callback=state.callback)
    new.callback = None  # one result per request
    return Step(new, [fact])


def _complete(state: CallState, event: ev.Event) -> Step:
    if state.is_open:
        # Completion while still queued means the answer was never sent; the visit stays open so the
        # answer (or the maximum call age) can still end it.
        return Step(state, rejected=NOT_ANSWERED)
    new = _copy(state, event)
    new.answered = False
    return Step(new)


def _end(state: CallState, event: ev.Event, kind: str, callback: str | None = None,
         reason: str | None = None) -> Step:
    new = _copy(state, event)
    new.status = ENDED
    new.answered = kind == ANSWERED
    return Step(new, [_fact(new, kind, event.ts, callback=callback, reason=reason)])


def _fact(state: CallState, kind: str, ts: int, callback: str | None = None, reason: str | None = None) -> Fact:
    wait = None if kind in (ENTERED, DEQUEUED, EXPIRED, CALLBACK_REQUESTED, CALLBACK_CONNECTED,
                            CALLBACK_FAILED) else ts - state.enqueued_ts
    return Fact(kind, state.queue or "", state.visit_id, ts, state.enqueued_ts, wait, callback, reason)


def _remember(state: CallState, event: ev.Event) -> CallState:
    """`state` with the id of a rejected `event` added to the ids seen, and nothing else changed."""
    new = _copy(state, None)
    new.seen = [*state.seen[-(MAX_SEEN_EVENT_IDS - 1):], event.event_id]
    return new


def _copy(state: CallState, event: ev.Event | None) -> CallState:
    seen = state.seen
    if event is not None:
        seen = [*seen[-(MAX_SEEN_EVENT_IDS - 1):], event.event_id]
    return CallState(state.call_id, state.visits, state.queue, state.enqueued_ts, state.status, state.callback,
                     state.answered, max(state.last_ts, event.ts) if event else state.last_ts, seen)


_HANDLERS = {
    ev.CALL_ANSWERED: _answer,
    ev.CALL_ABANDONED: _abandon,
    ev.CALL_DEQUEUED: _dequeue,
    ev.CALLBACK_REQUESTED: _request_callback,
    ev.CALLBACK_CONNECTED: _callback_connected,
    ev.CALLBACK_FAILED: _callback_failed,
}
