"""The offline report: numbers on worked examples, the JSON and CSV shapes, and `streamer report` itself."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streamer.core.config import (
    SL_ABANDONS_WITHIN_MET,
    SL_ANSWERED_ONLY,
    SL_ANSWERED_OVER_OFFERED,
    SL_IGNORE_ABANDONS_WITHIN,
    parse_config,
)
from tests.eventlog import EventLog, line, report_of, run_report

COUNT_KEYS = ("entered", "answered", "answered_within_threshold", "abandoned", "abandoned_within_threshold",
              "short_abandoned", "dequeued", "callbacks_requested", "callbacks_connected", "callbacks_failed",
              "expired")
RATE_KEYS = ("service_level", "asa_seconds", "abandon_rate", "average_abandon_seconds")


def contract_log() -> EventLog:
    """The worked example of the design's contract check (T = 20 s, S = 5 s, default policy)."""
    log = EventLog()
    log.answered_call("c1", 0, 15)
    log.abandoned_call("c2", 5, 3)
    log.enqueued("c3", 60)
    log.callback("c3", 90, "keep_position")
    log.enqueued("c4", 120)
    log.callback("c4", 160, "scheduled")
    log.abandoned_call("c5", 180, 20)
    log.enqueued("c6", 240)
    log.dequeued("c6", 270, reason="overflow", to_queue="q2")
    log.enqueued("c6", 270, queue="q2")
    log.connected("c3", 300, agent_id="a2")
    log.answered("c6", 280, queue="q2")
    log.enqueued("c7", 300)
    log.callback("c7", 310, "keep_position")
    log.failed("c7", 1200)
    return log


def pick(block: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: block[k] for k in keys}


def test_the_contract_example_gives_the_published_numbers():
    queues = report_of(contract_log())
    assert pick(queues["q1"]["total"], *COUNT_KEYS) == {
        "entered": 7, "answered": 2, "answered_within_threshold": 1, "abandoned": 3,
        "abandoned_within_threshold": 1, "short_abandoned": 1, "dequeued": 1, "callbacks_requested": 3,
        "callbacks_connected": 1, "callbacks_failed": 1, "expired": 0}
    assert pick(queues["q1"]["total"], *RATE_KEYS) == pytest.approx(
        {"service_level": 0.2, "asa_seconds": 127.5, "abandon_rate": 0.6, "average_abandon_seconds": 320.0})
    assert pick(queues["q2"]["total"], "entered", "answered", "answered_within_threshold", "abandoned") == {
        "entered": 1, "answered": 1, "answered_within_threshold": 1, "abandoned": 0}
    assert pick(queues["q2"]["total"], *RATE_KEYS) == {"service_level": 1.0, "asa_seconds": 10.0,
                                                       "abandon_rate": 0.0, "average_abandon_seconds": None}


def test_json_shape_queues_total_and_intervals_with_local_start_and_end():
    config = parse_config({"defaults": {"time_zone": "Europe/London"}})
    report = run_report(contract_log(), config).to_dict()
    assert list(report) == ["queues"]
    assert list(report["queues"]) == ["q1", "q2"]
    q1 = report["queues"]["q1"]
    assert set(q1) == {"total", "intervals"}
    assert [(i["start"], i["end"]) for i in q1["intervals"]] == [
        ("2026-06-01T11:00:00+01:00", "2026-06-01T11:15:00+01:00"),
        ("2026-06-01T11:15:00+01:00", "2026-06-01T11:30:00+01:00"),
    ]
    first, second = q1["intervals"]
    for block in (first, second, q1["total"]):
        assert set(COUNT_KEYS) | set(RATE_KEYS) <= set(block)
    assert (first["entered"], first["answered"], first["abandoned"], first["callbacks_connected"]) == (7, 2, 2, 1)
    assert (second["entered"], second["abandoned"], second["callbacks_failed"]) == (0, 1, 1)
    assert second["answered"] == 0
    assert second["service_level"] == 0.0
    assert second["asa_seconds"] is None
    assert first["answered"] + second["answered"] == q1["total"]["answered"]
    assert json.loads(json.dumps(report)) == report  # plain JSON values only


