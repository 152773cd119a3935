"""Windows: interval grids in local time (UTC and half/quarter-hour offsets), "today" and intervals on DST
days, sliding windows, lateness and attribution time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from streamer.core import calls, windows
from streamer.core.config import ATTRIBUTE_ARRIVAL, QueueSettings
from streamer.core.events import format_ts, parse_ts

HOUR = 3_600_000


def ms(text: str) -> int:
    return parse_ts(text)


def interval(at: str, zone: str = "UTC", minutes: int = 15) -> tuple[str, str]:
    """(start, end) of the interval holding `at`, written in the zone's local time."""
    settings = QueueSettings(time_zone=zone, interval_minutes=minutes)
    start = windows.interval_start(ms(at), settings)
    end = windows.interval_end(start, settings)
    return format_ts(start, settings.tz), format_ts(end, settings.tz)


# --- interval grids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "minutes", "expected"),
    [
        ("2026-06-01T10:07:30Z", 15, ("2026-06-01T10:00:00+00:00", "2026-06-01T10:15:00+00:00")),
        ("2026-06-01T10:37:00Z", 15, ("2026-06-01T10:30:00+00:00", "2026-06-01T10:45:00+00:00")),
        ("2026-06-01T10:37:00Z", 30, ("2026-06-01T10:30:00+00:00", "2026-06-01T11:00:00+00:00")),
        ("2026-06-01T10:37:00Z", 60, ("2026-06-01T10:00:00+00:00", "2026-06-01T11:00:00+00:00")),
        ("2026-06-01T10:15:00Z", 15, ("2026-06-01T10:15:00+00:00", "2026-06-01T10:30:00+00:00")),
        ("2026-06-01T10:14:59.999Z", 15, ("2026-06-01T10:00:00+00:00", "2026-06-01T10:15:00+00:00")),
        ("2026-06-01T23:59:59.999Z", 60, ("2026-06-01T23:00:00+00:00", "2026-06-02T00:00:00+00:00")),
        ("2026-06-02T00:00:00Z", 30, ("2026-06-02T00:00:00+00:00", "2026-06-02T00:30:00+00:00")),
    ],
)
def test_intervals_in_utc(at, minutes, expected):
    assert interval(at, "UTC", minutes) == expected


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        ("Europe/London", "2026-06-01T10:07:30Z", ("2026-06-01T11:00:00+01:00", "2026-06-01T11:15:00+01:00")),
        ("Europe/London", "2026-01-15T10:07:30Z", ("2026-01-15T10:00:00+00:00", "2026-01-15T10:15:00+00:00")),
        ("America/New_York", "2026-06-01T10:52:00Z", ("2026-06-01T06:45:00-04:00", "2026-06-01T07:00:00-04:00")),
        ("Asia/Kolkata", "2026-06-01T10:07:30Z", ("2026-06-01T15:30:00+05:30", "2026-06-01T15:45:00+05:30")),
        ("Asia/Kathmandu", "2026-06-01T10:07:30Z", ("2026-06-01T15:45:00+05:45", "2026-06-01T16:00:00+05:45")),
        ("Asia/Kathmandu", "2026-06-01T10:14:59.999Z", ("2026-06-01T15:45:00+05:45",
                                                          "2026-06-01T16:00:00+05:45")),
        ("Asia/Kathmandu", "2026-06-01T10:15:00Z", ("2026-06-01T16:00:00+05:45", "2026-06-01T16:15:00+05:45")),
    ],
)
def test_fifteen_minute_intervals_in_local_time(zone, at, expected):
    assert interval(at, zone, 15) == expected


@pytest.mark.parametrize(
    ("zone", "minutes", "at", "expected"),
    [
        # Kolkata (+05:30): a local hour starts at half past the UTC hour.
        ("Asia/Kolkata", 60, "2026-06-01T10:07:30Z", ("2026-06-01T15:00:00+05:30", "2026-06-01T16:00:00+05:30")),
        ("Asia/Kolkata", 60, "2026-06-01T10:30:00Z", ("2026-06-01T16:00:00+05:30", "2026-06-01T17:00:00+05:30")),
        ("Asia/Kolkata", 30, "2026-06-01T10:29:59Z", ("2026-06-01T15:30:00+05:30", "2026-06-01T16:00:00+05:30")),
        # Kathmandu (+05:45): local half hours start at :15 and :45 UTC.
        ("Asia/Kathmandu", 30, "2026-06-01T10:14:59Z", ("2026-06-01T15:30:00+05:45", "2026-06-01T16:00:00+05:45")),
        ("Asia/Kathmandu", 60, "2026-06-01T10:20:00Z", ("2026-06-01T16:00:00+05:45", "2026-06-01T17:00:00+05:45")),
        ("America/New_York", 60, "2026-06-01T10:52:00Z", ("2026-06-01T06:00:00-04:00",
                                                          "2026-06-01T07:00:00-04:00")),
        ("Europe/London", 30, "2026-06-01T10:52:00Z", ("2026-06-01T11:30:00+01:00", "2026-06-01T12:00:00+01:00")),
    ],
)
def test_thirty_and_sixty_minute_intervals_align_to_the_local_clock(zone, minutes, at, expected):
    assert interval(at, zone, minutes) == expected


