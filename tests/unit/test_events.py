"""Schema v1 parsing: every accepted shape, and every rejection with its reason code."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from streamer.core import events as ev

T0 = 1780308000000  # 2026-06-01T10:00:00Z


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "e1", "type": "call.enqueued", "ts": "2026-06-01T10:00:00Z",
                            "call_id": "c1", "queue": "q1"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def without(name: str, **fields: Any) -> dict[str, Any]:
    data = record(**fields)
    del data[name]
    return data


def rejected(raw: Any) -> ev.InvalidEvent:
    with pytest.raises(ev.InvalidEvent) as info:
        ev.parse_event(raw)
    return info.value


# --- accepted --------------------------------------------------------------------------------------


def test_enqueued_from_json_text_and_bytes_and_dict_give_the_same_event():
    data = record(tenant="t1", customer_id="h:9f2c")
    text = orjson.dumps(data).decode()
    parsed = ev.parse_event(text)
    assert parsed == ev.parse_event(text.encode()) == ev.parse_event(data)
    assert parsed == ev.Event(event_id="e1", type="call.enqueued", ts=T0, call_id="c1", queue="q1",
                              tenant="t1", customer_id="h:9f2c")
    assert parsed.key == "c1"


@pytest.mark.parametrize("etype", sorted(ev.CALL_TYPES - {ev.CALL_DEQUEUED, ev.CALLBACK_REQUESTED}))
def test_every_plain_call_type_is_accepted(etype):
    parsed = ev.parse_event(record(type=etype, agent_id="a7"))
    assert (parsed.type, parsed.call_id, parsed.queue, parsed.agent_id) == (etype, "c1", "q1", "a7")


@pytest.mark.parametrize("reason", sorted(ev.DEQUEUE_REASONS))
def test_dequeued_keeps_reason_and_target_queue(reason):
    parsed = ev.parse_event(record(type="call.dequeued", reason=reason, to_queue="q2"))
    assert (parsed.reason, parsed.to_queue) == (reason, "q2")


def test_dequeued_without_reason_is_other():
    assert ev.parse_event(record(type="call.dequeued")).reason == "other"


@pytest.mark.parametrize("mode", ["keep_position", "scheduled"])
def test_callback_request_keeps_its_mode(mode):
    assert ev.parse_event(record(type="callback.requested", mode=mode)).mode == mode


def test_completed_keeps_durations_as_seconds():
    parsed = ev.parse_event(record(type="call.completed", talk_seconds=182, hold_seconds=12.5, wrap_seconds=0))
    assert (parsed.talk_seconds, parsed.hold_seconds, parsed.wrap_seconds) == (182.0, 12.5, 0.0)


def test_agent_state_is_keyed_by_agent_and_has_no_call():
    parsed = ev.parse_event({"event_id": "a1-1", "type": "agent.state", "ts": T0, "agent_id": "a1",
                             "state": "wrap_up", "queues": ["q1", "q2"], "call_id": "ignored"})
    assert (parsed.state, parsed.queues, parsed.call_id, parsed.queue) == ("wrap_up", ("q1", "q2"), None, None)
    assert parsed.key == "a1"


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert ev.parse_event(record(x_vendor={"skill": 3})).call_id == "c1"


def test_queue_names_may_hold_spaces_and_non_ascii_letters():
    assert ev.parse_event(record(queue="Ventes Genève 2")).queue == "Ventes Genève 2"


# --- time formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        ("2026-06-01T10:00:00Z", T0),
        ("2026-06-01T10:00:00z", T0),
        ("2026-06-01t10:00:00Z", T0),
        ("2026-06-01T12:00:00+02:00", T0),
        ("2026-06-01T05:00:00-05:00", T0),
        ("2026-06-01T15:45:00+05:45", T0),
        ("2026-06-01T10:00:00-00:00", T0),
        ("2026-06-01T10:00:00.5Z", T0 + 500),
        ("2026-06-01T10:00:00.123Z", T0 + 123),
        ("2026-06-01T12:00:00.123456+02:00", T0 + 123),
        ("2026-06-01T10:00:00.123999999Z", T0 + 123),  # nanoseconds: milliseconds kept, the rest dropped
        (T0, T0),
        (T0 + 1, T0 + 1),
        (0, 0),
        (4102444799999, 4102444799999),
    ],
)
def test_timestamps_in_every_accepted_form_give_exact_epoch_milliseconds(ts, ms):
    assert ev.parse_ts(ts) == ms
    assert ev.parse_event(record(ts=ts)).ts == ms


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("2026-06-01T10:00:00", "bad_time"),  # naive: no offset
        ("2026-06-01 10:00:00Z", "bad_time"),
        ("2026-06-01", "bad_time"),
        ("yesterday at ten", "bad_time"),
        ("", "bad_time"),
        ("20260601T100000Z", "bad_time"),  # ISO 8601 basic format, not RFC 3339
        ("2026-06-01T10Z", "bad_time"),
        ("2026-06-01T10:00Z", "bad_time"),
        ("2026-W23-1T10:00:00Z", "bad_time"),
        ("2026-06-01T10:00:00+0200", "bad_time"),
        ("2026-06-01T10:00:00+02", "bad_time"),
        ("2026-06-01T10:00:00+02:00:30", "bad_time"),
        ("2026-06-01T10:00:00,5Z", "bad_time"),
        ("2026-02-30T10:00:00Z", "bad_time"),
        ("2026-06-01T24:00:00Z", "bad_time"),
        ("2026-06-01T10:00:00Z" + " " * 40, "bad_time"),
        ("1969-12-31T23:59:59Z", "bad_time"),
        ("2100-01-01T00:00:00Z", "bad_time"),
        (-1, "bad_time"),
        (4102444800000, "bad_time"),
        (True, "wrong_type"),
        (False, "wrong_type"),
        (1780308000000.5, "wrong_type"),
        (1780308000000.0, "wrong_type"),
        ([2026, 6, 1], "wrong_type"),
        ({"epoch": T0}, "wrong_type"),
    ],
)
def test_impossible_or_mistyped_timestamps_are_rejected(ts, reason):
    error = rejected(record(ts=ts))
    assert error.reason == reason
    with pytest.raises(ev.InvalidEvent):
        ev.parse_ts(ts)


def test_a_naive_timestamp_is_told_to_add_an_offset():
    assert "offset" in rejected(record(ts="2026-06-01T10:00:00")).detail


def test_null_ts_is_a_wrong_type_and_absent_ts_is_missing():
    assert rejected(record(ts=None) | {"ts": None}).reason == "wrong_type"
    assert rejected(without("ts")).reason == "missing_field"


# --- rejected records ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "e1", "type": ', "invalid_json"),
        (b"not json at all", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"event_id": "e1", "ts": NaN}', "invalid_json"),
        (b"[1, 2]", "wrong_type"),
        (b'"call.enqueued"', "wrong_type"),
        (b"null", "wrong_type"),
        (b"42", "wrong_type"),
    ],
)
def test_records_that_are_not_json_objects(raw, reason):
    assert rejected(raw).reason == reason


def test_too_large_records_are_rejected_before_decoding():
    big = orjson.dumps(record(padding="x" * ev.MAX_RECORD_BYTES))
    assert rejected(big).reason == "too_large"
    assert rejected(big.decode()).reason == "too_large"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (without("event_id"), "missing_field"),
        (without("type"), "missing_field"),
        (without("call_id"), "missing_field"),
        (without("queue"), "missing_field"),
        (without("call_id", type="callback.connected"), "missing_field"),
        (without("queue", type="call.completed"), "missing_field"),
        (record(type="callback.requested"), "missing_field"),  # no mode
        ({"event_id": "a", "type": "agent.state", "ts": T0, "state": "busy"}, "missing_field"),
        ({"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1"}, "missing_field"),
        (record(event_id=17), "wrong_type"),
        (record(type=3), "wrong_type"),
        (record(call_id=123), "wrong_type"),
        (record(queue=["q1"]), "wrong_type"),
        (record(agent_id=7), "wrong_type"),
        (record(tenant=True), "wrong_type"),
        (record(event_id=""), "bad_value"),
        (record(call_id=""), "bad_value"),
        (record(queue=""), "bad_value"),
        (record(type="call.queued"), "unknown_type"),
        (record(type="CALL.ENQUEUED"), "unknown_type"),
        (record(type=""), "unknown_type"),
        (record(type="call.dequeued", reason="lunch"), "bad_value"),
        (record(type="call.dequeued", reason=1), "wrong_type"),
        (record(type="callback.requested", mode="later"), "bad_value"),
        ({"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1", "state": "asleep"}, "bad_value"),
        ({"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1", "state": "busy", "queues": "q1"},
         "wrong_type"),
        ({"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1", "state": "busy", "queues": [""]},
         "wrong_type"),
        (record(event_id="e" * (ev.MAX_ID_CHARS + 1)), "too_large"),
        (record(call_id="c" * (ev.MAX_ID_CHARS + 1)), "too_large"),
        (record(queue="q" * (ev.MAX_QUEUE_CHARS + 1)), "too_large"),
        ({"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1", "state": "busy",
          "queues": ["q"] * (ev.MAX_AGENT_QUEUES + 1)}, "too_large"),
        (record(type="call.completed", talk_seconds=-1), "bad_value"),
        (record(type="call.completed", talk_seconds=float("nan")), "bad_value"),
        (record(type="call.completed", hold_seconds=float("inf")), "bad_value"),
        (record(type="call.completed", wrap_seconds=ev.MAX_DURATION_SECONDS + 1), "bad_value"),
        (record(type="call.completed", talk_seconds="180"), "wrong_type"),
        (record(type="call.completed", talk_seconds=True), "wrong_type"),
    ],
)
def test_missing_mistyped_and_out_of_range_fields(data, reason):
    assert rejected(data).reason == reason


@pytest.mark.parametrize("queue", ["q\n1", "q\x00", "q\t1", "\x1b[31mred", "q\x7f", "q\x85", "q\u2028"])
def test_control_characters_in_queue_names_are_rejected(queue):
    assert rejected(record(queue=queue)).reason == "bad_queue"
    assert rejected(record(type="call.dequeued", to_queue=queue)).reason == "bad_queue"
    agent = {"event_id": "a", "type": "agent.state", "ts": T0, "agent_id": "a1", "state": "busy",
             "queues": ["ok", queue]}
    assert rejected(agent).reason == "bad_queue"


def test_every_rejection_names_the_field_and_keeps_reason_apart_from_detail():
    error = rejected(without("call_id"))
    assert (error.reason, error.detail) == ("missing_field", "call_id is required")
    assert str(error) == "missing_field: call_id is required"
    assert isinstance(error, ValueError)


def test_the_detail_of_a_huge_bad_value_is_bounded():
    error = rejected(record(type="x" * 5000))
    assert error.reason == "unknown_type"
    assert len(error.detail) < 200


# --- formatting ------------------------------------------------------------------------------------


def test_format_ts_keeps_milliseconds_only_when_there_are_some():
    assert ev.format_ts(T0) == "2026-06-01T10:00:00+00:00"
    assert ev.format_ts(T0 + 7) == "2026-06-01T10:00:00.007+00:00"


def test_format_ts_writes_the_local_offset_of_the_zone():
    assert ev.format_ts(T0, ZoneInfo("Europe/London")) == "2026-06-01T11:00:00+01:00"
    assert ev.format_ts(T0, ZoneInfo("Asia/Kathmandu")) == "2026-06-01T15:45:00+05:45"
    assert ev.format_ts(T0, timezone(timedelta(hours=-5))) == "2026-06-01T05:00:00-05:00"


@pytest.mark.parametrize("ms", [0, 1, T0, T0 + 999, 4102444799999])
def test_format_then_parse_is_the_identity(ms):
    assert ev.parse_ts(ev.format_ts(ms)) == ms
    assert ev.parse_ts(ev.format_ts(ms, ZoneInfo("America/New_York"))) == ms


def test_the_utc_fast_path_decides_every_time_as_the_full_parse() -> None:
    """The hour-start cache of common UTC stamps gives the same milliseconds, and the same refusals,
    as the full RFC 3339 parse, on valid times and on times with any one character changed."""
    import random

    from streamer.core import events as ev

    def full(text: str) -> object:
        try:
            shape = ev._RFC3339.fullmatch(text)
            if shape is None or shape.group(2) is None:
                return "refused"
            moment = ev.datetime.fromisoformat(text if text[10] == "T" and text[-1] != "z" else text.upper())
            delta = moment - ev._EPOCH
            return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
        except ValueError:
            return "refused"

    def ours(text: str) -> object:
        try:
            return ev._parse_rfc3339(text)
        except ev.InvalidEvent:
            return "refused"

    rng = random.Random(7)
    for _ in range(20_000):
        text = (f"{rng.randint(1970, 2099):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T"
                f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
                + (f".{rng.randint(0, 999):03d}" if rng.random() < 0.5 else "") + "Z")
        if rng.random() < 0.3:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice("09:.TZz-+ ²_") + text[at + 1:]
        assert ours(text) == full(text), text
