"""The wallboard page in a real headless Chromium, against the JSON API of docs/wallboard.md and API.md.

`check_wallboard(page_url, api_url)` is the reusable part: it loads the page, takes the exact API answer
the page drew (captured from the browser's own network traffic, so a live worker whose numbers move
between two requests is checked against the answer the page really received), and compares every shown
figure with the documented formatting of that answer. The test below runs it against a small aiohttp
server that serves the static files the way the worker does and a fixed answer; it then drives the
stale, unreachable and recovered states by changing what that server answers.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests import browser
from tests.browser import Chromium, Page
from tests.e2e.wallboard_layout import SCREEN_SIZES, SETTLED, layout_problems

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = PROJECT_ROOT / "streamer" / "export" / "static"
SCREENSHOT_DIR_ENV = "STREAMER_SCREENSHOT_DIR"
RENDER_TIMEOUT_SECONDS = 30.0
# One poll (3 s) plus the page's fetch timeout (5 s), with room for a slow, shared machine.
STATE_CHANGE_TIMEOUT_SECONDS = 45.0
# The demo's four queues, a few more (tiles others will add), and the many-queue rows layout.
LAYOUT_QUEUE_COUNTS = (1, 4, 6, 8, 20)

# ---- the documented formatting (docs/wallboard.md, "Formatting"), written again independently ----

DASH = "\u2014"
EPSILON = 1e-9
SL_AMBER_BAND_POINTS = 5
DEFAULT_STALE_AFTER_SECONDS = 120
SERVICE_LEVEL_FIELDS = {"sl-interval": "interval", "sl-30m": "30m", "sl-today": "today"}
RATES_WINDOW = "today"
# The customer journey's tiles: data-field -> (window, key of the window block).
JOURNEY_FIELDS = {"repeat-30m": ("30m", "repeat_contact_rate"), "nps-today": ("today", "nps_score")}
MINUS = "\u2212"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_service_level(ratio: Any) -> str:
    return str(math.floor(ratio * 100 + EPSILON)) if _is_number(ratio) else DASH


def format_percent(ratio: Any) -> str:
    return str(math.floor(ratio * 100 + 0.5)) if _is_number(ratio) else DASH


def format_whole_seconds(seconds: Any) -> str:
    return str(math.floor(seconds + 0.5)) if _is_number(seconds) else DASH


def format_score(value: Any) -> str:
    if not _is_number(value):
        return DASH
    whole = math.floor(value + 0.5)
    return f"{MINUS}{-whole}" if whole < 0 else str(whole)


def format_count(value: Any) -> str:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_whole_float = isinstance(value, float) and value.is_integer()
    return str(int(value)) if is_int or is_whole_float else DASH


def format_plain_number(value: Any) -> str:
    if not _is_number(value):
        return DASH
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_wait(seconds: Any) -> str:
    if not _is_number(seconds):
        return DASH
    total = max(0, math.floor(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_age(seconds: float) -> str:
    whole = max(0, math.floor(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def service_level_band(ratio: Any, target: Any) -> str:
    if not _is_number(ratio) or not _is_number(target):
        return "none"
    if ratio >= target - EPSILON:
        return "green"
    if ratio >= target - SL_AMBER_BAND_POINTS / 100 - EPSILON:
        return "amber"
    return "red"


def event_age(last_event_time: str | None, generated_at: str) -> float | None:
    if last_event_time is None:
        return None
    return (datetime.fromisoformat(generated_at) - datetime.fromisoformat(last_event_time)).total_seconds()


def stale_after(payload: dict[str, Any]) -> float:
    value = payload.get("stale_after_seconds")
    return value if _is_number(value) else DEFAULT_STALE_AFTER_SECONDS


def is_stale(age: float | None, limit: float) -> bool:
    return age is None or age > limit


def queue_status(queue: dict[str, Any], payload: dict[str, Any]) -> str:
    age = event_age(queue.get("last_event_time"), payload["generated_at"])
    if age is None:
        return "No events yet"
    return f"No events for {format_age(age)}" if is_stale(age, stale_after(payload)) else ""


def expected_fields(queue: dict[str, Any], payload: dict[str, Any]) -> dict[str, str]:
    """data-field → the text the page must show for this queue."""
    settings = queue.get("settings") or {}
    live = queue.get("live") or {}
    agents = live.get("agents") or {}
    windows = queue.get("windows") or {}
    rates = windows.get(RATES_WINDOW) or {}
    foresight = queue.get("foresight") or {}
    shown = {
        "name": queue["queue"],
        "queue-status": queue_status(queue, payload),
        "sl-target": format_percent(settings.get("target")),
        "threshold": format_plain_number(settings.get("threshold_seconds")),
        "waiting": format_count(live.get("calls_waiting")),
        "callbacks": format_count(live.get("callbacks_waiting")),
        "oldest": format_wait(live.get("oldest_wait_seconds")),
        "asa": format_whole_seconds(rates.get("asa_seconds")),
        "abandon": format_percent(rates.get("abandon_rate")),
        "agents-available": format_count(agents.get("available")),
        "agents-busy": format_count(agents.get("busy")),
        "ewt": format_wait(foresight.get("ewt_seconds")),
        "projected-sl": format_service_level(foresight.get("projected_service_level")),
        "agents-needed": format_count(foresight.get("agents_needed")),
        "agents-logged-in": format_count(foresight.get("agents_logged_in")),
    }
    for field, window in SERVICE_LEVEL_FIELDS.items():
        shown[field] = format_service_level((windows.get(window) or {}).get("service_level_live"))
    repeat_window, repeat_key = JOURNEY_FIELDS["repeat-30m"]
    shown["repeat-30m"] = format_percent((windows.get(repeat_window) or {}).get(repeat_key))
    nps_window, nps_key = JOURNEY_FIELDS["nps-today"]
    shown["nps-today"] = format_score((windows.get(nps_window) or {}).get(nps_key))
    return shown


def expected_windows() -> dict[str, str]:
    """data-field → the data-window attribute saying which window the figure comes from."""
    return {**SERVICE_LEVEL_FIELDS, "asa": RATES_WINDOW, "abandon": RATES_WINDOW,
            **{field: window for field, (window, _) in JOURNEY_FIELDS.items()}}


def queue_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda name: (name.lower(), name))


# ---- reading the page ----

SNAPSHOT_SCRIPT = """(() => {
  const attr = (node, name) => node.getAttribute(name);
  const banner = document.getElementById('banner');
  return {
    generatedAt: attr(document.body, 'data-generated-at'),
    state: attr(document.body, 'data-state'),
    bannerState: attr(banner, 'data-state'),
    bannerText: banner.innerText,
    bannerVisible: banner.offsetHeight > 0,
    gridFilter: getComputedStyle(document.getElementById('queues')).filter,
    images: document.getElementsByTagName('img').length,
    html: document.documentElement.outerHTML,
    tiles: [...document.querySelectorAll('section.tile')].map((n) => ({
      queue: attr(n, 'data-queue'), stale: attr(n, 'data-stale')})),
    fields: [...document.querySelectorAll('[data-field]')].map((n) => ({
      queue: attr(n, 'data-queue'), field: attr(n, 'data-field'), window: attr(n, 'data-window'),
      text: n.textContent})),
    bands: [...document.querySelectorAll('[data-sl]')].map((n) => ({
      queue: attr(n, 'data-queue'), field: attr(n, 'data-sl'), band: attr(n, 'data-band')})),
    layout: attr(document.getElementById('queues'), 'data-layout'),
    // Figures drawn outside their box (or off screen) would be clipped or overlap their neighbours.
    overflowing: [...document.querySelectorAll('.value[data-field]')].filter((n) => {
      const inner = n.getBoundingClientRect();
      const outer = n.closest('.sl, .stat, .target').getBoundingClientRect();
      return inner.left < outer.left - 1 || inner.right > outer.right + 1 || inner.top < outer.top - 1
        || inner.bottom > outer.bottom + 1 || outer.right > innerWidth + 1 || outer.bottom > innerHeight + 1;
    }).map((n) => `${attr(n, 'data-queue')} ${attr(n, 'data-field')}`),
  };
})()"""


class _TagCounter(HTMLParser):
    """Counts start tags in serialized HTML: markup the page created, as opposed to text it shows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1


