"""The call state machine: one call's events in, one outcome per queue visit out.

A call moves through queue visits (an overflow ends one visit and the next queue starts another). Each
transition yields `Fact`s that the counters and the live queue consume; anything a call cannot do
(a second outcome, an answer for an unknown call, ...) yields a rejection reason and changes nothing.
The callback policy lives here and nowhere else.

Beyond the visits, a call's `Journey` follows the customer across them (docs/metrics.md "The
customer's journey"): its first queue, the waits of all its visits, its hand-offs, the queue groups
and the tenant it is counted in once, and whether the customer was identified (a contact, passed on
to `customers.CustomerTracker`). A journey ends with `call.completed`, a final abandon, or expiry;
after a dequeue or an announced transfer it waits `limits.next_visit_seconds` for the next visit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.core import events as ev
from streamer.core.config import (
    POLICY_FLOW_OUT,
    POLICY_REMOVED_FROM_QUEUE,
    TENANT,
    CallRules,
    QueueSettings,
    rollup_key,
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
# The customer's journey. A contact is the first visit of a journey that names a customer; hand-offs
# are the later visits of a journey (counted at the queue left and the queue entered); a journey fact
# ends the journey (at its first queue, `reason` = how it ended, `value` = its hand-offs).
CONTACT = "contact"
HANDOFF_OUT = "handoff_out"
HANDOFF_IN = "handoff_in"
JOURNEY = "journey"
# Decided by the customer tracker (customers.py), about one contact.
REPEAT_CONTACT = "repeat_contact"
FCR_RESOLVED = "fcr_resolved"
FCR_UNRESOLVED = "fcr_unresolved"
# Survey responses (`value` = the score, `visit_id` = the call id).
NPS = "nps"
CSAT = "csat"
# An answered visit's handle time (`value` = talk plus wrap-up, ms), from its `call.completed`: the live
# foresight's recent handle time; counted in internal slots only, no report key shows it.
HANDLED = "handled"

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
WRONG_TENANT = "wrong_tenant"
SURVEY_REPEATED = "survey_repeated"

# `CallState.surveys`: the scores a call has had a response for.
_SURVEY_BITS = {NPS: 1, CSAT: 2}
# A `call.dequeued` of the flow_out callback policy: the call leaves for a callback, no next visit.
CALLBACK_REASON = "callback"

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
    reason: str | None = None  # dequeue reason; for a journey, its outcome
    customer_id: str | None = field(default=None, repr=False)  # contacts only; pseudonymous, kept out of logs
    value: int | None = None  # a journey's hand-offs, a survey's score

    @property
    def is_outcome(self) -> bool:
        return self.kind in OUTCOMES

    def to_list(self) -> list:
        data = [self.kind, self.queue, self.visit_id, self.ts, self.enqueued_ts, self.wait_ms, self.callback,
                self.reason]
        if self.customer_id is not None or self.value is not None:
            data += (self.customer_id, self.value)  # most facts have neither: keep their records short
        return data

    @classmethod
    def from_list(cls, data: list) -> Fact:
        return cls(*data)


@dataclass(slots=True)
class Journey:
    """The journey of a call so far (replaced, never changed, once stored in a `CallState`).

    `rollups` holds the groups and the tenant the call is counted in: (key, entry time, visit number of
    the entry) per roll-up, visit number 0 once the call has left it (it is counted there once)."""

    first_queue: str
    start_ts: int
    wait_ms: int = 0  # the waits of the visits ended so far
    handoffs: int = 0
    outcome: str | None = None  # how the last visit ended, while the journey goes on after it
    left_at: int = -1  # a dequeue or an announced transfer: the next visit may start until + next_visit_ms
    tenant: str | None = None
    rollups: tuple[tuple[str, int, int], ...] | None = None

    def to_list(self) -> list:
        return [self.first_queue, self.start_ts, self.wait_ms, self.handoffs, self.outcome, self.left_at,
                self.tenant, [list(r) for r in self.rollups] if self.rollups is not None else None]

    @classmethod
    def from_list(cls, data: list) -> Journey:
        journey = cls(*data)
        if journey.rollups is not None:
            journey.rollups = tuple(tuple(r) for r in journey.rollups)  # type: ignore[misc]
        return journey

    def with_(self, **changes: object) -> Journey:
        """A copy with `changes`."""
        copy = Journey(self.first_queue, self.start_ts, self.wait_ms, self.handoffs, self.outcome, self.left_at,
                       self.tenant, self.rollups)
        for name, value in changes.items():
            setattr(copy, name, value)
        return copy


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
    journey: Journey | None = None  # None: no journey going on (not started, or ended)
    surveys: int = 0  # survey scores received (bits of _SURVEY_BITS)

    @property
    def visit_id(self) -> str:
        return f"{self.call_id}#{self.visits}"

    @property
    def is_open(self) -> bool:
        return self.status != ENDED

    def to_list(self) -> list:
        return [self.call_id, self.visits, self.queue, self.enqueued_ts, self.status, self.callback,
                self.answered, self.last_ts, self.seen, self.journey.to_list() if self.journey else None,
                self.surveys]

    @classmethod
    def from_list(cls, data: list) -> CallState:
        state = cls(*data[:9])  # rows written before journeys have nine fields
        if len(data) > 9:
            state.journey = Journey.from_list(data[9]) if data[9] else None
            state.surveys = data[10]
        return state


@dataclass(slots=True)
class Step:
    """The result of applying one event: the new state (None: forget the call), facts, or a rejection."""

    state: CallState | None
    facts: list[Fact] = field(default_factory=list)
    rejected: str | None = None


SettingsFor = Callable[[str], QueueSettings]
DEFAULT_RULES = CallRules()


def apply(state: CallState | None, event: ev.Event, settings_for: SettingsFor,
          rules: CallRules = DEFAULT_RULES) -> Step:
    """Apply one call event to the call's state. Never mutates `state`.

    A rejected event changes no visit, but its id is remembered like any other: a redelivery is then a
    duplicate, not judged again against a later state in which it might fit (a replay after a restart
    must give the numbers of the first run).
    """
    if state is not None and event.event_id in state.seen:
        return Step(state, rejected=DUPLICATE)
    step = _transition(state, event, settings_for, rules)
    if step.rejected and state is not None:
        step.state = _remember(state, event)
    return step


def _transition(state: CallState | None, event: ev.Event, settings_for: SettingsFor, rules: CallRules) -> Step:
    if event.type == ev.CALL_ENQUEUED:
        return _enqueue(state, event, settings_for, rules)
    if event.type == ev.SURVEY_COMPLETED:
        return _survey(state, event)
    if state is None or state.visits == 0:
        return Step(None, rejected=UNKNOWN_CALL) if state is None else Step(state, rejected=UNKNOWN_CALL)
    if event.type == ev.CALL_COMPLETED:
        return _complete(state, event, rules)
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
    step = handler(state, event, settings)
    if step.facts and step.state is not None and step.state.journey is not None:
        _follow_journey(step, settings_for, rules, event.to_queue)
    return step


def expire(state: CallState, now_ms: int, max_age_ms: int) -> Step:
    """Expire an open visit that has waited past the maximum call age (as of stream time `now_ms`)."""
    if not state.is_open or now_ms < state.enqueued_ts + max_age_ms:
        return Step(state)
    at = state.enqueued_ts + max_age_ms
    fact = _fact(state, EXPIRED, at)
    new = _copy(state, None)
    new.status = ENDED
    step = Step(new, [fact])
    if new.journey is not None:
        _follow_journey(step, None, DEFAULT_RULES, None)
    return step


def journey_deadline(state: CallState, rules: CallRules) -> int | None:
    """The last moment at which a next visit still continues the call's journey (None: no journey
    waiting for one). After it the journey ends, whether the call is swept (`close`) or its next
    `call.enqueued` comes first, so both orders give the same facts."""
    journey = state.journey
    if journey is None or state.is_open:
        return None
    if journey.left_at >= 0:
        return journey.left_at + rules.next_visit_ms
    return state.last_ts + rules.max_call_age_ms  # answered, its completion not (yet) sent


def close(state: CallState, rules: CallRules) -> list[Fact]:
    """The facts that end the journey of a call about to be forgotten (nothing when none goes on).

    Called only once stream time is `rules.settle_ms` past the deadline, when no event that could
    still continue the journey can be accepted any more."""
    deadline = journey_deadline(state, rules)
    if deadline is None or state.journey is None:
        return []
    return _end_journey(state, state.journey, _ended_at(state.journey, deadline))


def _ended_at(journey: Journey, deadline: int) -> int:
    """When a journey that no next visit continued ended: as its last visit left a queue, or (an
    answer whose completion never came) at its deadline."""
    return journey.left_at if journey.left_at >= 0 else deadline


def _enqueue(state: CallState | None, event: ev.Event, settings_for: SettingsFor, rules: CallRules) -> Step:
    if state is not None and state.is_open:
        return Step(state, rejected=ALREADY_QUEUED)
    queue = event.queue or ""
    facts: list[Fact] = []
    journey = state.journey if state is not None else None
    if journey is not None:
        deadline = journey_deadline(state, rules)  # type: ignore[arg-type]
        if deadline is not None and event.ts > deadline:
            # Too late to continue it: the journey ended at its deadline, as a sweep would have ended it.
            facts = _end_journey(state, journey, _ended_at(journey, deadline))  # type: ignore[arg-type]
            journey = None
    tenant = journey.tenant if journey is not None else (event.tenant or rules.tenant_of.get(queue))
    if _tenant_mismatch(queue, tenant, event.tenant, rules):
        return Step(state, rejected=WRONG_TENANT)
    new = _copy(state, event) if state is not None else CallState(event.call_id or "", seen=[event.event_id],
                                                                     last_ts=event.ts)
    previous_queue = new.queue
    new.visits += 1
    new.queue = queue
    new.enqueued_ts = event.ts
    new.status = WAITING
    new.callback = None
    new.answered = False
    facts.append(_fact(new, ENTERED, event.ts))
    keys = rules.groups_of.get(queue, ())
    if tenant is not None:
        keys = (*keys, rollup_key(TENANT, tenant))
    if journey is None:
        journey = Journey(queue, event.ts, tenant=tenant)
        if event.customer_id is not None:
            facts.append(Fact(CONTACT, queue, new.visit_id, event.ts, event.ts, customer_id=event.customer_id))
        if keys:
            journey.rollups = _enter_rollups(new, (), -1, keys, facts)
    else:
        facts.append(Fact(HANDOFF_OUT, previous_queue or "", new.visit_id, event.ts, event.ts))
        facts.append(Fact(HANDOFF_IN, queue, new.visit_id, event.ts, event.ts))
        rollups = journey.rollups
        if keys or rollups:
            rollups = _enter_rollups(new, rollups or (), journey.left_at, keys, facts)
        journey = journey.with_(handoffs=journey.handoffs + 1, outcome=None, left_at=-1, rollups=rollups)
    new.journey = journey
    return Step(new, facts)


def _tenant_mismatch(queue: str, tenant: str | None, named: str | None, rules: CallRules) -> bool:
    """A visit that would mix tenants: on a queue another tenant lists, on a queue outside the
    tenant's own list, or naming another tenant than the one its call started in."""
    if tenant is None:
        return False
    if named is not None and named != tenant:
        return True
    owner = rules.tenant_of.get(queue)
    if owner is not None and owner != tenant:
        return True
    listed = rules.tenant_queues.get(tenant)
    return listed is not None and queue not in listed


