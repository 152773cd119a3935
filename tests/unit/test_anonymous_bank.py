"""The Anonymous Bank month (February 1999) end to end: converter, then `streamer report`, against
numbers computed here straight from the TSV, with no `streamer` code.

The TSV is read from ../shared/reference-data relative to the project root (never copied into the
repository). T = 20 s, S = 5 s, default Service Level formula, 15-minute intervals in Asia/Jerusalem.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parents[2]
BANK_TSV = ROOT.parent / "shared" / "reference-data" / "anonymous-bank" / "february.tsv"
CONVERTER = ROOT / "scripts" / "convert_anonymous_bank.py"
ZONE = ZoneInfo("Asia/Jerusalem")
THRESHOLD_SECONDS = 20
SHORT_ABANDON_SECONDS = 5
INTERVAL = timedelta(minutes=15)
COUNT_KEYS = (
    "entered", "answered", "answered_within_threshold", "abandoned", "abandoned_within_threshold",
    "short_abandoned",
)
RATE_KEYS = ("service_level", "asa_seconds", "abandon_rate", "average_abandon_seconds")
REPORT_CONFIG = f"""\
[defaults]
time_zone = "Asia/Jerusalem"
interval_minutes = 15
threshold_seconds = {THRESHOLD_SECONDS}
short_abandon_seconds = {SHORT_ABANDON_SECONDS}
target = 0.8
"""
HEADER = (
    "vru+line\tcall_id\tcustomer_id\tpriority\ttype\tdate\tvru_entry\tvru_exit\tvru_time\tq_start\t"
    "q_exit\tq_time\toutcome\tser_start\tser_exit\tser_time\tserver"
)


def bank_tsv() -> Path:
    if not BANK_TSV.is_file():
        pytest.fail(
            f"the Anonymous Bank month is missing: expected {BANK_TSV} "
            "(the shared reference data beside the project root, ../shared/reference-data)"
        )
    return BANK_TSV


# --- the independent computation: a plain re-reading of the TSV -----------------------------------


@dataclass(frozen=True)
class Visit:
    """A queued call as the TSV tells it; times are local wall-clock times."""

    queue: str
    enqueued: datetime
    left: datetime
    answered: bool
    wait: int
    q_time: int


def seconds_of_day(clock: str) -> int:
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds)


def read_visits(path: Path) -> list[Visit]:
    """Queued AGENT and HANG calls; never-queued calls (q_start 0:00:00) and PHANTOMs are no visits."""
    lines = path.read_text(encoding="ascii").splitlines()
    column = {name: i for i, name in enumerate(lines[0].split("\t"))}
    visits = []
    for line in lines[1:]:
        field = line.split("\t")
        outcome = field[column["outcome"]]
        if field[column["q_start"]] == "0:00:00" or outcome == "PHANTOM":
            continue
        entry = datetime.strptime(field[column["date"]], "%y%m%d") + timedelta(
            seconds=seconds_of_day(field[column["vru_entry"]])
        )
        start = entry.replace(hour=0, minute=0, second=0) + timedelta(
            seconds=seconds_of_day(field[column["q_start"]])
        )
        # q_start shares vru_entry's day unless that puts them more than half a day apart.
        if start - entry > timedelta(hours=12):
            start -= timedelta(days=1)
        elif entry - start > timedelta(hours=12):
            start += timedelta(days=1)
        wait = (seconds_of_day(field[column["q_exit"]]) - seconds_of_day(field[column["q_start"]])) % 86_400
        visits.append(
            Visit(
                queue=field[column["type"]],
                enqueued=start,
                left=start + timedelta(seconds=wait),
                answered=outcome == "AGENT",
                wait=wait,
                q_time=int(field[column["q_time"]]),
            )
        )
    return visits


def metrics(entered: int, outcomes: list[Visit]) -> dict[str, Any]:
    answered_waits = [v.wait for v in outcomes if v.answered]
    hang_waits = [v.wait for v in outcomes if not v.answered]
    abandoned_waits = [w for w in hang_waits if w >= SHORT_ABANDON_SECONDS]
    answered_within = sum(w <= THRESHOLD_SECONDS for w in answered_waits)
    handled = len(answered_waits) + len(abandoned_waits)
    return {
        "entered": entered,
        "answered": len(answered_waits),
        "answered_within_threshold": answered_within,
        "abandoned": len(abandoned_waits),
        "abandoned_within_threshold": sum(w <= THRESHOLD_SECONDS for w in abandoned_waits),
        "short_abandoned": len(hang_waits) - len(abandoned_waits),
        "service_level": answered_within / handled if handled else None,
        "asa_seconds": sum(answered_waits) / len(answered_waits) if answered_waits else None,
        "abandon_rate": len(abandoned_waits) / handled if handled else None,
        "average_abandon_seconds": sum(abandoned_waits) / len(abandoned_waits) if abandoned_waits else None,
    }


def interval_start(local: datetime) -> datetime:
    return local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)


def expected_totals(visits: list[Visit]) -> dict[str, dict[str, Any]]:
    by_queue: dict[str, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_queue[visit.queue].append(visit)
    return {queue: metrics(len(vs), vs) for queue, vs in by_queue.items()}


def expected_intervals(visits: list[Visit]) -> dict[tuple[str, datetime], dict[str, Any]]:
    """(queue, local interval start) → numbers: entered by enqueue time, outcomes by their own time."""
    entered: Counter[tuple[str, datetime]] = Counter()
    ended: dict[tuple[str, datetime], list[Visit]] = defaultdict(list)
    for visit in visits:
        entered[visit.queue, interval_start(visit.enqueued)] += 1
        ended[visit.queue, interval_start(visit.left)].append(visit)
    return {key: metrics(entered[key], ended.get(key, [])) for key in set(entered) | set(ended)}


@pytest.fixture(scope="module")
def visits() -> list[Visit]:
    return read_visits(bank_tsv())


# --- the converter, record by record ------------------------------------------------------------


def load_converter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("convert_anonymous_bank", CONVERTER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


converter = load_converter()


def record(**overrides: str) -> str:
    fields = {
        "vru+line": "AA0101", "call_id": "34540", "customer_id": "48178511", "priority": "2",
        "type": "PS", "date": "990201", "vru_entry": "8:19:42", "vru_exit": "8:19:47", "vru_time": "5",
        "q_start": "8:19:47", "q_exit": "8:20:21", "q_time": "34", "outcome": "AGENT",
        "ser_start": "8:20:20", "ser_exit": "8:22:04", "ser_time": "104", "server": "AGENT_A",
    } | overrides
    return "\t".join(fields.values())


def convert_lines(*records: str) -> tuple[list[dict[str, Any]], Counter[str]]:
    return converter.convert([HEADER + "\r\n", *(r + "\r\n" for r in records)])


def test_answered_call_is_enqueued_answered_at_queue_exit_then_completed() -> None:
    events, stats = convert_lines(record())

    assert [(e["type"], e["ts"]) for e in events] == [
        ("call.enqueued", "1999-02-01T08:19:47+02:00"),
        ("call.answered", "1999-02-01T08:20:21+02:00"),
        ("call.completed", "1999-02-01T08:22:04+02:00"),
    ]
    assert {e["call_id"] for e in events} == {"990201-AA0101-34540"}
    assert {e["queue"] for e in events} == {"PS"}
    assert [e["event_id"] for e in events] == [
        "990201-AA0101-34540:enqueued", "990201-AA0101-34540:answered", "990201-AA0101-34540:completed",
    ]
    assert events[2]["talk_seconds"] == 104
    assert stats["ser_start_minus_q_exit_-1"] == 1


def test_customer_id_becomes_a_stable_pseudonymous_key_and_zero_is_omitted() -> None:
    known, _ = convert_lines(record())
    again, _ = convert_lines(record())
    unknown, _ = convert_lines(record(customer_id="0"))

    keys = {e["customer_id"] for e in known}
    assert len(keys) == 1 and "48178511" not in keys.pop()
    assert [e["customer_id"] for e in known] == [e["customer_id"] for e in again]
    assert all("customer_id" not in e for e in unknown)


def test_hang_up_in_queue_is_an_abandon_at_queue_exit() -> None:
    events, _ = convert_lines(
        record(outcome="HANG", q_exit="8:19:52", q_time="5", ser_start="0:00:00", ser_exit="0:00:00",
               ser_time="0", server="NO_SERVER")
    )

    assert [(e["type"], e["ts"]) for e in events] == [
        ("call.enqueued", "1999-02-01T08:19:47+02:00"),
        ("call.abandoned", "1999-02-01T08:19:52+02:00"),
    ]


def test_never_queued_calls_and_phantoms_give_no_events_but_are_counted() -> None:
    events, stats = convert_lines(
        record(call_id="1", q_start="0:00:00", q_exit="0:00:00", q_time="0"),
        record(call_id="2", q_start="0:00:00", q_exit="0:00:00", q_time="0", outcome="HANG"),
        record(call_id="3", outcome="PHANTOM", server="NO_SERVER"),
    )

    assert events == []
    assert (stats["calls"], stats["never_queued"], stats["phantom_dropped"]) == (3, 2, 1)
    assert (stats["never_queued_AGENT"], stats["never_queued_HANG"]) == (1, 1)


def test_a_wait_across_midnight_ends_on_the_next_day() -> None:
    events, stats = convert_lines(
        record(date="990210", vru_entry="23:59:19", q_start="23:59:29", q_exit="0:00:26", q_time="57",
               outcome="HANG", ser_start="0:00:00", ser_exit="0:00:00", ser_time="0")
    )

    assert [e["ts"] for e in events] == ["1999-02-10T23:59:29+02:00", "1999-02-11T00:00:26+02:00"]
    assert stats["q_time_disagrees"] == 0 and stats["crosses_midnight"] == 1


def test_queue_start_after_midnight_belongs_to_the_next_day() -> None:
    events, _ = convert_lines(
        record(date="990210", vru_entry="23:59:56", q_start="0:00:02", q_exit="0:00:29", q_time="27",
               ser_start="0:00:29", ser_exit="0:00:58", ser_time="29")
    )

    assert [e["ts"] for e in events] == [
        "1999-02-11T00:00:02+02:00", "1999-02-11T00:00:29+02:00", "1999-02-11T00:00:58+02:00",
    ]


def test_queue_start_a_minute_before_vru_entry_stays_on_the_same_day() -> None:
    events, stats = convert_lines(
        record(date="990207", vru_entry="9:48:14", q_start="9:47:17", q_exit="9:50:11", q_time="174",
               ser_start="9:50:11", ser_exit="9:51:28", ser_time="77")
    )

    assert events[0]["ts"] == "1999-02-07T09:47:17+02:00"
    assert stats["q_start_before_vru_entry"] == 1


def test_service_ending_before_queue_exit_is_completed_at_the_answer() -> None:
    events, stats = convert_lines(
        record(q_exit="8:20:21", ser_start="8:20:19", ser_exit="8:20:20", ser_time="1")
    )

    assert [e["ts"] for e in events][1:] == ["1999-02-01T08:20:21+02:00"] * 2
    assert events[2]["talk_seconds"] == 1
    assert stats["completed_moved_to_answer_time"] == 1


def test_answer_without_service_times_has_no_completed_event() -> None:
    events, stats = convert_lines(record(ser_start="0:00:00", ser_exit="0:00:00", ser_time="0"))

    assert [e["type"] for e in events] == ["call.enqueued", "call.answered"]
    assert stats["answered_without_service_times"] == 1


def test_a_q_time_that_disagrees_with_the_clock_times_is_counted() -> None:
    _, stats = convert_lines(record(q_time="35"))

    assert stats["q_time_disagrees"] == 1


def test_events_come_out_sorted_by_time_keeping_each_calls_order() -> None:
    events, _ = convert_lines(
        record(call_id="1", q_start="8:19:47", q_exit="8:30:00", q_time="613", ser_start="8:30:00",
               ser_exit="8:31:00", ser_time="60"),
        record(call_id="2", vru_entry="8:20:00", q_start="8:20:05", q_exit="8:20:10", q_time="5",
               ser_start="8:20:10", ser_exit="8:25:00", ser_time="290"),
    )

    assert [e["event_id"] for e in events] == [
        "990201-AA0101-1:enqueued", "990201-AA0101-2:enqueued", "990201-AA0101-2:answered",
        "990201-AA0101-2:completed", "990201-AA0101-1:answered", "990201-AA0101-1:completed",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"q_exit": "8:61:00"}, "line 2: q_exit '8:61:00' is not a time of day H:MM:SS"),
        ({"date": "990231"}, "line 2: date '990231' is not YYMMDD"),
        ({"type": "XX"}, "line 2: type 'XX' is not one of"),
        ({"outcome": "LOST"}, "line 2: outcome 'LOST' is not one of"),
        ({"q_time": "abc"}, "line 2: q_time 'abc' is not a whole number"),
    ],
)
def test_a_bad_record_is_refused_with_its_line_and_field(override: dict[str, str], message: str) -> None:
    with pytest.raises(converter.RecordError, match=message):
        convert_lines(record(**override))


def test_a_file_without_the_bank_header_is_refused() -> None:
    with pytest.raises(converter.RecordError, match="line 1: expected the tab-separated header"):
        converter.convert(["a\tb\n"])


def test_the_command_explains_a_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(CONVERTER), str(tmp_path / "absent.tsv")],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 2
    assert "cannot read" in result.stderr and "absent.tsv" in result.stderr


# --- the whole month: converter and report against the independent numbers ---------------------


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("anonymous-bank") / "february.jsonl"
    subprocess.run(
        [sys.executable, str(CONVERTER), str(bank_tsv()), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return out


@pytest.fixture(scope="module")
def month_events(events_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in events_file.read_text().splitlines()]


@pytest.fixture(scope="module")
def report(events_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    config = tmp_path_factory.mktemp("report-config") / "streamer.toml"
    config.write_text(REPORT_CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "report", str(events_file), "--format", "json",
         "--config", str(config), "--strict"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"streamer report failed ({result.returncode}): {result.stderr[-2000:]}"
    return json.loads(result.stdout)["queues"]


def test_the_month_has_the_documented_shape(visits: list[Visit]) -> None:
    assert len(visits) == 18_058
    assert Counter(v.answered for v in visits) == {True: 14_095, False: 3_963}
    assert all(v.wait == v.q_time for v in visits)


def test_converted_month_is_sorted_unique_and_in_call_order(month_events: list[dict[str, Any]]) -> None:
    instants = [datetime.fromisoformat(e["ts"]) for e in month_events]
    assert instants == sorted(instants)
    assert len({e["event_id"] for e in month_events}) == len(month_events)
    per_call: dict[str, list[str]] = defaultdict(list)
    for e in month_events:
        per_call[e["call_id"]].append(e["type"])
    assert {tuple(types) for types in per_call.values()} == {
        ("call.enqueued", "call.answered", "call.completed"),
        ("call.enqueued", "call.answered"),
        ("call.enqueued", "call.abandoned"),
    }


def test_converted_waits_are_the_independent_waits(
    month_events: list[dict[str, Any]], visits: list[Visit]
) -> None:
    enqueued_at: dict[str, datetime] = {}
    converted: Counter[tuple[str, str, datetime, float]] = Counter()
    for e in month_events:
        at = datetime.fromisoformat(e["ts"])
        if e["type"] == "call.enqueued":
            enqueued_at[e["call_id"]] = at
        elif e["type"] in ("call.answered", "call.abandoned"):
            start = enqueued_at[e["call_id"]]
            waited = (at - start).total_seconds()
            converted[e["queue"], e["type"], start.replace(tzinfo=None), waited] += 1
    independent = Counter(
        (v.queue, "call.answered" if v.answered else "call.abandoned", v.enqueued, float(v.wait))
        for v in visits
    )

    assert converted == independent


def assert_same_numbers(where: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in COUNT_KEYS:
        assert got.get(key) == want[key], f"{where}.{key}: report {got.get(key)}, independent {want[key]}"
    for key in RATE_KEYS:
        if want[key] is None:
            assert got.get(key) is None, f"{where}.{key}: report {got.get(key)}, independent null"
        else:
            assert got.get(key) == pytest.approx(want[key], abs=1e-9), (
                f"{where}.{key}: report {got.get(key)}, independent {want[key]}"
            )


def test_report_month_totals_match_the_independent_numbers(
    report: dict[str, Any], visits: list[Visit]
) -> None:
    expected = expected_totals(visits)

    assert sorted(report) == sorted(expected)
    for queue, want in expected.items():
        assert_same_numbers(f"queues.{queue}.total", report[queue]["total"], want)


def report_intervals(report: dict[str, Any]) -> dict[tuple[str, datetime], dict[str, Any]]:
    """(queue, local interval start) → the report's interval block, checking its start, end and zone."""
    blocks = {}
    for queue, numbers in report.items():
        for block in numbers["intervals"]:
            start = datetime.fromisoformat(block["start"])
            assert start.utcoffset() == start.astimezone(ZONE).utcoffset(), f"{queue} {block['start']}"
            assert datetime.fromisoformat(block["end"]) - start == INTERVAL, f"{queue} {block['start']}"
            blocks[queue, start.astimezone(ZONE).replace(tzinfo=None)] = block
    return blocks


