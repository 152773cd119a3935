"""The real queue_log in ../shared/reference-data (a PBXware export, queue `IT`, 1,000 lines): it
ingests without an error, and the report on the adapter's output agrees with numbers derived by hand
from the file, under Asterisk's own definitions and under ours.

How the expected numbers were derived (by reading the file, checked with an awk one-liner over it):

* 108 ENTERQUEUE lines, 108 distinct uniqueids: 108 visits, no call enters twice.
* Outcomes: 93 CONNECT, 12 ABANDON, 1 EXITWITHTIMEOUT (1543860451.3324, after 300 s); two visits
  are still waiting when the file ends (1543942788.2389, 1543942842.2438, the last line).
* Waits (outcome epoch − ENTERQUEUE epoch) equal Asterisk's own holdtime / waittime fields on every
  line: no mismatch.
* The 93 answered waits, sorted: 2×3, 3×11, 4×6, 5×4, 6×9, 7×3, 9×2, 10, then 21×7, 22×3, 23×3,
  24×4, 25×3, 26×2, 27×2, 28, 33×2, 34×2, 35×3, 36, 51, 67, 71, 73×2, 74, 76, 77, 78, 79, 102, 103,
  104, 118, 134, 150, 167, 172, 247, 256, 279. Sum 3,599 s. Within 20 s (wait ≤ T): 39 (all up
  to 10 s; seven calls waited 21 s, just past T). Within 30 s: 39 + 25 = 64.
* The 12 abandons (call id: wait): 1543852000.1574: 191, 1543852103.1644: 197, 1543852439.1704:
  45, 1543852496.1742: 53, 1543861293.3697: 146, 1543861462.3862: 74, 1543861865.4062: 21,
  1543935570.1153: 5, 1543939468.1810: 40, 1543940871.2017: 70, 1543942485.2280: 98,
  1543942628.2322: 201. Sum 1,141 s. Within 20 s: one (5 s); within 30 s: two (5, 21). None is
  a short abandon (< 5 s): the 5 s one sits exactly on the boundary and counts as an abandon.
* 91 calls end after their answer (51 COMPLETEAGENT, 38 COMPLETECALLER, 1 ATTENDEDTRANSFER, 1
  BLINDTRANSFER) with 23,913 s of talk; two answered calls are still connected at the end.

Asterisk's definitions (app_queue: a call is "in SL" when its wait ≤ servicelevel):
  SL  = answered within T / answered                               = 39/93  (T=20), 64/93 (T=30)
  SL2 = (answered within T + abandoned within T) / (answered + abandoned) = 40/105 (T=20), 66/105
(Asterisk's live counters add an answered call when it ends and reset at each QUEUESTART; over the
whole file, counting each answered visit once, these are the figures.)
Ours (DESIGN.md, short abandons < 5 s out of every rate):
  formula 1, answered within / (answered + abandoned)              = 39/105
  formula 2, answered within / (answered + abandoned after T)      = 39/104
  ASA = 3599/93 s; abandon rate = 12/105; average abandon = 1141/12 s.
With a short-abandon threshold of 6 s the 5 s abandon becomes short: abandoned 11 (none within 20 s),
formula 1 = 39/104, abandon rate = 11/104, average abandon = 1136/11 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from streamer.sources.asterisk import QueueLogMapper

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_QUEUE_LOG = PROJECT_ROOT.parent / "shared" / "reference-data" / "asterisk-queue-log" / "queue_log"
QUEUE = "IT"

pytestmark = pytest.mark.skipif(not REAL_QUEUE_LOG.is_file(), reason=f"{REAL_QUEUE_LOG} is not present")

ENTERED = 108
ANSWERED = 93
ANSWERED_WITHIN_20 = 39
ANSWERED_WITHIN_30 = 64
ABANDONED = 12
ABANDONED_WITHIN_20 = 1
ABANDONED_WITHIN_30 = 2
DEQUEUED = 1
COMPLETED = 91
TOTAL_ANSWER_WAIT = 3599
TOTAL_ABANDON_WAIT = 1141
TOTAL_TALK = 23913

# Line kinds in the file, counted with `cut -d'|' -f5 queue_log | sort | uniq -c`.
IGNORED = {"RINGNOANSWER": 360}
SYSTEM = {"QUEUESTART": 7, "CONFIGRELOAD": 11}
UNKNOWN = {"OUTANSWER": 77, "OUTCANCEL": 24, "OUTCHANUNAVAIL": 18, "OUTCONGESTION": 9, "OUTDIAL": 128, "OUTTRANSFER": 1}
# 26 ADDMEMBER + 14 AGENTCALLBACKLOGIN → available, 10 REMOVEMEMBER + 10 AGENTCALLBACKLOGOFF →
# logged_out, 93 CONNECT → busy, 91 call ends → available (no PAUSE lines in this file).
AGENT_STATES = {"available": 26 + 14 + 91, "logged_out": 20, "busy": 93}


@pytest.fixture(scope="module")
def jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("asterisk") / "events.jsonl"
    with open(out, "w") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "streamer.cli", "ingest", "asterisk", str(REAL_QUEUE_LOG)],
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert "1000 lines" in done.stderr and "malformed, skipped 0" in done.stderr
    return out


def test_the_real_file_maps_every_line_without_an_error():
    mapper = QueueLogMapper()
    with open(REAL_QUEUE_LOG, "rb") as log:
        events = list(mapper.map_lines(log))
    stats = mapper.stats
    assert stats.lines == 1000 and stats.malformed == 0 and stats.blank == 0
    assert stats.wait_mismatches == 0
    assert dict(stats.ignored) == IGNORED
    assert dict(stats.system) == SYSTEM
    assert dict(stats.unknown) == UNKNOWN
    assert dict(stats.events) == {
        "call.enqueued": ENTERED,
        "call.answered": ANSWERED,
        "call.abandoned": ABANDONED,
        "call.dequeued": DEQUEUED,
        "call.completed": COMPLETED,
        "agent.state": sum(AGENT_STATES.values()),
    }
    assert Counter(e["state"] for e in events if e["type"] == "agent.state") == AGENT_STATES
    assert [e["reason"] for e in events if e["type"] == "call.dequeued"] == ["timeout"]
    assert sum(e.get("talk_seconds", 0) for e in events) == TOTAL_TALK
    assert {e["queue"] for e in events if "queue" in e} == {QUEUE}
    assert len({e["event_id"] for e in events}) == len(events)


def test_waits_by_event_times_give_the_hand_derived_counts():
    """The waits the pipeline will compute (answer/abandon ts − enqueue ts) from the adapter's events."""
    mapper = QueueLogMapper()
    with open(REAL_QUEUE_LOG, "rb") as log:
        events = list(mapper.map_lines(log))
    entered = {e["call_id"]: e["ts"] for e in events if e["type"] == "call.enqueued"}
    answer_waits = [(e["ts"] - entered[e["call_id"]]) / 1000 for e in events if e["type"] == "call.answered"]
    abandon_waits = [(e["ts"] - entered[e["call_id"]]) / 1000 for e in events if e["type"] == "call.abandoned"]
    assert sum(answer_waits) == TOTAL_ANSWER_WAIT
    assert sum(abandon_waits) == TOTAL_ABANDON_WAIT
    assert sum(w <= 20 for w in answer_waits) == ANSWERED_WITHIN_20
    assert sum(w <= 30 for w in answer_waits) == ANSWERED_WITHIN_30
    assert sum(w <= 20 for w in abandon_waits) == ABANDONED_WITHIN_20
    assert sum(w <= 30 for w in abandon_waits) == ABANDONED_WITHIN_30


