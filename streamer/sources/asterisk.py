"""Asterisk app_queue `queue_log` → schema v1 events.

A queue_log line is `epoch|uniqueid|queue|agent|EVENT|data1|data2|…`. Each line maps on its own to
zero, one or two events, so the adapter can start at any line of any file (after a restart, in a
rotated file) and re-reading a line gives the same events with the same `event_id`s, which the
pipeline drops as duplicates. The only memory kept across lines is advisory: the open visits, to
check Asterisk's own wait against the event times, and which agents are paused, to say whether an
agent is available or away after a call. A transfer becomes a hand-off (`call.completed` with
`to_queue`, so the call's journey goes on in its next visit) when the line names an extension that
`transfer_queues` maps to a queue. The mapping and every choice behind it are in docs/sources.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamer.core.events import (
    AGENT_STATE,
    CALL_ABANDONED,
    CALL_ANSWERED,
    CALL_COMPLETED,
    CALL_DEQUEUED,
    CALL_ENQUEUED,
)

Event = dict[str, Any]

DEQUEUE_REASONS = {"EXITWITHTIMEOUT": "timeout", "EXITWITHKEY": "keypress", "EXITEMPTY": "other"}
# COMPLETE* and the transfers all end with holdtime|calltime|origposition; whatever comes before
# (transfer target, context, bridge or channel names) varies by event and Asterisk version.
CALL_END_EVENTS = frozenset({"COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
# TRANSFER (Asterisk <= 11) and BLINDTRANSFER log exten|context|holdtime|calltime|origposition: where
# the call went. ATTENDEDTRANSFER logs a bridge, an application or two channels, never a queue.
TRANSFERS_TO_EXTENSION = frozenset({"TRANSFER", "BLINDTRANSFER"})
AGENT_STATE_OF_EVENT = {
    "AGENTLOGIN": "available",
    "AGENTCALLBACKLOGIN": "available",
    "ADDMEMBER": "available",
    "UNPAUSE": "available",
    "UNPAUSEALL": "available",
    "AGENTLOGOFF": "logged_out",
    "AGENTCALLBACKLOGOFF": "logged_out",
    "REMOVEMEMBER": "logged_out",
    "PAUSE": "away",
    "PAUSEALL": "away",
}
# Known app_queue events that say nothing about a queue visit's outcome or an agent's state: a
# ring that went unanswered or was cancelled, an agent hanging up during the announcement (the
# caller keeps waiting), a channel format mismatch, dialplan annotations, a penalty change.
IGNORED_EVENTS = frozenset({"RINGNOANSWER", "RINGCANCELED", "AGENTDUMP", "SYSCOMPAT", "DID", "INFO", "PENALTY"})
SYSTEM_EVENTS = frozenset({"QUEUESTART", "CONFIGRELOAD"})

# Caller ids that name nobody: hashing them would make every withheld number one "customer".
ANONYMOUS_CALLERS = frozenset({"", "anonymous", "unknown", "private", "restricted", "unavailable", "none"})
# Asterisk logs the member name on call events but the interface on (dialplan) ADDMEMBER /
# REMOVEMEMBER: `Agent/1127`, `Local/1127@callback-agent` and `SIP/1127` all name agent 1127.
AGENT_INTERFACE = re.compile(r"^[A-Za-z0-9_]+/([^@/]+)(?:@.*)?$")
NONE = "NONE"
ALL_QUEUES = "*"
# A wait logged by Asterisk may differ from the difference of two whole-second epochs by one second.
WAIT_TOLERANCE_SECONDS = 1
MAX_OPEN_VISITS = 100_000
MAX_EXAMPLES = 5


class QueueMapError(ValueError):
    """A `--queue-map` entry is not `ASTERISK_NAME=NAME`, or a `--transfer-queue` entry not `EXTEN=QUEUE`."""


def parse_queue_map(entries: Iterable[str]) -> dict[str, str]:
    """`["IT=helpdesk", …]` → `{"IT": "helpdesk"}`; queues not named keep their Asterisk name."""
    return _pairs(entries, "--queue-map", "ASTERISK_QUEUE=QUEUE", "IT=it-helpdesk")


def parse_transfer_queues(entries: Iterable[str]) -> dict[str, str]:
    """`["600@from-internal=support", "601=billing"]` → the Asterisk queue that a transfer to an
    extension (in one dialplan context, or in any) puts the call in."""
    return _pairs(entries, "--transfer-queue", "EXTEN[@CONTEXT]=ASTERISK_QUEUE", "600@from-internal=support")


def _pairs(entries: Iterable[str], flag: str, shape: str, example: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in entries:
        source, sep, target = entry.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise QueueMapError(f"{flag} {entry!r}: expected {shape}, e.g. {flag} '{example}'")
        mapping[source.strip()] = target.strip()
    return mapping


def normalise_agent_id(agent: str) -> str:
    match = AGENT_INTERFACE.match(agent)
    return match.group(1) if match else agent


def customer_id_from_caller(caller: str, key: bytes | None) -> str | None:
    """A pseudonymous customer key, never the number itself; keyed when a key is given, since an
    unkeyed hash of a phone number can be reversed by trying every number."""
    number = caller.strip()
    if number.lower() in ANONYMOUS_CALLERS:
        return None
    if key:
        return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(number.encode()).hexdigest()[:32]


def event_id(identity: str, event_type: str) -> str:
    """Stable across re-reads, rotations and restarts: a hash of the line's own content (never its
    line number or file offset) and the event type, since one line can give two events."""
    digest = hashlib.blake2b(f"{identity}\x1f{event_type}".encode(), digest_size=16).hexdigest()
    return f"asterisk-{digest}"


def _epoch_ms(text: str) -> int:
    try:
        return int(text) * 1000
    except ValueError:
        return round(float(text) * 1000)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@dataclass
class IngestStats:
    """What the adapter did with each line: every line lands in exactly one of `mapped_lines`,
    `ignored`, `system`, `unknown`, `malformed` and `blank`."""

    lines: int = 0
    mapped_lines: int = 0
    events: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    system: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    blank: int = 0
    handoffs: int = 0  # transfers to an extension that names a queue
    wait_mismatches: int = 0
    malformed_examples: list[str] = field(default_factory=list)
    wait_mismatch_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{name} {n}" for name, n in sorted(counter.items())) or "none"

        parts = [
            f"{self.lines} lines, {sum(self.events.values())} events ({counts(self.events)})",
            f"ignored {sum(self.ignored.values())} ({counts(self.ignored)})",
            f"system {sum(self.system.values())} ({counts(self.system)})",
            f"unknown, skipped {sum(self.unknown.values())} ({counts(self.unknown)})",
            f"malformed, skipped {self.malformed}",
        ]
        if self.blank:
            parts.append(f"blank {self.blank}")
        if self.handoffs:
            parts.append(f"transfers to a queue (hand-offs) {self.handoffs}")
        if self.wait_mismatches:
            parts.append(f"waits disagreeing with Asterisk's own {self.wait_mismatches}")
        text = "; ".join(parts)
        for example in self.malformed_examples:
            text += f"\n  malformed: {example}"
        for example in self.wait_mismatch_examples:
            text += f"\n  wait mismatch: {example}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "mapped_lines": self.mapped_lines,
            "events": dict(self.events),
            "ignored": dict(self.ignored),
            "system": dict(self.system),
            "unknown": dict(self.unknown),
            "malformed": self.malformed,
            "blank": self.blank,
            "handoffs": self.handoffs,
            "wait_mismatches": self.wait_mismatches,
        }


class QueueLogMapper:
    """Maps queue_log lines to schema v1 events; `stats` counts what happened to every line."""

    def __init__(
        self,
        queue_map: Mapping[str, str] | None = None,
        *,
        tenant: str | None = None,
        customer_key: bytes | None = None,
        transfer_queues: Mapping[str, str] | None = None,
    ) -> None:
        self.queue_map = dict(queue_map or {})
        self.transfer_queues = dict(transfer_queues or {})
        self.tenant = tenant
        self.customer_key = customer_key
        self.stats = IngestStats()
        # uniqueid → (Asterisk queue, enqueue epoch ms), only to check Asterisk's logged waits.
        self._open_visits: dict[str, tuple[str, int]] = {}
        # (agent, Asterisk queue or ALL_QUEUES) pairs currently paused.
        self._paused: set[tuple[str, str]] = set()

    def state(self) -> dict[str, Any]:
        """What to persist beside a read position, so a restart says `away` after a paused agent's call."""
        return {"paused_agents": sorted([agent, queue] for agent, queue in self._paused)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self._paused = {(str(agent), str(queue)) for agent, queue in state.get("paused_agents", [])}

    def map_lines(self, lines: Iterable[str | bytes]) -> Iterator[Event]:
        for line in lines:
            yield from self.map_line(line)

    def map_line(self, raw: str | bytes) -> list[Event]:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        self.stats.lines += 1
        if not line.strip():
            self.stats.blank += 1
            return []
        fields = line.split("|")
        if len(fields) < 5:
            return self._malformed(line, "fewer than 5 |-separated fields")
        epoch, uniqueid, queue, agent, name = fields[:5]
        try:
            ts = _epoch_ms(epoch)
        except (ValueError, OverflowError):
            return self._malformed(line, f"the first field {epoch!r} is not an epoch in seconds")
        data = fields[5:]

        if name in SYSTEM_EVENTS:
            self.stats.system[name] += 1
            return []
        if name in IGNORED_EVENTS:
            self.stats.ignored[name] += 1
            return []
        if name in AGENT_STATE_OF_EVENT:
            if agent in ("", NONE):
                return self._malformed(line, f"{name} without an agent")
            return self._mapped(self._agent_event(line, name, ts, queue, agent))

        is_call_event = (
            name == "ENTERQUEUE"
            or name == "CONNECT"
            or name == "ABANDON"
            or name in DEQUEUE_REASONS
            or name in CALL_END_EVENTS
        )
        if not is_call_event:
            self.stats.unknown[name] += 1
            return []
        if uniqueid in ("", NONE) or queue in ("", NONE):
            return self._malformed(line, f"{name} without a call uniqueid or a queue")
        if name == "ENTERQUEUE":
            return self._mapped(self._enqueued(fields, ts, uniqueid, queue, data))
        if name == "CONNECT":
            return self._mapped(self._answered(line, ts, uniqueid, queue, agent, data))
        if name == "ABANDON" or name in DEQUEUE_REASONS:
            return self._mapped(self._left_queue(line, name, ts, uniqueid, queue, data))
        return self._mapped(self._completed(line, name, ts, uniqueid, queue, agent, data))

    # -- one builder per kind of line -------------------------------------------------------------

    def _enqueued(self, fields: list[str], ts: int, uniqueid: str, queue: str, data: list[str]) -> list[Event]:
        # ENTERQUEUE|url|callerid|position. The caller number stays out of the event id too: an
        # id hashed over it could be reversed by trying every number.
        identity = "|".join(fields[:6] + fields[7:]) if len(fields) > 6 else "|".join(fields)
        event = self._call_event(identity, CALL_ENQUEUED, ts, uniqueid, queue)
        customer = customer_id_from_caller(data[1], self.customer_key) if len(data) > 1 else None
        if customer:
            event["customer_id"] = customer
        self._remember_visit(uniqueid, queue, ts)
        return [event]

    def _answered(self, line: str, ts: int, uniqueid: str, queue: str, agent: str, data: list[str]) -> list[Event]:
        # CONNECT|holdtime|bridgedchanneluniqueid|ringtime
        self._check_wait(line, uniqueid, queue, ts, data[0] if data else "")
        event = self._call_event(line, CALL_ANSWERED, ts, uniqueid, queue)
        if agent in ("", NONE):
            return [event]
        agent_id = normalise_agent_id(agent)
        event["agent_id"] = agent_id
        return [event, self._agent_state(line, ts, agent_id, "busy", queue)]

    def _left_queue(self, line: str, name: str, ts: int, uniqueid: str, queue: str, data: list[str]) -> list[Event]:
        # ABANDON|position|origposition|waittime, EXITWITHTIMEOUT|position|origposition|waittime,
        # EXITEMPTY|position|origposition|waittime, EXITWITHKEY|key|position|origposition|waittime:
        # the wait is the last field (older versions log fewer fields before it).
        if len(data) >= 3:
            self._check_wait(line, uniqueid, queue, ts, data[-1])
        else:
            self._open_visits.pop(uniqueid, None)
        if name == "ABANDON":
            return [self._call_event(line, CALL_ABANDONED, ts, uniqueid, queue)]
        event = self._call_event(line, CALL_DEQUEUED, ts, uniqueid, queue)
        event["reason"] = DEQUEUE_REASONS[name]
        return [event]

    def _completed(self, line: str, name: str, ts: int, uniqueid: str, queue: str, agent: str,
                   data: list[str]) -> list[Event]:
        # …|holdtime|calltime|origposition. Asterisk's holdtime is the queue wait (already in the
        # answer's time), not time on hold during the call, so it is not `hold_seconds`.
        event = self._call_event(line, CALL_COMPLETED, ts, uniqueid, queue)
        talk = _int_or_none(data[-2]) if len(data) >= 3 else None
        if talk is not None and talk >= 0:
            event["talk_seconds"] = talk
        if name in TRANSFERS_TO_EXTENSION and len(data) >= 5:
            target = self._transfer_target(data[0], data[1])
            if target is not None:
                event["to_queue"] = self.queue_map.get(target, target)
                self.stats.handoffs += 1
        if agent in ("", NONE):
            return [event]
        agent_id = normalise_agent_id(agent)
        event["agent_id"] = agent_id
        after_call = "away" if self._is_paused(agent_id, queue) else "available"
        return [event, self._agent_state(line, ts, agent_id, after_call, queue)]

    def _agent_event(self, line: str, name: str, ts: int, queue: str, agent: str) -> list[Event]:
        agent_id = normalise_agent_id(agent)
        scope = queue if queue not in ("", NONE) else ALL_QUEUES
        if name in ("PAUSE", "PAUSEALL"):
            self._paused.add((agent_id, ALL_QUEUES if name == "PAUSEALL" else scope))
        elif name == "UNPAUSE" and scope != ALL_QUEUES:
            self._paused.discard((agent_id, scope))
        elif name in ("UNPAUSE", "UNPAUSEALL", "AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
            self._paused = {pair for pair in self._paused if pair[0] != agent_id}
        return [self._agent_state(line, ts, agent_id, AGENT_STATE_OF_EVENT[name], queue)]

    # -- helpers ----------------------------------------------------------------------------------

    def _call_event(self, identity: str, event_type: str, ts: int, uniqueid: str, queue: str) -> Event:
        event: Event = {
            "event_id": event_id(identity, event_type),
            "type": event_type,
            "ts": ts,
            "call_id": uniqueid,
            "queue": self.queue_map.get(queue, queue),
        }
        if self.tenant:
            event["tenant"] = self.tenant
        return event

    def _agent_state(self, identity: str, ts: int, agent_id: str, state: str, queue: str) -> Event:
        event: Event = {
            "event_id": event_id(identity, AGENT_STATE),
            "type": AGENT_STATE,
            "ts": ts,
            "agent_id": agent_id,
            "state": state,
        }
        if queue not in ("", NONE):
            event["queues"] = [self.queue_map.get(queue, queue)]
        if self.tenant:
            event["tenant"] = self.tenant
        return event

    def _transfer_target(self, exten: str, context: str) -> str | None:
        """The Asterisk queue behind extension `exten` of `context`, when the transfer map names one."""
        return self.transfer_queues.get(f"{exten}@{context}", self.transfer_queues.get(exten))

    def _is_paused(self, agent_id: str, queue: str) -> bool:
        return (agent_id, queue) in self._paused or (agent_id, ALL_QUEUES) in self._paused

    def _remember_visit(self, uniqueid: str, queue: str, ts: int) -> None:
        if len(self._open_visits) >= MAX_OPEN_VISITS:
            # Visits whose end was never logged must not grow this without bound: forget the oldest.
            del self._open_visits[next(iter(self._open_visits))]
        self._open_visits[uniqueid] = (queue, ts)

    def _check_wait(self, line: str, uniqueid: str, queue: str, ts: int, logged_wait: str) -> None:
        """Counts a visit whose wait by event times (what the pipeline uses) differs from the
        wait Asterisk logged; only possible when this run saw the visit's ENTERQUEUE."""
        visit = self._open_visits.pop(uniqueid, None)
        wait = _int_or_none(logged_wait)
        if visit is None or visit[0] != queue or wait is None:
            return
        by_event_times = (ts - visit[1]) / 1000
        if abs(by_event_times - wait) > WAIT_TOLERANCE_SECONDS:
            self.stats.wait_mismatches += 1
            if len(self.stats.wait_mismatch_examples) < MAX_EXAMPLES:
                self.stats.wait_mismatch_examples.append(
                    f"{line} (logged wait {wait} s, by event times {by_event_times:g} s)"
                )

    def _mapped(self, events: list[Event]) -> list[Event]:
        self.stats.mapped_lines += 1
        for event in events:
            self.stats.events[event["type"]] += 1
        return events

    def _malformed(self, line: str, why: str) -> list[Event]:
        self.stats.malformed += 1
        if len(self.stats.malformed_examples) < MAX_EXAMPLES:
            self.stats.malformed_examples.append(f"{_without_caller(line)[:200]!r}: {why}")
        return []


def _without_caller(line: str) -> str:
    """A line as shown on stderr: an ENTERQUEUE's caller number (the source of `customer_id`) masked."""
    fields = line.split("|")
    if len(fields) > 6 and fields[4] == "ENTERQUEUE" and fields[6]:
        fields[6] = "<caller>"
    return "|".join(fields)
