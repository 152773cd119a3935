"""A deadline on graceful shutdown.

faust-streaming can hang for ever while stopping its consumer thread (faust #484, mode #54: seen here
on SIGTERM with idle partitions). State is safe to abandon at any point — processing is at-least-once
and idempotent — so after a grace period the process exits instead of hanging a deploy or a test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)

STOP_DEADLINE_SECONDS = float(os.environ.get("STREAMER_STOP_DEADLINE_SECONDS", "15"))


def _start_deadline(signum: int) -> None:
    def expire() -> None:
        log.warning("shutdown did not finish within %.0f s of %s; exiting now (state is safe to abandon)",
                    STOP_DEADLINE_SECONDS, signal.Signals(signum).name)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(STOP_DEADLINE_SECONDS, expire)
    timer.daemon = True
    timer.start()


def install_stop_deadline(loop: asyncio.AbstractEventLoop) -> None:
    """Wrap the worker's SIGTERM/SIGINT handlers so that a stop starts the deadline first."""
    handlers: dict[int, Any] = getattr(loop, "_signal_handlers", {})
    for signum in (signal.SIGTERM, signal.SIGINT):
        handle = handlers.get(signum)
        if handle is None:
            continue
        callback, args = handle._callback, handle._args

        def wrapped(signum: int = signum, callback: Any = callback, args: Any = args) -> None:
            _start_deadline(signum)
            callback(*args)

        loop.add_signal_handler(signum, wrapped)
