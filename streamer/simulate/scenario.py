"""What a simulation runs: queues (traffic, handle times, patience, callback offer, overflow, agent
transfers), agents (skills, daily shifts), and customers (who call again, and answer surveys). Plain
data, validated once with messages that say what to fix."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

HOURS_PER_DAY = 24
HandleDistribution = Literal["exponential", "lognormal"]


@dataclass(frozen=True)
class HandleTime:
    """Handle time (talk plus wrap-up) of mean `mean_seconds`; lognormal takes a coefficient of variation."""

    mean_seconds: float
    distribution: HandleDistribution = "exponential"
    cv: float = 1.0

    def validate(self, where: str) -> None:
        if not self.mean_seconds > 0:
            raise ValueError(f"{where}: average handle time must be > 0 seconds, got {self.mean_seconds}")
        if self.distribution not in ("exponential", "lognormal"):
            raise ValueError(f"{where}: handle distribution must be exponential or lognormal")
        if not self.cv > 0:
            raise ValueError(f"{where}: handle time CV must be > 0, got {self.cv}")

    def sampler(self, rng: random.Random, mean_seconds: float) -> Callable[[], float]:
        """Draws of this distribution's shape with the given mean (the talk part), in seconds."""
        if self.distribution == "exponential":
            rate = 1.0 / mean_seconds
            return lambda: rng.expovariate(rate)
        sigma = math.sqrt(math.log1p(self.cv * self.cv))
        mu = math.log(mean_seconds) - sigma * sigma / 2.0
        return lambda: rng.lognormvariate(mu, sigma)


@dataclass(frozen=True)
class CallbackOffer:
    """Offer a callback to a caller still waiting `offer_delay_seconds` after entering the queue when
    the expected wait at entry (place in line × AHT / agents on duty) passes `after_seconds`."""

    after_seconds: float
    accept: float = 0.5
    reach: float = 0.9
    scheduled_share: float = 0.0
    offer_delay_seconds: float = 15.0
    ring_seconds: float = 12.0
    no_answer_seconds: float = 30.0

    def validate(self, where: str) -> None:
        for name in ("accept", "reach", "scheduled_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{where}: callback {name} must be a probability in [0, 1], got {value}")
        for name in ("after_seconds", "offer_delay_seconds", "ring_seconds", "no_answer_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{where}: callback {name} must be ≥ 0")


@dataclass(frozen=True)
class Overflow:
    """Move a caller still waiting after `after_seconds` in this queue to `to_queue` (a new visit)."""

    to_queue: str
    after_seconds: float


@dataclass(frozen=True)
class Transfer:
    """After the talk, an agent transfers a share of this queue's answered calls to `to_queue` (a new
    visit of the same call: `call.completed` with `to_queue`, then `call.enqueued` there)."""

    to_queue: str
    share: float