def test_local_offset_of_quarter_hour_zones():
    assert windows.local_offset_ms(ms("2026-06-01T10:00:00Z"), ZoneInfo("Asia/Kathmandu")) == 5 * HOUR + 45 * 60_000
    assert windows.local_offset_ms(ms("2026-06-01T10:00:00Z"), ZoneInfo("Asia/Kolkata")) == 5 * HOUR + 30 * 60_000
    assert windows.local_offset_ms(ms("2026-06-01T10:00:00Z"), ZoneInfo("America/New_York")) == -4 * HOUR


# --- today and DST days ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "midnight", "next_midnight", "hours"),
    [
        # Europe/London springs forward 2026-03-29 01:00 GMT -> 02:00 BST.
        ("Europe/London", "2026-03-29T12:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", 23),
        # ... and falls back 2026-10-25 02:00 BST -> 01:00 GMT.
        ("Europe/London", "2026-10-25T12:00:00Z", "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z", 25),
        # America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT.
        ("America/New_York", "2026-03-08T12:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23),
        # ... and falls back 2026-11-01 02:00 EDT -> 01:00 EST.
        ("America/New_York", "2026-11-01T12:00:00Z", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25),
        ("Europe/London", "2026-06-01T12:00:00Z", "2026-05-31T23:00:00Z", "2026-06-01T23:00:00Z", 24),
        ("Asia/Kathmandu", "2026-06-01T12:00:00Z", "2026-05-31T18:15:00Z", "2026-06-01T18:15:00Z", 24),
    ],
)
def test_today_starts_at_local_midnight_and_lasts_23_24_or_25_hours(zone, at, midnight, next_midnight, hours):
    tz = ZoneInfo(zone)
    start = windows.day_start(ms(at), tz)
    end = windows.day_end(ms(at), tz)
    assert (start, end) == (ms(midnight), ms(next_midnight))
    assert end - start == hours * HOUR
    assert format_ts(start, tz)[11:19] == "00:00:00"
    assert format_ts(end, tz)[11:19] == "00:00:00"


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York"])
def test_today_holds_its_first_and_last_millisecond(zone):
    tz = ZoneInfo(zone)
    start = windows.day_start(ms("2026-10-25T12:00:00Z"), tz)
    end = windows.day_end(ms("2026-10-25T12:00:00Z"), tz)
    assert windows.day_start(start, tz) == start
    assert windows.day_start(end - 1, tz) == start
    assert windows.day_start(end, tz) == end


@pytest.mark.parametrize(
    ("zone", "day", "minutes", "count"),
    [
        ("Europe/London", "2026-03-29T12:00:00Z", 15, 92),
        ("Europe/London", "2026-10-25T12:00:00Z", 15, 100),
        ("Europe/London", "2026-10-25T12:00:00Z", 60, 25),
        ("America/New_York", "2026-03-08T12:00:00Z", 30, 46),
        ("America/New_York", "2026-11-01T12:00:00Z", 60, 25),
        ("Asia/Kathmandu", "2026-06-01T12:00:00Z", 60, 24),
    ],
)
def test_intervals_tile_a_dst_day_without_gap_or_overlap(zone, day, minutes, count):
    settings = QueueSettings(time_zone=zone, interval_minutes=minutes)
    start = windows.day_start(ms(day), settings.tz)
    end = windows.day_end(ms(day), settings.tz)
    starts = []
    cursor = start
    while cursor < end:
        assert windows.interval_start(cursor, settings) == cursor
        assert windows.interval_start(cursor + minutes * 60_000 - 1, settings) == cursor
        starts.append(cursor)
        cursor = windows.interval_end(cursor, settings)
    assert cursor == end
    assert len(starts) == count


