"""Live traffic for end-to-end tests: a real `streamer worker` fed, through the real broker, with events
stamped up to the wall clock, so its live windows (current interval, 5–60 minutes, today) have data.

The worker's "now" is the wall clock, so the events are simulated from 35 minutes ago (the simulator's
model, `streamer simulate --start … --out -`) and cut at the moment the file is written: calls still
waiting at that moment stay waiting in the worker. The queues:

- `sales`: healthy (5 Erlangs on 9 agents: Service Level about 96 %, no abandons);
- `support`: breaching (20 Erlangs on 4 agents, patience 60 s, callbacks offered: answers and abandons
  every minute, about 120 calls in 30 minutes, well over the alert's volume guard of 10);
- `new-line`: three callers entered in the last 20 seconds and still waiting, nothing else (no
  answered or abandoned call: no Service Level; no agent events);
- optional extra queues with the healthy traffic (e.g. a hostile name for the wallboard).

Callers carry customer ids (abandoned callers of `support` call again, so there are repeat contacts)
and answered ones send surveys; the group `front` holds `sales` and `support`, the tenant `acme`
lists all three queues, and the worker exports tenants (STREAMER_TENANT_LABEL=true).

The worker has no events after the cut, so its windows must hold data for the whole test wherever the
wall clock stands: intervals are 60 minutes, and the queues' time zone is chosen so that the current
interval began 15 to 45 minutes ago (a whole-hour or a half-hour UTC offset) and local midnight is hours
away ("today" holds the whole backfill).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tests.worker_process import WorkerProcess, unique_names

BACKFILL_MINUTES = 35
INTERVAL_MINUTES = 60
HALF_HOUR_ZONES = ("Asia/Kolkata", "Pacific/Marquesas")  # UTC+5:30 and UTC-9:30, 15 hours apart
CUSTOMERS = ("--customers", "200", "--surveys", "0.5")
HEALTHY = ("--calls-per-hour", "150", "--aht", "120", "--agents", "9", *CUSTOMERS)
BREACHING = ("--calls-per-hour", "240", "--aht", "300", "--agents", "4", "--patience", "60",
             "--callback-after", "30", "--callback-accept", "0.5", "--callback-scheduled", "0.3",
             "--callback-reach", "0.7", *CUSTOMERS, "--recall-abandoned", "0.6")
GROUP, TENANT = "front", "acme"
HEALTHY_QUEUE, BREACHING_QUEUE, WAITING_ONLY_QUEUE = "sales", "support", "new-line"
# Counts the worker's "today" window must show once every event is processed (the report's names).
COUNT_KEYS = ("entered", "answered", "answered_within_threshold", "abandoned", "short_abandoned", "dequeued",
              "callbacks_requested", "callbacks_connected", "callbacks_failed")
PROCESSED_TIMEOUT_SECONDS = 90.0


def _local_minutes(now: datetime, zone: str) -> float:
    local = now.astimezone(ZoneInfo(zone))
    return local.hour * 60 + local.minute + local.second / 60


def _from_midnight(now: datetime, zone: str) -> float:
    minutes = _local_minutes(now, zone)
    return min(minutes, 24 * 60 - minutes)


def centre_time_zone(now: datetime) -> str:
    """A time zone without daylight saving time in which, at `now`, the current 60-minute interval
    began 15 to 45 minutes ago and local midnight is more than an hour away."""
    if 15 <= now.minute + now.second / 60 <= 45:
        # A whole-hour offset putting local time around noon; Etc/GMT zones carry the POSIX sign
        # (Etc/GMT-3 is UTC+3).
        offset = 12 - round(now.hour + now.minute / 60)  # from +12 down to -12
        return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return max(HALF_HOUR_ZONES, key=lambda zone: _from_midnight(now, zone))


def _epoch_ms(event: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def simulated_queue(queue: str, tag: str, seed: int, start: datetime, traffic: Sequence[str]) -> list[dict[str, Any]]:
    """`streamer simulate` of one queue from `start`, renamed to `queue`, its ids prefixed with `tag`.

    The simulator names calls and agents the same way in every run; the prefix keeps the queues' calls
    and agents apart in one file.
    """
    args = [sys.executable, "-m", "streamer.cli", "simulate", "--queues", "sim", "--seed", str(seed),
            "--start", _iso(start), "--hours", str(BACKFILL_MINUTES / 60), "--out", "-", *traffic]
    out = subprocess.run(args, check=True, capture_output=True, timeout=120).stdout
    events = []
    for line in out.splitlines():
        event = orjson.loads(line)
        event["event_id"] = f"{tag}-{event['event_id']}"
        for name in ("call_id", "agent_id", "customer_id"):
            if name in event:
                event[name] = f"{tag}-{event[name]}"
        if "queue" in event:
            event["queue"] = queue
        if "queues" in event:
            event["queues"] = [queue]
        events.append(event)
    return events


def waiting_callers(queue: str, now: datetime, count: int = 3) -> list[dict[str, Any]]:
    """Callers who entered `queue` in the last seconds and are still waiting."""
    return [{"event_id": f"wait-{i}-1", "type": "call.enqueued", "ts": _iso(now - timedelta(seconds=10 * i)),
             "call_id": f"wait-{i}", "queue": queue} for i in range(count)]


@dataclass
class Traffic:
    """The events written, with what the worker must show once it has processed them."""

    path: Path
    time_zone: str
    events: list[dict[str, Any]]
    queues: list[str] = field(default_factory=list)

    def ids(self) -> set[str]:
        """Every call, agent and event id in the file: none may become a metric label."""
        return {str(event[name]) for event in self.events for name in ("call_id", "agent_id", "event_id")
                if name in event}

    def entered(self) -> Counter[str]:
        return Counter(event["queue"] for event in self.events if event["type"] == "call.enqueued")

    def agents(self) -> dict[str, Counter[str]]:
        """queue → agents by their last state (logged-out agents leave the count)."""
        last: dict[tuple[str, str], str] = {}
        for event in self.events:
            if event["type"] == "agent.state":
                for queue in event.get("queues", []):
                    last[(queue, event["agent_id"])] = event["state"]
        result: dict[str, Counter[str]] = {}
        for (queue, _), state in last.items():
            if state != "logged_out":
                result.setdefault(queue, Counter())[state] += 1
        return result


def write_traffic(path: Path, time_zone: str, extra_queues: Sequence[str] = ()) -> Traffic:
    """Simulated events from BACKFILL_MINUTES ago up to now, time-ordered, as JSONL at `path`."""
    now = datetime.now(UTC)
    start = now - timedelta(minutes=BACKFILL_MINUTES)
    events = simulated_queue(HEALTHY_QUEUE, "s", 3, start, HEALTHY)
    events += simulated_queue(BREACHING_QUEUE, "b", 4, start, BREACHING)
    for index, queue in enumerate(extra_queues):
        events += simulated_queue(queue, f"x{index}", 10 + index, start, HEALTHY)
    cut = int(now.timestamp() * 1000)
    events = [event for event in events if _epoch_ms(event) <= cut]
    events += waiting_callers(WAITING_ONLY_QUEUE, now)
    events.sort(key=_epoch_ms)
    path.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in events))
    queues = [HEALTHY_QUEUE, BREACHING_QUEUE, WAITING_ONLY_QUEUE, *extra_queues]
    return Traffic(path=path, time_zone=time_zone, events=events, queues=queues)


def config_text(time_zone: str) -> str:
    # idle_seconds: a quiet stage-1 partition must not hold the watermark back for a minute.
    return (f'[defaults]\ntime_zone = "{time_zone}"\ninterval_minutes = {INTERVAL_MINUTES}\n\n'
            "[limits]\nidle_seconds = 3\n\n"
            f'[groups.{GROUP}]\nqueues = ["{HEALTHY_QUEUE}", "{BREACHING_QUEUE}"]\n\n'
            f'[tenants.{TENANT}]\nqueues = ["{HEALTHY_QUEUE}", "{BREACHING_QUEUE}", "{WAITING_ONLY_QUEUE}"]\n')


def offline_totals(traffic: Traffic, config: Path) -> dict[str, dict[str, Any]]:
    """queue → the offline report's `total` block for the same file and settings."""
    out = subprocess.run([sys.executable, "-m", "streamer.cli", "report", str(traffic.path), "--config", str(config)],
                         check=True, capture_output=True, timeout=120).stdout
    return {queue: data["total"] for queue, data in orjson.loads(out)["queues"].items()}