def report_total(jsonl: Path, config: Path | None = None) -> dict:
    argv = [sys.executable, "-m", "streamer.cli", "report", str(jsonl), "--format", "json"]
    if config is not None:
        argv += ["--config", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert list(report["queues"]) == [QUEUE]
    return report["queues"][QUEUE]["total"]


def config_file(tmp_path: Path, **settings: object) -> Path:
    lines = [f"[queues.{QUEUE}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path = tmp_path / "report.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_report_on_the_adapters_output_agrees_with_the_hand_derived_numbers(jsonl):
    total = report_total(jsonl)
    counts = {
        "entered": ENTERED,
        "answered": ANSWERED,
        "answered_within_threshold": ANSWERED_WITHIN_20,
        "abandoned": ABANDONED,
        "abandoned_within_threshold": ABANDONED_WITHIN_20,
        "short_abandoned": 0,
        "dequeued": DEQUEUED,
        "callbacks_requested": 0,
        "callbacks_connected": 0,
        "callbacks_failed": 0,
        "expired": 0,
    }
    assert {key: total[key] for key in counts} == counts
    assert total["service_level"] == pytest.approx(39 / 105)
    assert total["asa_seconds"] == pytest.approx(TOTAL_ANSWER_WAIT / ANSWERED)
    assert total["abandon_rate"] == pytest.approx(12 / 105)
    assert total["average_abandon_seconds"] == pytest.approx(TOTAL_ABANDON_WAIT / ABANDONED)


@pytest.mark.parametrize(
    ("threshold", "formula", "service_level"),
    [
        (20, "answered_only", 39 / 93),  # Asterisk SL
        (20, "abandons_within_count_as_met", 40 / 105),  # Asterisk SL2
        (20, "ignore_abandons_within", 39 / 104),
        (20, "answered_over_offered", 39 / 105),
        (30, "answered_only", 64 / 93),
        (30, "abandons_within_count_as_met", 66 / 105),
        (30, "ignore_abandons_within", 64 / 103),
        (30, "answered_over_offered", 64 / 105),
    ],
)
def test_asterisks_service_levels_and_ours_from_the_report(jsonl, tmp_path, threshold, formula, service_level):
    config = config_file(tmp_path, threshold_seconds=threshold, service_level_formula=formula)
    total = report_total(jsonl, config)
    within = {20: (ANSWERED_WITHIN_20, ABANDONED_WITHIN_20), 30: (ANSWERED_WITHIN_30, ABANDONED_WITHIN_30)}
    assert (total["answered_within_threshold"], total["abandoned_within_threshold"]) == within[threshold]
    assert total["service_level"] == pytest.approx(service_level)


def test_a_longer_short_abandon_threshold_takes_the_5_second_abandon_out(jsonl, tmp_path):
    total = report_total(jsonl, config_file(tmp_path, short_abandon_seconds=6))
    assert total["short_abandoned"] == 1
    assert total["abandoned"] == 11
    assert total["abandoned_within_threshold"] == 0
    assert total["service_level"] == pytest.approx(39 / 104)
    assert total["abandon_rate"] == pytest.approx(11 / 104)
    assert total["average_abandon_seconds"] == pytest.approx(1136 / 11)
    assert total["asa_seconds"] == pytest.approx(TOTAL_ANSWER_WAIT / ANSWERED)
