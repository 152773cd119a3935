"""The wire format of the internal `call-outcomes` topic and of dead-letter records.

Stage 1 sends two kinds of record to stage 2, keyed by queue, JSON:
  batch      {"k": "b", "f": [[Fact fields], ...], "a": [[agent id, state, ts ms], ...]}
             one per queue per stage-1 batch: facts in the order they happened, agent states
  progress   {"k": "w", "p": stage-1 partition, "st": its stream time (ms) or null, "idle": bool}
and to the customer stage, on `call-contacts` keyed by customer id, the same progress records and
  contact    {"k": "c", "c": [Fact fields]}
Batching facts per queue keeps the per-record cost of Kafka and Faust off the per-call path; progress
records let stage 2 take its time as the minimum over every upstream partition (a watermark).
"""

from __future__ import annotations

from typing import Any

import orjson

BATCH = "b"
PROGRESS = "w"
CONTACT = "c"


def batch_record(facts: list[list], agents: list[list]) -> bytes:
    return orjson.dumps({"k": BATCH, "f": facts, "a": agents})


def contact_record(fact: list) -> bytes:
    return orjson.dumps({"k": CONTACT, "c": fact})


def progress_record(partition: int, stream_time: int | None, idle: bool) -> bytes:
    return orjson.dumps({"k": PROGRESS, "p": partition, "st": stream_time, "idle": idle})


def decode(value: bytes) -> dict[str, Any]:
    return orjson.loads(value)


def dead_letter_headers(reason: str, detail: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Headers that travel with the original record to the dead-letter topic: why, and where it came from."""
    return [
        ("dlq.reason", reason.encode()),
        ("dlq.detail", detail[:500].encode("utf-8", "replace")),
        ("dlq.topic", topic.encode()),
        ("dlq.partition", str(partition).encode()),
        ("dlq.offset", str(offset).encode()),
    ]