def count_tags(html: str) -> dict[str, int]:
    counter = _TagCounter()
    counter.feed(html)
    counter.close()
    return counter.counts


def _answers(page: Page, api_url: str) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in page.responses if r.url == api_url and r.status == 200]


async def wait_for_drawn_answer(
    page: Page, api_url: str, timeout: float = RENDER_TIMEOUT_SECONDS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A snapshot of the page and the API answer it shows (matched on `generated_at`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await page.evaluate(SETTLED)  # the page fits its text again in the next frame
        snapshot = await page.evaluate(SNAPSHOT_SCRIPT)
        drawn = [a for a in _answers(page, api_url) if a.get("generated_at") == snapshot["generatedAt"]]
        if snapshot["generatedAt"] is not None and drawn:
            return snapshot, drawn[-1]
        if loop.time() >= deadline:
            seen = sorted({r.url for r in page.responses})
            raise AssertionError(
                f"the page drew no answer from {api_url} within {timeout} s "
                f"(page state {snapshot['state']!r}, banner {snapshot['bannerText']!r}, answers seen from {seen})"
            )
        await asyncio.sleep(0.1)


def assert_drawn_as_documented(snapshot: dict[str, Any], payload: dict[str, Any]) -> None:
    """Every figure, band, order and state on the page equals the documented rendering of `payload`."""
    worker_age = event_age(payload.get("last_event_time"), payload["generated_at"])
    expected_state = "stale" if is_stale(worker_age, stale_after(payload)) else "ok"
    assert snapshot["state"] == expected_state, snapshot["bannerText"]
    assert snapshot["bannerState"] == expected_state
    if expected_state == "stale":
        assert snapshot["bannerVisible"]
        assert snapshot["bannerText"].upper().startswith("DATA STALE"), snapshot["bannerText"]
        assert "grayscale" in snapshot["gridFilter"]
    else:
        assert not snapshot["bannerVisible"], snapshot["bannerText"]

    queues = {queue["queue"]: queue for queue in payload["queues"]}
    assert [tile["queue"] for tile in snapshot["tiles"]] == queue_order(list(queues))

    shown = {(f["queue"], f["field"]): f for f in snapshot["fields"]}
    expected = {
        (name, field): text for name, queue in queues.items() for field, text in expected_fields(queue, payload).items()
    }
    assert set(shown) == set(expected), "the page shows other figures than documented"
    mismatches = {key: (shown[key]["text"], text) for key, text in expected.items() if shown[key]["text"] != text}
    assert not mismatches, f"(queue, field): (shown, expected) {mismatches}"
    windows = expected_windows()
    for (name, field), element in shown.items():
        if field in windows:
            assert element["window"] == windows[field], (name, field)

    for band in snapshot["bands"]:
        queue = queues[band["queue"]]
        ratio = queue["windows"][SERVICE_LEVEL_FIELDS[band["field"]]].get("service_level_live")
        assert band["band"] == service_level_band(ratio, queue["settings"].get("target")), band

    for tile in snapshot["tiles"]:
        age = event_age(queues[tile["queue"]].get("last_event_time"), payload["generated_at"])
        assert tile["stale"] == str(is_stale(age, stale_after(payload))).lower(), tile


def assert_text_only(snapshot: dict[str, Any], page: Page) -> None:
    """No string from the API became markup, and no script ran that the page did not ship."""
    assert snapshot["images"] == 0, "an <img> element exists: a string from the API was parsed as HTML"
    tags = count_tags(snapshot["html"])
    assert tags.get("img", 0) == 0
    assert tags.get("script", 0) == 1, "only the page's own script may be present"
    assert not page.dialogs, f"the page opened dialogs: {page.dialogs}"
    assert not page.script_errors, f"script errors in the page: {page.script_errors}"


def assert_fits(snapshot: dict[str, Any]) -> None:
    assert not snapshot["overflowing"], f"figures outside their box: {snapshot['overflowing']}"


async def check_wallboard_on(page: Page, api_url: str) -> dict[str, Any]:
    """Check the open wallboard page against the answer it drew; that answer."""
    snapshot, payload = await wait_for_drawn_answer(page, api_url)
    assert_drawn_as_documented(snapshot, payload)
    assert_text_only(snapshot, page)
    assert_fits(snapshot)
    return payload


async def check_wallboard_async(page_url: str, api_url: str, screenshot: Path | None = None) -> None:
    async with Chromium() as chromium:
        page = await chromium.new_page(page_url)
        await check_wallboard_on(page, api_url)
        if screenshot is not None:
            await page.screenshot(screenshot)


def check_wallboard(page_url: str, api_url: str, screenshot: Path | None = None) -> None:
    """Load the wallboard at `page_url` in headless Chromium and check it against what `api_url` gave it."""
    asyncio.run(check_wallboard_async(page_url, api_url, screenshot))


def require_chromium() -> None:
    """Skip without Chromium on a developer machine; under CI its absence is a failure."""
    if browser.find_chromium() is not None:
        return
    reason = (
        "Chromium not found: apt-get install -y chromium (scripts/install-system-deps.sh installs it),"
        f" or point ${browser.CHROMIUM_ENV} at the executable"
    )
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)


def keep_screenshot(shot: Path) -> None:
    """Copy a screenshot to $STREAMER_SCREENSHOT_DIR (relative to the project root) when it is set."""
    directory = os.environ.get(SCREENSHOT_DIR_ENV)
    if directory:
        target = PROJECT_ROOT / directory
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / shot.name)