def test_intervals_exist_only_where_something_was_counted():
    log = EventLog()
    log.answered_call("c1", 0, 10)
    log.answered_call("c2", 3 * 3600, 10)
    intervals = report_of(log)["q1"]["intervals"]
    assert [i["start"] for i in intervals] == ["2026-06-01T10:00:00+00:00", "2026-06-01T13:00:00+00:00"]


def test_mixed_time_formats_in_one_file_give_millisecond_exact_waits():
    log = EventLog()
    log.enqueued("c1", 0, ts="2026-06-01T10:00:00.250Z")
    log.answered("c1", 0, ts="2026-06-01T12:00:20.250+02:00")  # wait 20.000 s: within
    log.enqueued("c2", 0, ts=1780308001000)  # 10:00:01Z
    log.abandoned("c2", 0, ts="2026-06-01T15:45:08.123+05:45")  # 10:00:08.123Z: wait 7.123 s
    log.enqueued("c3", 0, ts="2026-06-01T06:00:02-04:00")  # 10:00:02Z
    log.answered("c3", 0, ts=1780308022001)  # 10:00:22.001Z: wait 20.001 s, not within
    log.enqueued("c4", 0, ts="2026-06-01t10:00:03z")
    log.abandoned("c4", 0, ts="2026-06-01T10:00:07.999Z")  # wait 4.999 s: short
    total = report_of(log)["q1"]["total"]
    assert pick(total, "entered", "answered", "answered_within_threshold", "abandoned",
                "abandoned_within_threshold", "short_abandoned") == {
        "entered": 4, "answered": 2, "answered_within_threshold": 1, "abandoned": 1,
        "abandoned_within_threshold": 1, "short_abandoned": 1}
    assert total["asa_seconds"] == pytest.approx(20.0005, abs=1e-9)
    assert total["average_abandon_seconds"] == pytest.approx(7.123, abs=1e-9)
    assert total["longest_answered_wait_seconds"] == pytest.approx(20.001, abs=1e-9)
    assert total["service_level"] == pytest.approx(1 / 3)


def test_skipped_lines_are_counted_by_result_and_reason():
    log = contract_log()
    lines = log.lines()
    lines.insert(3, lines[2])  # duplicate at once
    lines.insert(12, lines[0])  # duplicate later, its interval still open
    lines.append(lines[0])  # after 10:16 (interval end + grace): late
    lines += ["", "   ", '{"event_id": "junk", "type": ', '{"event_id": "x", "type": "call.parked", "ts": 0}',
              line({"event_id": "g", "type": "call.answered", "ts": "2026-06-01T10:20:00Z", "call_id": "ghost",
                    "queue": "q1"})]
    report = run_report(lines)
    assert report.skipped == {"duplicate:duplicate": 2, "invalid:invalid_json": 1, "invalid:unknown_type": 1,
                              "late:late": 1, "rejected:unknown_call": 1}
    assert report.to_dict()["queues"] == report_of(contract_log())


def test_feeding_the_same_input_twice_gives_the_same_report():
    once = report_of(contract_log())
    twice = report_of(contract_log().lines() * 2)
    assert twice == once


def test_an_overflow_chain_counts_one_visit_on_each_queue():
    log = EventLog()
    log.enqueued("c6", 0, queue="q1")
    log.dequeued("c6", 30, to_queue="q2", queue="q1")
    log.enqueued("c6", 30, queue="q2")
    log.dequeued("c6", 90, reason="timeout", to_queue="q3", queue="q2")
    log.enqueued("c6", 90, queue="q3")
    log.answered("c6", 102.5, queue="q3")
    queues = report_of(log)
    for queue in ("q1", "q2"):
        assert pick(queues[queue]["total"], "entered", "dequeued", "answered", "abandoned", "service_level") == {
            "entered": 1, "dequeued": 1, "answered": 0, "abandoned": 0, "service_level": None}
    assert pick(queues["q3"]["total"], "entered", "answered", "asa_seconds", "service_level") == {
        "entered": 1, "answered": 1, "asa_seconds": 12.5, "service_level": 1.0}
    with_dequeued = report_of(log, parse_config({"defaults": {"dequeued_in_denominator": True}}))
    assert with_dequeued["q1"]["total"]["service_level"] == 0.0


