"""Time windows: one-minute buckets, intervals aligned in the queue's time zone, today, sliding windows.

Counts are kept per one-minute bucket (one write per fact) and summed when a window is read. Intervals
of 15/30/60 minutes align to the local clock: every UTC offset in use is a multiple of 15 minutes, so a
15-minute grid in UTC is also a 15-minute grid in local time, and 30/60-minute intervals are floored
in local time. "Today" starts at local midnight, which is 23 or 25 hours from the next one across DST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from streamer.core import calls
from streamer.core.config import ATTRIBUTE_ARRIVAL, QueueSettings

MINUTE_MS = 60_000
SLIDING_WINDOWS_MINUTES = {"5m": 5, "15m": 15, "30m": 30, "60m": 60}


def minute_of(ts_ms: int) -> int:
    """Start (epoch ms) of the one-minute bucket holding `ts_ms`."""
    return ts_ms - ts_ms % MINUTE_MS


HOUR_MS = 60 * MINUTE_MS
# (zone, hour) -> the offset in force all that hour: every fact and lateness check asks for one, and
# a zone's offset changes a few times a year, always on a whole hour or half hour.
_hour_offsets: dict[tuple[str, int], int] = {}
_MAX_CACHED_HOURS = 200_000


def local_offset_ms(ts_ms: int, tz: ZoneInfo) -> int:
    """The UTC offset (ms) in force in `tz` at instant `ts_ms`."""
    hour = ts_ms // HOUR_MS
    key = (tz.key, hour)
    offset = _hour_offsets.get(key)
    if offset is None:
        first, last = _offset_at(hour * HOUR_MS, tz), _offset_at(hour * HOUR_MS + HOUR_MS - 1, tz)
        if first != last:  # the hour of a change: exact, uncached
            return _offset_at(ts_ms, tz)
        if len(_hour_offsets) >= _MAX_CACHED_HOURS:
            _hour_offsets.clear()
        _hour_offsets[key] = offset = first
    return offset


def _offset_at(ts_ms: int, tz: ZoneInfo) -> int:
    moment = datetime.fromtimestamp(ts_ms // 1000, UTC).astimezone(tz)
    offset = moment.utcoffset()
    return int(offset.total_seconds() * 1000) if offset is not None else 0


def interval_start(ts_ms: int, settings: QueueSettings) -> int:
    """Start (epoch ms) of the reporting interval holding `ts_ms`, aligned in the queue's time zone."""
    length = settings.interval_minutes * MINUTE_MS
    offset = local_offset_ms(ts_ms, settings.tz)
    local = ts_ms + offset
    return local - local % length - offset


def interval_end(start_ms: int, settings: QueueSettings) -> int:
    return start_ms + settings.interval_minutes * MINUTE_MS


def day_start(ts_ms: int, tz: ZoneInfo) -> int:
    """Local midnight (epoch ms) of the day holding `ts_ms` in `tz`."""
    local = datetime.fromtimestamp(ts_ms // 1000, UTC).astimezone(tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
    return int(midnight.timestamp()) * 1000


def day_end(ts_ms: int, tz: ZoneInfo) -> int:
    """The next local midnight after the day holding `ts_ms` (23, 24 or 25 hours later)."""
    local = datetime.fromtimestamp(ts_ms // 1000, UTC).astimezone(tz)
    following = local.date() + timedelta(days=1)
    return int(datetime(following.year, following.month, following.day, tzinfo=tz).timestamp()) * 1000


def sliding_minutes(now_ms: int, minutes: int) -> tuple[int, int]:
    """Bucket starts [first, last] of a sliding window of `minutes`, the current minute included.

    Buckets are whole minutes, so the window covers between `minutes - 1` and `minutes` of history.
    """
    last = minute_of(now_ms)
    return last - (minutes - 1) * MINUTE_MS, last


# Decided days after the contact they are about: counted when decided, even by arrival, since the
# contact's own interval is long gone.
# A handle time is counted when the call ends, so the recent handle time is that of recent calls.
_DECIDED_LATER = frozenset({calls.FCR_RESOLVED, calls.FCR_UNRESOLVED, calls.HANDLED})


def fact_time(fact: calls.Fact, settings: QueueSettings) -> int:
    """The instant a fact is counted at: its own time, or its visit's arrival when so configured."""
    if settings.attribute_to == ATTRIBUTE_ARRIVAL and fact.kind not in _DECIDED_LATER:
        return fact.enqueued_ts
    return fact.ts


def is_late(ts_ms: int, stream_time_ms: int, settings: QueueSettings, grace_ms: int) -> bool:
    """True when the interval holding `ts_ms` has closed: its end plus grace is behind stream time."""
    if ts_ms + grace_ms >= stream_time_ms:  # the interval ends after `ts_ms`: not closed (the common case)
        return False
    return interval_end(interval_start(ts_ms, settings), settings) + grace_ms <= stream_time_ms
