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
from typing import NamedTuple

from streamer.core import calls
from streamer.core.config import Config

# Contact.state
PENDING = 0
UNRESOLVED = 1
RESOLVED = 2
NO_LATER_CONTACT = -1


class Contact(NamedTuple):
    t: int  # the contact's time: its first enqueue
    queue: str
    visit_id: str  # the identity of the contact fact (a re-delivery has the same)
    repeat: bool  # counted as a repeat contact
    state: int  # PENDING, UNRESOLVED or RESOLVED (emitted)
    later: int  # the earliest later contact in the FCR window seen so far, or NO_LATER_CONTACT


@dataclass(slots=True)
class Customer:
    """The contacts of one customer the windows still need, oldest first."""

    contacts: tuple[Contact, ...] = ()

    def to_list(self) -> list:
        return [list(contact) for contact in self.contacts]

    @classmethod
    def from_list(cls, data: list) -> Customer:
        return cls(tuple(Contact(*row) for row in data))


class CustomerTracker:
    def __init__(self, config: Config, store: MutableMapping[str, Customer] | None = None) -> None:
        self.config = config
        self.store: MutableMapping[str, Customer] = {} if store is None else store
        self.settle_ms = config.rules.settle_ms
        self.longest_repeat_ms = max(s.repeat_window_ms for s in (config.defaults, *config.queues.values()))
        self._due: list[tuple[int, str]] = []

    def add(self, fact: calls.Fact) -> list[calls.Fact]:
        """Take one contact fact; returns the repeat-contact facts it decides (for itself or a later
        contact that came first). A re-delivered contact changes nothing."""
        customer_id = fact.customer_id
        if customer_id is None:
            return []
        known = self.store.get(customer_id)
        t, queue = fact.ts, fact.queue
        for_queue = self.config.for_queue
        settings = for_queue(queue)
        repeat, later = False, NO_LATER_CONTACT
        out: list[calls.Fact] = []
        contacts: list[Contact] = []
        for other in known.contacts if known is not None else ():
            if other.visit_id == fact.visit_id:
                return []  # a re-delivery
            if t - settings.repeat_window_ms <= other.t < t:
                repeat = True
            elif t < other.t and not other.repeat and other.t - for_queue(other.queue).repeat_window_ms <= t:
                other = other._replace(repeat=True)
                out.append(_repeat_fact(other))
            if other.state == PENDING and other.t < t <= other.t + for_queue(other.queue).fcr_window_ms:
                if other.later == NO_LATER_CONTACT or t < other.later:
                    other = other._replace(later=t)
            elif t < other.t <= t + settings.fcr_window_ms and (later == NO_LATER_CONTACT or other.t < later):
                later = other.t
            contacts.append(other)
        new = Contact(t, queue, fact.visit_id, repeat, PENDING, later)
        if repeat:
            out.append(_repeat_fact(new))
        contacts.append(new)
        if len(contacts) > 1 and contacts[-2].t > t:
            contacts.sort()
        self._store(customer_id, contacts)
        return out

    def advance(self, now_ms: int) -> list[calls.Fact]:
        """FCR decisions that stream time `now_ms` settles, and forgetting what no window needs."""
        if not self._due or self._due[0][0] > now_ms:
            return []  # the common case, on every event: cheap
        out: list[calls.Fact] = []
        while self._due and self._due[0][0] <= now_ms:
            _, customer_id = heapq.heappop(self._due)
            known = self.store.get(customer_id)
            if known is None:
                continue
            contacts = [self._decide(contact, now_ms, out) for contact in known.contacts]
            contacts = [c for c in contacts if c.state == PENDING or now_ms < self._forget_at(c)]
            # The latest entry of a customer is due when one of its contacts is: it always changes
            # something. An entry that changes nothing is an older one, superseded.
            if contacts != list(known.contacts):
                self._store(customer_id, contacts)
        return out

    def flush(self) -> list[calls.Fact]:
        """At the end of an input: the unresolved decisions still waiting to settle (their later
        contact is known and no event comes any more). Resolutions stay pending: their windows are open."""
        out: list[calls.Fact] = []
        for customer_id in list(self.store):
            contacts = list(self.store[customer_id].contacts)
            changed = False
            for i, contact in enumerate(contacts):
                if contact.state == PENDING and contact.later != NO_LATER_CONTACT:
                    contacts[i] = contact._replace(state=UNRESOLVED)
                    out.append(_fcr_fact(contact, calls.FCR_UNRESOLVED, contact.later))
                    changed = True
            if changed:
                self._store(customer_id, contacts)
        return out

    def rebuild_schedule(self) -> None:
        """Rebuild the in-memory deadlines from the store (after recovery of a persisted store)."""
        self._due = [(self._next_due(list(row.contacts)), customer_id) for customer_id, row in self.store.items()
                     if row.contacts]
        heapq.heapify(self._due)

    # --- rules in time ---------------------------------------------------------------------------

    def _decide(self, contact: Contact, now_ms: int, out: list[calls.Fact]) -> Contact:
        if contact.state != PENDING:
            return contact
        if contact.later != NO_LATER_CONTACT:
            if now_ms >= contact.later + self.settle_ms:
                out.append(_fcr_fact(contact, calls.FCR_UNRESOLVED, contact.later))
                return contact._replace(state=UNRESOLVED)
            return contact
        window_end = contact.t + self.config.for_queue(contact.queue).fcr_window_ms
        if now_ms >= window_end + self.settle_ms:
            out.append(_fcr_fact(contact, calls.FCR_RESOLVED, window_end))
            return contact._replace(state=RESOLVED)
        return contact

    def _forget_at(self, contact: Contact) -> int:
        # A decided contact is still the earlier contact of later ones within the longest repeat
        # window; past that no contact that can still be accepted relates to it.
        return contact.t + self.longest_repeat_ms + self.settle_ms

    def _due_at(self, contact: Contact) -> int:
        if contact.state != PENDING:
            return self._forget_at(contact)
        if contact.later != NO_LATER_CONTACT:
            return contact.later + self.settle_ms
        return contact.t + self.config.for_queue(contact.queue).fcr_window_ms + self.settle_ms

    def _next_due(self, contacts: list[Contact]) -> int:
        return min(self._due_at(contact) for contact in contacts)

    def _store(self, customer_id: str, contacts: list[Contact]) -> None:
        if contacts:
            self.store[customer_id] = Customer(tuple(contacts))
            heapq.heappush(self._due, (self._next_due(contacts), customer_id))
        else:
            del self.store[customer_id]


def _repeat_fact(contact: Contact) -> calls.Fact:
    return calls.Fact(calls.REPEAT_CONTACT, contact.queue, contact.visit_id, contact.t, contact.t)


def _fcr_fact(contact: Contact, kind: str, at: int) -> calls.Fact:
    """An FCR decision, at `at`, about the contact made at `enqueued_ts` (its day in the report)."""
    return calls.Fact(kind, contact.queue, contact.visit_id, at, contact.t)
