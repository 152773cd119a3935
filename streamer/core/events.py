"""Schema v1 call-lifecycle events: parsing and validation into a typed `Event`.

Parsing is the only place that decides whether a record is acceptable; everything downstream trusts an
`Event`. Each rejection carries a short machine reason (a metric label and a dead-letter field) and a
human detail.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from sys import intern
from typing import Any

import orjson

SCHEMA_VERSION = 1

CALL_ENQUEUED = "call.enqueued"
CALL_ANSWERED = "call.answered"
CALL_ABANDONED = "call.abandoned"
CALL_DEQUEUED = "call.dequeued"
CALL_COMPLETED = "call.completed"
CALLBACK_REQUESTED = "callback.requested"
CALLBACK_CONNECTED = "callback.connected"
CALLBACK_FAILED = "callback.failed"
AGENT_STATE = "agent.state"
SURVEY_COMPLETED = "survey.completed"

CALL_TYPES = frozenset(
    {
        CALL_ENQUEUED,
        CALL_ANSWERED,
        CALL_ABANDONED,
        CALL_DEQUEUED,
        CALL_COMPLETED,
        CALLBACK_REQUESTED,
        CALLBACK_CONNECTED,
        CALLBACK_FAILED,
    }
)
# Keyed by call id and naming a queue, but no step of a queue visit: a post-call survey response.
CALL_KEYED_TYPES = CALL_TYPES | {SURVEY_COMPLETED}
EVENT_TYPES = CALL_KEYED_TYPES | {AGENT_STATE}

DEQUEUE_REASONS = frozenset({"overflow", "transfer", "timeout", "keypress", "other"})
CALLBACK_MODES = frozenset({"keep_position", "scheduled"})
AGENT_STATES = frozenset({"available", "busy", "wrap_up", "away", "logged_out"})

# Bounds that keep one record from costing more than it is worth: ids and names are short in every
# ACD, and a timestamp outside these years is a producer bug, not a call.
MAX_RECORD_BYTES = 64 * 1024
MAX_ID_CHARS = 256
MAX_QUEUE_CHARS = 128
MAX_AGENT_QUEUES = 256
MIN_TS_MS = 0  # 1970-01-01
MAX_TS_MS = 4102444800000  # 2100-01-01
MAX_DURATION_SECONDS = 7 * 86400.0
NPS_RANGE = (0, 10)
CSAT_RANGE = (1, 5)


class InvalidEvent(ValueError):
    """A record that is not a valid schema-v1 event; `reason` is a short stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Event:
    event_id: str
    type: str
    ts: int  # epoch milliseconds, UTC
    call_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    tenant: str | None = None
    customer_id: str | None = field(default=None, repr=False)  # pseudonymous, still kept out of logs
    reason: str | None = None  # call.dequeued
    to_queue: str | None = None  # call.dequeued; call.completed: the agent transferred the call there
    mode: str | None = None  # callback.requested
    state: str | None = None  # agent.state
    queues: tuple[str, ...] | None = None  # agent.state
    talk_seconds: float | None = None  # call.completed
    hold_seconds: float | None = None
    wrap_seconds: float | None = None
    nps: int | None = None  # survey.completed
    csat: int | None = None

    @property
    def key(self) -> str:
        """The Kafka key of this event: the call, or the agent for agent events."""
        return self.call_id if self.call_id is not None else (self.agent_id or "")


