"""Event files for pipeline tests: simulated traffic with callbacks and overflow, DESIGN.md's worked
example, duplicates and noise, in one time-ordered JSONL file."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson

CONTRACT_EXAMPLE = [
    ("c1", "q1", "call.enqueued", "2026-06-01T10:00:00Z", {}),
    ("c1", "q1", "call.answered", "2026-06-01T10:00:15Z", {"agent_id": "a1"}),
    ("c2", "q1", "call.enqueued", "2026-06-01T10:00:05Z", {}),
    ("c2", "q1", "call.abandoned", "2026-06-01T10:00:08Z", {}),
    ("c3", "q1", "call.enqueued", "2026-06-01T10:01:00Z", {}),
    ("c3", "q1", "callback.requested", "2026-06-01T10:01:30Z", {"mode": "keep_position"}),
    ("c4", "q1", "call.enqueued", "2026-06-01T10:02:00Z", {}),
    ("c4", "q1", "callback.requested", "2026-06-01T10:02:40Z", {"mode": "scheduled"}),
    ("c5", "q1", "call.enqueued", "2026-06-01T10:03:00Z", {}),
    ("c5", "q1", "call.abandoned", "2026-06-01T10:03:20Z", {}),
    ("c6", "q1", "call.enqueued", "2026-06-01T10:04:00Z", {}),
    ("c6", "q1", "call.dequeued", "2026-06-01T10:04:30Z", {"reason": "overflow", "to_queue": "q2"}),
    ("c6", "q2", "call.enqueued", "2026-06-01T10:04:30Z", {}),
    ("c3", "q1", "callback.connected", "2026-06-01T10:05:00Z", {"agent_id": "a2"}),
    ("c6", "q2", "call.answered", "2026-06-01T10:04:40Z", {}),
    ("c7", "q1", "call.enqueued", "2026-06-01T10:05:00Z", {}),
    ("c7", "q1", "callback.requested", "2026-06-01T10:05:10Z", {"mode": "keep_position"}),
    ("c7", "q1", "callback.failed", "2026-06-01T10:20:00Z", {}),
]

NOISE = [
    b'{"event_id": "junk", "type": ',
    b"not json at all",
    b'{"event_id": "n1", "type": "call.teleported", "ts": "2026-06-01T09:00:00Z", "call_id": "x", "queue": "q1"}',
    b'{"event_id": "n2", "type": "call.answered", "ts": "2026-06-01T09:00:00Z", "call_id": "never-seen",'
    b' "queue": "q1"}',
    b'{"event_id": "n3", "type": "call.enqueued", "call_id": "no-ts", "queue": "q1"}',
    b'{"event_id": "n4", "type": "call.enqueued", "ts": true, "call_id": "bad-ts", "queue": "q1"}',
    b"[1, 2, 3]",
]


def simulated_events(hours: float, seed: int) -> list[bytes]:
    args = [sys.executable, "-m", "streamer.cli", "simulate", "--hours", str(hours), "--seed", str(seed),
            "--queues", "sales,support", "--calls-per-hour", "150", "--aht", "240", "--agents", "9",
            "--patience", "120", "--callback-after", "60", "--callback-accept", "0.6",
            "--callback-scheduled", "0.3", "--callback-reach", "0.7", "--overflow", "sales:support:90",
            "--start", "2026-06-01T08:00:00Z", "--out", "-"]
    out = subprocess.run(args, check=True, capture_output=True, timeout=120).stdout
    return [line for line in out.splitlines() if line.strip()]


def contract_events() -> list[bytes]:
    return [orjson.dumps({"event_id": f"{c}-{i}", "type": t, "call_id": c, "queue": q, "ts": ts, **extra})
            for i, (c, q, t, ts, extra) in enumerate(CONTRACT_EXAMPLE)]


def build_event_file(path: Path, hours: float = 2.0, seed: int = 7) -> Path:
    """Time-ordered valid events, then duplicates and noise sprinkled through; returns `path`."""
    lines = simulated_events(hours, seed) + contract_events()
    lines.sort(key=lambda line: orjson.loads(line)["ts"])
    rng = random.Random(seed)
    for _ in range(25):  # re-deliveries shortly after the original
        i = rng.randrange(len(lines) - 1)
        lines.insert(i + 1 + rng.randrange(3), lines[i])
    for noise in NOISE:
        lines.insert(rng.randrange(len(lines)), noise)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
