"""The discrete-event traffic model: a scenario and a seed in, schema-v1 event dicts out, in time order.

One `random.Random(seed)` drives every draw and one heap of timed actions drives the clock, so a
scenario, a seed and a start time give the same events every time. The clock counts integer
milliseconds, the precision of the events' `ts`, so the waits a consumer computes from the events are
the model's own waits.

What happens to a call:
- it arrives (Poisson, optionally shaped by the queue's time-of-day profile) and enters its queue;
  a free agent serving the queue (the one idle longest) answers it at once, otherwise it waits in
  line, first come first served;
- while it waits the caller may hang up (exponential patience, drawn once per call and kept across
  an overflow), be offered a callback (when the expected wait at entry passes the queue's limit) or
  overflow to another queue (a new visit: `call.dequeued` then `call.enqueued` there);
- a keep-position callback leaves a marker in the caller's place; when the marker reaches an agent
  the agent dials: reached gives `callback.connected` then a normal talk, unreached `callback.failed`;
  a scheduled callback ends the visit at the request;
- an answered call is talked, optionally wrapped up, and ends with `call.completed`; with a transfer
  rule the agent transfers a share of them at the end of the talk (`call.completed` with `to_queue`,
  then a new visit of the same call there, with a new patience);
- with customers who call again, a share of the journeys ending answered, and a larger share of those
  ending in an abandon or a failed callback, bring the same customer back later on the same first
  queue; with surveys, a share of answered journeys sends `survey.completed` a little later, its
  scores worse for a longer total wait and more hand-offs.

Agents log in at the start of each shift (`agent.state` available, with their `queues`), are busy per
call, wrap up, and log out at the shift's end (after the call in hand). A free agent takes the waiting
call of its queues with the highest queue priority, then the longest wait; an arriving call goes to
the longest-idle agent whose first skill is its queue, else to the longest-idle agent who has it.

Time-of-day profiles and shifts follow the model's day clock: UTC, moved by `day_offset_ms` (a
local time zone's offset, or any shift that puts a chosen hour of the simulated day at a chosen
moment); the events' `ts` stay true instants.

A finite run stops arrivals after `hours`, plays the calls still in the system to their end and then
logs every agent out, so each visit in the output has its outcome. An endless run (hours=None) never
stops.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable, Iterator
from heapq import heappop, heappush
from itertools import count
from typing import Any

from streamer.simulate.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND, format_ts
from streamer.simulate.scenario import AgentSpec, QueueSpec, Scenario

Event = dict[str, Any]

# Call states.
WAITING, MARKER, SERVED, GONE = range(4)
# Timed actions.
ARRIVAL, HANGUP, OFFER, OVERFLOW, TALK_END, WRAP_END, DIAL_END, LOGIN, LOGOUT, RECALL, SURVEY = range(11)


class _Queue:
    __slots__ = (
        "agents_on_duty",
        "aht_ms",
        "hour_acceptance",
        "line",
        "name",
        "patience_rate",
        "peak_arrival_rate",
        "priority",
        "spec",
        "talk",
        "waiting",
        "wrap_ms",
    )

    def __init__(self, spec: QueueSpec, rng: random.Random) -> None:
        self.spec = spec
        self.name = spec.name
        self.priority = spec.priority
        # (call, visit) pairs; entries whose call has left or moved on are skipped when reached.
        self.line: deque[tuple[_Call, int]] = deque()
        self.waiting = 0
        self.agents_on_duty = 0
        self.aht_ms = spec.handle.mean_seconds * MS_PER_SECOND
        self.wrap_ms = round(spec.wrap_seconds * MS_PER_SECOND)
        self.talk = spec.handle.sampler(rng, spec.handle.mean_seconds - spec.wrap_seconds)
        self.patience_rate = None if spec.patience_seconds is None else 1.0 / spec.patience_seconds
        peak = max(spec.profile) if spec.profile else 1.0
        # Arrivals of a time-of-day profile are thinned from a Poisson stream at the peak rate.
        self.peak_arrival_rate = spec.calls_per_hour * peak / 3600.0
        self.hour_acceptance = [m / peak for m in spec.profile] if spec.profile else None


class _Call:
    __slots__ = ("call_id", "customer_id", "enqueued_ms", "first_queue", "hangup_set", "queue", "sequence", "state",
                 "transfers", "visit", "waited_ms")

    def __init__(self, call_id: str, customer_id: str | None) -> None:
        self.call_id = call_id
        self.customer_id = customer_id
        self.sequence = 0
        self.visit = 0
        self.state = WAITING
        self.enqueued_ms = 0
        self.hangup_set = False
        self.transfers = 0  # a caller's patience timer belongs to the transfers made before it was set
        self.waited_ms = 0  # the waits of the visits ended so far
        self.queue: _Queue
        self.first_queue: _Queue


class _Agent:
    __slots__ = ("agent_id", "call", "leaving", "on_duty", "queue_names", "queues", "sequence", "spec", "talk_ms")

    def __init__(self, spec: AgentSpec, queues: list[_Queue]) -> None:
        self.spec = spec
        self.agent_id = spec.agent_id
        self.queues = queues
        self.queue_names = list(spec.queues)
        self.on_duty = False
        self.leaving = False
        self.sequence = 0
        self.call: _Call | None = None
        self.talk_ms = 0


def run_id(scenario_name: str, seed: int, start_ms: int) -> str:
    """A short tag in every call id, so two runs into one topic never share an id."""
    return hashlib.sha256(f"{scenario_name}|{seed}|{start_ms}".encode()).hexdigest()[:6]


class TrafficModel:
    """`TrafficModel(scenario, seed=…, start_ms=…, hours=…).events()` yields the run's events."""

    def __init__(
        self, scenario: Scenario, *, seed: int, start_ms: int, hours: float | None, day_offset_ms: int = 0
    ) -> None:
        scenario.validate()
        if hours is not None and not hours > 0:
            raise ValueError(f"hours must be > 0, got {hours}")
        self._scenario = scenario
        self._rng = random.Random(seed)
        self._start_ms = start_ms
        self._day_offset_ms = day_offset_ms
        self._end_ms = None if hours is None else start_ms + round(hours * MS_PER_HOUR)
        self._run_id = run_id(scenario.name, seed, start_ms)
        self._queues = {spec.name: _Queue(spec, self._rng) for spec in scenario.queues}
        self._agents = [_Agent(spec, [self._queues[q] for q in spec.queues]) for spec in scenario.agents]
        # Free agents, longest idle first.
        self._free: dict[_Agent, None] = {}
        self._heap: list[tuple[int, int, int, Any, Any]] = []
        self._order = count()
        self._now = start_ms
        self._calls = 0
        self._out: list[Event] = []
        self._ts_ms = -1
        self._ts_text = ""
        self._actions: list[Callable[[Any, Any], None]] = [
            self._on_arrival,
            self._on_hangup,
            self._on_offer,
            self._on_overflow,
            self._on_talk_end,
            self._on_wrap_end,
            self._on_dial_end,
            self._on_login,
            self._on_logout,
            self._on_recall,
            self._on_survey,
        ]

    def events(self) -> Iterator[Event]:
        self._schedule_start()
        heap, out, actions = self._heap, self._out, self._actions
        while heap:
            self._now, _, action, subject, detail = heappop(heap)
            actions[action](subject, detail)
            if out:
                yield from out
                out.clear()
        for agent in self._agents:
            if agent.on_duty:
                self._log_out(agent)
        yield from out
        out.clear()

    # --- scheduling -------------------------------------------------------------------------

    def _at(self, time_ms: int, action: int, subject: Any, detail: Any = None) -> None:
        heappush(self._heap, (time_ms, next(self._order), action, subject, detail))

    def _before_end(self, time_ms: int) -> bool:
        return self._end_ms is None or time_ms < self._end_ms

    def _schedule_start(self) -> None:
        for agent in self._agents:
            if agent.spec.shifts is None:
                self._at(self._start_ms, LOGIN, agent, None)
                continue
            for start_h, end_h in agent.spec.shifts:
                begin, finish = self._first_shift(start_h, end_h)
                if self._before_end(begin):
                    self._at(max(begin, self._start_ms), LOGIN, agent, (begin, finish))
        for queue in self._queues.values():
            self._schedule_arrival(queue)

    def _first_shift(self, start_h: float, end_h: float) -> tuple[int, int]:
        """The first daily instance of a shift that has not ended at the run's start."""
        offset = self._day_offset_ms
        day = (self._start_ms + offset) // MS_PER_DAY * MS_PER_DAY - MS_PER_DAY - offset
        while True:
            begin, finish = day + round(start_h * MS_PER_HOUR), day + round(end_h * MS_PER_HOUR)
            if finish > self._start_ms:
                return begin, finish
            day += MS_PER_DAY

    def _schedule_arrival(self, queue: _Queue) -> None:
        if queue.peak_arrival_rate <= 0:
            return
        time_ms = self._now + round(self._rng.expovariate(queue.peak_arrival_rate) * MS_PER_SECOND)
        if self._before_end(time_ms):
            self._at(time_ms, ARRIVAL, queue)

    # --- events out -------------------------------------------------------------------------

    def _ts(self) -> str:
        if self._now != self._ts_ms:
            self._ts_ms, self._ts_text = self._now, format_ts(self._now)
        return self._ts_text

    def _call_event(self, call: _Call, kind: str) -> Event:
        call.sequence += 1
        event = {
            "event_id": f"{call.call_id}-{call.sequence}",
            "type": kind,
            "ts": self._ts(),
            "call_id": call.call_id,
            "queue": call.queue.name,
        }
        self._out.append(event)
        return event

    def _agent_event(self, agent: _Agent, state: str) -> None:
        agent.sequence += 1
        self._out.append(
            {
                "event_id": f"{self._run_id}-{agent.agent_id}-{agent.sequence}",
                "type": "agent.state",
                "ts": self._ts(),
                "agent_id": agent.agent_id,
                "state": state,
                "queues": list(agent.queue_names),
            }
        )

    # --- calls ------------------------------------------------------------------------------

    def _on_arrival(self, queue: _Queue, _: None) -> None:
        self._schedule_arrival(queue)
        acceptance = queue.hour_acceptance
        hour = (self._now + self._day_offset_ms) // MS_PER_HOUR % 24
        if acceptance is not None and self._rng.random() >= acceptance[hour]:
            return
        self._calls += 1
        customers = self._scenario.customers
        customer_id = None if customers is None else f"cust-{self._rng.randrange(customers):06d}"
        self._enter(_Call(f"{self._run_id}-{self._calls:07d}", customer_id), queue)

    def _enter(self, call: _Call, queue: _Queue) -> None:
        if call.visit == 0:
            call.first_queue = queue
        call.queue = queue
        call.visit += 1
        call.state = WAITING
        call.enqueued_ms = self._now
        event = self._call_event(call, "call.enqueued")
        if call.customer_id is not None:
            event["customer_id"] = call.customer_id
        agent = self._free_agent_for(queue)
        if agent is not None:
            self._answer(agent, call)
            return
        ahead = queue.waiting
        queue.line.append((call, call.visit))
        queue.waiting += 1
        if queue.patience_rate is not None and not call.hangup_set:
            call.hangup_set = True
            patience_ms = round(self._rng.expovariate(queue.patience_rate) * MS_PER_SECOND)
            self._at(self._now + patience_ms, HANGUP, call, call.transfers)
        offer = queue.spec.callback
        if offer is not None:
            expected_wait_ms = (
                (ahead + 1) * queue.aht_ms / queue.agents_on_duty if queue.agents_on_duty else float("inf")
            )
            if expected_wait_ms > offer.after_seconds * MS_PER_SECOND:
                self._at(self._now + round(offer.offer_delay_seconds * MS_PER_SECOND), OFFER, call, call.visit)
        overflow = queue.spec.overflow
        if overflow is not None:
            self._at(self._now + round(overflow.after_seconds * MS_PER_SECOND), OVERFLOW, call, call.visit)

    def _leave_line(self, call: _Call, state: int) -> None:
        call.state = state
        call.queue.waiting -= 1

    def _on_hangup(self, call: _Call, transfers: int) -> None:
        if call.state == WAITING and transfers == call.transfers:
            self._leave_line(call, GONE)
            call.waited_ms += self._now - call.enqueued_ms
            self._call_event(call, "call.abandoned")
            self._after_journey(call, answered=False)

    def _on_offer(self, call: _Call, visit: int) -> None:
        if call.state != WAITING or call.visit != visit:
            return
        offer = call.queue.spec.callback
        assert offer is not None
        if self._rng.random() >= offer.accept:
            return
        if self._rng.random() < offer.scheduled_share:
            self._leave_line(call, GONE)
            call.waited_ms += self._now - call.enqueued_ms
            self._call_event(call, "callback.requested")["mode"] = "scheduled"
        else:
            call.state = MARKER
            self._call_event(call, "callback.requested")["mode"] = "keep_position"

    def _on_overflow(self, call: _Call, visit: int) -> None:
        if call.state != WAITING or call.visit != visit:
            return
        overflow = call.queue.spec.overflow
        assert overflow is not None
        self._leave_line(call, GONE)
        call.waited_ms += self._now - call.enqueued_ms
        event = self._call_event(call, "call.dequeued")
        event["reason"] = "overflow"
        event["to_queue"] = overflow.to_queue
        self._enter(call, self._queues[overflow.to_queue])

    # --- agents -----------------------------------------------------------------------------

    def _free_agent_for(self, queue: _Queue) -> _Agent | None:
        """The longest-idle free agent whose first skill is `queue`, else the longest-idle one who has it."""
        chosen = None
        for agent in self._free:
            if agent.queues[0] is queue:
                chosen = agent
                break
            if chosen is None and queue in agent.queues:
                chosen = agent
        if chosen is not None:
            del self._free[chosen]
        return chosen

    def _next_call_for(self, agent: _Agent) -> _Call | None:
        best: _Queue | None = None
        for queue in agent.queues:
            line = queue.line
            while line:
                call, visit = line[0]
                if call.visit == visit and (call.state == WAITING or call.state == MARKER):
                    break
                line.popleft()
            if line and (
                best is None
                or queue.priority > best.priority
                or (queue.priority == best.priority and line[0][0].enqueued_ms < best.line[0][0].enqueued_ms)
            ):
                best = queue
        if best is None:
            return None
        call, _ = best.line.popleft()
        best.waiting -= 1
        return call

    def _answer(self, agent: _Agent, call: _Call) -> None:
        agent.call = call
        if call.state == MARKER:
            offer = call.queue.spec.callback
            assert offer is not None
            call.state = SERVED
            self._agent_event(agent, "busy")
            reached = self._rng.random() < offer.reach
            dial_seconds = offer.ring_seconds if reached else offer.no_answer_seconds
            self._at(self._now + round(dial_seconds * MS_PER_SECOND), DIAL_END, agent, reached)
            return
        call.state = SERVED
        call.waited_ms += self._now - call.enqueued_ms
        self._agent_event(agent, "busy")
        self._call_event(call, "call.answered")["agent_id"] = agent.agent_id
        self._start_talk(agent, call)

    def _start_talk(self, agent: _Agent, call: _Call) -> None:
        agent.talk_ms = round(call.queue.talk() * MS_PER_SECOND)
        self._at(self._now + agent.talk_ms, TALK_END, agent)

    def _on_dial_end(self, agent: _Agent, reached: bool) -> None:
        call = agent.call
        assert call is not None
        call.waited_ms += self._now - call.enqueued_ms  # a kept callback waits from its entry to the connect
        if reached:
            self._call_event(call, "callback.connected")["agent_id"] = agent.agent_id
            self._start_talk(agent, call)
        else:
            self._call_event(call, "callback.failed")["agent_id"] = agent.agent_id
            self._after_journey(call, answered=False)
            self._finish_work(agent)

    def _on_talk_end(self, agent: _Agent, _: None) -> None:
        call = agent.call
        assert call is not None
        transfer = call.queue.spec.transfer
        if transfer is not None and self._rng.random() < transfer.share:
            self._transfer(agent, call, self._queues[transfer.to_queue])
            return
        if call.queue.wrap_ms:
            self._agent_event(agent, "wrap_up")
            self._at(self._now + call.queue.wrap_ms, WRAP_END, agent)
            return
        self._complete(agent, call)

    def _on_wrap_end(self, agent: _Agent, _: None) -> None:
        call = agent.call
        assert call is not None
        self._complete(agent, call)

    def _complete(self, agent: _Agent, call: _Call) -> None:
        event = self._call_event(call, "call.completed")
        event["agent_id"] = agent.agent_id
        event["talk_seconds"] = agent.talk_ms / MS_PER_SECOND
        if call.queue.wrap_ms:
            event["wrap_seconds"] = call.queue.wrap_ms / MS_PER_SECOND
        self._after_journey(call, answered=True)
        self._finish_work(agent)

    def _transfer(self, agent: _Agent, call: _Call, target: _Queue) -> None:
        """The agent hands the call to another queue at the end of the talk (no wrap-up): the call's
        next visit starts at once, with a new patience, and the agent is free after it."""
        event = self._call_event(call, "call.completed")
        event["agent_id"] = agent.agent_id
        event["talk_seconds"] = agent.talk_ms / MS_PER_SECOND
        event["to_queue"] = target.name
        call.transfers += 1
        call.hangup_set = False
        self._enter(call, target)
        self._finish_work(agent)

    # --- customers ----------------------------------------------------------------------------

    def _after_journey(self, call: _Call, *, answered: bool) -> None:
        """A journey ended (completed, abandoned, its callback failed): the customer may call again,
        and after an answer may answer a survey."""
        recall = self._scenario.recall
        if recall is not None and call.customer_id is not None:
            share = recall.after_answered if answered else recall.after_abandoned
            if share > 0 and self._rng.random() < share:
                minutes = recall.answered_delay_minutes if answered else recall.abandoned_delay_minutes
                at = self._now + round(self._rng.expovariate(1.0 / minutes) * 60 * MS_PER_SECOND)
                if self._before_end(at):
                    self._at(at, RECALL, call.first_queue, call.customer_id)
        surveys = self._scenario.surveys
        if answered and surveys is not None and self._rng.random() < surveys.share:
            at = self._now + round(self._rng.expovariate(1.0 / surveys.delay_seconds) * MS_PER_SECOND)
            self._at(at, SURVEY, call, self._survey_scores(call))

    def _survey_scores(self, call: _Call) -> tuple[int, int]:
        """(NPS, CSAT): a quarter more unhappy per hand-off, and more for every minute waited."""
        rng = self._rng
        penalty = min(1.0, call.waited_ms / 300_000 + 0.25 * (call.visit - 1))
        detractor, promoter = 0.12 + 0.6 * penalty, 0.58 * (1.0 - penalty)
        draw = rng.random()
        if draw < detractor:
            nps, satisfied = rng.randint(0, 6), 0.2
        elif draw < detractor + promoter:
            nps, satisfied = rng.randint(9, 10), 0.95
        else:
            nps, satisfied = rng.randint(7, 8), 0.7
        return nps, rng.randint(4, 5) if rng.random() < satisfied else rng.randint(1, 3)

    def _on_recall(self, queue: _Queue, customer_id: str) -> None:
        self._calls += 1
        self._enter(_Call(f"{self._run_id}-{self._calls:07d}", customer_id), queue)

    def _on_survey(self, call: _Call, scores: tuple[int, int]) -> None:
        event = self._call_event(call, "survey.completed")
        event["nps"], event["csat"] = scores
        if call.customer_id is not None:
            event["customer_id"] = call.customer_id

    def _finish_work(self, agent: _Agent) -> None:
        agent.call = None
        if agent.leaving:
            self._log_out(agent)
            return
        call = self._next_call_for(agent)
        if call is not None:
            self._answer(agent, call)
        else:
            self._agent_event(agent, "available")
            self._free[agent] = None

    def _on_login(self, agent: _Agent, shift: tuple[int, int] | None) -> None:
        if shift is not None:
            begin, finish = shift
            if self._before_end(finish):
                self._at(finish, LOGOUT, agent)
            if self._before_end(begin + MS_PER_DAY):
                self._at(begin + MS_PER_DAY, LOGIN, agent, (begin + MS_PER_DAY, finish + MS_PER_DAY))
        for queue in agent.queues:
            queue.agents_on_duty += 1
        if agent.on_duty:
            agent.leaving = False
            return
        agent.on_duty = True
        self._finish_work(agent)

    def _on_logout(self, agent: _Agent, _: None) -> None:
        if not agent.on_duty or agent.leaving:
            return
        for queue in agent.queues:
            queue.agents_on_duty -= 1
        if agent in self._free:
            self._log_out(agent)
        else:
            agent.leaving = True

    def _log_out(self, agent: _Agent) -> None:
        self._free.pop(agent, None)
        agent.on_duty = False
        agent.leaving = False
        self._agent_event(agent, "logged_out")


def simulate(
    scenario: Scenario, *, seed: int, start_ms: int, hours: float | None, day_offset_ms: int = 0
) -> Iterator[Event]:
    """The events of one run, in time order; endless when `hours` is None; profiles and shifts on the
    day clock UTC + `day_offset_ms`."""
    return TrafficModel(scenario, seed=seed, start_ms=start_ms, hours=hours, day_offset_ms=day_offset_ms).events()
