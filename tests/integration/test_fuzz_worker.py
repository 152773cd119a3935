"""Fuzzing the whole worker: 2000 hostile records (BAD_RECORDS), interleaved with a known valid stream,
through a real worker on the real broker. The worker stays up; every bad record reaches the DLQ once,
with the reason expected for it, and is counted under that reason in /metrics; no queue outside the
allow-list appears in /metrics; the closed intervals equal `streamer report` on the valid events alone.

The records are drawn from a seeded RNG, one family at a time: broken JSON, wrong types, missing
fields, unknown types, impossible times (NaN, infinity, negative, far future, far past), oversized
strings and records, deep nesting, control and format characters in queue names, a flood of new
queue names (by calls and by agents), and events for calls never seen.
"""

from __future__ import annotations

import random
import re
import time
import urllib.error
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamer.core import events as ev
from streamer.core.config import parse_config
from streamer.core.report import Report
from tests.integration.fault_support import PacedReplay, create_topics, difference, offline_report, settle
from tests.kafka_io import read_records, report_intervals
from tests.pipeline_input import contract_events, simulated_events
from tests.worker_process import WorkerProcess, unique_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BAD_RECORDS = 2000
SEED = 7_2026
ALLOWED = ("q1", "q2", "sales", "support")
CONFIG = """
[defaults]
time_zone = "Europe/London"
interval_minutes = 15

[limits]
grace_seconds = 60
idle_seconds = 3
allowed_queues = ["q1", "q2", "sales", "support"]
"""
RESULT_OF = {"queue_not_allowed": "rejected", "unknown_call": "rejected", "future_time": "rejected", "late": "late"}

Maker = Callable[[random.Random, int, str], bytes]
DROP = object()
PLACEHOLDER = "2000-01-01T00:00:00Z"
FAR_FUTURE = ["2090-01-01T00:00:00Z", "2099-12-31T23:59:59Z", 4_000_000_000_000]
FAR_PAST = ["2026-05-01T10:00:00Z", "2001-01-01T00:00:00Z", 5, 86_400_000]
BAD_TIMES = [-1, -10**15, ev.MAX_TS_MS, 2**62, "2026-06-01T10:00:00", "2026-02-30T10:00:00Z", "tomorrow",
             "2101-01-01T00:00:00Z", "0000-01-01T00:00:00Z"]
BAD_QUEUE_CHARS = ["\x00", "\n", "\x1b[31m", "\u202e", "\u2028", "\x7f", "\ufeff"]
UNKNOWN_CALL_TYPES = ["call.answered", "call.abandoned", "callback.connected", "call.completed"]


def call(rng: random.Random, n: int, now: str, **fields: Any) -> bytes:
    """A well-formed event of a call no valid event has, on an allowed queue, at `now` (the time of the
    valid event before it, so it is never late by accident), unless `fields` say otherwise."""
    event = {"event_id": f"fz-{n}", "type": "call.enqueued", "ts": now, "call_id": f"fz-call-{n}",
             "queue": rng.choice(ALLOWED)}
    event.update(fields)
    return orjson.dumps({key: value for key, value in event.items() if value is not DROP})


def agent(n: int, now: str | int, **fields: Any) -> bytes:
    event = {"event_id": f"fz-{n}", "type": "agent.state", "ts": now, "agent_id": f"fz-agent-{n}",
             "state": "available", **fields}
    return orjson.dumps({key: value for key, value in event.items() if value is not DROP})


def with_raw_ts(rng: random.Random, n: int, raw: bytes) -> bytes:
    """A call event whose ts is the given JSON text (literals orjson does not write)."""
    return call(rng, n, PLACEHOLDER).replace(PLACEHOLDER.join('""').encode(), raw)


def weird_text(rng: random.Random, length: int) -> str:
    alphabet = "abcXYZ09 -_.:/|\"'\\{}[]ÄöüßЖЖ中文字🙂📞"
    return "".join(rng.choice(alphabet) for _ in range(length))


def junk(rng: random.Random) -> bytes:
    return b"{\xff" + bytes(rng.choice(b"{}[]:,\"'abc\x00\x7f\xfe") for _ in range(rng.randrange(80)))


