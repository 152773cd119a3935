"""The demo's parts without a broker: clocks, the story scenario, the backfill's pacing, the full board."""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from streamer.core.config import GROUP, parse_config, rollup_key
from streamer.demo import clock
from streamer.demo.board import empty_figures
from streamer.demo.runner import demo_config
from streamer.demo.traffic import on_the_clock
from streamer.simulate.clock import MS_PER_DAY, MS_PER_HOUR, format_ts, parse_start
from streamer.simulate.model import simulate
from streamer.simulate.scenario import AgentSpec, HandleTime, QueueSpec, Scenario
from streamer.simulate.scenarios import (
    DAY_PROFILE,
    STORY_BREAK_HOURS,
    STORY_LIVE_HOUR,
    STORY_QUEUE,
    STORY_VIP_CALLS_PER_HOUR,
    demo,
    demo_story,
)

NOW_MS = parse_start("2026-06-01T23:41:07Z")
LONDON = ZoneInfo("Europe/London")


def test_the_local_zone_comes_from_tz_and_falls_back_to_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    assert clock.local_time_zone() == "America/Sao_Paulo"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert clock.local_time_zone() != "Not/AZone"  # the next source, or UTC


def test_the_backfill_starts_at_local_midnight_or_an_hour_ago() -> None:
    # 23:41 UTC is 00:41 in London (BST): midnight is 41 minutes ago, so the backfill takes an hour.
    assert clock.backfill_start(NOW_MS, LONDON) == NOW_MS - MS_PER_HOUR
    assert clock.backfill_start(NOW_MS, ZoneInfo("UTC")) == parse_start("2026-06-01T00:00:00Z")
    assert clock.backfill_start(NOW_MS, ZoneInfo("Asia/Tokyo")) == parse_start("2026-06-02T00:00:00+09:00")


def test_the_day_is_moved_so_that_now_is_the_live_hour() -> None:
    offset = clock.day_offset(NOW_MS, LONDON, real_clock=False)
    assert (NOW_MS + offset) % MS_PER_DAY // 1000 == round(STORY_LIVE_HOUR * 3600)
    assert clock.day_offset(NOW_MS, LONDON, real_clock=True) == MS_PER_HOUR  # BST


def one_queue(profile: tuple[float, ...]) -> Scenario:
    queue = QueueSpec("q", calls_per_hour=600, handle=HandleTime(30), profile=profile)
    return Scenario("t", (queue,), (AgentSpec("a", ("q",)),))


def arrivals_by_hour(offset_ms: int) -> Counter[int]:
    # Calls only in the day clock's hour 0.
    profile = (1.0,) + (0.0,) * 23
    start = parse_start("2026-06-01T00:00:00Z")
    events = simulate(one_queue(profile), seed=3, start_ms=start, hours=24, day_offset_ms=offset_ms)
    return Counter(int(e["ts"][11:13]) for e in events if e["type"] == "call.enqueued")


def test_the_day_offset_moves_the_profile() -> None:
    assert set(arrivals_by_hour(0)) == {0}
    # A day clock 3 hours ahead of UTC reaches its hour 0 at 21:00 UTC.
    assert set(arrivals_by_hour(3 * MS_PER_HOUR)) == {21}


def test_the_day_offset_moves_the_shifts() -> None:
    queue = QueueSpec("q", calls_per_hour=60, handle=HandleTime(30), profile=DAY_PROFILE)
    scenario = Scenario("t", (queue,), (AgentSpec("a", ("q",), ((9.0, 10.0),)),))
    start = parse_start("2026-06-01T00:00:00Z")
    events = simulate(scenario, seed=1, start_ms=start, hours=24, day_offset_ms=2 * MS_PER_HOUR)
    states = [e for e in events if e["type"] == "agent.state"]
    # Logged in at 09:00 on a day clock two hours ahead (straight to a waiting call), out at 10:00.
    assert states[0]["ts"] == "2026-06-01T07:00:00.000Z"
    assert [e["ts"][11:13] for e in states if e["state"] == "logged_out"] == ["08"]


def on_duty(scenario: Scenario, hour: float, queue: str) -> int:
    return sum(1 for agent in scenario.agents if agent.queues[0] == queue and agent.shifts is not None
               and any(begin <= hour < end or begin <= hour + 24 < end for begin, end in agent.shifts))


