"""Steady-state queueing theory for one queue: Erlang C (M/M/c) and Erlang A (M/M/c+M).

The simulator is checked against these numbers, the demo staffs its queues with them, and the live
foresight (foresight.py) applies them to the live state of a queue.

Erlang C uses the closed forms. Erlang A uses the birth-death chain of the number of calls in the
system (arrivals at rate λ; departures at min(n, c)·μ for service plus max(n − c, 0)·θ for callers
hanging up), truncated where the stationary probabilities fall below 1e-20 of the largest one, so
the truncation error is far below anything a simulation can see. A tagged arrival (PASTA: it sees
the stationary distribution) that finds i callers ahead of it in the queue moves one place forward
at rate c·μ + j·θ while j are ahead and hangs up itself at rate θ; its answer and abandon
probabilities telescope to closed forms, and its wait distribution is computed by uniformization of
that small absorbing chain.

Rates are per second, times in seconds. "Service level" is P(answered with wait ≤ t) over every
arrival (the Erlang C definition); Erlang A also gives it among answered calls only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

# Stationary probabilities below exp(-TAIL_LOG_CUTOFF) times the largest one are dropped.
TAIL_LOG_CUTOFF = 46.0
# Poisson weights of the uniformization beyond this many standard deviations are dropped.
POISSON_TAIL_SIGMAS = 12.0
MAX_STATES = 2_000_000


def _check_traffic(calls_per_hour: float, aht_seconds: float, agents: int) -> None:
    if not calls_per_hour > 0:
        raise ValueError(f"calls per hour must be > 0, got {calls_per_hour}")
    if not aht_seconds > 0:
        raise ValueError(f"average handle time must be > 0 seconds, got {aht_seconds}")
    if agents < 1:
        raise ValueError(f"agents must be at least 1, got {agents}")


def erlang_b(load_erlangs: float, agents: int) -> float:
    """Blocking probability of M/M/c/c (the numerically stable recursion)."""
    blocking = 1.0
    for k in range(1, agents + 1):
        blocking = load_erlangs * blocking / (k + load_erlangs * blocking)
    return blocking


def erlang_c(load_erlangs: float, agents: int) -> float:
    """Probability that an arrival waits in M/M/c; 1.0 when the queue is unstable (load ≥ agents)."""
    if load_erlangs >= agents:
        return 1.0
    blocking = erlang_b(load_erlangs, agents)
    return agents * blocking / (agents - load_erlangs * (1.0 - blocking))


@dataclass(frozen=True)
class ErlangC:
    """M/M/c: Poisson arrivals, exponential handle times, `agents` servers, callers never hang up."""

    calls_per_hour: float
    aht_seconds: float
    agents: int

    def __post_init__(self) -> None:
        _check_traffic(self.calls_per_hour, self.aht_seconds, self.agents)
        if self.load_erlangs >= self.agents:
            raise ValueError(
                f"an Erlang C queue with {self.load_erlangs:.3g} erlangs offered to {self.agents} agents "
                "never reaches a steady state (its queue grows without bound): add agents or give the "
                "callers a patience (Erlang A)"
            )

    @property
    def arrival_rate(self) -> float:
        return self.calls_per_hour / 3600.0

    @property
    def load_erlangs(self) -> float:
        return self.arrival_rate * self.aht_seconds

    @property
    def occupancy(self) -> float:
        return self.load_erlangs / self.agents

    @property
    def wait_probability(self) -> float:
        return erlang_c(self.load_erlangs, self.agents)

    @property
    def _drain_rate(self) -> float:
        return self.agents / self.aht_seconds - self.arrival_rate

    def service_level(self, threshold_seconds: float) -> float:
        """P(wait ≤ threshold) over all arrivals."""
        return 1.0 - self.wait_probability * math.exp(-self._drain_rate * threshold_seconds)

    @property
    def asa_seconds(self) -> float:
        """Mean wait over all arrivals (every call is answered)."""
        return self.wait_probability / self._drain_rate


@dataclass(frozen=True)
class ErlangA:
    """M/M/c+M: Erlang C plus exponential caller patience of mean `patience_seconds`."""

    calls_per_hour: float
    aht_seconds: float
    agents: int
    patience_seconds: float

    def __post_init__(self) -> None:
        _check_traffic(self.calls_per_hour, self.aht_seconds, self.agents)
        if not self.patience_seconds > 0:
            raise ValueError(f"patience must be > 0 seconds, got {self.patience_seconds}")

    @property
    def arrival_rate(self) -> float:
        return self.calls_per_hour / 3600.0

    @property
    def load_erlangs(self) -> float:
        return self.arrival_rate * self.aht_seconds

    @property
    def _service_capacity(self) -> float:
        """c·μ: the rate at which agents free up when all are busy."""
        return self.agents / self.aht_seconds

    @property
    def _hangup_rate(self) -> float:
        return 1.0 / self.patience_seconds

    @cached_property
    def _ahead_distribution(self) -> tuple[float, list[float]]:
        """(P(no wait), [P(arrival finds i callers ahead in the queue) for i = 0, 1, …])."""
        lam, mu, theta, c = self.arrival_rate, 1.0 / self.aht_seconds, self._hangup_rate, self.agents
        log_terms = [0.0]
        n = 0
        while True:
            n += 1
            death = min(n, c) * mu + max(n - c, 0) * theta
            log_terms.append(log_terms[-1] + math.log(lam / death))
            if n > c and death > lam and log_terms[-1] < max(log_terms) - TAIL_LOG_CUTOFF:
                break
            if n > MAX_STATES:
                raise ValueError("the Erlang A chain does not settle: patience too long for this overload")
        top = max(log_terms)
        weights = [math.exp(x - top) for x in log_terms]
        total = math.fsum(weights)
        no_wait = math.fsum(weights[:c]) / total
        return no_wait, [w / total for w in weights[c:]]

    @property
    def wait_probability(self) -> float:
        """P(an arrival finds every agent busy)."""
        return 1.0 - self._ahead_distribution[0]

    def _exit_rate(self, ahead: int) -> float:
        """Total leaving rate of a tagged waiting caller with `ahead` callers in front of it."""
        return self._service_capacity + (ahead + 1) * self._hangup_rate

    @property
    def abandon_probability(self) -> float:
        """P(the caller hangs up before an answer), over all arrivals."""
        _, ahead = self._ahead_distribution
        theta = self._hangup_rate
        return math.fsum(p * (i + 1) * theta / self._exit_rate(i) for i, p in enumerate(ahead))

    @property
    def answer_probability(self) -> float:
        return 1.0 - self.abandon_probability

    @property
    def asa_seconds(self) -> float:
        """Mean wait of answered calls (immediate answers count as 0)."""
        _, ahead = self._ahead_distribution
        cap = self._service_capacity
        total_wait = 0.0
        phase_time = 0.0
        for i, p in enumerate(ahead):
            phase_time += 1.0 / self._exit_rate(i)
            total_wait += p * cap / self._exit_rate(i) * phase_time
        return total_wait / self.answer_probability

    @property
    def average_abandon_seconds(self) -> float:
        """Mean wait of the callers who hang up."""
        _, ahead = self._ahead_distribution
        theta = self._hangup_rate
        total_wait = 0.0
        weighted_phases = 0.0
        for i, p in enumerate(ahead):
            weighted_phases += (i + 1) / self._exit_rate(i)
            total_wait += p * theta / self._exit_rate(i) * weighted_phases
        return total_wait / self.abandon_probability

    @property
    def occupancy(self) -> float:
        return self.load_erlangs * self.answer_probability / self.agents

    def _outcomes_within(self, threshold_seconds: float) -> tuple[float, float]:
        """(P(answered with wait ≤ t), P(hung up with wait ≤ t)) over all arrivals.

        Uniformization of the tagged caller's chain: states i = callers ahead, all leaving at most at
        rate Λ = c·μ + (M + 1)·θ; after k jumps the absorbed masses are exact, and the number of
        jumps by time t is Poisson(Λ·t).
        """
        no_wait, ahead = self._ahead_distribution
        if threshold_seconds <= 0:
            return no_wait, 0.0
        cap, theta = self._service_capacity, self._hangup_rate
        top = len(ahead) - 1
        uniform_rate = self._exit_rate(top)
        mean_jumps = uniform_rate * threshold_seconds
        max_jumps = int(mean_jumps + POISSON_TAIL_SIGMAS * math.sqrt(mean_jumps) + 20)
        move = [(cap + i * theta) / uniform_rate for i in range(top + 1)]
        stay = [1.0 - self._exit_rate(i) / uniform_rate for i in range(top + 1)]
        hangup = theta / uniform_rate
        mass = list(ahead)
        answered = abandoned = 0.0
        answered_within = abandoned_within = 0.0
        log_mean = math.log(mean_jumps)
        for k in range(max_jumps + 1):
            # P(k jumps by time t) times the mass absorbed within k jumps.
            jumps_weight = math.exp(-mean_jumps + k * log_mean - math.lgamma(k + 1))
            answered_within += jumps_weight * answered
            abandoned_within += jumps_weight * abandoned
            answered += mass[0] * move[0]
            abandoned += math.fsum(mass) * hangup
            mass = [mass[i] * stay[i] + (mass[i + 1] * move[i + 1] if i < top else 0.0) for i in range(top + 1)]
        return no_wait + answered_within, abandoned_within

    def service_level(self, threshold_seconds: float) -> float:
        """P(answered with wait ≤ t) over all arrivals (hang-ups count as misses)."""
        return self._outcomes_within(threshold_seconds)[0]

    def service_level_answered(self, threshold_seconds: float) -> float:
        """P(wait ≤ t | answered): the share of answered calls answered within t."""
        return self.service_level(threshold_seconds) / self.answer_probability

    def abandoned_within(self, threshold_seconds: float) -> float:
        """P(hung up with wait ≤ t) over all arrivals."""
        return self._outcomes_within(threshold_seconds)[1]


def tagged_answer_wait(ahead: int, capacity: float, hangup_rate: float) -> float:
    """Mean wait, given it is answered, of a caller behind `ahead` others while every agent is busy:
    the head of the queue is answered at `capacity` (c·μ) and each caller hangs up at `hangup_rate`
    (θ). While j are ahead the caller leaves its place at c·μ + j·θ, or hangs up itself at θ; given it
    stays, each phase lasts 1 / (c·μ + (j + 1)·θ) on average."""
    return math.fsum(1.0 / (capacity + (j + 1) * hangup_rate) for j in range(ahead + 1))


def theory(
    calls_per_hour: float,
    aht_seconds: float,
    agents: int,
    patience_seconds: float | None = None,
    threshold_seconds: float = 20.0,
) -> dict[str, float | str | None]:
    """The steady-state figures of the plain model, Erlang C without patience, Erlang A with it."""
    if patience_seconds is None:
        c = ErlangC(calls_per_hour, aht_seconds, agents)
        return {
            "model": "Erlang C (M/M/c)",
            "load_erlangs": c.load_erlangs,
            "occupancy": c.occupancy,
            "wait_probability": c.wait_probability,
            "service_level": c.service_level(threshold_seconds),
            "service_level_answered": c.service_level(threshold_seconds),
            "asa_seconds": c.asa_seconds,
            "abandon_probability": 0.0,
            "average_abandon_seconds": None,
        }
    a = ErlangA(calls_per_hour, aht_seconds, agents, patience_seconds)
    answered_within, abandoned_within = a._outcomes_within(threshold_seconds)
    return {
        "model": "Erlang A (M/M/c+M)",
        "load_erlangs": a.load_erlangs,
        "occupancy": a.occupancy,
        "wait_probability": a.wait_probability,
        "service_level": answered_within,
        "service_level_answered": answered_within / a.answer_probability,
        "abandoned_within_threshold": abandoned_within,
        "asa_seconds": a.asa_seconds,
        "abandon_probability": a.abandon_probability,
        "average_abandon_seconds": a.average_abandon_seconds,
    }


def agents_for_service_level(
    calls_per_hour: float,
    aht_seconds: float,
    target: float,
    threshold_seconds: float = 20.0,
    patience_seconds: float | None = None,
) -> int:
    """The fewest agents whose steady-state service level (over all arrivals) reaches `target`."""
    if not 0 < target < 1:
        raise ValueError(f"service level target must be between 0 and 1, got {target}")
    agents = max(1, math.floor(calls_per_hour * aht_seconds / 3600.0))
    while True:
        if patience_seconds is None:
            if agents > calls_per_hour * aht_seconds / 3600.0:
                level = ErlangC(calls_per_hour, aht_seconds, agents).service_level(threshold_seconds)
                if level >= target:
                    return agents
        elif ErlangA(calls_per_hour, aht_seconds, agents, patience_seconds).service_level(threshold_seconds) >= target:
            return agents
        agents += 1
