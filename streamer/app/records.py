"""The wire format of the internal `call-outcomes` topic and of dead-letter records.

Stage 1 sends three kinds of record to stage 2, all keyed by queue:
  fact       {"k": "f", "f": [Fact fields]}
  agent      {"k": "a", "q": queue, "a": agent id, "s": state, "ts": ms}
  progress   {"k": "w", "p": stage-1 partition, "st": its stream time (ms) or null, "idle": bool}
Progress records let stage 2 take its time as the minimum over every upstream partition (a watermark).
"""

from __future__ import annotations

from typing import Any

import orjson

from streamer.core.calls import Fact

FACT = "f"
AGENT = "a"
PROGRESS = "w"


def fact_record(fact: Fact) -> bytes:
    return orjson.dumps({"k": FACT, "f": fact.to_list()})


def agent_record(queue: str, agent_id: str, state: str, ts: int) -> bytes:
    return orjson.dumps({"k": AGENT, "q": queue, "a": agent_id, "s": state, "ts": ts})


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
