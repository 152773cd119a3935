"""The demo's clocks: the centre's time zone (this machine's, unless told), where the simulated day
starts, and how its time-of-day profile is moved so the demo goes live in a busy hour."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streamer.core.windows import day_start, local_offset_ms
from streamer.simulate.clock import MS_PER_DAY, MS_PER_HOUR, MS_PER_SECOND
from streamer.simulate.scenarios import STORY_LIVE_HOUR

# The backfill covers today so far, and at least this much, so the 30- and 60-minute windows have
# their history also just after midnight.
MIN_BACKFILL_MS = MS_PER_HOUR
ZONEINFO_DIR = "zoneinfo/"


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_time_zone() -> str:
    """This machine's IANA time zone: $TZ, else the /etc/localtime link, else /etc/timezone; UTC when
    none names a zone."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = os.readlink("/etc/localtime")
        candidates.append(target.split(ZONEINFO_DIR, 1)[1] if ZONEINFO_DIR in target else "")
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    return next((name for name in candidates if name and _valid_zone(name)), "UTC")


def backfill_start(now_ms: int, tz: ZoneInfo) -> int:
    """Local midnight of today, or an hour ago when that is earlier."""
    return min(day_start(now_ms, tz), now_ms - MIN_BACKFILL_MS)


def day_offset(now_ms: int, tz: ZoneInfo, real_clock: bool) -> int:
    """The shift of the simulated day's clock from UTC: with `real_clock` the centre's own UTC offset
    (the profile follows its local hours), else the shift that puts the demo's live hour
    (STORY_LIVE_HOUR of the simulated day) at `now_ms`, in whole seconds."""
    if real_clock:
        return local_offset_ms(now_ms, tz)
    offset = round(STORY_LIVE_HOUR * MS_PER_HOUR) - now_ms % MS_PER_DAY
    return offset - offset % MS_PER_SECOND