@pytest.mark.parametrize(
    ("formula", "expected"),
    [(SL_IGNORE_ABANDONS_WITHIN, 0.778), (SL_ANSWERED_OVER_OFFERED, 0.7), (SL_ABANDONS_WITHIN_MET, 0.8),
     (SL_ANSWERED_ONLY, 1.0)],
)
def test_cisco_example_through_the_report(formula, expected):
    log = EventLog()
    for i in range(70):
        log.answered_call(f"a{i}", i, 10)
    for i in range(10):
        log.abandoned_call(f"w{i}", i, 10)
    for i in range(20):
        log.abandoned_call(f"l{i}", i, 30)
    total = report_of(log, parse_config({"defaults": {"service_level_formula": formula}}))["q1"]["total"]
    assert round(total["service_level"], 3) == expected
    assert (total["answered"], total["abandoned"], total["abandoned_within_threshold"]) == (70, 30, 10)


def callback_log() -> EventLog:
    log = EventLog()
    log.enqueued("k", 0)
    log.callback("k", 12, "keep_position")
    log.connected("k", 400)
    log.enqueued("s", 0)
    log.callback("s", 45, "scheduled")
    log.connected("s", 1800)
    return log


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("copc", {"answered": 1, "answered_within_threshold": 0, "abandoned": 1, "dequeued": 0,
                  "callbacks_connected": 2, "asa_seconds": 400.0, "service_level": 0.0}),
        ("removed_from_queue", {"answered": 2, "answered_within_threshold": 1, "abandoned": 0, "dequeued": 0,
                                "callbacks_connected": 2, "asa_seconds": 28.5, "service_level": 0.5}),
        ("flow_out", {"answered": 0, "answered_within_threshold": 0, "abandoned": 0, "dequeued": 2,
                      "callbacks_connected": 2, "asa_seconds": None, "service_level": None}),
    ],
)
def test_each_callback_policy_on_the_same_events(policy, expected):
    total = report_of(callback_log(), parse_config({"defaults": {"callback_policy": policy}}))["q1"]["total"]
    assert pick(total, *expected) == expected
    assert (total["callbacks_requested"], total["callbacks_kept_position"], total["callbacks_scheduled"]) == (2, 1, 1)


def test_arrival_attribution_counts_an_outcome_in_the_interval_the_call_arrived():
    log = EventLog()
    log.enqueued("c1", 14 * 60 + 50)  # 10:14:50
    log.answered("c1", 15 * 60 + 10)  # 10:15:10
    by_outcome = report_of(log)["q1"]["intervals"]
    assert [(i["start"][11:16], i["entered"], i["answered"]) for i in by_outcome] == [("10:00", 1, 0),
                                                                                     ("10:15", 0, 1)]
    by_arrival = report_of(log, parse_config({"defaults": {"attribute_to": "arrival"}}))["q1"]["intervals"]
    assert [(i["start"][11:16], i["entered"], i["answered"]) for i in by_arrival] == [("10:00", 1, 1)]


def test_calls_without_an_end_expire_after_the_maximum_age():
    log = EventLog()
    log.enqueued("stuck", 0)
    log.answered_call("c1", 700, 5)
    config = parse_config({"limits": {"max_call_age_seconds": 600}})
    total = report_of(log, config)["q1"]["total"]
    assert pick(total, "entered", "answered", "expired") == {"entered": 2, "answered": 1, "expired": 1}


