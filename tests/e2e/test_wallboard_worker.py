"""The built-in wallboard as a supervisor sees it, served by a real `streamer worker` that was fed real
events through the real broker (tests/e2e/live_traffic.py), in headless Chromium.

The worker serves the page, its script and style sheet itself; every figure on the page equals the
documented rendering of the API answer the page drew (`check_wallboard` of test_wallboard_page.py),
and a queue named like an HTML tag shows as text. The screenshot goes to pytest's temporary directory
and to `$STREAMER_SCREENSHOT_DIR` when set. Without Chromium the test skips locally and fails under CI.
"""

from __future__ import annotations

import urllib.request
from datetime import datetime
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e.live_traffic import fed_worker
from tests.e2e.test_wallboard_page import check_wallboard, keep_screenshot, require_chromium

# A valid queue name (printable, at most 128 characters) that a careless page would turn into markup.
XSS_QUEUE = "<img src=x onerror=alert(1)>"
STATIC = resources.files("streamer.export") / "static"
SERVED_FILES = {
    "": ("wallboard.html", "text/html"),
    "static/wallboard.js": ("wallboard.js", "application/javascript"),
    "static/wallboard.css": ("wallboard.css", "text/css"),
}


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get_content_type(), response.read()


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_wallboard_of_a_real_worker_shows_its_api_numbers(tmp_path: Path, kafka_bootstrap: str) -> None:
    require_chromium()
    with fed_worker(tmp_path / "worker", kafka_bootstrap, extra_queues=[XSS_QUEUE]) as (worker, traffic):
        for path, (name, content_type) in SERVED_FILES.items():
            status, served_type, body = fetch(f"{worker.url}/{path}")
            assert (status, served_type) == (200, content_type), path
            # For "/" this also rules out Faust's own index page ({"status": "OK"}).
            assert body == (STATIC / name).read_bytes(), f"/{path} is not the packaged {name}"

        answer = worker.get_json("/api/queues")
        assert sorted(queue["queue"] for queue in answer["queues"]) == sorted(traffic.queues)
        age = datetime.fromisoformat(answer["generated_at"]) - datetime.fromisoformat(answer["last_event_time"])
        assert age.total_seconds() < answer["stale_after_seconds"], "the fed worker must look live, not stale"

        shot = tmp_path / "wallboard-real-worker.png"
        check_wallboard(f"{worker.url}/", f"{worker.url}/api/queues", screenshot=shot)
        assert shot.read_bytes().startswith(b"\x89PNG")
        keep_screenshot(shot)