# ---- the API answers the test server gives ----

GENERATED_AT = datetime.fromisoformat("2026-06-01T10:05:03.120+00:00")
XSS_QUEUE = "<img src=x onerror=alert(1)>"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _window(start: str, end: str, **rates: float | None) -> dict[str, Any]:
    """A window block with every key of API.md; the counts are filler, the page shows only rates."""
    block: dict[str, Any] = {
        "start": start,
        "end": end,
        "entered": 40,
        "answered": 30,
        "answered_within_threshold": 24,
        "abandoned": 3,
        "abandoned_within_threshold": 1,
        "short_abandoned": 1,
        "dequeued": 0,
        "callbacks_requested": 2,
        "callbacks_connected": 1,
        "callbacks_failed": 0,
        "expired": 0,
        "service_level": None,
        "service_level_live": None,
        "asa_seconds": None,
        "abandon_rate": None,
        "average_abandon_seconds": None,
        "longest_answered_wait_seconds": None,
        "contacts_identified": 8,
        "repeat_contacts": 1,
        "nps_responses": 5,
        "repeat_contact_rate": None,
        "journey_service_level": None,
        "nps_score": None,
        "csat_rate": None,
    }
    block.update(rates)
    return block


def _queue(
    name: str,
    *,
    last_event: datetime | None,
    sl: tuple[float | None, float | None, float | None],
    live: dict[str, Any],
    asa: float | None,
    abandon: float | None,
    target: float = 0.8,
    threshold: float = 20.0,
    repeat: float | None = None,
    nps: float | None = None,
    foresight: dict[str, Any] | None = None,
) -> dict[str, Any]:
    interval, last_30m, today = sl
    windows = {
        "interval": _window("2026-06-01T11:00:00+01:00", "2026-06-01T11:15:00+01:00", service_level_live=interval),
        "5m": _window("2026-06-01T11:00:03+01:00", "2026-06-01T11:05:03+01:00"),
        "15m": _window("2026-06-01T10:50:03+01:00", "2026-06-01T11:05:03+01:00"),
        "30m": _window("2026-06-01T10:35:03+01:00", "2026-06-01T11:05:03+01:00", service_level_live=last_30m,
                       repeat_contact_rate=repeat),
        "60m": _window("2026-06-01T10:05:03+01:00", "2026-06-01T11:05:03+01:00"),
        "today": _window(
            "2026-06-01T00:00:00+01:00",
            "2026-06-01T11:05:03+01:00",
            service_level_live=today,
            asa_seconds=asa,
            abandon_rate=abandon,
            nps_score=nps,
        ),
    }
    for block in windows.values():
        if block["service_level_live"] is not None:
            block["service_level"] = block["service_level_live"]
    return {
        "queue": name,
        "settings": {
            "threshold_seconds": threshold,
            "target": target,
            "short_abandon_seconds": 5.0,
            "service_level_formula": "answered_over_offered",
            "time_zone": "Europe/London",
            "interval_minutes": 15,
        },
        "last_event_time": _iso(last_event) if last_event else None,
        "live": live,
        "windows": windows,
        "foresight": foresight if foresight is not None else {
            "ewt_seconds": 12.5, "projected_service_level": 0.7962, "chance_of_target": 0.4, "agents_needed": 9,
            "agents_logged_in": 8, "agents_serving": 8, "aht_seconds": 180.0, "arrivals_per_hour": 90.0,
            "patience_seconds": None},
    }