FAMILIES: dict[str, list[Maker]] = {
    "invalid_json": [
        lambda rng, n, now: call(rng, n, now)[: rng.randrange(1, 40)],
        lambda rng, n, now: junk(rng),
        lambda rng, n, now: with_raw_ts(rng, n, rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"nil"])),
        lambda rng, n, now: b'{"event_id": "fz-%d", "nested": ' % n + b"[" * rng.randrange(1100, 5000) + b"]",
        lambda rng, n, now: b"\xc3\x28 not utf-8 \xa0\xa1",
    ],
    "wrong_type": [
        lambda rng, n, now: orjson.dumps(rng.choice([[1, 2], 12, "call.enqueued", None, True, 1.5])),
        lambda rng, n, now: call(rng, n, now, ts=rng.choice([1.78e12, True, [now], {"ms": 1}])),
        lambda rng, n, now: call(rng, n, now, event_id=rng.choice([7, 1.5, ["x"], {"id": 1}])),
        lambda rng, n, now: call(rng, n, now, queue=rng.choice([["sales"], 5, {"q": "sales"}])),
        lambda rng, n, now: call(rng, n, now, call_id=rng.choice([5, ["c"], False])),
        lambda rng, n, now: with_raw_ts(rng, n, b"9" * rng.randrange(21, 40)),  # beyond 64 bits: read as a float
    ],
    "missing_field": [
        lambda rng, n, now: call(rng, n, now, **{rng.choice(["event_id", "type", "ts", "call_id", "queue"]): DROP}),
        lambda rng, n, now: call(rng, n, now, type="callback.requested"),  # no mode
        lambda rng, n, now: agent(n, now, agent_id=DROP),
    ],
    "unknown_type": [
        lambda rng, n, now: call(rng, n, now, type=rng.choice(["call.teleported", "CALL.ENQUEUED", "", "agent"])),
        lambda rng, n, now: call(rng, n, now, type=weird_text(rng, 12)),
    ],
    "bad_time": [
        lambda rng, n, now: call(rng, n, now, ts=rng.choice(BAD_TIMES)),
        lambda rng, n, now: call(rng, n, now, ts=weird_text(rng, 30)),
    ],
    "too_large": [
        lambda rng, n, now: call(rng, n, now, event_id="e" * rng.randrange(257, 20_000)),
        lambda rng, n, now: call(rng, n, now, queue="q" * rng.randrange(129, 5000)),
        lambda rng, n, now: call(rng, n, now, note="n" * rng.randrange(ev.MAX_RECORD_BYTES, 200_000)),
    ],
    "bad_value": [
        lambda rng, n, now: call(rng, n, now, type="callback.requested", mode=weird_text(rng, 8)),
        lambda rng, n, now: call(rng, n, now, type="call.dequeued", reason="teleport"),
        lambda rng, n, now: call(rng, n, now, type="call.completed", talk_seconds=rng.choice([-1, 1e9])),
        lambda rng, n, now: call(rng, n, now, event_id=""),
    ],
    "bad_queue": [
        lambda rng, n, now: call(rng, n, now, queue="sa" + rng.choice(BAD_QUEUE_CHARS) + "les"),
    ],
    "queue_not_allowed": [
        lambda rng, n, now: call(rng, n, now, queue=f"flood-{n}-{weird_text(rng, 6)}"),
        lambda rng, n, now: agent(n, now, queues=["sales", f"flood-agent-{n}"]),
    ],
    "unknown_call": [
        lambda rng, n, now: call(rng, n, now, type=rng.choice(UNKNOWN_CALL_TYPES)),
        lambda rng, n, now: call(rng, n, now, type="call.answered", note=weird_text(rng, rng.randrange(1, 3000))),
    ],
    "future_time": [
        lambda rng, n, now: call(rng, n, now, ts=rng.choice(FAR_FUTURE)),
        lambda rng, n, now: agent(n, FAR_FUTURE[0], queues=["sales"]),
    ],
    "late": [
        lambda rng, n, now: call(rng, n, now, ts=rng.choice(FAR_PAST)),
    ],
}


PARSER_REASONS = {"invalid_json", "wrong_type", "missing_field", "unknown_type", "bad_time", "too_large", "bad_value",
                  "bad_queue"}


