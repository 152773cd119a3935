"""Knowing when the pipeline has caught up with records a producer sent (`streamer replay --wait`).

Caught up means, for the records sent (the last offset of each partition they went to):
  1. stage 1 has processed every one of them (its tables hold them, their facts are sent);
  2. the customer stage has processed `call-contacts` up to the end it had when 1 held;
  3. stage 2 has applied every record on `call-outcomes` up to the end it had when 2 held;
  4. no owned queue has an interval whose newest counts are not on `queue-intervals` yet.
The workers say how far they are in `/api/queues` ("progress", and each queue's
"intervals_pending"); every worker of the group must be given, since each one reports only the
partitions and queues it owns. Intervals close on the watermark, or after the idle period of a quiet
queue (`limits.idle_seconds`), so the last intervals of a stream appear about that long after its
last event was processed.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

POLL_SECONDS = 0.5


class NotCaughtUp(RuntimeError):
    """The pipeline did not catch up in time, or cannot (a worker reads another topic); says which step."""


@dataclass
class CatchUp:
    seconds: float  # from the start of the wait to the moment all three steps held
    intervals_topic: str
    outcomes_topic: str
    workers: list[dict[str, Any]] = field(default_factory=list)  # the last /api/queues of each worker


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/api/queues", timeout=5) as response:
            return orjson.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _merge(docs: list[dict[str, Any]], stage: str) -> dict[int, int]:
    merged: dict[int, int] = {}
    for doc in docs:
        for entry in doc.get("progress", {}).get(stage, []):
            if entry.get("offset") is not None:
                merged[entry["partition"]] = max(merged.get(entry["partition"], -1), entry["offset"])
    return merged


async def _end_offsets(bootstrap: str, topic: str, security: dict[str, Any]) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer

    # Subscribed without a group: aiokafka then assigns itself every partition of the topic.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                **security)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def _customers_behind(answered: list[dict[str, Any]], topics: dict[str, str], bootstrap: str,
                            security: dict[str, Any], targets: dict[int, int]) -> dict[int, tuple[int, int | None]]:
    """The customer stage's partitions not yet through what stage 1 had sent them when it was done."""
    if not targets:
        ends = await _end_offsets(bootstrap, topics["contacts"], security)
        targets.update({p: end - 1 for p, end in ends.items() if end > 0})
    done = _merge(answered, "customers")
    return {p: (last, done.get(p)) for p, last in targets.items() if done.get(p, -1) < last}


async def wait_caught_up(workers: list[str], events_topic: str, last_offsets: dict[int, int], bootstrap: str,
                         timeout: float, security: dict[str, Any] | None = None,
                         say: Callable[[str], None] = lambda line: None) -> CatchUp:
    """Poll the workers until the three steps above hold; raises NotCaughtUp when `timeout` runs out."""
    started = time.monotonic()
    deadline = started + timeout
    security = security or {}
    outcome_targets: dict[int, int] | None = None
    contact_targets: dict[int, int] = {}  # filled once stage 1 is done: call-contacts' end then
    step = "waiting for the workers to answer"
    while True:
        docs = await asyncio.gather(*(asyncio.to_thread(_get, url) for url in workers))
        answered = [doc for doc in docs if doc is not None]
        silent = [url for url, doc in zip(workers, docs, strict=True) if doc is None]
        for url, doc in zip(workers, docs, strict=True):
            topic = doc.get("progress", {}).get("topics", {}).get("events") if doc else None
            if topic is not None and topic != events_topic:
                raise NotCaughtUp(f"the worker at {url} reads {topic!r}, not {events_topic!r}: give --topic, or "
                                  "set STREAMER_TOPIC_EVENTS as the worker has it")
        if answered and not silent:
            topics = answered[0]["progress"]["topics"]
            stage1 = _merge(answered, "stage1")
            behind = {p: last for p, last in last_offsets.items() if stage1.get(p, -1) < last}
            if behind:
                step = ("stage 1 has not processed " + ", ".join(
                    f"partition {p} up to offset {last} (at {stage1.get(p)})" for p, last in sorted(behind.items())))
            elif "contacts" in topics and (behind := await _customers_behind(answered, topics, bootstrap, security,
                                                                              contact_targets)):
                step = ("the customer stage has not processed " + ", ".join(
                    f"{topics['contacts']} partition {p} up to offset {last} (at {at})"
                    for p, (last, at) in sorted(behind.items())))
            else:
                if outcome_targets is None:
                    ends = await _end_offsets(bootstrap, topics["outcomes"], security)
                    outcome_targets = {p: end - 1 for p, end in ends.items() if end > 0}
                stage2 = _merge(answered, "stage2")
                behind = {p: last for p, last in outcome_targets.items() if stage2.get(p, -1) < last}
                pending = {q["queue"]: q["intervals_pending"] for doc in answered for q in doc["queues"]
                           if q.get("intervals_pending")}
                for doc in answered:  # groups' and tenants' intervals too, by partition
                    for entry in doc.get("progress", {}).get("stage2", []):
                        if entry.get("intervals_pending") and not pending:
                            pending[f"(queues, groups or tenants of {topics['outcomes']} partition "
                                    f"{entry['partition']})"] = entry["intervals_pending"]
                if behind:
                    step = ("stage 2 has not applied " + ", ".join(
                        f"{topics['outcomes']} partition {p} up to offset {last} (at {stage2.get(p)})"
                        for p, last in sorted(behind.items())))
                elif pending:
                    step = "intervals not yet on the topic: " + ", ".join(
                        f"{q} {n}" for q, n in sorted(pending.items()))
                else:
                    return CatchUp(time.monotonic() - started, topics["intervals"], topics["outcomes"], answered)
        elif silent:
            step = "no answer from " + ", ".join(silent)
        if time.monotonic() > deadline:
            raise NotCaughtUp(f"not caught up after {timeout:.0f} s: {step}")
        await asyncio.sleep(POLL_SECONDS)


async def read_latest(bootstrap: str, topic: str, security: dict[str, Any] | None = None) -> dict[str, Any]:
    """key -> the newest value (JSON) of every key on a compacted topic, read up to its end now."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", **(security or {}))
    await consumer.start()
    latest: dict[str, Any] = {}
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        latest[record.key.decode()] = orjson.loads(record.value)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return latest
    finally:
        await consumer.stop()