def test_the_story_takes_billing_agents_away_for_its_break_only() -> None:
    day, story = demo(), demo_story()
    story.validate()
    start, end = STORY_BREAK_HOURS
    during, before = (start + end) / 2, start - 0.05
    assert on_duty(story, during, STORY_QUEUE) <= 0.65 * on_duty(day, during, STORY_QUEUE)
    assert on_duty(story, before, STORY_QUEUE) == on_duty(day, before, STORY_QUEUE)
    for queue in ("sales", "support"):
        assert on_duty(story, during, queue) == on_duty(day, during, queue)
    vip = next(q for q in story.queues if q.name == "vip")
    assert vip.calls_per_hour == STORY_VIP_CALLS_PER_HOUR
    assert STORY_BREAK_HOURS[0] < STORY_LIVE_HOUR < STORY_BREAK_HOURS[1]


def event(kind: str, ms: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"{kind}-{ms}", "type": kind, "ts": format_ts(ms), **fields}


async def collect(events: list[dict[str, Any]], live_from_ms: int) -> list[tuple[dict[str, Any], float]]:
    began = time.monotonic()
    return [(sent, time.monotonic() - began) async for sent in on_the_clock(iter(events), live_from_ms)]


def test_the_backfill_goes_at_once_with_each_agents_last_state_and_live_events_wait_for_their_time() -> None:
    now = round(time.time() * 1000)
    past = now - 3 * MS_PER_HOUR
    events = [
        event("agent.state", past, agent_id="a1", state="available", queues=["q"]),
        event("call.enqueued", past + 1000, call_id="c1", queue="q"),
        event("agent.state", past + 2000, agent_id="a1", state="busy", queues=["q"]),
        event("agent.state", past + 2500, agent_id="a2", state="available", queues=["q"]),
        event("call.answered", past + 3000, call_id="c1", queue="q", agent_id="a1"),
        event("call.enqueued", now + 700, call_id="c2", queue="q"),
    ]
    sent = asyncio.run(collect(events, now))
    order = [(e["type"], e.get("state")) for e, _ in sent]
    assert order == [("call.enqueued", None), ("call.answered", None), ("agent.state", "busy"),
                     ("agent.state", "available"), ("call.enqueued", None)]
    assert [e["agent_id"] for e, _ in sent if e["type"] == "agent.state"] == ["a1", "a2"]
    assert all(at < 0.5 for _, at in sent[:-1])
    assert sent[-1][1] >= 0.5  # the live event waited for the wall clock to reach its time


def snapshot(**overrides: Any) -> dict[str, Any]:
    window = {"service_level_live": 0.9, "asa_seconds": 12.0, "abandon_rate": 0.01, "repeat_contact_rate": 0.05,
              "nps_score": 20.0}
    queue = {"queue": "sales", "windows": {"interval": dict(window), "30m": dict(window), "today": dict(window)},
             "live": {"calls_waiting": 0, "callbacks_waiting": 0, "oldest_wait_seconds": 0.0,
                      "agents": {"available": 1, "busy": 2, "wrap_up": 0, "away": 0}}}
    for path, value in overrides.items():
        where, key = path.split("__")
        (queue["live"] if where == "live" else queue["windows"][where])[key] = value
    return {"queues": [queue]}


def test_a_board_is_full_when_no_tile_figure_is_missing() -> None:
    assert empty_figures(snapshot(), ["sales"]) == []
    assert empty_figures(snapshot(interval__service_level_live=None), ["sales"]) == [
        "sales: interval service_level_live"]
    assert empty_figures(snapshot(today__asa_seconds=None), ["sales"]) == ["sales: today asa_seconds"]
    assert empty_figures(snapshot(), ["sales", "vip"]) == ["vip: no tile"]
    # The customer journey's tiles: repeat calls over 30 minutes, NPS today.
    assert empty_figures(snapshot(**{"30m__repeat_contact_rate": None}), ["sales"]) == [
        "sales: 30m repeat_contact_rate"]
    assert empty_figures(snapshot(today__nps_score=None), ["sales"]) == ["sales: today nps_score"]


def test_the_demo_config_is_the_packaged_one_in_the_centres_zone() -> None:
    text = demo_config("America/New_York")
    config = parse_config(tomllib.loads(text))
    assert config.for_queue("billing").time_zone == "America/New_York"
    assert config.for_queue("vip").threshold_seconds == 15
    # A group of two demo queues, so the wallboard's group view (?group=front) has figures.
    assert config.groups["front"].queues == {"sales", "vip"}
    assert config.for_queue(rollup_key(GROUP, "front")).time_zone == "America/New_York"
