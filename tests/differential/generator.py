"""Seeded event streams for the live = offline differential harness: every shape the pipeline must
count exactly, live as offline.

A stream is a contact-centre night and morning (14 hours across an EU daylight-saving change and a
local midnight), or the last hours up to now ("today" streams, for the live windows), over 4 to 6
queues whose names put several queues on one stage-2 partition and one queue alone on another. Per
seed, queue settings vary (interval length, threshold, every Service Level formula, callback policy,
attribution to arrival, a second time zone). It holds:

- calls answered (some transferred by the agent to another queue after talking), abandoned (short
  abandons included), keep-position callbacks returning up to 25 minutes later (or failing, or the
  caller hanging up meanwhile), scheduled callbacks with results hours later, overflows to another
  queue, timeouts and key presses, calls that never end (expired after the maximum call age, or still
  waiting at the end), impossible transitions (answered after abandoned, a second answer);
- agent state changes; queues that go quiet for a while and resume; call ids chosen so the
  partitions of `call-events` get very skewed shares of the traffic;
- customers (`customer_id` on a call's first enqueue, sometimes on its later events too) calling
  again, some at exactly the repeat window or the first-contact-resolution window after their first
  call and one millisecond beyond, so the window edges and pending contacts are counted live as
  offline; post-call surveys (NPS, CSAT, both, and rejected ones); queue groups sharing a queue;
  two tenants owning the queues (a visit into the other tenant's queue is rejected);
- `ts` as epoch milliseconds, `Z` and local-offset strings, mixed;
- disorder within the grace period, events held back until long after their interval closed
  (late), 2 % re-deliveries shortly after the original, re-deliveries hours later of calls long
  forgotten, events dated far in the future, and malformed records of every kind.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streamer.core.partitioning import partition_of
from streamer.core.windows import day_start

MINUTE = 60_000
HOUR = 60 * MINUTE
GRACE_SECONDS = 60
MAX_CALL_AGE_SECONDS = 7200
# EU summer time starts 2026-03-29 01:00 UTC and ends 2026-10-25 01:00 UTC.
DST_NIGHTS = ("2026-03-28T18:00:00Z", "2026-10-24T18:00:00Z")
QUEUE_NAMES = ("sales", "support", "billing", "vip", "tech", "retention", "claims", "loans", "travel", "orders",
               "returns", "renewals", "fraud", "onboarding", "care", "priority")
FORMULAS = ("answered_over_offered", "ignore_abandons_within", "abandons_within_count_as_met", "answered_only")


@dataclass
class Stream:
    seed: int
    partitions: int
    lines: list[bytes]
    config: str  # the TOML both the worker and `streamer report` read
    queues: list[str]
    start_ms: int
    end_ms: int
    notes: dict[str, int] = field(default_factory=dict)  # how many of each planted shape


@dataclass
class _Call:
    call_id: str
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class _Builder:
    def __init__(self, rng: random.Random, queues: list[str], zones: dict[str, ZoneInfo], partitions: int,
                 start_ms: int, end_ms: int, seed: int, windows: dict[str, tuple[int, int]] | None = None) -> None:
        self.rng, self.queues, self.zones, self.partitions = rng, queues, zones, partitions
        self.windows = windows or {}  # queue -> (repeat window ms, FCR window ms)
        self.customers = [f"s{seed}-u{i}" for i in range(120)]
        self.start_ms, self.end_ms, self.seed = start_ms, end_ms, seed
        self.timeline: list[tuple[int, int, dict[str, Any]]] = []  # (ts, order, event)
        self.notes: dict[str, int] = {}
        self._events = 0
        # Very skewed shares of the call-events partitions: one takes most of the traffic.
        weights = [0.6, 0.25, 0.1, 0.05][:partitions] + [0.02] * max(0, partitions - 4)
        rng.shuffle(weights)
        self.partition_weights = weights
        self._ids = 0

    def note(self, shape: str) -> None:
        self.notes[shape] = self.notes.get(shape, 0) + 1

    def new_call_id(self) -> str:
        target = self.rng.choices(range(self.partitions), weights=self.partition_weights)[0]
        while True:
            self._ids += 1
            call_id = f"s{self.seed}-c{self._ids}"
            if partition_of(call_id, self.partitions) == target:
                return call_id

    def ts_value(self, ts: int, queue: str | None) -> Any:
        style = self.rng.random()
        if style < 0.4:
            return ts
        moment = datetime.fromtimestamp(ts / 1000, UTC)
        spec = "milliseconds" if ts % 1000 else "seconds"
        if style < 0.7 or queue is None:
            return moment.isoformat(timespec=spec).replace("+00:00", "Z")
        return moment.astimezone(self.zones[queue]).isoformat(timespec=spec)

    def add(self, ts: int, etype: str, call_id: str | None, queue: str | None, **fields: Any) -> dict[str, Any]:
        self._events += 1
        event: dict[str, Any] = {"event_id": f"s{self.seed}-e{self._events}", "type": etype,
                                 "ts": self.ts_value(ts, queue)}
        if call_id is not None:
            event["call_id"] = call_id
        if queue is not None:
            event["queue"] = queue
        event.update({k: v for k, v in fields.items() if v is not None})
        self.timeline.append((ts, self._events, event))
        return event

    # --- calls ---------------------------------------------------------------------------------

    def call(self, queue: str, at: int, customer: str | None = None, repeats: int = 0) -> None:
        rng = self.rng
        if customer is None and rng.random() < 0.7:
            customer = rng.choice(self.customers)
        self.visit(self.new_call_id(), queue, at, depth=0, customer=customer)
        if customer is not None and repeats < 3 and rng.random() < 0.3:
            self.call_again(customer, queue, at, repeats)

    def call_again(self, customer: str, queue: str, first: int, repeats: int) -> None:
        """The customer calls again: often soon, sometimes exactly at a window's edge after `first`."""
        rng = self.rng
        again = rng.choice(self.queues) if rng.random() < 0.3 else queue
        repeat_ms = self.windows.get(again, (30 * MINUTE, 0))[0]
        fcr_ms = self.windows.get(queue, (0, 2 * HOUR))[1]
        roll = rng.random()
        if roll < 0.1:
            delay, shape = repeat_ms, "repeat_at_window_edge"
        elif roll < 0.15:
            delay, shape = repeat_ms + 1, "repeat_just_past_window"
        elif roll < 0.25:
            delay, shape = fcr_ms, "fcr_at_window_edge"
        elif roll < 0.3:
            delay, shape = fcr_ms + 1, "fcr_just_past_window"
        elif roll < 0.7:
            delay, shape = rng.randrange(MINUTE, 40 * MINUTE), "repeat_contact_soon"
        else:
            delay, shape = rng.randrange(40 * MINUTE, 6 * HOUR), "contact_again_later"
        self.note(shape)
        self.call(again, first + delay, customer, repeats + 1)

    def visit(self, call_id: str, queue: str, at: int, depth: int, customer: str | None = None) -> None:
        rng = self.rng
        # The first visit names the customer; later events of the call may or may not repeat it.
        named = customer if depth == 0 or rng.random() < 0.3 else None
        self.add(at, "call.enqueued", call_id, queue, customer_id=named,
                 tenant=self.tenant_of(queue) if rng.random() < 0.5 else None)
        roll = rng.random()
        wait = int(rng.expovariate(1 / 35_000)) + rng.randrange(0, 2000)
        end = at + wait
        if roll < 0.50:
            self.answered(call_id, queue, end, depth, customer)
        elif roll < 0.64:
            patience = int(rng.expovariate(1 / 50_000))  # short abandons included (< 5 s)
            self.add(at + patience, "call.abandoned", call_id, queue)
            if rng.random() < 0.05:
                self.add(at + patience + 5000, "call.answered", call_id, queue)  # impossible: after abandon
                self.note("impossible_transition")
        elif roll < 0.74:
            self.keep_position(call_id, queue, at + 30_000 + rng.randrange(60_000))
        elif roll < 0.80:
            self.add(end, "callback.requested", call_id, queue, mode="scheduled")
            self.note("scheduled_callback")
            if rng.random() < 0.7:
                later = end + rng.randrange(30 * MINUTE, 3 * HOUR)
                self.add(later, rng.choice(("callback.connected", "callback.failed")), call_id, queue)
        elif roll < 0.87 and depth < 3:
            target = rng.choice([q for q in self.queues if q != queue])
            self.add(end, "call.dequeued", call_id, queue, reason="overflow", to_queue=target)
            self.note("overflow")
            self.visit(call_id, target, end + rng.randrange(0, 500), depth + 1, customer)
        elif roll < 0.92:
            self.add(end, "call.dequeued", call_id, queue, reason=rng.choice(("timeout", "keypress", "other")))
        elif roll < 0.95:
            self.note("never_ends")  # expires after the maximum call age, or is still waiting at the end
        else:
            self.answered(call_id, queue, end, depth, customer)
            self.add(end + 1000, "call.answered", call_id, queue)  # impossible: a second answer
            self.note("impossible_transition")

    def answered(self, call_id: str, queue: str, at: int, depth: int, customer: str | None = None) -> None:
        rng = self.rng
        agent = f"{queue}-a{rng.randrange(6)}"
        self.add(at, "call.answered", call_id, queue, agent_id=agent)
        talk = int(rng.expovariate(1 / 180_000)) + 5000
        done = at + talk
        self.add(done, "call.completed", call_id, queue, talk_seconds=round(talk / 1000, 3),
                 wrap_seconds=round(rng.uniform(0, 30), 1))
        if rng.random() < 0.07 and depth < 3:  # the agent transfers the caller to another queue
            self.note("transfer")
            self.visit(call_id, rng.choice([q for q in self.queues if q != queue]), done + 200, depth + 1, customer)
        elif rng.random() < 0.25:
            self.survey(call_id, queue, done + rng.randrange(10_000, 10 * MINUTE), agent, customer)

    def survey(self, call_id: str, queue: str, at: int, agent: str, customer: str | None) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:  # rejected: out of range, no score at all, a score of the wrong type
            bad = rng.choice(({"nps": 11}, {"csat": 0}, {}, {"nps": "9"}, {"nps": 7.5}))
            self.add(at, "survey.completed", call_id, queue, **bad)
            self.note("survey_rejected")
            return
        scores: dict[str, int] = {}
        if roll < 0.7:
            scores["nps"] = rng.randrange(11)
        if roll >= 0.45:
            scores["csat"] = rng.randint(1, 5)
        self.add(at, "survey.completed", call_id, queue, agent_id=agent if rng.random() < 0.5 else None,
                 customer_id=customer if rng.random() < 0.3 else None, **scores)
        self.note("survey")

    def tenant_of(self, queue: str) -> str:
        return "globex" if queue == self.queues[-1] else "acme"

    def keep_position(self, call_id: str, queue: str, at: int) -> None:
        rng = self.rng
        self.add(at, "callback.requested", call_id, queue, mode="keep_position")
        self.note("keep_position_callback")
        if rng.random() < 0.3:
            self.add(at + rng.randrange(1000, 20_000), "call.abandoned", call_id, queue)  # hangs up, keeps place
        back = at + rng.randrange(MINUTE, 25 * MINUTE)
        if rng.random() < 0.8:
            self.add(back, "callback.connected", call_id, queue, agent_id=f"{queue}-a{rng.randrange(6)}")
        else:
            self.add(back, "callback.failed", call_id, queue)

    # --- agents --------------------------------------------------------------------------------

    def agents(self) -> None:
        rng = self.rng
        states = ("available", "busy", "wrap_up", "away", "logged_out")
        for queue in self.queues:
            at = self.start_ms
            while True:
                at += int(rng.expovariate(1 / (8 * MINUTE)))
                if at >= self.end_ms:
                    break
                agent = f"{queue}-a{rng.randrange(6)}"
                self.add(at, "agent.state", None, None, agent_id=agent, state=rng.choice(states), queues=[queue])