def _enter_rollups(state: CallState, rollups: tuple[tuple[str, int, int], ...], left_at: int,
                   keys: tuple[str, ...], facts: list[Fact]) -> tuple[tuple[str, int, int], ...]:
    """The call's roll-ups as it starts a visit on a queue that counts in `keys`: it leaves those it
    was waiting in that the queue is not part of (dequeued when its last visit left, at `left_at`)
    and enters, once, those it has not been counted in."""
    result = []
    for key, entered, visit in rollups:
        if visit and key not in keys:
            facts.append(Fact(DEQUEUED, key, f"{state.call_id}#{visit}", left_at, entered))
            visit = 0
        result.append((key, entered, visit))
    known = {r[0] for r in result}
    for key in keys:
        if key not in known:
            result.append((key, state.enqueued_ts, state.visits))
            facts.append(Fact(ENTERED, key, state.visit_id, state.enqueued_ts, state.enqueued_ts))
    return tuple(result)


def _follow_journey(step: Step, settings_for: SettingsFor | None, rules: CallRules, to_queue: str | None) -> None:
    """Carry the visit facts of `step` over to the call's journey and roll-ups (in place)."""
    state = step.state
    assert state is not None and state.journey is not None
    journey = state.journey
    extra: list[Fact] | None = None  # roll-up facts, for calls counted in a group or tenant
    ended: tuple[str, int] | None = None  # (outcome, time) when the journey ends here
    for fact in step.facts:
        if journey.rollups is not None and any(r[2] for r in journey.rollups):  # still counted in a roll-up
            if extra is None:
                extra = []
            journey = _mirror(state, journey, fact, settings_for, rules, to_queue, extra)
        if fact.kind not in OUTCOMES:
            continue
        wait = fact.wait_ms if fact.wait_ms is not None else fact.ts - fact.enqueued_ts
        waits_for_next = fact.kind == DEQUEUED and fact.reason != CALLBACK_REASON
        journey = Journey(journey.first_queue, journey.start_ts, journey.wait_ms + wait, journey.handoffs,
                          fact.kind, fact.ts if waits_for_next else journey.left_at, journey.tenant, journey.rollups)
        if not waits_for_next and fact.kind != ANSWERED:
            # A final abandon, an expiry, or a flow-out to a callback: nothing can follow in this
            # journey. A caller's own abandon is short or not by the journey's wait (SHORT_ABANDONED
            # asks `_end_journey` to decide); a failed or scheduled callback is an abandon, never short.
            plain_abandon = fact.kind in (ABANDONED, SHORT_ABANDONED) and fact.callback is None
            ended = (SHORT_ABANDONED if plain_abandon else fact.kind, fact.ts)
    if extra:
        step.facts.extend(extra)
    if ended is not None:
        step.facts.extend(_end_journey(state, journey, ended[1], ended[0], settings_for))
        journey = None
    state.journey = journey