def mixed_stream(valid: list[bytes], count: int, seed: int) -> tuple[list[bytes], list[tuple[bytes, str]]]:
    """The valid stream with `count` hostile records spread through it after its first tenth (by then
    every partition has a stream time, so "a month ago" is late wherever it lands), each family about
    equally often; returns the stream and every hostile record with the DLQ reason it must get."""
    rng = random.Random(seed)
    families = sorted(FAMILIES)
    head = len(valid) // 10
    slots = Counter(rng.randrange(head, len(valid)) for _ in range(count))
    stream: list[bytes] = []
    bad: list[tuple[bytes, str]] = []
    for index, line in enumerate(valid):
        stream.append(line)
        now = orjson.loads(line)["ts"]
        for _ in range(slots[index]):
            reason = families[len(bad) % len(families)]
            record = rng.choice(FAMILIES[reason])(rng, len(bad), now)
            check_family(record, reason)
            stream.append(record)
            bad.append((record, reason))
    return stream, bad


def check_family(record: bytes, reason: str) -> None:
    """A generated record is what its family says: refused by the parser for that reason, or (for the
    families decided later, by the worker) a well-formed event."""
    assert b"\n" not in record and b"\r" not in record and record.strip()
    try:
        ev.parse_event(record)
    except ev.InvalidEvent as refusal:
        assert refusal.reason == reason, (reason, refusal, record[:200])
    else:
        assert reason not in PARSER_REASONS, (reason, record[:200])


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text, its labels in any order; 0 when absent."""
    for found in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        if dict(re.findall(r'(\w+)="([^"]*)"', found.group(1))) == labels:
            return float(found.group(2))
    return 0.0


def test_the_worker_survives_hostile_input_and_counts_the_valid_stream_exactly(tmp_path: Path,
                                                                              kafka_bootstrap: str) -> None:
    config = tmp_path / "streamer.toml"
    config.write_text(CONFIG)
    env = {**unique_names("z"), "STREAMER_PARTITIONS": "4", "STREAMER_CONFIG": str(config),
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    valid = sorted(simulated_events(2.0, seed=3) + contract_events(),
                   key=lambda line: ev.parse_ts(orjson.loads(line)["ts"]))
    offline = Report(parse_config({"limits": {"allowed_queues": list(ALLOWED)}}))
    offline.add_lines(valid)
    assert offline.skipped == {}, "the valid stream must be clean for the DLQ count to mean anything"
    (tmp_path / "valid.jsonl").write_bytes(b"\n".join(valid) + b"\n")
    want = report_intervals(offline_report(tmp_path / "valid.jsonl", env))

    stream, bad = mixed_stream(valid, BAD_RECORDS, SEED)
    assert len(bad) == BAD_RECORDS
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(stream) + b"\n")
    create_topics(env)
    worker = WorkerProcess(env, tmp_path / "data", tmp_path / "worker.log").start()
    try:
        PacedReplay(mixed, env, speed=None, log_path=tmp_path / "replay.log").wait()
        got = settle(kafka_bootstrap, env["STREAMER_TOPIC_INTERVALS"], want)
        assert got == want, difference(got, want) + "\n" + worker.log_tail()

        expected = Counter((record, reason) for record, reason in bad)
        deadline = time.monotonic() + 60
        while True:
            dead = Counter((r.value, dict(r.headers)["dlq.reason"].decode())
                           for r in read_records(kafka_bootstrap, env["STREAMER_TOPIC_DLQ"]))
            if sum(dead.values()) >= BAD_RECORDS or time.monotonic() > deadline:
                break
        assert sum(dead.values()) == BAD_RECORDS
        assert dead == expected, f"unexpected DLQ entries: {list((dead - expected).items())[:5]}"

        assert worker.proc is not None and worker.proc.poll() is None, "the worker must keep running"
        text = worker.get_text("/metrics")
        assert set(re.findall(r'queue="([^"]*)"', text)) <= set(ALLOWED)
        for reason, n in Counter(reason for _, reason in bad).items():
            assert metric(text, "callcenter_events_total", result=RESULT_OF.get(reason, "invalid"), reason=reason) == n
        with pytest.raises(urllib.error.HTTPError, match="404"):
            worker.get_text("/table/")  # Faust's table-data endpoints are off unless STREAMER_WEB_TABLES=true
    finally:
        worker.stop()
