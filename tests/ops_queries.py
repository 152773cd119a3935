"""Every PromQL expression the dashboards and alert rules run, ready for a real Prometheus.

`all_queries()` lists (where, expr) for each Grafana panel target, each dashboard variable and each rule,
with Grafana's template variables replaced, so an end-to-end test can send each one to a Prometheus
scraping a live worker. `METRIC_CATALOGUE` is the exporter's metric contract, for checking that no
query names a metric the workers never export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
RULES_DIR = ROOT / "prometheus" / "rules"
DATASOURCE_UID = "prometheus"

# Groups {group, ...} (and tenants {tenant, ...} with STREAMER_TENANT_LABEL=true): the queue families
# of docs/monitoring.md "Groups and tenants" under their own prefix.
_ROLLUP_SUFFIXES = (
    "calls_offered", "calls_answered", "calls_answered_within_threshold", "calls_abandoned",
    "calls_short_abandoned", "calls_dequeued", "callbacks_requested", "service_level_ratio",
    "service_level_live_ratio", "asa_seconds", "abandon_ratio", "average_abandon_seconds",
    "longest_answered_wait_seconds", "calls_waiting", "oldest_wait_seconds", "service_level_target_ratio",
    "contacts_identified", "repeat_contacts", "handoffs_in", "handoffs_out", "journeys",
    "journeys_with_handoff", "journeys_passed_around", "journeys_answered", "journeys_answered_within_threshold",
    "nps_responses", "nps_promoters", "nps_passives", "nps_detractors", "csat_responses", "csat_satisfied",
    "repeat_contact_ratio", "journey_service_level_ratio", "journey_asa_seconds", "nps_score", "csat_ratio",
    "fcr_resolved", "fcr_unresolved", "fcr_ratio", "fcr_decisions_total",
)
ROLLUP_METRICS = tuple(f"callcenter_{kind}_{suffix}" for kind in ("group", "tenant") for suffix in _ROLLUP_SUFFIXES)

# The exporter's contract: every metric a streamer worker serves on /metrics (label sets in comments).
METRIC_CATALOGUE: frozenset[str] = frozenset(
    {
        # per queue and window {queue, window}
        "callcenter_service_level_ratio",
        "callcenter_service_level_live_ratio",
        "callcenter_asa_seconds",
        "callcenter_abandon_ratio",
        "callcenter_average_abandon_seconds",
        "callcenter_longest_answered_wait_seconds",
        "callcenter_calls_offered",
        "callcenter_calls_answered",
        "callcenter_calls_answered_within_threshold",
        "callcenter_calls_abandoned",
        "callcenter_calls_short_abandoned",
        "callcenter_calls_dequeued",
        "callcenter_callbacks_requested",
        # per queue, live
        "callcenter_calls_waiting",  # {queue, kind}
        "callcenter_oldest_wait_seconds",
        "callcenter_calls_waiting_over_threshold",
        "callcenter_agents",  # {queue, state}
        "callcenter_service_level_target_ratio",
        "callcenter_service_level_threshold_seconds",
        "callcenter_queue_last_event_timestamp_seconds",
        # foresight, per queue
        "callcenter_queue_expected_wait_seconds",
        "callcenter_queue_projected_service_level_ratio",
        "callcenter_queue_target_chance_ratio",
        "callcenter_queue_agents_needed",
        # monotonic per queue
        "callcenter_calls_entered_total",
        "callcenter_call_outcomes_total",  # {queue, outcome}
        "callcenter_callbacks_total",  # {queue, result}
        "callcenter_answered_wait_seconds_bucket",  # {queue, le}
        "callcenter_answered_wait_seconds_sum",
        "callcenter_answered_wait_seconds_count",
        # pipeline health, per worker
        "callcenter_events_total",  # {result, reason}
        "callcenter_last_event_timestamp_seconds",
        "callcenter_watermark_timestamp_seconds",
        "callcenter_consumer_lag_messages",  # {topic, partition}
        "callcenter_intervals_emitted_total",
        "callcenter_queue_intervals_pending",
        "callcenter_queue_idle",
        "callcenter_processed_offset",  # {topic, partition}
        "callcenter_events_partition_idle",
        "callcenter_worker_heap_trims_total",
        "callcenter_worker_heap_released_bytes_total",
        # the customer's journey, per queue and window {queue, window}
        "callcenter_contacts_identified",
        "callcenter_repeat_contacts",
        "callcenter_handoffs_in",
        "callcenter_handoffs_out",
        "callcenter_journeys",
        "callcenter_journeys_with_handoff",
        "callcenter_journeys_passed_around",
        "callcenter_journeys_answered",
        "callcenter_journeys_answered_within_threshold",
        "callcenter_nps_responses",
        "callcenter_nps_promoters",
        "callcenter_nps_passives",
        "callcenter_nps_detractors",
        "callcenter_csat_responses",
        "callcenter_csat_satisfied",
        "callcenter_repeat_contact_ratio",
        "callcenter_journey_service_level_ratio",
        "callcenter_journey_asa_seconds",
        "callcenter_nps_score",
        "callcenter_csat_ratio",
        # first-contact resolution: {queue, window="today"}; decisions {queue, decision}
        "callcenter_fcr_resolved",
        "callcenter_fcr_unresolved",
        "callcenter_fcr_ratio",
        "callcenter_fcr_decisions_total",
        *ROLLUP_METRICS,
    }
)
# Families of the catalogue a worker serves only with data behind them: a rate without a denominator
# has no sample, so with no decision yet (FCR is decided a window after the contact) there is none.
SERVED_WITH_DATA: frozenset[str] = frozenset(
    {"callcenter_fcr_ratio"}
    | {name for name in ROLLUP_METRICS if name.endswith(("_ratio", "_seconds", "_score"))
       and not name.endswith(("_target_ratio", "oldest_wait_seconds"))}
)
# Series Prometheus makes itself: the scrape health of each target and the state of each alert.
PROMETHEUS_SERIES: frozenset[str] = frozenset({"up", "ALERTS"})
FAUST_PREFIX = "faust_"

# Values for Grafana's variables: the wallboard repeats per queue, so ".*" (all queues) is the widest
# selection a panel can see; `$__rate_interval` must span at least two scrapes of the streamer job.
DEFAULT_VARIABLES: Mapping[str, str] = {
    "queue": ".*",
    "group": ".*",
    "window": "30m",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$")


def substitute_variables(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace Grafana's `$var`, `${var}`, `${var:format}` and `[[var]]` with the given values."""
    values = {**DEFAULT_VARIABLES, **(variables or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}: pass it in `variables`")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def load_dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (a collapsed row keeps its panels inside it)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def raw_dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and query variable, Grafana variables left in place."""
    dashboard = load_dashboard(path)
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            where = f"{path.name}: panel {panel.get('title')!r} target {target.get('refId')}"
            found.append((where, target.get("expr", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        found.append((f"{path.name}: variable {variable.get('name')!r}", as_promql(text)))
    return found


def as_promql(text: str) -> str:
    """A variable query as PromQL: Grafana's `label_values(selector, label)` asks what
    `count by (label) (selector)` does; any other query is PromQL already."""
    label_values = _LABEL_VALUES.match(text)
    return f"count by ({label_values.group(2)}) ({label_values.group(1)})" if label_values else text


def load_rule_groups(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]


def rule_queries() -> list[tuple[str, str]]:
    """(where, expr) for every recording and alerting rule.

    An alert's expression returns samples only while its condition holds: against a healthy run an
    empty result is the expected answer, an error is not.
    """
    found = []
    for path in rule_files():
        for group in load_rule_groups(path):
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                found.append((f"{path.name}: rule {name}", rule["expr"].strip()))
    return found


def dashboard_queries(variables: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    return [
        (where, substitute_variables(expr, variables))
        for path in dashboard_files()
        for where, expr in raw_dashboard_queries(path)
    ]


def all_queries(variables: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """Every dashboard and rule expression; `variables` overrides DEFAULT_VARIABLES (e.g. a queue)."""
    return dashboard_queries(variables) + rule_queries()


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPED = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\d+\w*")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?|[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\()?)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "inf", "nan", "Inf", "NaN"})


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (functions, keywords and label names left out)."""
    text = _STRING.sub('""', expr)
    text = _GROUPED.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        is_call = match.group(1) is not None
        if token[0].isdigit() or is_call or token in _KEYWORDS:
            continue
        names.add(token)
    return names


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in rule_files()
        for group in load_rule_groups(path)
        for rule in group["rules"]
        if "record" in rule
    }


def unknown_metric_names(expr: str) -> set[str]:
    """Names in `expr` that are neither in the catalogue, Prometheus's own, Faust's nor recorded here."""
    known = METRIC_CATALOGUE | PROMETHEUS_SERIES | recorded_names()
    return {name for name in metric_names(expr) if name not in known and not name.startswith(FAUST_PREFIX)}