@dataclass(frozen=True)
class Recall:
    """Customers who call again: a share of journeys ending answered (the problem was not solved) and a
    larger share of those ending abandoned or with a failed callback, each after an exponential delay,
    on the first queue of their earlier call, under the same `customer_id`."""

    after_answered: float = 0.0
    after_abandoned: float = 0.0
    answered_delay_minutes: float = 24 * 60.0
    abandoned_delay_minutes: float = 10.0

    def validate(self) -> None:
        for name in ("after_answered", "after_abandoned"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"recall {name} must be a probability in [0, 1], got {value}")
        for name in ("answered_delay_minutes", "abandoned_delay_minutes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"recall {name} must be > 0")


@dataclass(frozen=True)
class Surveys:
    """A share of answered journeys ends with a post-call survey (NPS 0-10 and CSAT 1-5) after an
    exponential delay; the longer the journey's wait and the more hand-offs, the worse the scores."""

    share: float
    delay_seconds: float = 120.0

    def validate(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"survey share must be a probability in [0, 1], got {self.share}")
        if not self.delay_seconds > 0:
            raise ValueError("survey delay must be > 0 seconds")


@dataclass(frozen=True)
class QueueSpec:
    name: str
    calls_per_hour: float
    handle: HandleTime
    patience_seconds: float | None = None
    wrap_seconds: float = 0.0
    # Arrival-rate multipliers for each UTC hour of the day; None = flat.
    profile: tuple[float, ...] | None = None
    # Free agents take the highest priority first, then the longest wait.
    priority: int = 0
    callback: CallbackOffer | None = None
    overflow: Overflow | None = None
    transfer: Transfer | None = None

    def validate(self) -> None:
        where = f"queue {self.name!r}"
        if not self.name:
            raise ValueError("a queue needs a name")
        if not self.calls_per_hour >= 0:
            raise ValueError(f"{where}: calls per hour must be ≥ 0, got {self.calls_per_hour}")
        self.handle.validate(where)
        if self.patience_seconds is not None and not self.patience_seconds > 0:
            raise ValueError(f"{where}: patience must be > 0 seconds (leave it out for callers who never hang up)")
        if not 0 <= self.wrap_seconds < self.handle.mean_seconds:
            raise ValueError(f"{where}: wrap-up must be ≥ 0 and shorter than the average handle time")
        if self.profile is not None and (
            len(self.profile) != HOURS_PER_DAY or min(self.profile) < 0 or max(self.profile) <= 0
        ):
            raise ValueError(f"{where}: a time-of-day profile needs 24 multipliers ≥ 0, not all 0")
        if self.callback is not None:
            self.callback.validate(where)
        if self.overflow is not None and self.overflow.after_seconds < 0:
            raise ValueError(f"{where}: overflow delay must be ≥ 0 seconds")
        if self.transfer is not None and not 0.0 <= self.transfer.share <= 1.0:
            raise ValueError(f"{where}: transfer share must be a probability in [0, 1], got {self.transfer.share}")


@dataclass(frozen=True)
class AgentSpec:
    """An agent serving `queues`; `shifts` are daily [start, end) UTC hours (end up to start + 24,
    e.g. (22, 30) for 22:00–06:00), None = on duty for the whole run."""

    agent_id: str
    queues: tuple[str, ...]
    shifts: tuple[tuple[float, float], ...] | None = None

    def validate(self, queue_names: set[str]) -> None:
        where = f"agent {self.agent_id!r}"
        if not self.queues:
            raise ValueError(f"{where} serves no queue")
        unknown = [q for q in self.queues if q not in queue_names]
        if unknown:
            raise ValueError(f"{where} serves unknown queue(s) {', '.join(unknown)}")
        if self.shifts is None:
            return
        covered: list[tuple[float, float]] = []
        for start, end in self.shifts:
            if not (0 <= start < HOURS_PER_DAY and start < end <= start + HOURS_PER_DAY):
                raise ValueError(f"{where}: shift ({start}, {end}) must start in [0, 24) and last ≤ 24 h")
            covered += [(start, end), (start + HOURS_PER_DAY, end + HOURS_PER_DAY)]
        covered.sort()
        if any(b_start < a_end for (_, a_end), (b_start, _) in pairwise(covered)):
            raise ValueError(f"{where}: shifts overlap; merge them into one")


@dataclass(frozen=True)
class Scenario:
    name: str
    queues: tuple[QueueSpec, ...]
    agents: tuple[AgentSpec, ...]
    # Callers get a pseudonymous customer_id drawn from this many customers; None = no customer_id.
    customers: int | None = None
    recall: Recall | None = None
    surveys: Surveys | None = None
    notes: tuple[str, ...] = field(default=())

    def validate(self) -> None:
        names = [q.name for q in self.queues]
        if not names:
            raise ValueError(f"scenario {self.name!r} has no queue")
        if len(set(names)) != len(names):
            raise ValueError(f"scenario {self.name!r}: queue names repeat: {', '.join(names)}")
        for queue in self.queues:
            queue.validate()
            if queue.overflow is not None and queue.overflow.to_queue not in names:
                raise ValueError(f"queue {queue.name!r} overflows to unknown queue {queue.overflow.to_queue!r}")
            if queue.overflow is not None and queue.overflow.to_queue == queue.name:
                raise ValueError(f"queue {queue.name!r} cannot overflow to itself")
            if queue.transfer is not None and queue.transfer.to_queue not in names:
                raise ValueError(f"queue {queue.name!r} transfers to unknown queue {queue.transfer.to_queue!r}")
            if queue.transfer is not None and queue.transfer.to_queue == queue.name:
                raise ValueError(f"queue {queue.name!r} cannot transfer to itself")
        agent_ids = [a.agent_id for a in self.agents]
        if len(set(agent_ids)) != len(agent_ids):
            raise ValueError(f"scenario {self.name!r}: agent ids repeat")
        for agent in self.agents:
            agent.validate(set(names))
        if self.customers is not None and self.customers < 1:
            raise ValueError("the customer pool needs at least 1 customer")
        if self.recall is not None:
            self.recall.validate()
            if self.customers is None:
                raise ValueError("customers who call again need a customer pool (customers / --customers)")
        if self.surveys is not None:
            self.surveys.validate()