def _mirror(state: CallState, journey: Journey, fact: Fact, settings_for: SettingsFor | None, rules: CallRules,
            to_queue: str | None, out: list[Fact]) -> Journey:
    """Count a visit fact once more in each roll-up the call is waiting in, with the wait from its
    entry there; an outcome ends its stay, except a dequeue to a queue the roll-up holds too."""
    kind = fact.kind
    rollups = []
    for key, entered, visit in journey.rollups or ():
        if visit:
            visit_id = f"{state.call_id}#{visit}"
            if kind in (CALLBACK_REQUESTED, CALLBACK_CONNECTED, CALLBACK_FAILED):
                out.append(Fact(kind, key, visit_id, fact.ts, entered, None, fact.callback))
            elif kind == DEQUEUED:
                stays = fact.reason != CALLBACK_REASON and (
                    to_queue is None or key.startswith(_TENANT_PREFIX) or key in rules.groups_of.get(to_queue, ()))
                if not stays:
                    out.append(Fact(DEQUEUED, key, visit_id, fact.ts, entered, None, fact.callback, fact.reason))
                    visit = 0
            elif kind in OUTCOMES:
                wait = fact.ts - entered
                group_kind = kind
                if kind in (ABANDONED, SHORT_ABANDONED) and fact.callback is None:
                    short_ms = settings_for(key).short_abandon_ms if settings_for is not None else 0
                    group_kind = SHORT_ABANDONED if wait < short_ms else ABANDONED
                out.append(Fact(group_kind, key, visit_id, fact.ts, entered, None if kind == EXPIRED else wait,
                                fact.callback))
                visit = 0
        rollups.append((key, entered, visit))
    return journey.with_(rollups=tuple(rollups))


