#!/usr/bin/env python3
"""Convert the "Anonymous Bank" call-by-call records into schema v1 events (JSONL).

Usage: python scripts/convert_anonymous_bank.py TSV [--out FILE]     (stdout by default)

The input is one month of the Technion SEE Center "Anonymous Bank" data (Guedj & Mandelbaum),
tab-separated with a header line: vru+line, call_id, customer_id, priority, type, date (YYMMDD),
vru_entry, vru_exit, vru_time, q_start, q_exit, q_time, outcome (AGENT / HANG / PHANTOM),
ser_start, ser_exit, ser_time, server. Times are wall-clock times of day (H:MM:SS, whole seconds)
in Israel; they are read in the time zone `Asia/Jerusalem` (tzdata carries the 1999 rules; February
1999 is all standard time, +02:00) and written as RFC 3339 strings with their offset.

Mapping, one record = one call (counts for February 1999 in docs/validation.md):

- queue = `type` (PS, NW, NE, TT, IN, PE).
- call_id = "{date}-{vru+line}-{call_id}": the source call_id repeats across days, the triple does not.
- `q_start` = 0:00:00: the call never reached the queue (hung up in the VRU, or went from the VRU
  straight to an agent). It is no queue visit: no events, counted as `never_queued`.
- PHANTOM: the source's documentation calls these "a virtual call to be ignored"; none was served
  (server NO_SERVER). The record is dropped (no events), counted as `phantom_dropped`.
- A queued AGENT call: `call.enqueued` at q_start, `call.answered` at q_exit, `call.completed` at
  ser_exit with talk_seconds = ser_time. The answer time is q_exit, not ser_start: the agent side's
  clock mostly runs 1-2 s ahead of the queue's, so ser_start would cut a second or two off most waits
  and disagree with the source's own q_time. A record with no service times (ser_start 0:00:00) gets
  no `call.completed`. When ser_exit falls before q_exit (the clocks again), `call.completed` is
  placed at the answer time so the call's own events stay in order; talk_seconds stays ser_time.
- A queued HANG call: `call.enqueued` at q_start, `call.abandoned` at q_exit.
- Dates: `date` is the day of vru_entry. q_start is put on the day that brings it nearest to
  vru_entry (it is occasionally a minute before vru_entry, and after midnight for a call that
  entered at 23:59); q_exit, ser_exit follow their start forwards across midnight; ser_start is
  put nearest to q_exit.
- The wait (answer or abandon ts - enqueue ts) is checked against q_time; disagreements are counted.
- customer_id 0 means unidentified and is omitted; any other id becomes a pseudonymous key (a
  truncated SHA-256), never the raw number. priority, vru times and server are not carried.
- event_id = "{call_id}:{enqueued|answered|abandoned|completed}", so a rerun gives the same ids.

Events are written sorted by ts (a call's own events keep their order); a summary of the counts goes
to stderr.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

TIME_ZONE = ZoneInfo("Asia/Jerusalem")
COLUMNS = (
    "vru+line", "call_id", "customer_id", "priority", "type", "date", "vru_entry", "vru_exit",
    "vru_time", "q_start", "q_exit", "q_time", "outcome", "ser_start", "ser_exit", "ser_time", "server",
)
QUEUES = frozenset({"PS", "NW", "NE", "TT", "IN", "PE"})
OUTCOMES = frozenset({"AGENT", "HANG", "PHANTOM"})
NO_TIME = 0  # the source writes 0:00:00 for a step the call never reached
DAY_SECONDS = 86_400
# The order of a call's own events, to keep it when sorting events that share a timestamp.
EVENT_RANK = {"call.enqueued": 0, "call.answered": 1, "call.abandoned": 1, "call.completed": 2}

Event = dict[str, Any]


class RecordError(ValueError):
    """A record the converter cannot read; the message names the line and the field."""


def parse_clock(text: str, field: str, line_no: int) -> int:
    """H:MM:SS → seconds since midnight."""
    parts = text.split(":")
    try:
        hours, minutes, seconds = (int(p) for p in parts)
    except ValueError:
        hours = minutes = seconds = -1
    if len(parts) != 3 or not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 60):
        raise RecordError(f"line {line_no}: {field} {text!r} is not a time of day H:MM:SS")
    return hours * 3600 + minutes * 60 + seconds


def parse_int(text: str, field: str, line_no: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise RecordError(f"line {line_no}: {field} {text!r} is not a whole number") from None


def parse_date(text: str, line_no: int) -> datetime:
    try:
        return datetime.strptime(text, "%y%m%d")
    except ValueError:
        raise RecordError(f"line {line_no}: date {text!r} is not YYMMDD") from None


def nearest(reference: datetime, clock: int) -> datetime:
    """The local time with this time of day that lies within 12 hours of `reference`."""
    ref_clock = reference.hour * 3600 + reference.minute * 60 + reference.second
    offset = (clock - ref_clock + DAY_SECONDS // 2) % DAY_SECONDS - DAY_SECONDS // 2
    return reference + timedelta(seconds=offset)


def following(start: datetime, clock: int) -> datetime:
    """The first local time with this time of day at or after `start` (crossing midnight if need be)."""
    start_clock = start.hour * 3600 + start.minute * 60 + start.second
    return start + timedelta(seconds=(clock - start_clock) % DAY_SECONDS)


def zoned(local: datetime) -> datetime:
    return local.replace(tzinfo=TIME_ZONE)


def is_unambiguous(local: datetime) -> bool:
    """False for a wall time skipped or repeated by a daylight-saving change (none in February)."""
    aware = zoned(local)
    round_trip = aware.astimezone(TIME_ZONE).replace(tzinfo=None) == local
    return round_trip and aware.utcoffset() == aware.replace(fold=1).utcoffset()


def pseudonymous_key(customer_id: str) -> str:
    return hashlib.sha256(f"anonymous-bank:{customer_id}".encode()).hexdigest()[:16]


def event(call_id: str, kind: str, at: datetime, queue: str, extra: Event) -> Event:
    return {
        "event_id": f"{call_id}:{kind}",
        "type": f"call.{kind}",
        "ts": zoned(at).isoformat(),
        "call_id": call_id,
        "queue": queue,
        **extra,
    }


def convert_record(row: dict[str, str], line_no: int, stats: Counter[str]) -> list[Event]:
    """One call record → its events (none for a call that never queued or a PHANTOM)."""
    stats["calls"] += 1
    queue = row["type"]
    outcome = row["outcome"]
    if queue not in QUEUES:
        raise RecordError(f"line {line_no}: type {queue!r} is not one of {sorted(QUEUES)}")
    if outcome not in OUTCOMES:
        raise RecordError(f"line {line_no}: outcome {outcome!r} is not one of {sorted(OUTCOMES)}")
    day = parse_date(row["date"], line_no)
    vru_entry = day + timedelta(seconds=parse_clock(row["vru_entry"], "vru_entry", line_no))
    q_start_clock = parse_clock(row["q_start"], "q_start", line_no)
    if q_start_clock == NO_TIME:
        stats["never_queued"] += 1
        stats[f"never_queued_{outcome}"] += 1
        return []
    stats["queued"] += 1
    stats[f"queued_{outcome}"] += 1
    if outcome == "PHANTOM":
        stats["phantom_dropped"] += 1
        return []

    enqueued_at = nearest(vru_entry, q_start_clock)
    left_queue_at = following(enqueued_at, parse_clock(row["q_exit"], "q_exit", line_no))
    if enqueued_at < vru_entry:
        stats["q_start_before_vru_entry"] += 1
    if left_queue_at.date() != vru_entry.date():
        stats["crosses_midnight"] += 1
    if not (is_unambiguous(enqueued_at) and is_unambiguous(left_queue_at)):
        stats["dst_ambiguous_time"] += 1
    wait = (zoned(left_queue_at) - zoned(enqueued_at)).total_seconds()
    if wait != parse_int(row["q_time"], "q_time", line_no):
        stats["q_time_disagrees"] += 1

    call_id = f"{row['date']}-{row['vru+line']}-{row['call_id']}"
    customer: Event = {}
    if row["customer_id"].strip() not in ("", "0"):
        customer = {"customer_id": pseudonymous_key(row["customer_id"].strip())}
    events = [event(call_id, "enqueued", enqueued_at, queue, customer)]
    if outcome == "HANG":
        events.append(event(call_id, "abandoned", left_queue_at, queue, customer))
        return events

    events.append(event(call_id, "answered", left_queue_at, queue, customer))
    ser_start_clock = parse_clock(row["ser_start"], "ser_start", line_no)
    if ser_start_clock == NO_TIME:
        stats["answered_without_service_times"] += 1
        return events
    service_start = nearest(left_queue_at, ser_start_clock)
    service_end = following(service_start, parse_clock(row["ser_exit"], "ser_exit", line_no))
    stats[f"ser_start_minus_q_exit_{_skew_bucket(service_start - left_queue_at)}"] += 1
    if service_end < left_queue_at:
        stats["completed_moved_to_answer_time"] += 1
        service_end = left_queue_at
    talk = {"talk_seconds": parse_int(row["ser_time"], "ser_time", line_no)}
    events.append(event(call_id, "completed", service_end, queue, {**customer, **talk}))
    return events


def _skew_bucket(skew: timedelta) -> str:
    seconds = int(skew.total_seconds())
    if seconds in (-2, -1, 0):
        return str(seconds)
    return "below_-2" if seconds < -2 else "above_0"


def read_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(lines, delimiter="\t")
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise RecordError(
            f"line 1: expected the tab-separated header {' '.join(COLUMNS)}, got {header!r}; "
            "is this an Anonymous Bank monthly file?"
        )
    for line_no, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(COLUMNS):
            raise RecordError(f"line {line_no}: {len(fields)} fields, expected {len(COLUMNS)}")
        yield line_no, dict(zip(COLUMNS, (f.strip() for f in fields), strict=True))


def convert(lines: Iterable[str]) -> tuple[list[Event], Counter[str]]:
    """All records → events sorted by time, and the counts of each mapping decision."""
    stats: Counter[str] = Counter()
    keyed: list[tuple[float, int, str, Event]] = []
    for line_no, row in read_records(lines):
        for ev in convert_record(row, line_no, stats):
            when = datetime.fromisoformat(ev["ts"]).timestamp()
            keyed.append((when, EVENT_RANK[ev["type"]], ev["call_id"], ev))
            stats[ev["type"]] += 1
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed], stats


def write_events(events: Iterable[Event], out: TextIO) -> None:
    out.writelines(json.dumps(ev, separators=(",", ":")) + "\n" for ev in events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Anonymous Bank call records (TSV) → schema v1 events (JSONL), sorted by ts.",
    )
    parser.add_argument("tsv", type=Path, help="a monthly Anonymous Bank file, tab-separated")
    parser.add_argument("--out", type=Path, help="write the events here (default: stdout)")
    args = parser.parse_args(argv)
    try:
        with args.tsv.open(newline="", encoding="ascii") as source:
            events, stats = convert(source)
    except OSError as err:
        print(f"cannot read {args.tsv}: {err.strerror}", file=sys.stderr)
        return 2
    except (RecordError, UnicodeDecodeError) as err:
        print(f"{args.tsv}: {err}", file=sys.stderr)
        return 2
    if args.out is None:
        write_events(events, sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8") as out:
            write_events(events, out)
    print(json.dumps(dict(sorted(stats.items())), indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