def replay(path: Path, topic: str, bootstrap: str) -> None:
    subprocess.run([sys.executable, "-m", "streamer.cli", "replay", str(path), "--topic", topic,
                    "--bootstrap", bootstrap], check=True, capture_output=True, timeout=120)


def unprocessed(snapshot: dict[str, Any], want: dict[str, dict[str, Any]],
                agents: dict[str, Counter[str]]) -> list[str]:
    """What the worker's API answer still lacks: `want` (the offline totals), agents' states, a watermark."""
    shown = {queue["queue"]: queue for queue in snapshot["queues"]}
    # Stage 1 publishes its progress every second: the watermark follows the counts by a moment.
    lacking = [] if snapshot["watermark"] is not None else ["no watermark yet"]
    for queue, total in want.items():
        if queue not in shown:
            lacking.append(f"{queue}: not shown")
            continue
        today = shown[queue]["windows"]["today"]
        counts = {key: (today[key], total[key]) for key in COUNT_KEYS if today[key] != total[key]}
        if counts:
            lacking.append(f"{queue}: (shown, offline) {counts}")
        want_agents = {state: n for state, n in agents.get(queue, Counter()).items() if n}
        shown_agents = {state: n for state, n in shown[queue]["live"]["agents"].items() if n}
        if shown_agents != want_agents:
            lacking.append(f"{queue}: agents {shown_agents}, want {want_agents}")
    return lacking


