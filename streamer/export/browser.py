"""Drive Debian's headless Chromium over the DevTools protocol.

Used by the end-to-end tests to look at the wallboard as a person would, and by hand to screenshot a
running wallboard (``python -m streamer.export.browser URL FILE.png``).

The DevTools protocol is used rather than ``chromium --dump-dom --virtual-time-budget=…`` because the
wallboard lives on repeated fetches: virtual time fast-forwards timers but not a real server's answers,
so a one-shot dump may show the page before or between fetches, and it cannot show what happens when
the worker stops answering while the page is open. Over the protocol one page stays open, the caller
waits for a condition in the page instead of guessing a delay, reads the DOM and the exact API answers
the page received, and sees any script error or dialog the page raised.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

CHROMIUM_ENV = "STREAMER_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DEFAULT_WINDOW = (1920, 1080)
COMMAND_TIMEOUT_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 60.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0

# Offline and quiet: no update checks, sync, QUIC probes or first-run pages; --no-sandbox because
# tests run as root in containers, where Chromium refuses to start sandboxed.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--hide-scrollbars",
    "--mute-audio",
    "--force-device-scale-factor=1",
    "--remote-debugging-address=127.0.0.1",
    # Port 0: Chromium picks a free port and writes it to DevToolsActivePort, so parallel runs never clash.
    "--remote-debugging-port=0",
)

EventHandler = Callable[[dict[str, Any]], None]


class BrowserError(RuntimeError):
    """Chromium could not be started, or the page did not do what was waited for."""


def find_chromium() -> str | None:
    """The Chromium executable: $STREAMER_CHROMIUM if set, else the first known name on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class NetworkResponse:
    """One HTTP answer the page received, with its body as text."""

    url: str
    status: int
    body: str


