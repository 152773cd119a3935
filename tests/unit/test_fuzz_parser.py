"""Fuzzing the schema-v1 parser with Hypothesis: whatever bytes arrive, `parse_event` returns a valid
`Event` or raises `InvalidEvent` with a known reason, never anything else; every accepted event keeps
the schema's invariants; and each kind of defect gets its own reason.

The number of cases is stated in each test's settings (FUZZ_EXAMPLES for the two broad properties:
2000 each), so a CI run executes a known amount of fuzzing.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamer.core import events as ev

FUZZ_EXAMPLES = 2000
REASONS = {"invalid_json", "wrong_type", "missing_field", "unknown_type", "bad_time", "bad_value", "bad_queue",
           "too_large"}
FIELDS = ["event_id", "type", "ts", "call_id", "queue", "agent_id", "tenant", "customer_id", "reason", "to_queue",
          "mode", "state", "queues", "talk_seconds", "hold_seconds", "wrap_seconds", "nps", "csat"]
BROAD = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(raw: bytes | str) -> ev.Event | str:
    """The parsed event, or the reason it was refused; any other exception fails the test."""
    try:
        return ev.parse_event(raw)
    except ev.InvalidEvent as refusal:
        assert refusal.reason in REASONS, refusal
        assert refusal.detail
        return refusal.reason


def check_invariants(event: ev.Event) -> None:
    """What everything downstream of the parser relies on."""
    assert event.type in ev.EVENT_TYPES
    assert ev.MIN_TS_MS <= event.ts < ev.MAX_TS_MS
    assert 0 < len(event.event_id) <= ev.MAX_ID_CHARS
    if event.type in ev.CALL_KEYED_TYPES:
        assert event.call_id and len(event.call_id) <= ev.MAX_ID_CHARS
        assert event.queue and len(event.queue) <= ev.MAX_QUEUE_CHARS and event.queue.isprintable()
    if event.type == ev.AGENT_STATE:
        assert event.agent_id and event.state in ev.AGENT_STATES and event.call_id is None
        assert all(q and q.isprintable() and len(q) <= ev.MAX_QUEUE_CHARS for q in event.queues or ())
    if event.type == ev.CALLBACK_REQUESTED:
        assert event.mode in ev.CALLBACK_MODES
    if event.type == ev.CALL_DEQUEUED:
        assert event.reason in ev.DEQUEUE_REASONS
    if event.type == ev.SURVEY_COMPLETED:
        assert event.nps is not None or event.csat is not None
        assert event.nps is None or ev.NPS_RANGE[0] <= event.nps <= ev.NPS_RANGE[1]
        assert event.csat is None or ev.CSAT_RANGE[0] <= event.csat <= ev.CSAT_RANGE[1]
    for seconds in (event.talk_seconds, event.hold_seconds, event.wrap_seconds):
        assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= ev.MAX_DURATION_SECONDS)


# --- anything at all ---------------------------------------------------------------------------------------


@BROAD
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_are_parsed_or_refused_with_a_known_reason(raw: bytes) -> None:
    result = outcome(raw)
    if isinstance(result, ev.Event):
        check_invariants(result)


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["call.enqueued", "call.answered", "agent.state", "callback.requested", "call.completed",
                     "survey.completed",
                     "2026-06-01T10:00:00Z", "2026-06-01T10:00:00", "2026-13-01T10:00:00Z", "9999-12-31T23:59:59Z",
                     "keep_position", "scheduled", "overflow", "busy", "q\x00", "\u202eq", "Ünïcødé 📞", ""]),
)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
OBJECTS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), JSON_VALUES, max_size=12)


def as_json(value: Any) -> bytes:
    # json (not orjson) writes NaN and Infinity literals, which a careless producer might send.
    return json.dumps(value, allow_nan=True).encode()


@BROAD
@given(st.one_of(OBJECTS, JSON_VALUES))
def test_any_json_document_is_parsed_or_refused_with_a_known_reason(document: Any) -> None:
    result = outcome(as_json(document))
    if isinstance(result, ev.Event):
        check_invariants(result)


# --- valid events, and each kind of defect -----------------------------------------------------------------

IDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
QUEUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn")),
                 min_size=1, max_size=40).filter(str.isprintable)
TIMES = st.one_of(st.integers(ev.MIN_TS_MS, ev.MAX_TS_MS - 1),
                  st.integers(0, 4102444799).map(lambda s: ev.format_ts(s * 1000)))


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(ev.EVENT_TYPES)))
    event: dict[str, Any] = {"event_id": draw(IDS), "type": kind, "ts": draw(TIMES)}
    if kind == ev.AGENT_STATE:
        event["agent_id"] = draw(IDS)
        event["state"] = draw(st.sampled_from(sorted(ev.AGENT_STATES)))
        if draw(st.booleans()):
            event["queues"] = draw(st.lists(QUEUES, max_size=5))
    else:
        event["call_id"] = draw(IDS)
        event["queue"] = draw(QUEUES)
    if kind == ev.CALLBACK_REQUESTED:
        event["mode"] = draw(st.sampled_from(sorted(ev.CALLBACK_MODES)))
    if kind == ev.CALL_DEQUEUED and draw(st.booleans()):
        event["reason"] = draw(st.sampled_from(sorted(ev.DEQUEUE_REASONS)))
    if kind == ev.CALL_COMPLETED and draw(st.booleans()):
        event["talk_seconds"] = draw(st.floats(0, ev.MAX_DURATION_SECONDS))
    if kind == ev.SURVEY_COMPLETED:
        scores = draw(st.sampled_from([("nps",), ("csat",), ("nps", "csat")]))
        if "nps" in scores:
            event["nps"] = draw(st.integers(*ev.NPS_RANGE))
        if "csat" in scores:
            event["csat"] = draw(st.integers(*ev.CSAT_RANGE))
    return event


@settings(max_examples=500, deadline=None)
@given(valid_events())
def test_valid_events_are_accepted_with_their_own_fields(document: dict[str, Any]) -> None:
    event = outcome(orjson.dumps(document))
    assert isinstance(event, ev.Event), event
    check_invariants(event)
    assert (event.event_id, event.type) == (document["event_id"], document["type"])
    assert event.ts == ev.parse_ts(document["ts"])
    assert event.queue == document.get("queue")


REQUIRED = {ev.AGENT_STATE: ["event_id", "type", "ts", "agent_id", "state"]}


def required_fields(document: dict[str, Any]) -> list[str]:
    extra = ["mode"] if document["type"] == ev.CALLBACK_REQUESTED else []
    return REQUIRED.get(document["type"], ["event_id", "type", "ts", "call_id", "queue"]) + extra


def without(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != name}


DEFECTS = {
    "missing_field": lambda d, data: without(d, data.draw(st.sampled_from(required_fields(d)))),
    "wrong_type": lambda d, data: {**d, data.draw(st.sampled_from(["event_id", "type", "ts"])):
                                   data.draw(st.sampled_from([1.5, True, [1], {"a": 1}]))},
    "unknown_type": lambda d, data: {**d, "type": data.draw(st.text(max_size=30).filter(lambda t: t not in
                                                                                     ev.EVENT_TYPES))},
    "bad_time": lambda d, data: {**d, "ts": data.draw(st.sampled_from(
        [-1, ev.MAX_TS_MS, 2**62, "2026-06-01T10:00:00", "2026-06-01 10:00:00Z", "yesterday", "2026-02-30T10:00:00Z",
         "2026-06-01T25:00:00Z", "2026-06-01T10:00:00+24:00", "x" * 100]))},
    "too_large": lambda d, data: {**d, "event_id": "e" * data.draw(st.integers(ev.MAX_ID_CHARS + 1, 5000))},
}


@settings(max_examples=500, deadline=None)
@given(valid_events(), st.sampled_from(sorted(DEFECTS)), st.data())
def test_each_defect_of_a_valid_event_is_refused_with_its_reason(document: dict[str, Any], defect: str,
                                                                  data: st.DataObject) -> None:
    assert outcome(orjson.dumps(DEFECTS[defect](document, data))) == defect


@settings(max_examples=300, deadline=None)
@given(valid_events().filter(lambda d: d["type"] != ev.AGENT_STATE),
       st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=3), st.data())
def test_control_and_format_characters_in_a_queue_name_are_refused(document: dict[str, Any], bad: str,
                                                                     data: st.DataObject) -> None:
    queue = document["queue"]
    at = data.draw(st.integers(0, len(queue)))
    assert outcome(orjson.dumps({**document, "queue": queue[:at] + bad + queue[at:]})) == "bad_queue"


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),  # nesting beyond the decoder's depth limit
    (b'{"event_id": "x", "type": "call.enqueued", "ts": NaN, "call_id": "c", "queue": "q"}', "invalid_json"),
    (b'{"event_id": "x", "type": "call.enqueued", "ts": Infinity, "call_id": "c", "queue": "q"}', "invalid_json"),
    (b'{"event_id": "x", "type": "call.enqueued", "ts": 1e400, "call_id": "c", "queue": "q"}', "invalid_json"),
    (b'{"event_id": "x", "type": "call.enqueued", "ts": 123456789012345678901234567890, "call_id": "c", "queue": "q"}',
     "wrong_type"),  # beyond 64 bits the decoder gives a float
    (b'{"event_id": "x", "type": "call.enqueued", "ts": 1.78e12, "call_id": "c", "queue": "q"}', "wrong_type"),
    (b'{"event_id": "x", "type": "call.completed", "ts": 1, "call_id": "c", "queue": "q", "talk_seconds": -1}',
     "bad_value"),
    (b"\xff\xfe not utf-8", "invalid_json"),
    (b'"just a string"', "wrong_type"),
    (b"null", "wrong_type"),
    (orjson.dumps({"event_id": "x", "type": "call.enqueued", "ts": 1, "call_id": "c", "queue": "q",
                   "note": "n" * ev.MAX_RECORD_BYTES}), "too_large"),
])
def test_hostile_records(raw: bytes, reason: str) -> None:
    assert outcome(raw) == reason
