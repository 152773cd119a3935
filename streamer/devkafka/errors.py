"""The one error the local broker raises, and the output tails that go into its messages."""

from __future__ import annotations

import re
from pathlib import Path

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# Maven separates its error paragraphs with bare "[ERROR]" lines.
_EMPTY_LINES = frozenset({"", "[ERROR]", "[WARNING]", "[INFO]"})


class DevKafkaError(Exception):
    """The local broker could not be prepared, started or stopped; the message says why and what to do."""


def text_tail(text: str, lines: int = 20) -> str:
    """The last `lines` non-blank lines of a tool's output, without terminal colour codes, indented."""
    kept = [line for line in _ANSI_ESCAPE.sub("", text).splitlines() if line.strip() not in _EMPTY_LINES]
    return "\n".join("    " + line for line in kept[-lines:])


def file_tail(path: Path, lines: int = 20) -> str:
    """The end of a log file, read from its last 64 KiB so a long log costs nothing."""
    try:
        with path.open("rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - 65536))
            return text_tail(log.read().decode("utf-8", errors="replace"), lines)
    except FileNotFoundError:
        return f"    ({path} does not exist)"
