"""Whether the wallboard is full: every figure of every queue's tile has a value (no dash)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# What each tile shows (docs/wallboard.md): (window or "live", key); a None is drawn as a dash.
TILE_FIGURES: tuple[tuple[str, str], ...] = (
    ("interval", "service_level_live"),
    ("30m", "service_level_live"),
    ("today", "service_level_live"),
    ("today", "asa_seconds"),
    ("today", "abandon_rate"),
    ("live", "calls_waiting"),
    ("live", "callbacks_waiting"),
    ("live", "oldest_wait_seconds"),
    ("30m", "repeat_contact_rate"),
    ("today", "nps_score"),
)
AGENT_STATES_SHOWN = ("available", "busy")


def empty_figures(snapshot: Mapping[str, Any], queues: Sequence[str]) -> list[str]:
    """`queue: figure` for every figure a tile of `queues` would show as a dash in this API answer
    (a queue the answer lacks counts as one empty tile)."""
    shown = {queue["queue"]: queue for queue in snapshot.get("queues", [])}
    empty = []
    for name in queues:
        queue = shown.get(name)
        if queue is None:
            empty.append(f"{name}: no tile")
            continue
        for where, key in TILE_FIGURES:
            block = queue["live"] if where == "live" else queue["windows"][where]
            if block.get(key) is None:
                empty.append(f"{name}: {where} {key}")
        agents = queue["live"].get("agents", {})
        empty += [f"{name}: agents {state}" for state in AGENT_STATES_SHOWN if agents.get(state) is None]
    return empty
