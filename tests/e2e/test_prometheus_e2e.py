"""What on-call and the Grafana dashboards see: a real Prometheus scraping a real `streamer worker` fed
through the real broker with events stamped up to the wall clock (tests/e2e/live_traffic.py).

- the worker's /metrics text: the documented families and labels, no rate without a denominator,
  Faust's own metrics, no label per call or agent;
- every dashboard query (tests/ops_queries.py, each `$window` of the queue-detail dashboard) returns
  data through Prometheus's HTTP API, and every rule evaluates without error;
- the Service Level alert fires for the breaching queue and for no other.

The shipped rules hold an alert for minutes before it fires (`for: 5m` on the Service Level rule).
Prometheus here evaluates a copy of prometheus/rules/ in which every `for:` is HOLD_SECONDS instead,
expressions and thresholds unchanged, so the test sees the alert go from pending to firing in seconds.
The holds themselves are covered by the promtool unit tests in prometheus/tests/.

Without the `prometheus` binary (Debian package `prometheus`; scripts/install-system-deps.sh) the
Prometheus tests skip with the reason locally and fail under CI (`CI=true`).
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from streamer.core.queues import EXPORTED_AGENT_STATES, WINDOWS
from streamer.core.tracker import DUPLICATE, INVALID, LATE, PROCESSED, REJECTED
from streamer.export.collector import (
    CALLBACK_TOTALS,
    FCR_DECISIONS,
    FCR_WINDOW_FAMILIES,
    JOURNEY_WINDOW_COUNTS,
    JOURNEY_WINDOW_RATES,
    OUTCOME_TOTALS,
    WINDOW_COUNTS,
    WINDOW_RATES,
)
from tests import ops_queries
from tests.e2e.live_traffic import (
    BREACHING_QUEUE,
    GROUP,
    HEALTHY_QUEUE,
    TENANT,
    WAITING_ONLY_QUEUE,
    Traffic,
    fed_worker,
)
from tests.e2e.prometheus_process import JOB, PrometheusError, PrometheusProcess, find_prometheus
from tests.worker_process import WorkerProcess

pytestmark = pytest.mark.e2e
T = TypeVar("T")

SL_ALERT = "CallcenterServiceLevelBelowTarget"
NO_AGENTS_ALERT = "CallcenterCallsWaitingNoAgents"
HOLD_SECONDS = 5
SCRAPE_SECONDS = 1
DATA_TIMEOUT_SECONDS = 60.0
ALERT_TIMEOUT_SECONDS = 60.0

# Label names of every callcenter_* sample the worker serves (docs/monitoring.md "Metrics").
WINDOW_LABELS = frozenset({"queue", "window"})
EXPECTED_LABELS: dict[str, frozenset[str]] = {
    **{name: WINDOW_LABELS for name in (*WINDOW_COUNTS, *WINDOW_RATES)},
    "callcenter_calls_waiting": frozenset({"queue", "kind"}),
    "callcenter_oldest_wait_seconds": frozenset({"queue"}),
    "callcenter_calls_waiting_over_threshold": frozenset({"queue"}),
    "callcenter_agents": frozenset({"queue", "state"}),
    "callcenter_service_level_target_ratio": frozenset({"queue"}),
    "callcenter_service_level_threshold_seconds": frozenset({"queue"}),
    "callcenter_queue_last_event_timestamp_seconds": frozenset({"queue"}),
    "callcenter_queue_expected_wait_seconds": frozenset({"queue"}),
    "callcenter_queue_projected_service_level_ratio": frozenset({"queue"}),
    "callcenter_queue_target_chance_ratio": frozenset({"queue"}),
    "callcenter_queue_agents_needed": frozenset({"queue"}),
    "callcenter_calls_entered_total": frozenset({"queue"}),
    "callcenter_call_outcomes_total": frozenset({"queue", "outcome"}),
    "callcenter_callbacks_total": frozenset({"queue", "result"}),
    "callcenter_answered_wait_seconds_bucket": frozenset({"queue", "le"}),
    "callcenter_answered_wait_seconds_sum": frozenset({"queue"}),
    "callcenter_answered_wait_seconds_count": frozenset({"queue"}),
    "callcenter_events_total": frozenset({"result", "reason"}),
    "callcenter_last_event_timestamp_seconds": frozenset(),
    "callcenter_watermark_timestamp_seconds": frozenset({"partition"}),
    "callcenter_consumer_lag_messages": frozenset({"topic", "partition"}),
    "callcenter_intervals_emitted_total": frozenset(),
    "callcenter_queue_intervals_pending": frozenset({"queue"}),
    "callcenter_queue_idle": frozenset({"queue"}),
    "callcenter_processed_offset": frozenset({"topic", "partition"}),
    "callcenter_events_partition_idle": frozenset({"partition"}),
    "callcenter_worker_heap_trims_total": frozenset(),
    "callcenter_worker_heap_released_bytes_total": frozenset(),
    **{name: WINDOW_LABELS for name in (*JOURNEY_WINDOW_COUNTS, *JOURNEY_WINDOW_RATES, *FCR_WINDOW_FAMILIES)},
    "callcenter_fcr_decisions_total": frozenset({"queue", "decision"}),
}
# Groups and tenants: the same families under callcenter_group_* / callcenter_tenant_*, `queue` replaced.
for _kind in ("group", "tenant"):
    for _name, _labels in list(EXPECTED_LABELS.items()):
        _rollup = f"callcenter_{_kind}_{_name.removeprefix('callcenter_')}"
        if _rollup in ops_queries.ROLLUP_METRICS:
            EXPECTED_LABELS[_rollup] = frozenset({_kind} | (_labels - {"queue"}))
# Bounded label values: a value outside these sets would be a series per something unbounded.
ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "window": frozenset(WINDOWS),
    "kind": frozenset({"caller", "callback"}),
    "state": frozenset(EXPORTED_AGENT_STATES),
    "outcome": frozenset(OUTCOME_TOTALS),
    "result": frozenset({*CALLBACK_TOTALS, PROCESSED, DUPLICATE, REJECTED, LATE, INVALID}),
    "decision": frozenset(FCR_DECISIONS),
    "group": frozenset({GROUP}),
    "tenant": frozenset({TENANT}),
}
# Per-call, per-agent or per-interval label names, and values that look like a time (an interval start).
FORBIDDEN_LABELS = frozenset({"call_id", "call", "agent_id", "event_id", "customer_id", "interval", "start", "end"})
TIMESTAMP_VALUE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
RATE_FAMILIES = frozenset({"callcenter_service_level_ratio", "callcenter_asa_seconds", "callcenter_abandon_ratio"})


def require_prometheus() -> str:
    """The Prometheus executable; skip without it on a developer machine, fail under CI."""
    executable = find_prometheus()
    if executable is not None:
        return executable
    reason = ("prometheus not found: apt-get install -y prometheus (scripts/install-system-deps.sh installs it), "
              "or point $STREAMER_PROMETHEUS at the executable")
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[tuple[WorkerProcess, Traffic]]:
    with fed_worker(tmp_path_factory.mktemp("worker"), kafka_bootstrap) as running:
        yield running


def rules_with_short_holds(target_dir: Path) -> list[Path]:
    """Copies of the project's rule files with every `for:` hold cut to HOLD_SECONDS."""
    written = []
    for path in ops_queries.rule_files():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = f"{HOLD_SECONDS}s"
        copy = target_dir / path.name
        copy.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        written.append(copy)
    return written