def _pick_queues(rng: random.Random, partitions: int) -> list[str]:
    """4 to 6 queues, several on one stage-2 partition and one alone on another."""
    names = list(QUEUE_NAMES)
    rng.shuffle(names)
    by_partition: dict[int, list[str]] = {}
    for name in names:
        by_partition.setdefault(partition_of(name, partitions), []).append(name)
    crowded = max(by_partition, key=lambda p: len(by_partition[p]))
    chosen = by_partition[crowded][:3]
    others = [p for p in by_partition if p != crowded]
    rng.shuffle(others)
    for p in others[: rng.randint(1, 3)]:
        chosen.append(by_partition[p][0])  # alone on its partition
    return chosen


def _config(rng: random.Random, queues: list[str]) -> tuple[str, dict[str, ZoneInfo], dict[str, tuple[int, int]]]:
    lines = ["[defaults]", 'time_zone = "Europe/London"', "", "[limits]", f"grace_seconds = {GRACE_SECONDS}",
             "idle_seconds = 3", f"max_call_age_seconds = {MAX_CALL_AGE_SECONDS}",
             f"allowed_queues = {orjson.dumps(queues).decode()}", ""]
    zones: dict[str, ZoneInfo] = {}
    windows: dict[str, tuple[int, int]] = {}
    arrival = rng.choice(queues) if rng.random() < 0.5 else None
    for index, queue in enumerate(queues):
        zone = "Europe/Berlin" if index == 1 else "Europe/London"
        zones[queue] = ZoneInfo(zone)
        lines += [f"[queues.{queue}]", f'time_zone = "{zone}"',
                  f"interval_minutes = {rng.choice((15, 15, 30, 60))}",
                  f"threshold_seconds = {rng.choice((10, 20, 30))}",
                  f"short_abandon_seconds = {rng.choice((3, 5))}",
                  f'service_level_formula = "{FORMULAS[(index + rng.randrange(4)) % 4]}"',
                  f"dequeued_in_denominator = {str(rng.random() < 0.3).lower()}"]
        if index == 2 and rng.random() < 0.5:
            lines.append(f'callback_policy = "{rng.choice(("removed_from_queue", "flow_out"))}"')
        if queue == arrival:
            lines.append('attribute_to = "arrival"')
        # Windows short enough that contacts are decided, and others left pending, within the stream.
        repeat_minutes = rng.choice((30, 30, 15, 60))
        fcr_hours = rng.choice((1, 2, 4))
        windows[queue] = (repeat_minutes * MINUTE, fcr_hours * HOUR)
        lines += [f"repeat_window_minutes = {repeat_minutes}", f"fcr_window_days = {fcr_hours}/24".replace(
            f"{fcr_hours}/24", repr(fcr_hours / 24))]
        lines.append("")
    # Two groups sharing a queue (an overflow between members is no outcome of the group), and two
    # tenants owning the queues between them.
    lines += ["[groups.front]", f"queues = {orjson.dumps(queues[:3]).decode()}", "threshold_seconds = 30", "",
              "[groups.back]", f"queues = {orjson.dumps(queues[2:]).decode()}", "",
              "[tenants.acme]", f"queues = {orjson.dumps(queues[:-1]).decode()}", "",
              "[tenants.globex]", f"queues = {orjson.dumps(queues[-1:]).decode()}", ""]
    return "\n".join(lines), zones, windows


