"""Simulated time: integer epoch milliseconds, written as RFC 3339 UTC strings with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

MS_PER_SECOND = 1000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

# A fixed default start for file output, so a seed alone decides the bytes (a Monday, 08:00 UTC).
DEFAULT_FILE_START = "2026-06-01T08:00:00Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=64)
def _date_text(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")


def format_ts(epoch_ms: int) -> str:
    """`2026-06-01T10:00:00.123Z` for an epoch in milliseconds (faster than datetime formatting)."""
    day, in_day = divmod(epoch_ms, MS_PER_DAY)
    seconds, millis = divmod(in_day, MS_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_text(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def parse_start(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 time with an offset or `Z`; ValueError says what to give."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"start time {text!r} is not RFC 3339; give e.g. {DEFAULT_FILE_START}") from None
    if moment.tzinfo is None:
        raise ValueError(f"start time {text!r} has no offset; add Z or an offset such as +02:00")
    return round(moment.timestamp() * MS_PER_SECOND)


def wall_clock_ms() -> int:
    return round(datetime.now(UTC).timestamp() * MS_PER_SECOND)