def wait_until_processed(worker: WorkerProcess, traffic: Traffic, config: Path) -> None:
    """Poll the worker's API until every queue's "today" counts equal the offline report's totals, its
    agents are in their last states and stage 2 has a watermark."""
    want = offline_totals(traffic, config)
    assert sorted(want) == sorted(traffic.queues), f"the report has queues {sorted(want)}"
    agents = traffic.agents()
    deadline = time.monotonic() + PROCESSED_TIMEOUT_SECONDS
    lacking = ["no answer yet"]
    while time.monotonic() < deadline:
        lacking = unprocessed(worker.get_json("/api/queues"), want, agents)
        if not lacking:
            return
        time.sleep(0.5)
    raise AssertionError(f"the worker did not process the traffic within {PROCESSED_TIMEOUT_SECONDS:.0f} s: "
                         f"{lacking}\n{worker.log_tail()}")


@contextmanager
def fed_worker(workdir: Path, bootstrap: str, extra_queues: Sequence[str] = ()) -> Iterator[tuple[WorkerProcess,
                                                                                                Traffic]]:
    """A running worker that has processed fresh traffic (see the module docstring); stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**unique_names("e2e"), "STREAMER_PARTITIONS": "2", "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    config = workdir / "streamer.toml"
    time_zone = centre_time_zone(datetime.now(UTC))
    config.write_text(config_text(time_zone))
    env["STREAMER_CONFIG"] = str(config)
    env["STREAMER_TENANT_LABEL"] = "true"
    worker = WorkerProcess(env, workdir / "data", workdir / "worker.log")
    try:
        worker.start()
        # Cut at the wall clock once the worker runs, so its numbers describe the moment the test looks.
        traffic = write_traffic(workdir / "events.jsonl", time_zone, extra_queues)
        replay(traffic.path, env["STREAMER_TOPIC_EVENTS"], bootstrap)
        wait_until_processed(worker, traffic, config)
        yield worker, traffic
    finally:
        worker.stop()
