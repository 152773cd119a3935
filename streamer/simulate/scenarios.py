"""Ready-made scenarios: the plain single-queue model of the traffic flags, the demo day, and the
demo's story (the demo day with a staffing gap on one queue at a set hour)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from streamer.core.erlang import agents_for_service_level
from streamer.simulate.scenario import (
    HOURS_PER_DAY,
    AgentSpec,
    CallbackOffer,
    HandleDistribution,
    HandleTime,
    Overflow,
    QueueSpec,
    Recall,
    Scenario,
    Surveys,
    Transfer,
)

DEFAULT_QUEUE = "support"
SHIFT_HOURS = 8

# Arrival-rate multipliers by UTC hour for a centre open around the clock (customers in several time
# zones): a night trough at a third of the peak, a morning and an afternoon peak, a lunch dip.
DAY_PROFILE: tuple[float, ...] = (
    0.40, 0.37, 0.35, 0.35, 0.37, 0.42, 0.50, 0.65, 0.85, 1.00, 1.00, 0.95,
    0.80, 0.85, 0.95, 0.95, 0.85, 0.75, 0.65, 0.58, 0.52, 0.48, 0.45, 0.42,
)  # fmt: skip


def plain(
    calls_per_hour: float,
    aht_seconds: float,
    agents: int,
    patience_seconds: float | None = None,
    *,
    queues: Sequence[str] = (DEFAULT_QUEUE,),
    shared_agents: bool = False,
    handle_distribution: HandleDistribution = "exponential",
    handle_cv: float = 1.0,
    wrap_seconds: float = 0.0,
    profile: tuple[float, ...] | None = None,
    callback: CallbackOffer | None = None,
    overflows: Sequence[tuple[str, str, float]] = (),
    transfers: Sequence[tuple[str, str, float]] = (),
    customers: int | None = None,
    recall: Recall | None = None,
    surveys: Surveys | None = None,
) -> Scenario:
    """Each queue gets the same traffic; `agents` agents per queue (dedicated) or for all (shared).

    With the defaults this is M/M/c (Erlang C), with `patience_seconds` M/M/c+M (Erlang A).
    `overflows` holds (from_queue, to_queue, after_seconds) triples, `transfers` (from_queue, to_queue,
    share) triples; customers, recalls and surveys are off unless given.
    """
    if agents < 1:
        raise ValueError(f"agents must be at least 1, got {agents}")
    overflow_of = {source: Overflow(target, after) for source, target, after in overflows}
    transfer_of = {source: Transfer(target, share) for source, target, share in transfers}
    unknown = [source for source in (*overflow_of, *transfer_of) if source not in queues]
    if unknown:
        raise ValueError(f"overflow or transfer from unknown queue(s) {', '.join(unknown)}; "
                         f"queues are {', '.join(queues)}")
    handle = HandleTime(aht_seconds, handle_distribution, handle_cv)
    queue_specs = tuple(
        QueueSpec(
            name=name,
            calls_per_hour=calls_per_hour,
            handle=handle,
            patience_seconds=patience_seconds,
            wrap_seconds=wrap_seconds,
            profile=profile,
            callback=callback,
            overflow=overflow_of.get(name),
            transfer=transfer_of.get(name),
        )
        for name in queues
    )
    if shared_agents or len(queues) == 1:
        staff = tuple(AgentSpec(f"agent-{i:03d}", tuple(queues)) for i in range(1, agents + 1))
    else:
        staff = tuple(AgentSpec(f"{name}-{i:02d}", (name,)) for name in queues for i in range(1, agents + 1))
    return Scenario(name="plain", queues=queue_specs, agents=staff, customers=customers, recall=recall,
                    surveys=surveys)


def cover_with_shifts(staffing: Sequence[int], shift_hours: int = 8) -> list[int]:
    """Start hours (UTC) of daily shifts of `shift_hours` that put at least `staffing[h]` agents on
    duty in every hour h: the usual greedy cover, scanning the day from its quietest hour and
    starting just enough shifts wherever the agents on duty fall short."""
    if len(staffing) != HOURS_PER_DAY:
        raise ValueError("staffing needs one figure per hour of the day")
    quietest = min(range(HOURS_PER_DAY), key=lambda h: staffing[h])
    on_duty = [0] * HOURS_PER_DAY
    starts: list[int] = []
    for step in range(HOURS_PER_DAY):
        hour = (quietest + step) % HOURS_PER_DAY
        while on_duty[hour] < staffing[hour]:
            starts.append(hour)
            for offset in range(shift_hours):
                on_duty[(hour + offset) % HOURS_PER_DAY] += 1
    return starts


def _staffed_queue(
    spec: QueueSpec,
    target: float,
    *,
    understaffing: float = 1.0,
    peak_from: float = 1.1,
    minimum: int = 1,
    also_serve: tuple[str, ...] = (),
) -> tuple[AgentSpec, ...]:
    """Agents in 8-hour shifts for `spec`, staffed hour by hour to a service-level target (Erlang A
    with the queue's patience); hours whose profile multiplier is ≥ `peak_from` get `understaffing`
    times that."""
    assert spec.profile is not None
    staffing = []
    for multiplier in spec.profile:
        need = agents_for_service_level(
            spec.calls_per_hour * multiplier, spec.handle.mean_seconds, target, 20.0, spec.patience_seconds
        )
        if multiplier >= peak_from:
            need = math.floor(need * understaffing)
        staffing.append(max(minimum, need))
    return tuple(
        AgentSpec(f"{spec.name}-{i:02d}", (spec.name, *also_serve), ((float(start), float(start + SHIFT_HOURS)),))
        for i, start in enumerate(cover_with_shifts(staffing, SHIFT_HOURS), start=1)
    )


def demo() -> Scenario:
    """A believable day, around the clock: four queues on one time-of-day profile.

    - sales: short patience, staffed for 90 % in 20 s; also served by the vip agents.
    - support: long calls, staffed for 85 %; callbacks offered when the expected wait passes a
      minute (half accept, 30 % of those ask for a scheduled callback, 85 % of keep-position
      callbacks are reached).
    - billing: staffed for 80 % in 20 s, but a quarter short at the peaks (profile ≥ 0.85), so it
      breaches in the busy hours and wobbles around its target the rest of the day; callbacks
      offered when the expected wait passes 45 s (40 % accept, 20 % of those scheduled, 80 % of
      keep-position callbacks reached).
    - vip: highest priority, staffed for 90 %; its agents take sales calls when no vip caller waits
      (sales is their second skill); a vip caller still waiting after 60 s overflows to support.
    - agents transfer 2 % of sales calls to billing, 3 % of billing calls to support and 1 % of
      support calls to billing.
    - 1,000,000 customers, so a caller seldom comes back by chance: 5 % of answered journeys call
      again (after a day on average: not solved), 20 % of abandoned ones and failed callbacks
      (after 10 minutes on average); 30 % of answered journeys answer a post-call survey about 2
      minutes later.

    Every queue is staffed hour by hour with Erlang A and covered with 8-hour shifts.
    """
    sales = QueueSpec(
        name="sales",
        calls_per_hour=300,
        handle=HandleTime(240, "lognormal", 0.8),
        patience_seconds=90,
        wrap_seconds=20,
        profile=DAY_PROFILE,
        transfer=Transfer("billing", 0.02),
    )
    support = QueueSpec(
        name="support",
        calls_per_hour=480,
        handle=HandleTime(360, "lognormal", 1.0),
        patience_seconds=240,
        wrap_seconds=30,
        profile=DAY_PROFILE,
        callback=CallbackOffer(after_seconds=60, accept=0.5, reach=0.85, scheduled_share=0.3),
        transfer=Transfer("billing", 0.01),
    )
    billing = QueueSpec(
        name="billing",
        calls_per_hour=180,
        handle=HandleTime(300, "lognormal", 0.9),
        patience_seconds=120,
        wrap_seconds=15,
        profile=DAY_PROFILE,
        callback=CallbackOffer(after_seconds=45, accept=0.4, reach=0.8, scheduled_share=0.2),
        transfer=Transfer("support", 0.03),
    )
    vip = QueueSpec(
        name="vip",
        calls_per_hour=24,
        handle=HandleTime(300, "lognormal", 0.8),
        patience_seconds=300,
        wrap_seconds=20,
        profile=DAY_PROFILE,
        priority=1,
        overflow=Overflow("support", 60),
    )
    agents = (
        _staffed_queue(sales, 0.90)
        + _staffed_queue(support, 0.85, minimum=2)
        + _staffed_queue(billing, 0.80, understaffing=0.75, peak_from=0.85)
        + _staffed_queue(vip, 0.90, also_serve=("sales",))
    )
    return Scenario(
        name="demo",
        queues=(sales, support, billing, vip),
        agents=agents,
        customers=1_000_000,
        recall=Recall(after_answered=0.05, after_abandoned=0.2),
        surveys=Surveys(share=0.3),
    )


# The hour of the demo day at which `streamer demo` goes live (08:30, the morning rush), and the
# staffing gap of its story: 40 % of billing's agents on duty leave for a meeting from 08:24 to 09:30,
# so billing, on target when the demo goes live, breaches within minutes (callers and callback
# markers waiting, abandons) while the other queues stay healthy.
STORY_LIVE_HOUR = 8.5
STORY_BREAK_HOURS = (8.4, 9.5)
STORY_BREAK_SHARE = 0.4
STORY_QUEUE = "billing"
# vip at 60 calls an hour at the peak: enough calls that its tiles always have a figure.
STORY_VIP_CALLS_PER_HOUR = 60


def _with_break(agent: AgentSpec, start_h: float, end_h: float) -> AgentSpec:
    """The agent's daily shift with [start_h, end_h) taken out (the agent logs out and back in)."""
    assert agent.shifts is not None
    shifts: list[tuple[float, float]] = []
    for begin, finish in agent.shifts:
        if begin < start_h and finish > end_h:
            shifts += [(begin, start_h), (end_h, finish)]
        elif begin < start_h < finish:
            shifts.append((begin, start_h))
        else:
            shifts.append((begin, finish))
    return replace(agent, shifts=tuple(shifts))


def demo_story() -> Scenario:
    """The demo day, told for `streamer demo`: vip busier, and during STORY_BREAK_HOURS a share of the
    billing agents then on duty away, so billing (already short at the peaks) falls far below its
    target, callers and callback markers queue up and callers abandon."""
    day = demo()
    queues = tuple(replace(q, calls_per_hour=STORY_VIP_CALLS_PER_HOUR) if q.name == "vip" else q for q in day.queues)
    vip = next(q for q in queues if q.name == "vip")
    start_h, end_h = STORY_BREAK_HOURS

    def on_duty(agent: AgentSpec) -> bool:
        return agent.shifts is not None and any(b <= start_h and f > start_h for b, f in agent.shifts)

    billing = [a for a in day.agents if a.queues[0] == STORY_QUEUE and on_duty(a)]
    leaving = {a.agent_id for a in billing[: round(len(billing) * STORY_BREAK_SHARE)]}
    agents = tuple(
        _with_break(a, start_h, end_h) if a.agent_id in leaving else a
        for a in day.agents
        if not a.agent_id.startswith("vip-")
    ) + _staffed_queue(vip, 0.90, also_serve=("sales",))
    return replace(day, name="demo-story", queues=queues, agents=agents)