def parse_ts(value: Any) -> int:
    """An RFC 3339 string with an offset, or integer epoch milliseconds, as epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidEvent("wrong_type", "ts must be an RFC 3339 string or integer epoch milliseconds")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        ms = _parse_rfc3339(value)
    else:
        raise InvalidEvent("wrong_type", "ts must be an RFC 3339 string or integer epoch milliseconds")
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise InvalidEvent("bad_time", f"ts {value!r} is outside 1970..2099")
    return ms


# RFC 3339 section 5.6 date-time. `datetime.fromisoformat` alone also takes ISO 8601 forms no RFC 3339
# producer sends (basic and week dates, hour-only times, offsets with seconds) and refuses lower-case
# t/z, which RFC 3339 allows; the offset group is optional here only to name a missing offset.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


# The epoch ms of "YYYY-MM-DDTHH", for the common UTC shapes: producers stamp many events per hour, and
# the calendar arithmetic of `datetime` is most of the cost of a time. Bounded, as hours are unbounded.
_HOUR_STARTS: dict[str, int] = {}
_HOUR_STARTS_KEPT = 4096


def _parse_utc_fast(text: str) -> int | None:
    """"YYYY-MM-DDTHH:MM:SS[.mmm]Z" by its hour's start, or None for any other shape (or a value the
    full parse must judge: a second or minute out of range, a non-ASCII digit)."""
    size = len(text)
    if (size != 20 and size != 24) or text[-1] != "Z" or text[13] != ":" or text[16] != ":":
        return None
    rest = text[14:16] + text[17:19] + (text[20:23] if size == 24 else "")
    if not (rest.isdigit() and rest.isascii()) or (size == 24 and text[19] != "."):
        return None
    minute, second = int(rest[0:2]), int(rest[2:4])
    if minute > 59 or second > 59:
        return None
    hour = text[:13]
    start = _HOUR_STARTS.get(hour)
    if start is None:
        if _RFC3339.fullmatch(hour + ":00:00Z") is None:
            return None
        try:
            moment = datetime.fromisoformat(hour + ":00:00+00:00")
        except ValueError:
            return None
        delta = moment - _EPOCH
        start = delta.days * 86_400_000 + delta.seconds * 1000
        if len(_HOUR_STARTS) >= _HOUR_STARTS_KEPT:
            _HOUR_STARTS.clear()
        _HOUR_STARTS[hour] = start
    return start + minute * 60_000 + second * 1000 + (int(rest[4:7]) if size == 24 else 0)


def _parse_rfc3339(text: str) -> int:
    fast = _parse_utc_fast(text)
    if fast is not None:
        return fast
    shape = _RFC3339.fullmatch(text) if len(text) <= 40 else None
    if shape is None:
        raise InvalidEvent("bad_time", f"ts {text[:40]!r} is not an RFC 3339 date-time")
    if shape.group(2) is None:
        raise InvalidEvent("bad_time", f"ts {text!r} has no UTC offset (add Z or +hh:mm)")
    try:
        # RFC 3339 allows a lower-case t and z, which fromisoformat refuses
        moment = datetime.fromisoformat(text if text[10] == "T" and text[-1] != "z" else text.upper())
    except ValueError:
        raise InvalidEvent("bad_time", f"ts {text!r} is not an RFC 3339 date-time") from None
    # Integer arithmetic keeps milliseconds exact; microseconds beyond them are dropped on purpose.
    delta = moment - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def decode(raw: bytes | str) -> dict[str, Any]:
    """Decode one JSON record into a dict, or raise InvalidEvent."""
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent("too_large", f"record of {len(raw)} bytes exceeds {MAX_RECORD_BYTES}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise InvalidEvent("wrong_type", f"an event is a JSON object, not {type(data).__name__}")
    return data


def parse_event(raw: bytes | str | dict[str, Any]) -> Event:
    """Validate one record (JSON text or an already decoded dict) into an `Event`.

    Every field is first tried on the common path (a short non-empty string, a known name); anything
    else goes through the full check, which raises with the precise reason, so the fast path decides
    nothing the full one would decide otherwise."""
    data = raw if isinstance(raw, dict) else decode(raw)
    get = data.get
    event_id = get("event_id")
    if type(event_id) is not str or not event_id or len(event_id) > MAX_ID_CHARS:
        event_id = _text(data, "event_id", MAX_ID_CHARS, required=True)
    etype = get("type")
    if type(etype) is not str or etype not in EVENT_TYPES:
        if etype is None:
            raise InvalidEvent("missing_field", "type is required")
        if not isinstance(etype, str):
            raise InvalidEvent("wrong_type", "type must be a string")
        raise InvalidEvent("unknown_type", f"type {etype[:60]!r} is not a schema v1 event type")
    if "ts" not in data:
        raise InvalidEvent("missing_field", "ts is required")
    ts = parse_ts(data["ts"])
    is_call = etype in CALL_KEYED_TYPES
    call_id = get("call_id")
    if type(call_id) is not str or not call_id or len(call_id) > MAX_ID_CHARS:
        call_id = _text(data, "call_id", MAX_ID_CHARS, required=is_call)
    queue = get("queue")
    if type(queue) is not str or not queue or len(queue) > MAX_QUEUE_CHARS or not queue.isprintable():
        queue = _queue(data, "queue", required=is_call)
    if queue is not None:
        # One string per queue name, however many calls hold it (a call's state keeps its queue for
        # as long as it waits); an interned string is freed when the last holder goes.
        queue = intern(queue)
    agent_id = _optional_text(data, "agent_id", MAX_ID_CHARS, required=etype == AGENT_STATE)
    tenant = _optional_text(data, "tenant", MAX_ID_CHARS)
    customer_id = _optional_text(data, "customer_id", MAX_ID_CHARS)
    reason = to_queue = mode = state = queues = talk = hold = wrap = nps = csat = None
    if etype == CALL_DEQUEUED:
        reason = _choice(data, "reason", DEQUEUE_REASONS, default="other")
        to_queue = _queue(data, "to_queue")
    elif etype == CALLBACK_REQUESTED:
        mode = _choice(data, "mode", CALLBACK_MODES, required=True)
    elif etype == AGENT_STATE:
        state = _choice(data, "state", AGENT_STATES, required=True)
        queues = _queue_list(data)
        call_id = None
    elif etype == CALL_COMPLETED:
        talk = _duration(data, "talk_seconds")
        hold = _duration(data, "hold_seconds")
        wrap = _duration(data, "wrap_seconds")
        to_queue = _queue(data, "to_queue")
    elif etype == SURVEY_COMPLETED:
        nps = _score(data, "nps", NPS_RANGE)
        csat = _score(data, "csat", CSAT_RANGE)
        if nps is None and csat is None:
            raise InvalidEvent("missing_field", "a survey needs nps (0 to 10) or csat (1 to 5), or both")
    return Event(event_id, etype, ts, call_id, queue, agent_id, tenant, customer_id, reason, to_queue, mode, state,
                 queues, talk, hold, wrap, nps, csat)


def _optional_text(data: dict[str, Any], name: str, limit: int, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if type(value) is str and value and len(value) <= limit:
        return value
    return _text(data, name, limit, required)


def _text(data: dict[str, Any], name: str, limit: int, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"{name} must be a string")
    if not value:
        raise InvalidEvent("bad_value", f"{name} must not be empty")
    if len(value) > limit:
        raise InvalidEvent("too_large", f"{name} is longer than {limit} characters")
    return value


def _queue(data: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = _text(data, name, MAX_QUEUE_CHARS, required)
    if value is not None and not value.isprintable():
        # Control characters in a label break logs, terminals and some exposition parsers.
        raise InvalidEvent("bad_queue", f"{name} contains control or non-printable characters")
    return value


def _choice(
    data: dict[str, Any], name: str, allowed: frozenset[str], required: bool = False, default: str | None = None
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidEvent("missing_field", f"{name} is required")
        return default
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"{name} must be a string")
    if value not in allowed:
        raise InvalidEvent("bad_value", f"{name} {value[:40]!r} is not one of {', '.join(sorted(allowed))}")
    return value


def _queue_list(data: dict[str, Any]) -> tuple[str, ...] | None:
    value = data.get("queues")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(q, str) and q for q in value):
        raise InvalidEvent("wrong_type", "queues must be a list of queue names")
    if len(value) > MAX_AGENT_QUEUES:
        raise InvalidEvent("too_large", f"queues lists more than {MAX_AGENT_QUEUES} queues")
    for q in value:
        if len(q) > MAX_QUEUE_CHARS or not q.isprintable():
            raise InvalidEvent("bad_queue", "queues holds a name that is too long or not printable")
    return tuple(value)


def _duration(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent("wrong_type", f"{name} must be a number of seconds")
    if not math.isfinite(value) or value < 0 or value > MAX_DURATION_SECONDS:
        raise InvalidEvent("bad_value", f"{name} must be between 0 and {MAX_DURATION_SECONDS:.0f} seconds")
    return float(value)


def _score(data: dict[str, Any], name: str, bounds: tuple[int, int]) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    low, high = bounds
    # JSON has one number type: 7.0 is the integer 7 (as JSON Schema's "integer" says), 7.5 is not.
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not value.is_integer()):
        raise InvalidEvent("wrong_type", f"{name} must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise InvalidEvent("bad_value", f"{name} {value!r} is outside {low} to {high}")
    return int(value)


def format_ts(ms: int, tz: Any = None) -> str:
    """Epoch milliseconds as RFC 3339 (in `tz`, UTC by default), milliseconds kept when non-zero."""
    moment = (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz or UTC)
    timespec = "milliseconds" if ms % 1000 else "seconds"
    return moment.isoformat(timespec=timespec)