def test_a_report_on_a_fall_back_day_keeps_the_repeated_hour_apart():
    log = EventLog(start="2026-10-25T00:00:00Z")  # 01:00 BST
    log.answered_call("c1", 30 * 60, 10)  # 01:30 BST
    log.answered_call("c2", 90 * 60, 30)  # 01:30 GMT
    config = parse_config({"defaults": {"time_zone": "Europe/London", "interval_minutes": 60}})
    intervals = report_of(log, config)["q1"]["intervals"]
    assert [(i["start"], i["end"], i["answered_within_threshold"]) for i in intervals] == [
        ("2026-10-25T01:00:00+01:00", "2026-10-25T01:00:00+00:00", 1),
        ("2026-10-25T01:00:00+00:00", "2026-10-25T02:00:00+00:00", 0),
    ]


def test_csv_has_a_row_per_interval_then_a_total_and_empty_cells_for_no_value():
    text = run_report(contract_log()).to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["queue"], r["start"]) for r in rows] == [
        ("q1", "2026-06-01T10:00:00+00:00"), ("q1", "2026-06-01T10:15:00+00:00"), ("q1", "total"),
        ("q2", "2026-06-01T10:00:00+00:00"), ("q2", "total")]
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["queue", "start", "end"]
    assert set(COUNT_KEYS) | set(RATE_KEYS) <= set(header)
    q1_total = rows[2]
    assert (q1_total["end"], q1_total["entered"], q1_total["service_level"], q1_total["asa_seconds"]) == (
        "", "7", "0.2", "127.5")
    assert rows[4]["average_abandon_seconds"] == ""


def test_an_empty_input_gives_no_queues():
    assert run_report([]).to_dict() == {"queues": {}}
    assert run_report([]).to_csv().count("\n") == 1


# --- the command -----------------------------------------------------------------------------------


def streamer(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamer.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = contract_log().lines()
    lines.insert(3, lines[2])
    lines.append('{"event_id": "junk", "type": ')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_command_prints_the_json_report_and_the_skipped_lines_on_stderr(events_file: Path):
    done = streamer("report", str(events_file))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queues"] == report_of(contract_log())
    assert "skipped 2 event(s): duplicate:duplicate 1, invalid:invalid_json 1" in done.stderr


def test_command_strict_exits_1_when_a_line_was_skipped_and_0_otherwise(events_file: Path, tmp_path: Path):
    assert streamer("report", str(events_file), "--strict").returncode == 1
    clean = tmp_path / "clean.jsonl"
    clean.write_text(contract_log().jsonl())
    done = streamer("report", str(clean), "--strict")
    assert (done.returncode, done.stderr) == (0, "")


def test_command_reads_stdin_for_dash_and_writes_csv(events_file: Path):
    done = streamer("report", "-", "--format", "csv", stdin=events_file.read_text())
    assert done.returncode == 0
    assert done.stdout == run_report(events_file.read_text().splitlines()).to_csv()


def test_command_uses_the_config_file_and_writes_to_output(events_file: Path, tmp_path: Path):
    settings = tmp_path / "streamer.toml"
    settings.write_text('[defaults]\ntime_zone = "Asia/Kolkata"\ninterval_minutes = 60\n')
    out = tmp_path / "report.json"
    done = streamer("report", str(events_file), "--config", str(settings), "--output", str(out))
    assert (done.returncode, done.stdout) == (0, "")
    intervals = json.loads(out.read_text())["queues"]["q1"]["intervals"]
    assert [(i["start"], i["end"]) for i in intervals] == [("2026-06-01T15:00:00+05:30",
                                                             "2026-06-01T16:00:00+05:30")]


@pytest.mark.parametrize("problem", ["bad config", "missing config", "missing events file"])
def test_command_exits_2_with_a_message_for_a_bad_config_or_file(problem: str, events_file: Path, tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\ntarget = 80\n")
    args = {
        "bad config": ["report", str(events_file), "--config", str(bad)],
        "missing config": ["report", str(events_file), "--config", str(tmp_path / "none.toml")],
        "missing events file": ["report", str(tmp_path / "none.jsonl")],
    }[problem]
    done = streamer(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("streamer report: ")
    assert {"bad config": "defaults.target", "missing config": "does not exist",
            "missing events file": "none.jsonl"}[problem] in done.stderr