def test_intervals_in_the_repeated_hour_of_fall_back_are_distinct_and_full_length():
    london60 = QueueSettings(time_zone="Europe/London", interval_minutes=60)
    first = windows.interval_start(ms("2026-10-25T00:30:00Z"), london60)  # 01:30 BST
    second = windows.interval_start(ms("2026-10-25T01:30:00Z"), london60)  # 01:30 GMT
    assert (first, second) == (ms("2026-10-25T00:00:00Z"), ms("2026-10-25T01:00:00Z"))
    assert windows.interval_end(first, london60) == second
    assert format_ts(first, london60.tz) == "2026-10-25T01:00:00+01:00"
    assert format_ts(second, london60.tz) == "2026-10-25T01:00:00+00:00"

    assert interval("2026-10-25T00:50:00Z", "Europe/London", 15) == (
        "2026-10-25T01:45:00+01:00", "2026-10-25T01:00:00+00:00")
    assert interval("2026-10-25T01:05:00Z", "Europe/London", 15) == (
        "2026-10-25T01:00:00+00:00", "2026-10-25T01:15:00+00:00")
    assert interval("2026-11-01T05:10:00Z", "America/New_York", 60) == (
        "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00")
    assert interval("2026-11-01T06:10:00Z", "America/New_York", 60) == (
        "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00")


def test_the_interval_across_spring_forward_is_one_real_hour():
    assert interval("2026-03-29T00:40:00Z", "Europe/London", 60) == (
        "2026-03-29T00:00:00+00:00", "2026-03-29T02:00:00+01:00")
    assert interval("2026-03-29T01:00:00Z", "Europe/London", 60) == (
        "2026-03-29T02:00:00+01:00", "2026-03-29T03:00:00+01:00")
    assert interval("2026-03-08T06:59:00Z", "America/New_York", 15) == (
        "2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00")


# --- minutes, sliding windows, lateness, attribution -----------------------------------------------


def test_minute_of_floors_to_the_minute():
    assert windows.minute_of(ms("2026-06-01T10:07:59.999Z")) == ms("2026-06-01T10:07:00Z")
    assert windows.minute_of(ms("2026-06-01T10:07:00Z")) == ms("2026-06-01T10:07:00Z")


@pytest.mark.parametrize(
    ("now", "minutes", "first", "last"),
    [
        ("2026-06-01T10:07:30Z", 5, "2026-06-01T10:03:00Z", "2026-06-01T10:07:00Z"),
        ("2026-06-01T10:07:00Z", 15, "2026-06-01T09:53:00Z",
         "2026-06-01T10:07:00Z"),
        ("2026-06-01T10:00:00Z", 60, "2026-06-01T09:01:00Z", "2026-06-01T10:00:00Z"),
        ("2026-06-01T10:59:59.999Z", 30, "2026-06-01T10:30:00Z", "2026-06-01T10:59:00Z"),
    ],
)
def test_sliding_windows_are_whole_minutes_ending_with_the_current_one(now, minutes, first, last):
    assert windows.sliding_minutes(ms(now), minutes) == (ms(first), ms(last))


def test_sliding_window_names():
    assert windows.SLIDING_WINDOWS_MINUTES == {"5m": 5, "15m": 15, "30m": 30, "60m": 60}


@pytest.mark.parametrize(
    ("stream_time", "late"),
    [
        ("2026-06-01T10:14:00Z", False),
        ("2026-06-01T10:15:00Z", False),
        ("2026-06-01T10:15:59.999Z", False),
        ("2026-06-01T10:16:00Z", True),
        ("2026-06-02T10:00:00Z", True),
    ],
)
def test_an_event_is_late_once_its_interval_end_plus_grace_is_behind_stream_time(stream_time, late):
    assert windows.is_late(ms("2026-06-01T10:05:00Z"), ms(stream_time), QueueSettings(), 60_000) is late


def test_lateness_follows_the_local_interval_of_the_queue():
    kolkata60 = QueueSettings(time_zone="Asia/Kolkata", interval_minutes=60)
    at = ms("2026-06-01T10:20:00Z")  # 15:50 IST: interval 15:00-16:00 IST = 09:30-10:30 UTC
    assert not windows.is_late(at, ms("2026-06-01T10:29:59Z"), kolkata60, 0)
    assert windows.is_late(at, ms("2026-06-01T10:30:00Z"), kolkata60, 0)


def test_a_fact_is_counted_at_its_own_time_or_at_its_arrival_when_configured():
    answered = calls.Fact(calls.ANSWERED, "q1", "c1#1", ms("2026-06-01T10:15:10Z"), ms("2026-06-01T10:14:50Z"),
                          20_000)
    assert windows.fact_time(answered, QueueSettings()) == ms("2026-06-01T10:15:10Z")
    assert windows.fact_time(answered, QueueSettings(attribute_to=ATTRIBUTE_ARRIVAL)) == ms("2026-06-01T10:14:50Z")
