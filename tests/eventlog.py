"""Build schema-v1 event records tersely in tests: times in seconds from a start, ids made up for you.

    log = EventLog()                       # starts 2026-06-01T10:00:00Z, queue "q1"
    log.enqueued("c1", 0)
    log.answered("c1", 15)                 # 15 s later
    log.callback("c2", 30, "keep_position", queue="q2")
    report_of(log)["q1"]["total"]["answered"] == 1

Every method returns the record (a plain dict) it appended, so a test can duplicate or alter it. Times
are written as RFC 3339 UTC strings with milliseconds by default; pass `ts=` to write any raw value (an
epoch-ms integer, a string with an offset, or something invalid on purpose).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamer.core import calls
from streamer.core import events as ev
from streamer.core.config import Config
from streamer.core.report import Report

DEFAULT_START = "2026-06-01T10:00:00Z"
_UNSET: Any = object()


@dataclass
class EventLog:
    start: str = DEFAULT_START
    queue: str = "q1"
    records: list[dict[str, Any]] = field(default_factory=list)
    _count: int = field(default=0, init=False)

    @property
    def start_ms(self) -> int:
        return ev.parse_ts(self.start)

    def ms(self, seconds: float) -> int:
        """Epoch milliseconds `seconds` after the start (millisecond exact for values like 20.001)."""
        return self.start_ms + round(seconds * 1000)

    def add(
        self,
        type_: str,
        call_id: str | None,
        at: float,
        *,
        queue: str | None = _UNSET,
        event_id: str | None = None,
        ts: Any = _UNSET,
        **fields: Any,
    ) -> dict[str, Any]:
        """Append one record of `type_` at `at` seconds after the start; None-valued fields are left out."""
        self._count += 1
        record: dict[str, Any] = {
            "event_id": event_id or f"{call_id or fields.get('agent_id', 'e')}-{self._count}",
            "type": type_,
            "ts": ev.format_ts(self.ms(at)) if ts is _UNSET else ts,
        }
        if call_id is not None:
            record["call_id"] = call_id
        chosen_queue = self.queue if queue is _UNSET else queue
        if chosen_queue is not None:
            record["queue"] = chosen_queue
        record.update({k: v for k, v in fields.items() if v is not None})
        self.records.append(record)
        return record

    def enqueued(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALL_ENQUEUED, call_id, at, **kw)

    def answered(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALL_ANSWERED, call_id, at, **kw)

    def abandoned(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALL_ABANDONED, call_id, at, **kw)

    def dequeued(self, call_id: str, at: float, reason: str | None = "overflow", to_queue: str | None = None,
                 **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALL_DEQUEUED, call_id, at, reason=reason, to_queue=to_queue, **kw)

    def callback(self, call_id: str, at: float, mode: str, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALLBACK_REQUESTED, call_id, at, mode=mode, **kw)

    def connected(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALLBACK_CONNECTED, call_id, at, **kw)

    def failed(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALLBACK_FAILED, call_id, at, **kw)

    def completed(self, call_id: str, at: float, **kw: Any) -> dict[str, Any]:
        return self.add(ev.CALL_COMPLETED, call_id, at, **kw)

    def agent(self, agent_id: str, at: float, state: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("queue", None)
        return self.add(ev.AGENT_STATE, None, at, agent_id=agent_id, state=state, **kw)

    # Whole visits in one line each, for tests that need many calls.

    def answered_call(self, call_id: str, at: float, wait: float, **kw: Any) -> None:
        self.enqueued(call_id, at, **kw)
        self.answered(call_id, at + wait, **kw)

    def abandoned_call(self, call_id: str, at: float, wait: float, **kw: Any) -> None:
        self.enqueued(call_id, at, **kw)
        self.abandoned(call_id, at + wait, **kw)

    def repeat(self, record: dict[str, Any]) -> dict[str, Any]:
        """Deliver `record` again (same event_id): a duplicate."""
        self.records.append(dict(record))
        return record

    def lines(self) -> list[str]:
        return [line(record) for record in self.records]

    def jsonl(self) -> str:
        return "".join(f"{text}\n" for text in self.lines())

    def events(self) -> list[ev.Event]:
        return [ev.parse_event(record) for record in self.records]


VISIT_KINDS = calls.OUTCOMES | {calls.ENTERED, calls.CALLBACK_REQUESTED, calls.CALLBACK_CONNECTED,
                                calls.CALLBACK_FAILED}


def visit_facts(facts: Iterable[calls.Fact]) -> list[calls.Fact]:
    """The facts about queue visits alone (no journey, hand-off, contact or survey facts), as the
    tests of the visit rules look at them."""
    return [fact for fact in facts if fact.kind in VISIT_KINDS]


def line(record: dict[str, Any]) -> str:
    """One record as a JSONL line (without the newline)."""
    return orjson.dumps(record).decode()


def run_report(source: EventLog | Iterable[str | bytes], config: Config | None = None) -> Report:
    """The offline report over an EventLog or JSONL lines, fed in order."""
    report = Report(config)
    report.add_lines(source.lines() if isinstance(source, EventLog) else source)
    return report


def report_of(source: EventLog | Iterable[str | bytes], config: Config | None = None) -> dict[str, Any]:
    """`{queue: {"total": ..., "intervals": [...]}}` of the offline report over `source`."""
    return run_report(source, config).to_dict()["queues"]
