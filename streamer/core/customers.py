"""Customer-keyed state: repeat contacts and first-contact resolution (docs/metrics.md).

The call tracker emits a contact fact for each journey whose first `call.enqueued` names a
`customer_id`. `CustomerTracker` keeps, per customer, the contacts the windows still need and decides:

- **repeat**: the contact's customer had another contact with time in [t − repeat window, t), the
  window of the contact's queue. Counted at the contact's queue and time.
- **first-contact resolution** (window of the original contact's queue): *unresolved* when the same
  customer makes another contact with time in (t, t + window]; *resolved* when no contact with time in
  the window can come any more; *pending* until then.

Contacts of one customer come from different calls, so from different stage-1 partitions in a live
worker, in any order. Every decision is therefore a function of the set of contacts, never of their
order: a repeat is counted whichever of the two contacts comes second; an unresolved contact is
dated by the earliest later contact in its window and emitted once no earlier one can still be
accepted (`settle_ms` past it: an event at or before a time is late once stream time is that far
past it); a resolved one at t + window, once the window is as settled. So the live stage and the
offline report, fed the same contacts, give the same facts, however the contacts interleave.

The store is any mutable mapping (a dict offline, a Faust table live); rows are replaced, never
changed in place, and serialize with `to_list` / `from_list`. Time is given by the caller: the
stream time offline, the watermark over stage-1 partitions live.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass

from streamer.core import calls
from streamer.core.config import Config

# A contact is a plain tuple (cheap to build and to keep for every customer):
#   (t, queue, visit id, repeat, state, later, window end)
# t: its time (its first enqueue); visit id: the identity of the contact fact (a re-delivery has the
# same); repeat: counted as a repeat contact; state: PENDING, UNRESOLVED or RESOLVED (emitted); later:
# the earliest later contact in its FCR window seen so far, or NO_LATER_CONTACT; window end: t + the
# FCR window of its queue.
Contact = tuple[int, str, str, bool, int, int, int]
T, QUEUE, VISIT, REPEAT, STATE, LATER, WINDOW_END = range(7)
PENDING = 0
UNRESOLVED = 1
RESOLVED = 2
NO_LATER_CONTACT = -1


@dataclass(slots=True)
class Customer:
    """The contacts of one customer the windows still need, oldest first."""

    contacts: tuple[Contact, ...] = ()

    def to_list(self) -> list:
        return [list(contact) for contact in self.contacts]

    @classmethod
    def from_list(cls, data: list) -> Customer:
        return cls(tuple(tuple(row) for row in data))  # type: ignore[misc]


class CustomerTracker:
    def __init__(self, config: Config, store: MutableMapping[str, Customer] | None = None) -> None:
        self.config = config
        self.store: MutableMapping[str, Customer] = {} if store is None else store
        self.settle_ms = config.rules.settle_ms
        self.longest_repeat_ms = max(s.repeat_window_ms for s in (config.defaults, *config.queues.values()))
        self._windows: dict[str, tuple[int, int]] = {}  # queue -> (repeat window, FCR window), ms
        # One live deadline per customer (a heap entry whose time is not the customer's in `_scheduled`
        # is superseded): the earliest moment one of its contacts may be decided or forgotten.
        self._due: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}

    def add(self, fact: calls.Fact) -> list[calls.Fact]:
        """Take one contact fact; returns the repeat-contact facts it decides (for itself, or for a
        later contact that came first). A re-delivered contact changes nothing."""
        customer_id = fact.customer_id
        if customer_id is None:
            return []
        known = self.store.get(customer_id)
        t, queue, visit_id = fact.ts, fact.queue, fact.visit_id
        repeat_ms, fcr_ms = self._windows_of(queue)
        repeat, later = False, NO_LATER_CONTACT
        out: list[calls.Fact] = []
        contacts: list[Contact] = []
        for other in known.contacts if known is not None else ():
            if other[VISIT] == visit_id:
                return []  # a re-delivery
            other_t, other_repeat, other_later = other[T], other[REPEAT], other[LATER]
            if t - repeat_ms <= other_t < t:
                repeat = True
            elif t < other_t and not other_repeat and other_t - self._windows_of(other[QUEUE])[0] <= t:
                other_repeat = True  # this contact came second: the later one is the repeat
                out.append(_repeat_fact(other))
            if other_t < t <= other[WINDOW_END] and other[STATE] == PENDING:
                if other_later == NO_LATER_CONTACT or t < other_later:
                    other_later = t
            elif t < other_t <= t + fcr_ms and (later == NO_LATER_CONTACT or other_t < later):
                later = other_t
            if other_repeat is not other[REPEAT] or other_later != other[LATER]:
                other = (other_t, other[QUEUE], other[VISIT], other_repeat, other[STATE], other_later,
                         other[WINDOW_END])
            contacts.append(other)
        new = (t, queue, visit_id, repeat, PENDING, later, t + fcr_ms)
        if repeat:
            out.append(_repeat_fact(new))
        contacts.append(new)
        if len(contacts) > 1 and contacts[-2][T] > t:
            contacts.sort()
        # Only this contact, and earlier ones it may have made unresolved (decided `settle_ms` after
        # it), can bring the customer's next deadline forward.
        due = (later if later != NO_LATER_CONTACT else t + fcr_ms) + self.settle_ms
        if known is not None and any(c[STATE] == PENDING and c[LATER] == t for c in contacts):
            due = min(due, t + self.settle_ms)
        self._store(customer_id, contacts, due)
        return out

    @property
    def next_due(self) -> int | None:
        """The earliest time at which `advance` may have something to do (None: nothing to wait for)."""
        return self._due[0][0] if self._due else None

    def advance(self, now_ms: int) -> list[calls.Fact]:
        """FCR decisions that stream time `now_ms` settles, and forgetting what no window needs."""
        if not self._due or self._due[0][0] > now_ms:
            return []  # the common case, on every event: cheap
        out: list[calls.Fact] = []
        settle, forget_after = self.settle_ms, self.longest_repeat_ms + self.settle_ms
        while self._due and self._due[0][0] <= now_ms:
            due, customer_id = heapq.heappop(self._due)
            if self._scheduled.get(customer_id) != due:
                continue  # superseded by an earlier deadline, already handled
            del self._scheduled[customer_id]
            known = self.store.get(customer_id)
            if known is None:
                continue
            contacts = []
            changed = False
            for contact in known.contacts:
                state = contact[STATE]
                if state == PENDING:
                    later = contact[LATER]
                    if later != NO_LATER_CONTACT:
                        if now_ms >= later + settle:
                            out.append(_fcr_fact(contact, calls.FCR_UNRESOLVED, later))
                            contact, state = _with_state(contact, UNRESOLVED), UNRESOLVED
                    elif now_ms >= contact[WINDOW_END] + settle:
                        out.append(_fcr_fact(contact, calls.FCR_RESOLVED, contact[WINDOW_END]))
                        contact, state = _with_state(contact, RESOLVED), RESOLVED
                    changed = changed or state != PENDING
                if state != PENDING and now_ms >= contact[T] + forget_after:
                    # Decided, and past the longest repeat window: no contact that can still be
                    # accepted relates to it any more.
                    changed = True
                    continue
                contacts.append(contact)
            if changed:
                self._store(customer_id, contacts)
            else:
                self._schedule(customer_id, contacts)
        return out

    def flush(self) -> list[calls.Fact]:
        """At the end of an input: the unresolved decisions still waiting to settle (their later
        contact is known and no event comes any more). Resolutions stay pending: their windows are open."""
        out: list[calls.Fact] = []
        for customer_id in list(self.store):
            contacts = list(self.store[customer_id].contacts)
            changed = False
            for i, contact in enumerate(contacts):
                if contact[STATE] == PENDING and contact[LATER] != NO_LATER_CONTACT:
                    contacts[i] = _with_state(contact, UNRESOLVED)
                    out.append(_fcr_fact(contact, calls.FCR_UNRESOLVED, contact[LATER]))
                    changed = True
            if changed:
                self._store(customer_id, contacts)
        return out

    def rebuild_schedule(self) -> None:
        """Rebuild the in-memory deadlines from the store (after recovery of a persisted store)."""
        self._due, self._scheduled = [], {}
        for customer_id, row in self.store.items():
            self._schedule(customer_id, list(row.contacts))

    def _windows_of(self, queue: str) -> tuple[int, int]:
        windows = self._windows.get(queue)
        if windows is None:
            settings = self.config.for_queue(queue)
            windows = self._windows[queue] = (settings.repeat_window_ms, settings.fcr_window_ms)
        return windows

    def _store(self, customer_id: str, contacts: list[Contact], due: int | None = None) -> None:
        """Write the customer's row (or forget the customer); `due`, when given, is the earliest
        deadline among the contacts that changed (the others' are already scheduled)."""
        if contacts:
            self.store[customer_id] = Customer(tuple(contacts))
            self._schedule(customer_id, contacts, due)
        else:
            del self.store[customer_id]

    def _schedule(self, customer_id: str, contacts: list[Contact], due: int | None = None) -> None:
        """Make sure a deadline no later than the next one of `contacts` is in the heap."""
        if not contacts:
            return
        if due is None:
            settle, forget_after = self.settle_ms, self.longest_repeat_ms + self.settle_ms
            due = min(
                contact[T] + forget_after if contact[STATE] != PENDING
                else (contact[LATER] if contact[LATER] != NO_LATER_CONTACT else contact[WINDOW_END]) + settle
                for contact in contacts
            )
        scheduled = self._scheduled.get(customer_id)
        if scheduled is None or due < scheduled:
            # A later deadline needs no entry of its own: the earlier one reschedules when it comes.
            self._scheduled[customer_id] = due
            heapq.heappush(self._due, (due, customer_id))


def _with_state(contact: Contact, state: int) -> Contact:
    return (contact[T], contact[QUEUE], contact[VISIT], contact[REPEAT], state, contact[LATER], contact[WINDOW_END])


def _repeat_fact(contact: Contact) -> calls.Fact:
    return calls.Fact(calls.REPEAT_CONTACT, contact[QUEUE], contact[VISIT], contact[T], contact[T])


def _fcr_fact(contact: Contact, kind: str, at: int) -> calls.Fact:
    """An FCR decision, at `at`, about the contact made at `enqueued_ts` (its day in the report)."""
    return calls.Fact(kind, contact[QUEUE], contact[VISIT], at, contact[T])
