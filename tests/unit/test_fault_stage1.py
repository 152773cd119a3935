"""Stage 1's crash protocol without a broker: a `CallStage` over a plain dict, crashed at any table
write of any batch, restarted from any earlier commit, any number of times, must send every fact and
dead letter of a crash-free run, and nothing else (copies aside, which stage 2 counts once).

The batch handler is played as the worker runs it: process a batch, deliver its facts and dead letters,
then write the call table's changes in their order; a batch's offsets are committed only after that.
A crash keeps the writes made before it (the changelog partition keeps them in order) and loses the
rest.
"""

from __future__ import annotations

import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.app.health import Health
from streamer.app.stage1 import CallStage
from streamer.core.config import Config, Limits, QueueSettings
from streamer.core.events import format_ts

T0 = 1780308000000  # 2026-06-01T10:00:00Z
CONFIG = Config(defaults=QueueSettings(interval_minutes=15), limits=Limits(max_call_age_seconds=900, grace_seconds=30))


class Crash(Exception):
    pass


class CrashingTable(dict):
    """A dict that raises `Crash` at its `crash_at`-th write, the write itself not made."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.crash_at: int | None = None

    def _write(self) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise Crash

    def __setitem__(self, key, value) -> None:
        self._write()
        super().__setitem__(key, value)

    def pop(self, key, default=None):
        self._write()
        return super().pop(key, default)


def event_stream(seed: int) -> list[bytes]:
    """Calls over two hours with every awkward pattern stage 1 meets: outcomes of all kinds and
    callbacks, events out of order within and beyond the grace period, an answer before its enqueue,
    re-deliveries, calls never ended (they expire), events for unknown calls and broken records."""
    rng = random.Random(seed)
    events: list[tuple[int, dict]] = []

    def add(at: int, call: str, kind: str, queue: str, **extra: object) -> None:
        events.append((at, {"event_id": f"{call}-{kind}-{at}", "type": kind, "ts": format_ts(at), "call_id": call,
                            "queue": queue, **extra}))

    for n in range(60):
        call, queue, start = f"c{n}", rng.choice(["a", "b"]), T0 + rng.randrange(0, 7_200_000)
        add(start, call, "call.enqueued", queue)
        wait = rng.randrange(1000, 400_000)
        ending = rng.choice(["answered", "abandoned", "dequeued", "keep", "scheduled", "none"])
        if ending == "answered":
            add(start + wait, call, "call.answered", queue)
            add(start + wait + 120_000, call, "call.completed", queue)
        elif ending == "abandoned":
            add(start + wait, call, "call.abandoned", queue)
        elif ending == "dequeued":
            add(start + wait, call, "call.dequeued", queue, reason="overflow")
        elif ending in ("keep", "scheduled"):
            mode = "keep_position" if ending == "keep" else "scheduled"
            add(start + wait, call, "callback.requested", queue, mode=mode)
            add(start + wait + 300_000, call, rng.choice(["callback.connected", "callback.failed"]), queue)
    events.sort(key=lambda pair: pair[0])
    lines = [orjson.dumps(event) for _, event in events]
    for _ in range(len(lines) // 6):  # within grace
        i = rng.randrange(len(lines) - 3)
        lines[i], lines[i + 2] = lines[i + 2], lines[i]
    for _ in range(5):  # far behind: late
        i = rng.randrange(len(lines) // 2)
        lines.insert(i + rng.randrange(40, 80), lines.pop(i))
    for _ in range(8):
        i = rng.randrange(len(lines))
        lines.insert(min(len(lines), i + rng.randrange(1, 30)), lines[i])
    ghost = {"event_id": "ghost", "type": "call.answered", "ts": format_ts(T0 + 1_800_000), "call_id": "ghost",
             "queue": "a"}
    lines.insert(rng.randrange(len(lines)), orjson.dumps(ghost))
    lines.insert(rng.randrange(len(lines)), b"{broken")
    return lines


def run(lines: list[bytes], batches: list[int], crashes: list[tuple[int, int]]) -> tuple[set, set]:
    """(facts sent, dead letters sent) of a run with the given batch sizes, crashing at the given
    (table write, commits kept) points in turn: the first crash comes at that write of the run, the
    next one at that write after the restart, and so on."""
    table = CrashingTable()
    stage = CallStage(CONFIG, lambda partition: list(table.items()), 1, Health())
    sent_facts: set[tuple] = set()
    sent_dead: set[tuple] = set()
    committed, completed = -1, [-1]
    pending_crashes = list(crashes)
    table.crash_at = table.writes + pending_crashes[0][0] if pending_crashes else None
    position, sizes = 0, iter(batches)
    while position < len(lines):
        size = next(sizes, 50)
        batch = [(offset, lines[offset]) for offset in range(position, min(len(lines), position + size))]
        out = stage.process(0, batch)
        sent_facts.update((queue, tuple(fact)) for queue, facts in out.facts.items() for fact in facts)
        sent_dead.update((batch[index][0], reason) for index, reason, _ in out.dead)
        try:
            for key, value in (stage.flush(0, batch[-1][0], out) or {}).items():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = value
        except Crash:
            _, keep = pending_crashes.pop(0)
            committed = completed[max(0, len(completed) - 1 - keep)]  # some completed batch, or none
            completed = [committed]
            stage = CallStage(CONFIG, lambda partition: list(table.items()), 1, Health())  # the restarted worker
            table.crash_at = table.writes + pending_crashes[0][0] if pending_crashes else None
            position = committed + 1
            continue
        completed.append(batch[-1][0])
        position = batch[-1][0] + 1
    return sent_facts, sent_dead


LINES = event_stream(seed=11)
TRUTH = run(LINES, [len(LINES)], [])


def test_the_stream_has_the_awkward_cases():
    facts, dead = TRUTH
    kinds = {fact[0] for _, fact in facts}
    assert {"entered", "answered", "abandoned", "dequeued", "expired", "callback_requested"} <= kinds
    assert {"late", "unknown_call", "invalid_json"} <= {reason for _, reason in dead}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 120), min_size=1, max_size=40),
       st.lists(st.tuples(st.integers(1, 400), st.integers(0, 5)), max_size=6))
def test_crashes_at_any_write_neither_lose_nor_change_facts(batches: list[int], crashes: list[tuple[int, int]]):
    assert run(LINES, batches, crashes) == TRUTH
