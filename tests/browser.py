"""Debian's headless Chromium, driven by Playwright, for the tests that look at pages as a person would.

Playwright's Python package brings its own driver but no browser here: it launches the system
Chromium (`executable_path`), so nothing is downloaded. One page stays open while a test changes what
the server answers; the test waits for a condition in the page instead of guessing a delay, and reads
the exact API answers the page received, its script errors and its dialogs.

By hand: `python -m tests.browser http://127.0.0.1:6066/ wallboard.png [--size 1600x900]` writes a
screenshot of a running wallboard once its first answer is drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Dialog, Error, Response, async_playwright
from playwright.async_api import Page as PlaywrightPage

CHROMIUM_ENV = "STREAMER_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DEFAULT_WINDOW = (1920, 1080)
NAVIGATION_TIMEOUT_MS = 30_000
# Quiet and offline (no update checks, sync or first-run pages); --no-sandbox because tests run as
# root in containers, where Chromium refuses to start sandboxed.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
# The wallboard's <body data-state> leaves "loading" once its first API answer (or failure) is shown.
WALLBOARD_SETTLED = "document.body.dataset.state !== 'loading'"


class BrowserError(RuntimeError):
    """Chromium could not be started, or the page did not do what was waited for."""


def find_chromium() -> str | None:
    """The Chromium executable: $STREAMER_CHROMIUM if set, else the first known name on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@dataclass(frozen=True)
class NetworkResponse:
    """One HTTP answer the page received, with its body as text."""

    url: str
    status: int
    body: str


class Page:
    """One tab: Playwright's page, with the HTTP answers it received, script errors and dialogs kept."""

    def __init__(self, page: PlaywrightPage) -> None:
        self.page = page
        self.responses: list[NetworkResponse] = []
        self.script_errors: list[str] = []
        self.dialogs: list[str] = []
        self._background: set[asyncio.Future[None]] = set()
        page.on("response", self._on_response)
        page.on("pageerror", lambda error: self.script_errors.append(f"{error.name}: {error.message}\n{error.stack}"))
        page.on("dialog", self._on_dialog)

    def _in_background(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_response(self, response: Response) -> None:
        self._in_background(self._keep_body(response))

    async def _keep_body(self, response: Response) -> None:
        try:
            body = await response.text()
        except Error:
            return  # a redirect, or the page navigated away before the body was read
        self.responses.append(NetworkResponse(url=response.url, status=response.status, body=body))

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        self._in_background(dialog.accept())

    async def navigate(self, url: str) -> None:
        """Load `url` and wait for its load event, so the page's own scripts have started."""
        try:
            await self.page.goto(url, wait_until="load", timeout=NAVIGATION_TIMEOUT_MS)
        except Error as error:
            raise BrowserError(f"Chromium could not load {url}: {error.message}") from error

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        try:
            return await self.page.evaluate(expression)
        except Error as error:
            raise BrowserError(f"script failed in the page: {error.message}") from error

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Wait until `expression` is truthy in the page; its value. BrowserError after `timeout` s."""
        try:
            handle = await self.page.wait_for_function(expression, timeout=timeout * 1000, polling=100)
        except Error as error:
            value = await self.evaluate(expression)
            raise BrowserError(f"waited {timeout} s for {what}; `{expression}` was {value!r}") from error
        return await handle.json_value()

    async def set_size(self, width: int, height: int) -> None:
        await self.page.set_viewport_size({"width": width, "height": height})

    async def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path))
        return path


class Chromium:
    """A headless Chromium of its own, closed on exit of the `async with`."""

    def __init__(self, executable: str | None = None, window: tuple[int, int] = DEFAULT_WINDOW) -> None:
        found = executable or find_chromium()
        if found is None:
            raise BrowserError(
                "Chromium not found: install it (apt-get install -y chromium, or scripts/install-system-deps.sh)"
                f" or point ${CHROMIUM_ENV} at the executable"
            )
        self._executable = found
        self._window = window
        self._browser: Browser | None = None
        self._stack: Any = None

    async def __aenter__(self) -> Chromium:
        self._stack = async_playwright()
        playwright = await self._stack.__aenter__()
        try:
            self._browser = await playwright.chromium.launch(executable_path=self._executable, args=CHROMIUM_ARGS)
        except Error as error:
            await self._stack.__aexit__(None, None, None)
            raise BrowserError(f"Chromium ({self._executable}) did not start: {error.message}") from error
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        await self._stack.__aexit__(None, None, None)

    async def new_page(self, url: str | None = None, window: tuple[int, int] | None = None) -> Page:
        """A new tab at the window size; navigates to `url` if given."""
        if self._browser is None:
            raise BrowserError("Chromium is not running: use `async with Chromium() as browser`")
        width, height = window or self._window
        page = Page(await self._browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1))
        if url is not None:
            await page.navigate(url)
        return page


@asynccontextmanager
async def opened(url: str, window: tuple[int, int] = DEFAULT_WINDOW) -> AsyncIterator[Page]:
    """A page at `url` in a Chromium of its own."""
    async with Chromium(window=window) as browser:
        yield await browser.new_page(url)


async def screenshot_page(url: str, path: Path, window: tuple[int, int] = DEFAULT_WINDOW,
                          settle_expression: str = WALLBOARD_SETTLED, timeout: float = 30.0) -> Path:
    """Load `url`, wait until `settle_expression` is truthy in the page, save a PNG of the window."""
    async with opened(url, window) as page:
        await page.wait_for(settle_expression, timeout, "the page to settle")
        return await page.screenshot(path)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"a window size is WIDTHxHEIGHT, e.g. 1600x900, not {text!r}")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot a page (e.g. the wallboard) in headless Chromium.")
    parser.add_argument("url", help="page to load, e.g. http://127.0.0.1:6066/")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--size", type=_size, default=DEFAULT_WINDOW, metavar="WxH", help="window (1920x1080)")
    args = parser.parse_args(argv)
    try:
        written = asyncio.run(screenshot_page(args.url, args.png, args.size))
    except BrowserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
