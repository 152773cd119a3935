"""The producers send where the worker reads: `replay`, `simulate --kafka` and `ingest ... --kafka`
without `--topic` use $STREAMER_TOPIC_EVENTS (the worker's setting), and `--topic` still wins."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.kafka_io import create_topic, read_records

pytestmark = pytest.mark.integration

STREAMER = [sys.executable, "-m", "streamer.cli"]
QUEUE_LOG = ["1700000010|c1|sales|NONE|ENTERQUEUE||5550001|1", "1700000022|c1|sales|Agent/2001|CONNECT|12|b1|3"]
EVENT = b'{"event_id": "e1", "type": "call.enqueued", "ts": "2026-06-01T10:00:00Z", "call_id": "c1", "queue": "q"}'


def run(args: list[str], env_topic: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "STREAMER_TOPIC_EVENTS": env_topic}
    done = subprocess.run([*STREAMER, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def fresh_topic(bootstrap: str) -> str:
    return create_topic(bootstrap, f"env-topic-{uuid.uuid4().hex[:10]}")


def test_replay_sends_to_the_workers_topic_unless_told_otherwise(kafka_bootstrap: str, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(EVENT + b"\n")
    configured, explicit = fresh_topic(kafka_bootstrap), fresh_topic(kafka_bootstrap)

    done = run(["replay", str(events)], configured, kafka_bootstrap)
    assert f"sent 1 records to {configured}" in done.stdout
    run(["replay", str(events), "--topic", explicit], configured, kafka_bootstrap)

    assert [r.value for r in read_records(kafka_bootstrap, configured)] == [EVENT]
    assert [r.value for r in read_records(kafka_bootstrap, explicit)] == [EVENT]


def test_simulate_sends_to_the_workers_topic(kafka_bootstrap: str) -> None:
    topic = fresh_topic(kafka_bootstrap)
    done = run(["simulate", "--hours", "0.05", "--speed", "0", "--start", "2026-06-01T08:00:00Z"], topic,
               kafka_bootstrap)
    assert f"sending to topic {topic}" in done.stderr
    sent = int(done.stderr.rsplit(" events, ", 1)[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert sent > 0 and len(read_records(kafka_bootstrap, topic)) == sent


def test_ingest_sends_to_the_workers_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_text("\n".join(QUEUE_LOG) + "\n")
    topic = fresh_topic(kafka_bootstrap)
    run(["ingest", "asterisk", str(log), "--kafka"], topic, kafka_bootstrap)
    assert {r.key for r in read_records(kafka_bootstrap, topic)} == {b"c1", b"2001"}  # a call, its agent