_TENANT_PREFIX = rollup_key(TENANT, "")


def _end_journey(state: CallState, journey: Journey, at: int, outcome: str | None = None,
                 settings_for: SettingsFor | None = None) -> list[Fact]:
    """The facts that end `journey` at `at` (the state forgets it): the journey fact at its first
    queue, and a dequeue from each roll-up the call still waited in when its last visit ended."""
    outcome = outcome or journey.outcome or EXPIRED
    if outcome == SHORT_ABANDONED:
        # Short or not is the customer's whole wait against the first queue's S, not the last visit's.
        short_ms = settings_for(journey.first_queue).short_abandon_ms if settings_for is not None else 0
        outcome = SHORT_ABANDONED if journey.wait_ms < short_ms else ABANDONED
    facts = [Fact(JOURNEY, journey.first_queue, state.visit_id, at, journey.start_ts, journey.wait_ms,
                  reason=outcome, value=journey.handoffs)]
    for key, entered, visit in journey.rollups or ():
        if visit:
            left = journey.left_at if journey.left_at >= 0 else at
            facts.append(Fact(DEQUEUED, key, f"{state.call_id}#{visit}", left, entered))
    return facts


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


def _complete(state: CallState, event: ev.Event, rules: CallRules) -> Step:
    if state.is_open:
        # Completion while still queued means the answer was never sent; the visit stays open so the
        # answer (or the maximum call age) can still end it.
        return Step(state, rejected=NOT_ANSWERED)
    new = _copy(state, event)
    new.answered = False
    handled = _handled(state, event)
    journey = state.journey
    if journey is None:
        return Step(new, handled)
    deadline = journey_deadline(state, rules)
    if deadline is not None and event.ts > deadline:
        # Too late to belong to the journey: it ended at its deadline, as a sweep would have ended it.
        new.journey = None
        return Step(new, handled + _end_journey(new, journey, _ended_at(journey, deadline)))
    if event.to_queue is not None:
        # The agent transferred the call: the journey goes on in the next visit.
        new.journey = journey.with_(left_at=event.ts)
        return Step(new, handled)
    new.journey = None
    return Step(new, handled + _end_journey(new, journey, event.ts))