class _Connection:
    """One DevTools websocket: commands matched to replies by id, events fanned out to handlers."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self._websocket = websocket
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[tuple[str | None, str], list[EventHandler]] = {}
        self._reader = asyncio.create_task(self._read())

    def on(self, session_id: str | None, method: str, handler: EventHandler) -> None:
        self._handlers.setdefault((session_id, method), []).append(handler)

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = reply
        try:
            await self._websocket.send_str(json.dumps(message))
            return await asyncio.wait_for(reply, COMMAND_TIMEOUT_SECONDS)
        except TimeoutError as error:
            raise BrowserError(f"Chromium did not answer {method} within {COMMAND_TIMEOUT_SECONDS} s") from error
        finally:
            self._pending.pop(message_id, None)

    async def _read(self) -> None:
        try:
            async for frame in self._websocket:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                if "id" in message:
                    self._resolve(message)
                else:
                    for handler in self._handlers.get((message.get("sessionId"), message["method"]), []):
                        handler(message.get("params", {}))
        finally:
            for reply in self._pending.values():
                if not reply.done():
                    reply.set_exception(BrowserError("the DevTools connection to Chromium closed"))

    def _resolve(self, message: dict[str, Any]) -> None:
        reply = self._pending.get(message["id"])
        if reply is None or reply.done():
            return
        if "error" in message:
            reply.set_exception(BrowserError(f"DevTools error: {message['error']}"))
        else:
            reply.set_result(message.get("result", {}))

    async def close(self) -> None:
        await self._websocket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Page:
    """One browser tab. Records the HTTP answers it receives, script errors and dialogs."""

    def __init__(self, connection: _Connection, session_id: str) -> None:
        self._connection = connection
        self._session_id = session_id
        self._requests: dict[str, tuple[str, int]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.responses: list[NetworkResponse] = []
        self.script_errors: list[str] = []
        self.dialogs: list[str] = []
        self._loaded = asyncio.Event()
        connection.on(session_id, "Page.loadEventFired", lambda _params: self._loaded.set())
        connection.on(session_id, "Network.responseReceived", self._on_response)
        connection.on(session_id, "Network.loadingFinished", self._on_loading_finished)
        connection.on(session_id, "Runtime.exceptionThrown", self._on_exception)
        connection.on(session_id, "Page.javascriptDialogOpening", self._on_dialog)

    async def _send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._connection.send(method, params, self._session_id)

    async def _enable(self, width: int, height: int) -> None:
        for domain in ("Page.enable", "Runtime.enable", "Network.enable"):
            await self._send(domain)
        await self._send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _in_background(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_response(self, params: dict[str, Any]) -> None:
        response = params["response"]
        self._requests[params["requestId"]] = (response["url"], int(response["status"]))

    def _on_loading_finished(self, params: dict[str, Any]) -> None:
        request = self._requests.pop(params["requestId"], None)
        if request is not None:
            self._in_background(self._keep_body(params["requestId"], *request))

    async def _keep_body(self, request_id: str, url: str, status: int) -> None:
        try:
            reply = await self._send("Network.getResponseBody", {"requestId": request_id})
        except BrowserError:
            return  # the body was evicted or the page navigated away; nothing to keep
        body = reply["body"]
        if reply.get("base64Encoded"):
            body = base64.b64decode(body).decode("utf-8", errors="replace")
        self.responses.append(NetworkResponse(url=url, status=status, body=body))

    def _on_exception(self, params: dict[str, Any]) -> None:
        details = params["exceptionDetails"]
        description = details.get("exception", {}).get("description") or details.get("text", "")
        self.script_errors.append(f"{description} at {details.get('url', '?')}:{details.get('lineNumber')}")

    def _on_dialog(self, params: dict[str, Any]) -> None:
        self.dialogs.append(f"{params.get('type')}: {params.get('message')}")
        self._in_background(self._send("Page.handleJavaScriptDialog", {"accept": True}))

    async def navigate(self, url: str) -> None:
        """Load `url` and wait for its load event, so the page's own scripts have started."""
        self._loaded.clear()
        reply = await self._send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise BrowserError(f"Chromium could not load {url}: {reply['errorText']}")
        try:
            await asyncio.wait_for(self._loaded.wait(), COMMAND_TIMEOUT_SECONDS)
        except TimeoutError as error:
            raise BrowserError(f"{url} did not finish loading within {COMMAND_TIMEOUT_SECONDS} s") from error

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises are awaited)."""
        reply = await self._send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed in the page: {text}")
        return reply["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Evaluate `expression` until it is truthy; its value. Raises BrowserError after `timeout` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() >= deadline:
                raise BrowserError(f"waited {timeout} s for {what}; `{expression}` was {value!r}")
            await asyncio.sleep(0.1)

    async def dom(self) -> str:
        """The document as it is now, after scripts ran."""
        return str(await self.evaluate("document.documentElement.outerHTML"))

    async def screenshot(self, path: Path) -> Path:
        reply = await self._send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(reply["data"]))
        return path


class Chromium:
    """A headless Chromium process with its own throw-away profile, closed on exit of the `async with`."""

    def __init__(self, executable: str | None = None, window: tuple[int, int] = DEFAULT_WINDOW) -> None:
        found = executable or find_chromium()
        if found is None:
            raise BrowserError(
                "Chromium not found: install it (apt-get install -y chromium, or scripts/install-system-deps.sh)"
                f" or point ${CHROMIUM_ENV} at the executable"
            )
        self._executable = found
        self._window = window
        self._profile: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._connection: _Connection | None = None

    async def __aenter__(self) -> Chromium:
        self._profile = Path(tempfile.mkdtemp(prefix="streamer-chromium-"))
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        assert self._profile is not None
        width, height = self._window
        log = (self._profile / "chromium.log").open("wb")
        with log:
            self._process = await asyncio.create_subprocess_exec(
                self._executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own process group, so renderer and helper processes are ended with it.
                start_new_session=True,
            )
        websocket_url = await self._devtools_url()
        self._http = aiohttp.ClientSession()
        websocket = await self._http.ws_connect(websocket_url, max_msg_size=0)
        self._connection = _Connection(websocket)

    async def _devtools_url(self) -> str:
        assert self._profile is not None and self._process is not None
        port_file = self._profile / "DevToolsActivePort"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
        while loop.time() < deadline:
            if self._process.returncode is not None:
                raise BrowserError(
                    f"Chromium exited with status {self._process.returncode} at start-up:\n{self._log_tail()}"
                )
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)
        raise BrowserError(f"Chromium gave no DevTools port within {STARTUP_TIMEOUT_SECONDS} s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        assert self._profile is not None
        log = self._profile / "chromium.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no output)"

    async def new_page(self, url: str | None = None) -> Page:
        """A new tab at the window size; navigates to `url` if given."""
        if self._connection is None:
            raise BrowserError("Chromium is not running: use `async with Chromium() as browser`")
        target = await self._connection.send("Target.createTarget", {"url": "about:blank"})
        attached = await self._connection.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self._connection, attached["sessionId"])
        await page._enable(*self._window)
        if url is not None:
            await page.navigate(url)
        return page

    async def _stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(BrowserError, aiohttp.ClientError, ConnectionError):
                await asyncio.wait_for(self._connection.send("Browser.close"), SHUTDOWN_TIMEOUT_SECONDS)
            await self._connection.close()
            self._connection = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), SHUTDOWN_TIMEOUT_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()
            self._process = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None


async def screenshot_page(url: str, path: Path, settle_expression: str = "true", timeout: float = 30.0) -> Path:
    """Load `url`, wait until `settle_expression` is truthy in the page, save a PNG of the window."""
    async with Chromium() as browser:
        page = await browser.new_page(url)
        await page.wait_for(settle_expression, timeout, "the page to settle")
        return await page.screenshot(path)


# The wallboard's <body data-state> leaves "loading" once its first API answer (or failure) is shown.
WALLBOARD_SETTLED = "document.body.dataset.state !== 'loading'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot a page (e.g. the wallboard) in headless Chromium.")
    parser.add_argument("url", help="page to load, e.g. http://127.0.0.1:6066/")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    args = parser.parse_args(argv)
    try:
        written = asyncio.run(screenshot_page(args.url, args.png, WALLBOARD_SETTLED))
    except BrowserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