def test_report_every_interval_matches_the_independent_numbers(
    report: dict[str, Any], visits: list[Visit]
) -> None:
    expected = expected_intervals(visits)
    got = report_intervals(report)

    missing = sorted(set(expected) - set(got))
    assert not missing, f"intervals missing from the report: {missing[:5]}"
    for (queue, start), block in got.items():
        want = expected.get((queue, start), metrics(0, []))
        assert_same_numbers(f"queues.{queue} interval {start.isoformat()}", block, want)


def test_report_busiest_half_hour_of_ps(report: dict[str, Any], visits: list[Visit]) -> None:
    ps = [v for v in visits if v.queue == "PS"]
    quarters = Counter(interval_start(v.enqueued) for v in ps)
    # A half hour with calls entering in both quarters (one afternoon has a quarter with none queued).
    busiest = max(
        (start for start in quarters if start.minute % 30 == 0 and start + INTERVAL in quarters),
        key=lambda start: quarters[start] + quarters[start + INTERVAL],
    )
    expected = expected_intervals(ps)
    got = report_intervals(report)

    for start in (busiest, busiest + INTERVAL):
        want = expected["PS", start]
        assert want["answered"] > 0 and want["abandoned"] > 0, "the busiest half hour tests both outcomes"
        assert_same_numbers(f"queues.PS interval {start.isoformat()}", got["PS", start], want)