@pytest.fixture(scope="module")
def prometheus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    executable = require_prometheus()  # before the worker starts: nothing to wait for when it is missing
    worker, _ = request.getfixturevalue("live")
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = rules_with_short_holds(workdir)
    server = PrometheusProcess(executable, workdir, [f"127.0.0.1:{worker.web_port}"], rules, SCRAPE_SECONDS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---- the /metrics text ----


def metric_samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def by_name(samples: list[Sample], name: str) -> list[Sample]:
    return [sample for sample in samples if sample.name == name]


@pytest.mark.timeout(240)
def test_metrics_text_has_the_documented_families_and_no_unbounded_labels(
    live: tuple[WorkerProcess, Traffic],
) -> None:
    worker, traffic = live
    samples = metric_samples(worker.get_text("/metrics"))
    names = {sample.name for sample in samples}

    missing = ops_queries.METRIC_CATALOGUE - ops_queries.SERVED_WITH_DATA - names
    assert not missing, f"families in the catalogue the worker does not serve: {sorted(missing)}"
    assert any(name.startswith(ops_queries.FAUST_PREFIX) for name in names), "Faust's own metrics are missing"

    ours = [sample for sample in samples if sample.name.startswith("callcenter_")]
    unexpected = {sample.name for sample in ours} - set(EXPECTED_LABELS)
    assert not unexpected, f"undocumented callcenter_* metrics: {sorted(unexpected)}"
    for sample in ours:
        assert set(sample.labels) == EXPECTED_LABELS[sample.name], sample
        for label, value in sample.labels.items():
            if label in ALLOWED_VALUES:
                assert value in ALLOWED_VALUES[label], sample
            if label == "queue":
                assert value in traffic.queues, sample

    ids = traffic.ids()
    for sample in samples:  # Faust's own included
        assert not FORBIDDEN_LABELS & set(sample.labels), sample
        for value in sample.labels.values():
            assert value not in ids, f"a label carries a call, agent or event id: {sample}"
            assert not TIMESTAMP_VALUE.match(value), f"a label carries a time: {sample}"

    # Every queue in every window for the counts; each of the two kinds of waiting.
    for name in WINDOW_COUNTS:
        shown = {(s.labels["queue"], s.labels["window"]) for s in by_name(samples, name)}
        assert shown == {(queue, window) for queue in traffic.queues for window in WINDOWS}, name
    waiting = {(s.labels["queue"], s.labels["kind"]) for s in by_name(samples, "callcenter_calls_waiting")}
    assert waiting == {(queue, kind) for queue in traffic.queues for kind in ("caller", "callback")}

    # A rate with nothing in its denominator has no sample, in every window; the others have one.
    for name in RATE_FAMILIES:
        shown = {(s.labels["queue"], s.labels["window"]) for s in by_name(samples, name)}
        assert not {queue for queue, _ in shown} & {WAITING_ONLY_QUEUE}, f"{name} for a queue with no outcome"
    service_level = {(s.labels["queue"], s.labels["window"]): s.value
                     for s in by_name(samples, "callcenter_service_level_ratio")}
    assert set(service_level) == {(q, w) for q in (HEALTHY_QUEUE, BREACHING_QUEUE) for w in WINDOWS}
    assert service_level[(BREACHING_QUEUE, "30m")] < 0.8 <= service_level[(HEALTHY_QUEUE, "30m")]

    # Agents by state only where agent events arrive.
    agents = {s.labels["queue"] for s in by_name(samples, "callcenter_agents")}
    assert agents == {HEALTHY_QUEUE, BREACHING_QUEUE}
    waiting_callers = {s.labels["queue"]: s.value for s in by_name(samples, "callcenter_calls_waiting")
                       if s.labels["kind"] == "caller"}
    assert waiting_callers[WAITING_ONLY_QUEUE] == 3

    processed = {s.labels["result"]: s.value for s in by_name(samples, "callcenter_events_total")}
    assert processed == {"processed": len(traffic.events)}
    # The customer's journey: contacts, repeats and surveys reached the queues; the group counts its calls.
    today = {(s.name, s.labels.get("queue")): s.value for s in ours if s.labels.get("window") == "today"}
    assert today[("callcenter_repeat_contacts", BREACHING_QUEUE)] > 0
    assert ("callcenter_nps_score", HEALTHY_QUEUE) in today and ("callcenter_csat_ratio", HEALTHY_QUEUE) in today
    group_offered = {s.labels["window"]: s.value for s in by_name(samples, "callcenter_group_calls_offered")}
    assert group_offered["today"] > 0
    assert not any("queue" in s.labels for s in ours if s.name.startswith(("callcenter_group_", "callcenter_tenant_")))

    lag_topics = {s.labels["topic"] for s in by_name(samples, "callcenter_consumer_lag_messages")}
    assert lag_topics == {worker.env["STREAMER_TOPIC_EVENTS"], worker.env["STREAMER_TOPIC_OUTCOMES"]}


# ---- through Prometheus ----


def queries_for_every_window() -> list[tuple[str, str]]:
    """Each dashboard query with each value of the queue-detail dashboard's `$window` selector."""
    found: dict[str, str] = {}
    for window in WINDOWS:
        for where, expr in ops_queries.dashboard_queries({"window": window}):
            found.setdefault(expr, f"{where} (window {window})")
    return [(where, expr) for expr, where in found.items()]


def poll(probe: Callable[[], T], done: Callable[[T], bool], timeout: float, pause: float = 0.5) -> T:
    """Call `probe` until `done` accepts its value or `timeout` seconds have passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(pause)


def empty_queries(server: PrometheusProcess, queries: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {expr}" for where, expr in queries if not server.query(expr)]


@pytest.mark.timeout(240)
def test_every_dashboard_query_returns_data_and_every_rule_evaluates(
    prometheus: PrometheusProcess, live: tuple[WorkerProcess, Traffic]
) -> None:
    queries = queries_for_every_window()
    empty = poll(lambda: empty_queries(prometheus, queries), lambda found: not found, DATA_TIMEOUT_SECONDS)
    targets = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in prometheus.targets()]
    assert not empty, f"{len(empty)} dashboard queries return no data (scrape targets {targets}):\n" + "\n".join(
        empty)
    assert prometheus.query(f'up{{job="{JOB}"}} == 1'), targets

    failing = []
    for where, expr in ops_queries.rule_queries():
        try:
            prometheus.query(expr)
        except PrometheusError as error:
            failing.append(f"{where}: {error}")
    assert not failing, "\n".join(failing)

    # Prometheus's own evaluation of the loaded rules, once each has run.
    rules = poll(lambda: [rule for group in prometheus.rule_groups() for rule in group["rules"]],
                 lambda found: all(rule["health"] != "unknown" for rule in found), DATA_TIMEOUT_SECONDS)
    assert len(rules) == len(ops_queries.rule_queries())
    unhealthy = [(rule["name"], rule["health"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"]
    assert not unhealthy, unhealthy


def active_alerts(server: PrometheusProcess, name: str) -> dict[str, dict[str, Any]]:
    """queue → the alert `name` pending or firing for it."""
    return {alert["labels"].get("queue", ""): alert for alert in server.alerts()
            if alert["labels"]["alertname"] == name}


@pytest.mark.timeout(240)
def test_service_level_alert_fires_for_the_breaching_queue_only(
    prometheus: PrometheusProcess, live: tuple[WorkerProcess, Traffic]
) -> None:
    alerts = poll(lambda: active_alerts(prometheus, SL_ALERT),
                  lambda found: found.get(BREACHING_QUEUE, {}).get("state") == "firing", ALERT_TIMEOUT_SECONDS)
    assert alerts.get(BREACHING_QUEUE, {}).get("state") == "firing", (
        f"{SL_ALERT} is not firing for {BREACHING_QUEUE}: {alerts}\n{prometheus.log_tail()}")
    # The healthy queue and the queue without outcomes had the same time to go pending: they must not.
    assert set(alerts) == {BREACHING_QUEUE}, alerts

    alert = alerts[BREACHING_QUEUE]
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == f"Service Level below target on queue {BREACHING_QUEUE}"
    assert "below its target of 80%" in alert["annotations"]["description"], alert["annotations"]
    firing = prometheus.query(f'ALERTS{{alertname="{SL_ALERT}", alertstate="firing"}}')
    assert [sample["metric"]["queue"] for sample in firing] == [BREACHING_QUEUE]

    # Calls wait on the queue without agent events: nothing is known of its agents, so no page.
    assert not active_alerts(prometheus, NO_AGENTS_ALERT), active_alerts(prometheus, NO_AGENTS_ALERT)


def test_the_api_lists_groups_tenants_and_detractors(live: tuple[WorkerProcess, Traffic]) -> None:
    """/api/groups and /api/tenants of the real worker: the configured roll-ups in a queue's shape; the
    queues list today's detractors to call back and the FCR of today's decisions."""
    worker, _ = live
    groups = worker.get_json("/api/groups")
    assert [g["group"] for g in groups["groups"]] == [GROUP]
    front = worker.get_json(f"/api/groups/{GROUP}")
    assert front["queues"] == sorted([HEALTHY_QUEUE, BREACHING_QUEUE])
    assert front["windows"]["today"]["entered"] > 0 and "agents" not in front["live"]
    assert "stale_after_seconds" in groups and groups["last_event_time"]
    tenants = worker.get_json("/api/tenants")
    assert [t["tenant"] for t in tenants["tenants"]] == [TENANT]
    try:
        worker.get_json("/api/groups/nobody")
        raise AssertionError("an unknown group must be a 404")
    except urllib.error.HTTPError as error:
        assert error.code == 404
    queues = {q["queue"]: q for q in worker.get_json("/api/queues")["queues"]}
    for queue in queues.values():
        assert {"fcr_resolved", "fcr_unresolved", "fcr_rate"} <= set(queue["windows"]["today"])
        for entry in queue["detractors_today"]:
            assert set(entry) == {"call_id", "time", "score"} and 0 <= entry["score"] <= 6
    assert any(queue["detractors_today"] for queue in queues.values()), "surveys were sent: some detractor"
