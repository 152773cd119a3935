"""The Kafka sink's pure parts (keys, encoding, event times, pacing) and replay's line reader."""

from __future__ import annotations

import io

import orjson
import pytest

from streamer.commands.replay import LineReader
from streamer.sources.kafka_sink import (
    DEFAULT_BOOTSTRAP,
    Pacer,
    bootstrap_servers,
    encode,
    event_time_seconds,
    record_key,
)

CALL = {"event_id": "c1-1", "type": "call.enqueued", "ts": "2026-06-01T10:00:00.500Z", "call_id": "c1", "queue": "q"}
AGENT = {"event_id": "a1-1", "type": "agent.state", "ts": 1780308000000, "agent_id": "a1", "state": "busy"}


def test_keys_are_the_call_id_or_the_agent_id_for_agent_events():
    assert record_key(CALL) == b"c1"
    assert record_key(AGENT) == b"a1"
    assert record_key({**CALL, "agent_id": "a9"}) == b"c1"
    assert record_key({"type": "call.enqueued"}) is None
    assert record_key({"type": "agent.state", "call_id": "c1"}) is None
    assert record_key({"type": "call.enqueued", "call_id": 17}) is None


def test_event_times_accept_rfc3339_and_epoch_milliseconds():
    assert event_time_seconds("2026-06-01T10:00:00.500Z") == pytest.approx(1780308000.5)
    assert event_time_seconds("2026-06-01T12:00:00.500+02:00") == pytest.approx(1780308000.5)
    assert event_time_seconds(1780308000000) == 1780308000.0
    for unusable in ("2026-06-01T10:00:00", "yesterday", True, 1.5e12, None):
        assert event_time_seconds(unusable) is None


def test_dicts_are_serialized_and_raw_lines_pass_unchanged():
    assert encode(CALL) == (b"c1", orjson.dumps(CALL), pytest.approx(1780308000.5))
    line = b'{"type": "agent.state", "agent_id": "a1", "ts": 1780308000000,   "state": "busy"}'
    assert encode(line) == (b"a1", line, 1780308000.0)
    for junk in (b'{"event_id": "junk", "type": ', b"[1, 2]", b"\xff\xfe", b"null"):
        assert encode(junk) == (None, junk, None)


def test_bootstrap_comes_from_the_flag_then_the_environment(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert bootstrap_servers() == DEFAULT_BOOTSTRAP == "127.0.0.1:9092"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9093")
    assert bootstrap_servers() == "broker:9093"
    assert bootstrap_servers("other:1") == "other:1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pacer_spaces_records_by_event_time_at_the_given_speed():
    clock = FakeClock()
    pacer = Pacer(speed=2.0, clock=clock)
    assert pacer.delay(500.0) == 0.0  # the first record sets the origin
    assert pacer.delay(510.0) == pytest.approx(5.0)  # 10 s of event time at 2x
    clock.now += 5.0
    assert pacer.delay(510.0) == 0.0
    clock.now += 1.0
    assert pacer.delay(505.0) == 0.0  # behind schedule: at once
    assert pacer.delay(None) == 0.0  # no usable time: never held
    assert pacer.delay(530.0) == pytest.approx(15.0 - 6.0)


def test_pacer_refuses_a_speed_that_is_not_positive():
    with pytest.raises(ValueError, match="speed"):
        Pacer(0)


def test_line_reader_keeps_lines_as_they_are_and_counts_the_invalid_ones():
    raw = b'{"a": 1}\r\n\n   \n{"broken": \n[1]\n{"b": 2}'
    reader = LineReader(io.BytesIO(raw))
    assert list(reader) == [b'{"a": 1}', b'{"broken": ', b"[1]", b'{"b": 2}']
    assert reader.not_json == 2


def test_the_topic_is_the_flag_else_the_workers_setting_else_call_events(monkeypatch: pytest.MonkeyPatch):
    from streamer.app.settings import SettingsError
    from streamer.sources.kafka_sink import events_topic

    monkeypatch.delenv("STREAMER_TOPIC_EVENTS", raising=False)
    assert events_topic() == "call-events"
    monkeypatch.setenv("STREAMER_TOPIC_EVENTS", "site-a.call-events")
    assert events_topic() == "site-a.call-events"
    assert events_topic("other") == "other"
    monkeypatch.setenv("STREAMER_TOPIC_EVENTS", "no spaces")
    with pytest.raises(SettingsError, match="STREAMER_TOPIC_EVENTS = 'no spaces'"):
        events_topic()


@pytest.mark.parametrize("command", [["replay", "-"], ["simulate", "--hours", "1"],
                                     ["ingest", "asterisk", "queue_log", "--kafka"]])
def test_the_producers_leave_the_topic_to_the_workers_setting_and_say_so(command: list[str],
                                                                        capsys: pytest.CaptureFixture[str]):
    from streamer.cli import build_parser

    assert build_parser().parse_args(command).topic is None  # resolved when sending
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command[:2 if command[0] == "ingest" else 1], "--help"])
    assert "$STREAMER_TOPIC_EVENTS, else" in " ".join(capsys.readouterr().out.split())