def live_answer() -> dict[str, Any]:
    """A worker with fresh events; one queue quiet for hours, one with no data at all, one hostile name."""

    def seconds_ago(seconds: float) -> datetime:
        return GENERATED_AT - timedelta(seconds=seconds)

    return {
        "generated_at": _iso(GENERATED_AT),
        "last_event_time": _iso(seconds_ago(2.12)),
        "watermark": _iso(seconds_ago(3.12)),
        "stale_after_seconds": 120,
        "queues": [
            _queue(
                "sales",
                last_event=seconds_ago(2.12),
                # amber (79.62 % shows 79, not 80), green, red
                sl=(0.7962, 0.85, 0.7),
                live={
                    "calls_waiting": 3,
                    "callbacks_waiting": 1,
                    "oldest_wait_seconds": 42.1,
                    "waiting_over_threshold": 2,
                    "agents": {"available": 2, "busy": 5, "wrap_up": 1, "away": 0},
                },
                asa=12.5,
                abandon=0.0449,
                repeat=0.125,
                nps=42.5,
            ),
            _queue(
                XSS_QUEUE,
                # microsecond precision, as Python's isoformat gives it
                last_event=seconds_ago(10.000123),
                # exactly on target, exactly on the amber edge, one hair below it
                sl=(0.8, 0.75, 0.7499),
                live={
                    "calls_waiting": 0,
                    "callbacks_waiting": 0,
                    "oldest_wait_seconds": 59.9,
                    "waiting_over_threshold": 1,
                    "agents": {"available": 7, "busy": 0, "wrap_up": 0, "away": 1},
                },
                asa=0.4,
                abandon=0.0,
                repeat=0.0,
                nps=-33.4,
            ),
            _queue(
                "Night line",
                last_event=seconds_ago(3 * 3600 + 5 * 60 + 7),
                sl=(None, None, None),
                live={
                    "calls_waiting": 0,
                    "callbacks_waiting": 0,
                    "oldest_wait_seconds": None,
                    "waiting_over_threshold": 0,
                    "agents": {},
                },
                asa=None,
                abandon=None,
                foresight={"ewt_seconds": None, "projected_service_level": None, "chance_of_target": None,
                           "agents_needed": 0, "agents_logged_in": 0},
            ),
            _queue(
                "billing",
                last_event=None,
                sl=(None, 0.29, 1.0),
                live={
                    "calls_waiting": 0,
                    "callbacks_waiting": 0,
                    "oldest_wait_seconds": None,
                    "waiting_over_threshold": 0,
                    "agents": {"available": 0, "busy": 0},
                },
                asa=None,
                abandon=0.125,
                target=0.9,
                threshold=7.5,
            ),
            _queue(
                "support",
                last_event=seconds_ago(1),
                sl=(0.29, 0.655, 0.9),
                live={
                    "calls_waiting": 27,
                    "callbacks_waiting": 4,
                    "oldest_wait_seconds": 3725.6,
                    "waiting_over_threshold": 25,
                    "agents": {"available": 0, "busy": 18, "wrap_up": 2, "away": 1},
                },
                asa=187.49,
                abandon=0.205,
                target=0.7,
                threshold=30.0,
                # the widest figures: a whole repeat rate, the lowest NPS
                repeat=1.0,
                nps=-100.0,
                # a long expected wait, a red projection, short of agents
                foresight={"ewt_seconds": 3725.6, "projected_service_level": 0.31, "chance_of_target": 0.0,
                           "agents_needed": 31, "agents_logged_in": 21},
            ),
        ],
    }