def _handled(state: CallState, event: ev.Event) -> list[Fact]:
    """The handle time of the visit the completion ends, when it was answered and the event says it."""
    if not state.answered or (event.talk_seconds is None and event.wrap_seconds is None):
        return []
    handle_ms = round(((event.talk_seconds or 0.0) + (event.wrap_seconds or 0.0)) * 1000)
    return [Fact(HANDLED, state.queue or "", state.visit_id, event.ts, state.enqueued_ts, value=handle_ms)]


def _survey(state: CallState | None, event: ev.Event) -> Step:
    """A survey response, counted at its own queue and time whatever the call's state: responses
    come minutes or days after the call, often after the call is forgotten. One per score and call
    while the call is remembered."""
    scores = [(kind, score) for kind, score in ((NPS, event.nps), (CSAT, event.csat)) if score is not None]
    bits = sum(_SURVEY_BITS[kind] for kind, _ in scores)
    if state is not None and state.surveys & bits:
        return Step(state, rejected=SURVEY_REPEATED)
    if state is None:
        new = CallState(event.call_id or "", queue=event.queue, last_ts=event.ts, seen=[event.event_id])
    else:
        new = _copy(state, event)
    new.surveys |= bits
    queue, call_id = event.queue or "", event.call_id or ""
    return Step(new, [Fact(kind, queue, call_id, event.ts, event.ts, value=score) for kind, score in scores])


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
                     state.answered, max(state.last_ts, event.ts) if event else state.last_ts, seen, state.journey,
                     state.surveys)


_HANDLERS = {
    ev.CALL_ANSWERED: _answer,
    ev.CALL_ABANDONED: _abandon,
    ev.CALL_DEQUEUED: _dequeue,
    ev.CALLBACK_REQUESTED: _request_callback,
    ev.CALLBACK_CONNECTED: _callback_connected,
    ev.CALLBACK_FAILED: _callback_failed,
}
