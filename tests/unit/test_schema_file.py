"""The shipped JSON Schema of events agrees with the parser on a shared table of examples."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from streamer.core import events as ev

SCHEMA_TEXT = (resources.files("streamer.core") / "schema" / "call-event-v1.schema.json").read_text("utf-8")
T0 = 1780308000000


def call(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "e1", "type": "call.enqueued", "ts": "2026-06-01T10:00:00Z",
                            "call_id": "c1", "queue": "q1"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def agent(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "a1", "type": "agent.state", "ts": T0, "agent_id": "a1",
                            "state": "available"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


# (example, accepted) — both the parser and the schema must give the same answer.
SHARED_EXAMPLES: list[tuple[str, dict[str, Any], bool]] = [
    ("enqueued", call(), True),
    ("answered with agent", call(type="call.answered", agent_id="a1"), True),
    ("abandoned", call(type="call.abandoned"), True),
    ("dequeued", call(type="call.dequeued", reason="overflow", to_queue="q2"), True),
    ("dequeued without reason", call(type="call.dequeued"), True),
    ("keep position", call(type="callback.requested", mode="keep_position"), True),
    ("scheduled", call(type="callback.requested", mode="scheduled"), True),
    ("connected", call(type="callback.connected"), True),
    ("failed", call(type="callback.failed"), True),
    ("completed", call(type="call.completed", talk_seconds=120.5, hold_seconds=0, wrap_seconds=30), True),
    ("agent state", agent(queues=["q1", "q2"]), True),
    ("tenant and customer", call(tenant="t", customer_id="h:ab12"), True),
    ("extra field", call(x_vendor=1), True),
    ("ts with offset", call(ts="2026-06-01T12:00:00+02:00"), True),
    ("ts with fraction", call(ts="2026-06-01T10:00:00.123456Z"), True),
    ("ts lower case", call(ts="2026-06-01t10:00:00z"), True),
    ("ts epoch ms", call(ts=T0), True),
    ("ts zero", call(ts=0), True),
    ("missing event_id", call(event_id=None), False),
    ("empty event_id", call(event_id=""), False),
    ("long event_id", call(event_id="e" * 257), False),
    ("numeric event_id", call(event_id=5), False),
    ("missing type", call(type=None), False),
    ("unknown type", call(type="call.parked"), False),
    ("missing ts", call(ts=None), False),
    ("naive ts", call(ts="2026-06-01T10:00:00"), False),
    ("garbage ts", call(ts="soon"), False),
    ("basic-format ts", call(ts="20260601T100000Z"), False),
    ("ts without seconds", call(ts="2026-06-01T10:00Z"), False),
    ("bool ts", call(ts=True), False),
    ("fractional float ts", call(ts=1780308000000.5), False),
    ("negative ts", call(ts=-1), False),
    ("ts after 2099", call(ts=4102444800000), False),
    ("missing call_id", call(call_id=None), False),
    ("missing queue", call(type="call.answered", queue=None), False),
    ("empty queue", call(queue=""), False),
    ("long queue", call(queue="q" * 129), False),
    ("newline in queue", call(queue="q\n1"), False),
    ("NUL in queue", call(queue="q\x00"), False),
    ("DEL in queue", call(queue="q\x7f"), False),
    ("C1 control in queue", call(queue="q\x85"), False),
    ("control in to_queue", call(type="call.dequeued", to_queue="q\t2"), False),
    ("control in agent queues", agent(queues=["q1", "q\x1b"]), False),
    ("mode missing", call(type="callback.requested"), False),
    ("mode unknown", call(type="callback.requested", mode="later"), False),
    ("reason unknown", call(type="call.dequeued", reason="lunch"), False),
    ("agent without agent_id", agent(agent_id=None), False),
    ("agent without state", agent(state=None), False),
    ("agent state unknown", agent(state="asleep"), False),
    ("queues not a list", agent(queues="q1"), False),
    ("negative talk", call(type="call.completed", talk_seconds=-1), False),
    ("talk over a week", call(type="call.completed", talk_seconds=604801), False),
    ("talk as text", call(type="call.completed", talk_seconds="60"), False),
    ("completed with a transfer", call(type="call.completed", to_queue="q2"), True),
    ("survey nps", call(type="survey.completed", nps=9), True),
    ("survey csat", call(type="survey.completed", csat=1), True),
    ("survey both, agent and customer", call(type="survey.completed", nps=0, csat=5, agent_id="a1",
                                              customer_id="h:1"), True),
    ("survey nps as an integral float", call(type="survey.completed", nps=7.0), True),
    ("survey without a score", call(type="survey.completed"), False),
    ("survey nps 11", call(type="survey.completed", nps=11), False),
    ("survey nps -1", call(type="survey.completed", nps=-1), False),
    ("survey csat 0", call(type="survey.completed", csat=0), False),
    ("survey csat 6", call(type="survey.completed", csat=6, nps=5), False),
    ("survey nps 7.5", call(type="survey.completed", nps=7.5), False),
    ("survey nps as text", call(type="survey.completed", nps="7"), False),
    ("survey nps true", call(type="survey.completed", nps=True), False),
    ("survey without call_id", call(type="survey.completed", nps=5, call_id=None), False),
    ("survey without queue", call(type="survey.completed", csat=3, queue=None), False),
]

# Rejected by the parser though JSON Schema cannot say so: impossible calendar dates and times, times
# outside 1970..2099 written as text, a whole number written as a float, non-control unprintable names.
PARSER_ONLY_REJECTIONS: list[tuple[str, dict[str, Any]]] = [
    ("30 February", call(ts="2026-02-30T10:00:00Z")),
    ("hour 24", call(ts="2026-06-01T24:00:00Z")),
    ("before 1970", call(ts="1969-12-31T23:59:59Z")),
    ("integral float ts", call(ts=1780308000000.0)),
    ("line separator in queue", call(queue="q\u2028")),
]


def parser_accepts(data: dict[str, Any]) -> bool:
    try:
        ev.parse_event(data)
    except ev.InvalidEvent:
        return False
    return True


def test_the_schema_file_is_valid_json_of_a_draft_2020_12_schema():
    schema = json.loads(SCHEMA_TEXT)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) == {"event_id", "type", "ts"}
    assert set(schema["properties"]["type"]["enum"]) == ev.EVENT_TYPES
    assert set(schema["properties"]["reason"]["enum"]) == ev.DEQUEUE_REASONS
    assert set(schema["properties"]["mode"]["enum"]) == ev.CALLBACK_MODES
    assert set(schema["properties"]["state"]["enum"]) == ev.AGENT_STATES
    assert schema["properties"]["ts"]["oneOf"][1]["maximum"] == ev.MAX_TS_MS - 1


def test_the_schema_is_shipped_as_package_data():
    assert "call-event-v1" in SCHEMA_TEXT


@pytest.mark.parametrize(("name", "data", "accepted"), SHARED_EXAMPLES, ids=[n for n, _, _ in SHARED_EXAMPLES])
def test_the_parser_decides_each_shared_example_as_listed(name, data, accepted):
    assert parser_accepts(data) is accepted, name


@pytest.mark.parametrize(("name", "data", "accepted"), SHARED_EXAMPLES, ids=[n for n, _, _ in SHARED_EXAMPLES])
def test_the_schema_decides_each_shared_example_like_the_parser(name, data, accepted):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_TEXT))
    errors = list(validator.iter_errors(data))
    assert (not errors) is accepted, f"{name}: {[e.message for e in errors]}"


def test_the_schema_itself_passes_the_metaschema():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a dev dependency")
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_TEXT))


@pytest.mark.parametrize(("name", "data"), PARSER_ONLY_REJECTIONS, ids=[n for n, _ in PARSER_ONLY_REJECTIONS])
def test_the_parser_also_rejects_what_the_schema_cannot_express(name, data):
    assert not parser_accepts(data), name