QUEUE_NAMES = (
    "Sales - new customers",
    "Sales - renewals",
    "Support level 1",
    "Support level 2 (technical escalations)",
    "Billing",
    "Billing disputes",
    "Collections",
    "Complaints",
    "Retention",
    "VIP customers",
    "Spanish line",
    "Welsh language line",
    "Business accounts",
    "Moving home",
    "Outages and faults",
    "Appointments",
    "Payments",
    "Web chat overflow",
    "Out of hours",
    XSS_QUEUE,
)


def answer_with_queues(count: int) -> dict[str, Any]:
    """`count` queues that take their figures in turn from the queues of `live_answer`."""
    answer = live_answer()
    templates = answer["queues"]
    queues = []
    for index, name in enumerate(QUEUE_NAMES[:count]):
        queue = copy.deepcopy(templates[index % len(templates)])
        queue["queue"] = name
        queues.append(queue)
    answer["queues"] = queues
    return answer


def groups_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """The queues of `answer` as /api/groups gives groups: named by "group", with their members."""
    groups = []
    for queue in answer["queues"]:
        entry = {"group": queue["queue"], **{k: v for k, v in queue.items() if k != "queue"}}
        entry["queues"] = ["a", "b"]
        groups.append(entry)
    return {**{k: v for k, v in answer.items() if k != "queues"}, "groups": groups}