def generate(seed: int, partitions: int = 4, calls: int = 1500, today: bool = False) -> Stream:
    """The stream of `seed`: about `calls` calls, over 14 hours of a DST night, or with `today` the
    last 3 hours up to 2 minutes before now (so "today" windows of a live worker hold its end)."""
    rng = random.Random(seed)
    queues = _pick_queues(rng, partitions)
    config, zones, windows = _config(rng, queues)
    if today:
        end_ms = (time.time_ns() // 1_000_000) - 2 * MINUTE
        start_ms = end_ms - 3 * HOUR
    else:
        start_ms = int(datetime.fromisoformat(rng.choice(DST_NIGHTS)).timestamp() * 1000)
        end_ms = start_ms + 14 * HOUR
    builder = _Builder(rng, queues, zones, partitions, start_ms, end_ms, seed, windows)
    _arrivals(builder, calls)
    builder.agents()
    timeline = sorted(builder.timeline, key=lambda item: (item[0], item[1]))
    kept = [(ts, event) for ts, _, event in timeline if ts <= end_ms]
    kept = _stall_partition(rng, kept, partitions, builder.notes)
    lines = [orjson.dumps(event) for _, event in kept]
    times = [ts for ts, _ in kept]
    _disorder(rng, lines, times, builder.notes)
    _hold_back(rng, lines, times, builder.notes)
    _redeliver(rng, lines, builder.notes)
    _noise(rng, lines, queues, end_ms, builder.notes)
    if today:
        builder.notes["today_midnight"] = day_start(end_ms, ZoneInfo("Europe/London"))
    return Stream(seed, partitions, lines, config, queues, start_ms, end_ms, builder.notes)


def _arrivals(builder: _Builder, calls: int) -> None:
    rng = builder.rng
    span = builder.end_ms - builder.start_ms - 20 * MINUTE  # the last calls still play out
    per_queue = calls / len(builder.queues)
    for queue in builder.queues:
        mean_gap = span / per_queue
        quiet = []
        for _ in range(rng.randint(1, 2)):  # the queue goes quiet for a while, then resumes
            begin = builder.start_ms + rng.randrange(span)
            quiet.append((begin, begin + rng.randrange(10 * MINUTE, 40 * MINUTE)))
        at = builder.start_ms + rng.randrange(int(mean_gap))
        while at < builder.start_ms + span:
            if not any(begin <= at < end for begin, end in quiet):
                builder.call(queue, at)
            at += int(rng.expovariate(1 / mean_gap)) + 1


def _stall_partition(rng: random.Random, kept: list[tuple[int, dict[str, Any]]], partitions: int,
                     notes: dict[str, int]) -> list[tuple[int, dict[str, Any]]]:
    """One partition's records of a 40-minute stretch arrive at its end, in their own order (a producer
    whose connection stalled): late against the whole stream's time, on time for their own partition,
    whose time stood still meanwhile. Lateness is judged per partition, so they count."""
    if partitions < 2:
        return kept
    stalled = rng.randrange(partitions)
    begin = kept[0][0] + rng.randrange(2 * HOUR, 8 * HOUR)
    release = begin + 40 * MINUTE

    def on_stalled(ts: int, event: dict[str, Any]) -> bool:
        key = event.get("agent_id") if event["type"] == "agent.state" else event.get("call_id")
        return begin <= ts < release and partition_of(key, partitions) == stalled

    held = [(ts, event) for ts, event in kept if on_stalled(ts, event)]
    rest = [(ts, event) for ts, event in kept if not on_stalled(ts, event)]
    at = next((i for i, (ts, _) in enumerate(rest) if ts >= release), len(rest))
    notes["stalled_partition_records"] = len(held)
    # Listed at the time they arrive; their own `ts` stays as it was.
    return rest[:at] + [(release, event) for _, event in held] + rest[at:]


def _disorder(rng: random.Random, lines: list[bytes], times: list[int], notes: dict[str, int]) -> None:
    """Swap a few records with a neighbour up to 30 s of event time away: within the grace period."""
    for _ in range(len(lines) // 25):
        i = rng.randrange(len(lines) - 8)
        j = i + rng.randrange(1, 8)
        if times[j] - times[i] <= 30_000:
            lines[i], lines[j] = lines[j], lines[i]
            times[i], times[j] = times[j], times[i]
            notes["out_of_order"] = notes.get("out_of_order", 0) + 1


def _hold_back(rng: random.Random, lines: list[bytes], times: list[int], notes: dict[str, int]) -> None:
    """Deliver a few records 40 to 90 minutes of stream time late: past any interval's end plus grace."""
    for _ in range(max(3, len(lines) // 400)):
        i = rng.randrange(len(lines) // 2)
        line, ts = lines.pop(i), times.pop(i)
        due = ts + rng.randrange(40 * MINUTE, 90 * MINUTE)
        j = next((k for k in range(i, len(times)) if times[k] >= due), len(times))
        lines.insert(j, line)
        times.insert(j, due)
        notes["held_back"] = notes.get("held_back", 0) + 1


def _redeliver(rng: random.Random, lines: list[bytes], notes: dict[str, int]) -> None:
    for _ in range(len(lines) // 50):  # 2 %: a producer's retry, shortly after the original
        i = rng.randrange(len(lines) - 1)
        lines.insert(i + 1 + rng.randrange(20), lines[i])
        notes["redelivered"] = notes.get("redelivered", 0) + 1
    for _ in range(10):  # hours later, long after the call was forgotten
        i = rng.randrange(len(lines) // 3)
        lines.insert(min(len(lines), i + len(lines) // 2 + rng.randrange(len(lines) // 4)), lines[i])
        notes["redelivered_after_forget"] = notes.get("redelivered_after_forget", 0) + 1


def _noise(rng: random.Random, lines: list[bytes], queues: list[str], end_ms: int, notes: dict[str, int]) -> None:
    queue = queues[0]
    noise = [
        b'{"event_id": "junk", "type": ',
        b"not json at all",
        b"[1, 2, 3]",
        b'"a string"',
        orjson.dumps({"event_id": "n-type", "type": "call.teleported", "ts": end_ms, "call_id": "x", "queue": queue}),
        orjson.dumps({"event_id": "n-nots", "type": "call.enqueued", "call_id": "no-ts", "queue": queue}),
        orjson.dumps({"event_id": "n-badts", "type": "call.enqueued", "ts": True, "call_id": "bad-ts", "queue": queue}),
        orjson.dumps({"event_id": "n-offset", "type": "call.enqueued", "ts": "2026-06-01T10:00:00",
                      "call_id": "no-offset", "queue": queue}),
        orjson.dumps({"event_id": "n-unknown", "type": "call.answered", "ts": end_ms - HOUR, "call_id": "never-seen",
                      "queue": queue}),
        orjson.dumps({"event_id": "n-queue", "type": "call.enqueued", "ts": end_ms - HOUR, "call_id": "ctl",
                      "queue": "bad\x07queue"}),
        orjson.dumps({"event_id": "n-rogue", "type": "call.enqueued", "ts": end_ms - HOUR, "call_id": "rogue",
                      "queue": "not-allowed"}),
        orjson.dumps({"event_id": "n-future", "type": "call.enqueued", "ts": "2090-01-01T00:00:00Z",
                      "call_id": "future", "queue": queue}),
        orjson.dumps({"event_id": "n-type2", "type": 7, "ts": end_ms, "call_id": "x", "queue": queue}),
        orjson.dumps({"event_id": "", "type": "call.enqueued", "ts": end_ms, "call_id": "empty-id", "queue": queue}),
        orjson.dumps({"event_id": "n-long", "type": "call.enqueued", "ts": end_ms, "call_id": "x" * 300,
                      "queue": queue}),
        orjson.dumps({"event_id": "n-mode", "type": "callback.requested", "ts": end_ms, "call_id": "m",
                      "queue": queue, "mode": "whenever"}),
        orjson.dumps({"event_id": "n-agent", "type": "agent.state", "ts": end_ms, "agent_id": "a", "state": "asleep"}),
        orjson.dumps({"event_id": "n-big", "type": "call.enqueued", "ts": end_ms, "call_id": "big", "queue": queue,
                      "pad": "x" * 70_000}),
    ]
    for record in noise:
        lines.insert(rng.randrange(len(lines)), record)
    notes["malformed_or_rejected"] = len(noise)