def as_queues(answer: dict[str, Any], only: str | None = None) -> dict[str, Any]:
    """A groups answer as the page draws it: each group (or only `only`) a tile named by its group."""
    groups = [g for g in answer["groups"] if only is None or g["group"] == only]
    return {**answer, "queues": [{**g, "queue": g["group"]} for g in groups]}


def stale_answer() -> dict[str, Any]:
    """The same worker, its newest event ten minutes behind its own clock (the feed stopped)."""
    answer = copy.deepcopy(live_answer())
    answer["generated_at"] = _iso(GENERATED_AT + timedelta(seconds=600))
    return answer


# ---- a stand-in for the worker's web server, routes as docs/wallboard.md tells the worker to serve ----


@dataclass
class FakeWorker:
    answer: dict[str, Any]
    # "answer"; "http-503"; "hang" (accepts the request, never answers); "malformed" (200, not API.md)
    mode: str = "answer"

    def __post_init__(self) -> None:
        self.release = asyncio.Event()

    async def groups(self, request: web.Request) -> web.Response:
        return web.json_response(groups_answer(self.answer))

    async def queues(self, request: web.Request) -> web.Response:
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "malformed":
            return web.json_response({"queues": "sales"})
        if self.mode != "answer":
            return web.json_response({"error": "worker is rebalancing"}, status=503)
        return web.json_response(self.answer)


async def wallboard_index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "wallboard.html")


@pytest.fixture
async def fake_worker() -> AsyncIterator[tuple[FakeWorker, str]]:
    worker = FakeWorker(live_answer())
    app = web.Application()
    app.router.add_get("/", wallboard_index)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_get("/api/queues", worker.queues)
    app.router.add_get("/api/groups", worker.groups)
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield worker, f"http://{host}:{port}"
    finally:
        worker.release.set()
        await runner.cleanup()


async def wait_for_state(page: Page, state: str) -> None:
    await page.wait_for(
        f"document.body.dataset.state === {json.dumps(state)}",
        STATE_CHANGE_TIMEOUT_SECONDS,
        f"the wallboard to show the {state!r} state",
    )


async def save(page: Page, tmp_path: Path, name: str) -> None:
    keep_screenshot(await page.screenshot(tmp_path / name))


@pytest.mark.e2e
@pytest.mark.timeout(240)
async def test_wallboard_page(fake_worker: tuple[FakeWorker, str], tmp_path: Path) -> None:
    require_chromium()
    worker, base_url = fake_worker
    api_url = f"{base_url}/api/queues"

    async with Chromium() as chromium:
        page = await chromium.new_page(f"{base_url}/")

        drawn = await check_wallboard_on(page, api_url)
        assert drawn == live_answer()
        name = await page.evaluate(
            f"document.querySelector('[data-field=name][data-queue={json.dumps(XSS_QUEUE)}]').textContent"
        )
        assert name == XSS_QUEUE
        await save(page, tmp_path, "wallboard.png")

        worker.answer = stale_answer()
        await wait_for_state(page, "stale")
        assert await check_wallboard_on(page, api_url) == stale_answer()
        await save(page, tmp_path, "wallboard-stale.png")

        worker.answer = live_answer()
        await wait_for_state(page, "ok")
        shown_before = await page.evaluate("document.querySelector('[data-field=oldest]').textContent")

        failures = [
            ("http-503", "unreachable", "WORKER UNREACHABLE"),
            ("hang", "unreachable", "WORKER UNREACHABLE"),
            ("malformed", "error", "CANNOT SHOW THE WORKER'S ANSWER"),
        ]
        for failing_mode, state, title in failures:
            worker.mode = failing_mode
            await wait_for_state(page, state)
            snapshot = await page.evaluate(SNAPSHOT_SCRIPT)
            banner = snapshot["bannerText"]
            assert snapshot["bannerVisible"]
            assert banner.upper().startswith(title), banner
            assert re.search(r"last updated \d\d:\d\d:\d\d", banner, re.IGNORECASE), banner
            assert "grayscale" in snapshot["gridFilter"], "numbers must be greyed out"
            # The last numbers stay for reference, greyed, rather than vanishing.
            assert await page.evaluate("document.querySelector('[data-field=oldest]').textContent") == (shown_before)
            await save(page, tmp_path, f"wallboard-{state}-{failing_mode}.png")
            worker.mode = "answer"
            await wait_for_state(page, "ok")

        await check_wallboard_on(page, api_url)
        assert_text_only(await page.evaluate(SNAPSHOT_SCRIPT), page)


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("count", "layout"), [(1, "tiles"), (20, "rows")])
async def test_wallboard_fits_one_to_twenty_queues(
    fake_worker: tuple[FakeWorker, str], tmp_path: Path, count: int, layout: str
) -> None:
    require_chromium()
    worker, base_url = fake_worker
    worker.answer = answer_with_queues(count)
    async with Chromium() as chromium:
        page = await chromium.new_page(f"{base_url}/")
        assert await check_wallboard_on(page, f"{base_url}/api/queues") == answer_with_queues(count)
        assert (await page.evaluate(SNAPSHOT_SCRIPT))["layout"] == layout
        await save(page, tmp_path, f"wallboard-{count}-queues.png")


@pytest.mark.e2e
@pytest.mark.timeout(120)
async def test_check_wallboard_runs_on_its_own(fake_worker: tuple[FakeWorker, str], tmp_path: Path) -> None:
    """The blocking entry point other tests use (e.g. against a real worker) runs its own browser."""
    require_chromium()
    _, base_url = fake_worker
    shot = tmp_path / "wallboard-check.png"
    # In a thread, so this event loop keeps serving the page while check_wallboard runs its own loop.
    await asyncio.to_thread(check_wallboard, f"{base_url}/", f"{base_url}/api/queues", shot)
    assert shot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("size", SCREEN_SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
async def test_no_text_is_clipped_or_overlapping(fake_worker: tuple[FakeWorker, str], tmp_path: Path,
                                                 size: tuple[int, int]) -> None:
    """At each screen size, with 1 to 20 queues, every label and figure is whole and apart; also in
    the stale and unreachable states, whose banners take room from the tiles."""
    require_chromium()
    worker, base_url = fake_worker
    api_url = f"{base_url}/api/queues"
    async with Chromium(window=size) as chromium:
        page = await chromium.new_page(f"{base_url}/")
        problems = {}
        for count in LAYOUT_QUEUE_COUNTS:
            worker.answer = answer_with_queues(count)
            await page.wait_for(f"document.querySelectorAll('section.tile').length === {count}",
                                STATE_CHANGE_TIMEOUT_SECONDS, f"{count} tiles")
            snapshot, drawn = await wait_for_drawn_answer(page, api_url)
            assert_drawn_as_documented(snapshot, drawn)
            found = [f"figure outside its box: {where}" for where in snapshot["overflowing"]]
            found += await layout_problems(page)
            if found:
                problems[count] = found
                await save(page, tmp_path, f"wallboard-layout-{size[0]}x{size[1]}-{count}.png")
        worker.answer = stale_answer()
        await wait_for_state(page, "stale")
        problems["stale"] = await layout_problems(page)
        worker.mode = "http-503"
        await wait_for_state(page, "unreachable")
        problems["unreachable"] = await layout_problems(page)
        await save(page, tmp_path, f"wallboard-layout-{size[0]}x{size[1]}-unreachable.png")
    problems = {key: found for key, found in problems.items() if found}
    assert not problems, "\n".join(f"{key}: {line}" for key, found in problems.items() for line in found)


@pytest.mark.e2e
@pytest.mark.timeout(120)
@pytest.mark.parametrize("query", ["?group=sales", "?groups"])
async def test_group_view_shows_the_groups_figures(fake_worker: tuple[FakeWorker, str], query: str) -> None:
    """?group=NAME draws that group from /api/groups (and nothing else); ?groups every group."""
    require_chromium()
    _, base_url = fake_worker
    api_url = f"{base_url}/api/groups"
    async with Chromium(window=(1600, 900)) as chromium:
        page = await chromium.new_page(f"{base_url}/{query}")
        snapshot, drawn = await wait_for_drawn_answer(page, api_url)
        only = "sales" if query.startswith("?group=") else None
        expected = as_queues(drawn, only)
        names = ["sales"] if only else [g["group"] for g in drawn["groups"]]
        assert [q["queue"] for q in expected["queues"]] == names
        assert_drawn_as_documented(snapshot, expected)
        assert_text_only(snapshot, page)
        assert_fits(snapshot)
        assert not await layout_problems(page)
        brand = await page.evaluate("document.querySelector('.brand').textContent")
        assert brand == ("Group wallboard \u00b7 sales" if only else "Group wallboard")
