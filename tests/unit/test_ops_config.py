"""The operations files: Prometheus config and rules, Alertmanager, Grafana, Docker Compose, Dockerfile.

promtool and amtool come from scripts/install-system-deps.sh; under CI (CI=true) a missing tool fails
the test, elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from tests import ops_queries
from tests.ops_queries import ROOT

PROMETHEUS_DIR = ROOT / "prometheus"
ALERTMANAGER_CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCS = ROOT / "docs" / "monitoring.md"
TOOL_TIMEOUT_SECONDS = 120
SEVERITIES = {"critical", "warning"}
AGGREGATION = re.compile(r"\b(sum|max|min|count|avg)\s*(\b(by|without)\s*\([^)]*\)\s*)?\(")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_tool(reason: str) -> NoReturn:
    message = f"{reason}: run scripts/install-system-deps.sh"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_tool(f"{name} is not installed")
    return path


def run_tool(command: Sequence[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in ops_queries.rule_files()
        for group in ops_queries.load_rule_groups(path)
        for rule in group["rules"]
        if "alert" in rule
    ]


def rule_test_files() -> list[Path]:
    return sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


# ---------------------------------------------------------------- Prometheus


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-local.yml"])
def test_promtool_accepts_the_prometheus_config(config: str) -> None:
    promtool = require_tool("promtool")
    run_tool([promtool, "check", "config", str(PROMETHEUS_DIR / config)])


def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool")
    run_tool([promtool, "check", "rules", *map(str, ops_queries.rule_files())])


def test_promtool_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    assert rule_test_files(), "no promtool rule tests in prometheus/tests"
    run_tool([promtool, "test", "rules", *map(str, rule_test_files())])


def test_every_alert_has_tests_where_it_fires_and_where_it_stays_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in rule_test_files():
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_says_how_bad_what_and_what_to_do() -> None:
    for rule in alert_rules():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, rule["alert"]
        annotations = rule.get("annotations", {})
        assert {"summary", "description", "runbook"} <= annotations.keys(), rule["alert"]


def test_queue_alerts_fold_the_workers_together_and_name_the_queue() -> None:
    for rule in alert_rules():
        if "callcenter_" not in rule["expr"] or "queue" not in rule["annotations"]["summary"]:
            continue
        assert "max without(instance, pod)" in rule["expr"], rule["alert"]
        assert "{{ $labels.queue }}" in rule["annotations"]["description"], rule["alert"]


def test_every_runbook_link_has_a_section_in_the_docs() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        anchors = re.findall(r"docs/monitoring\.md#([\w-]+)", rule["annotations"]["runbook"])
        assert anchors, f"{rule['alert']}: runbook has no docs/monitoring.md link"
        assert set(anchors) <= headings, f"{rule['alert']}: {anchors} not a heading of {DOCS.name}"


def test_prometheus_scrapes_the_compose_workers_and_sends_to_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "streamer"]
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["port"] == 6066
    (alerting,) = config["alerting"]["alertmanagers"]
    assert alerting["static_configs"][0]["targets"] == ["alertmanager:9093"]
    local = load_yaml(PROMETHEUS_DIR / "prometheus-local.yml")
    (local_job,) = [job for job in local["scrape_configs"] if job["job_name"] == "streamer"]
    assert local_job["static_configs"][0]["targets"] == ["127.0.0.1:6066"]


# ---------------------------------------------------------------- Alertmanager


def test_amtool_accepts_the_alertmanager_config() -> None:
    amtool = require_tool("amtool")
    run_tool([amtool, "check-config", str(ALERTMANAGER_CONFIG)])


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "queue=sales", "alertname=CallcenterServiceLevelBelowTarget"], "on-call-pager"),
        (["severity=warning", "queue=sales", "alertname=CallcenterAbandonmentHigh"], "team-chat"),
        (["alertname=Unclassified"], "default"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receiver: str) -> None:
    amtool = require_tool("amtool")
    run_tool(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--verify.receivers={receiver}",
            *labels,
        ]
    )


def test_alertmanager_groups_by_queue() -> None:
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    assert "queue" in route["group_by"]


# ---------------------------------------------------------------- Grafana


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: ops_queries.load_dashboard(path) for path in ops_queries.dashboard_files()}


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in ops_queries.panels(dashboard) if panel["type"] != "row"]


def test_both_dashboards_are_provisioned_with_a_uid_and_a_recent_schema() -> None:
    found = dashboards()
    assert {"wallboard.json", "queue-detail.json"} <= found.keys()
    uids = [dashboard["uid"] for dashboard in found.values()]
    assert all(uids) and len(set(uids)) == len(uids)
    for name, dashboard in found.items():
        assert dashboard["schemaVersion"] >= 36, name
        assert dashboard["title"], name
        ids = [panel["id"] for panel in ops_queries.panels(dashboard)]
        assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"


def test_every_panel_queries_prometheus_by_uid() -> None:
    for name, dashboard in dashboards().items():
        for panel in query_panels(dashboard):
            where = f"{name}: {panel['title']!r}"
            assert panel["datasource"] == {"type": "prometheus", "uid": ops_queries.DATASOURCE_UID}, where
            assert panel["targets"], f"{where} has no query"
            for target in panel["targets"]:
                assert target["expr"].strip(), f"{where} target {target['refId']} has no expr"
                assert target["datasource"]["uid"] == ops_queries.DATASOURCE_UID, where
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == ops_queries.DATASOURCE_UID, f"{name}: {variable['name']}"


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, dashboard in dashboards().items():
        taken: dict[tuple[int, int], str] = {}
        for panel in ops_queries.panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']!r}"
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in taken, f"{name}: {panel['title']!r} overlaps {taken[(x, y)]!r}"
                    taken[(x, y)] = panel["title"]


def test_the_grafana_datasource_has_the_uid_the_dashboards_use() -> None:
    (path,) = sorted((ROOT / "grafana" / "provisioning" / "datasources").glob("*.yml"))
    (datasource,) = load_yaml(path)["datasources"]
    assert datasource["uid"] == ops_queries.DATASOURCE_UID and datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"


def test_the_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    (path,) = sorted((ROOT / "grafana" / "provisioning" / "dashboards").glob("*.yml"))
    (provider,) = load_yaml(path)["providers"]
    grafana = load_yaml(COMPOSE_FILE)["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]


def test_every_query_names_only_exported_metrics() -> None:
    for where, expr in ops_queries.all_queries():
        assert ops_queries.unknown_metric_names(expr) == set(), where


def test_every_dashboard_query_folds_the_workers_together() -> None:
    for where, expr in ops_queries.dashboard_queries():
        assert AGGREGATION.search(expr), f"{where}: {expr}"
        # `by (...)` drops the instance label too; `max without(instance)` alone would keep `pod`.
        if "callcenter_" in expr:
            assert "without(instance, pod)" in expr or re.search(r"\bby \((?![^)]*instance)", expr), where


def test_the_queue_variable_is_matched_as_a_regex() -> None:
    for path in ops_queries.dashboard_files():
        for where, expr in ops_queries.raw_dashboard_queries(path):
            for match in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"\$queue"', expr):
                assert match.group(2) == "=~", f"{where}: a multi-value $queue needs =~: {expr}"


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr}
        for index, (_, expr) in enumerate(ops_queries.dashboard_queries())
    ]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    run_tool([promtool, "check", "rules", str(rule_file)])


def test_thresholds_from_a_query_vanish_with_the_value_they_colour() -> None:
    # Grafana shows a config query's own frame as the value when it is the only frame left: the
    # colour-scale query must be empty whenever the value it colours is.
    for name, dashboard in dashboards().items():
        for panel in query_panels(dashboard):
            targets = {target["refId"]: target["expr"] for target in panel["targets"]}
            for transformation in panel.get("transformations", []):
                if transformation["id"] != "configFromData":
                    continue
                ref = transformation["options"]["configRefId"]
                assert ref in targets, f"{name}: {panel['title']!r} has no target {ref}"
                assert "and on(queue)" in targets[ref], f"{name}: {panel['title']!r} target {ref}"


def test_the_wallboard_repeats_per_queue_and_shows_stale_data() -> None:
    wallboard = dashboards()["wallboard.json"]
    variables = {variable["name"]: variable for variable in wallboard["templating"]["list"]}
    assert variables["queue"]["includeAll"] and variables["queue"]["multi"]
    assert [panel["title"] for panel in wallboard["panels"] if panel.get("repeat") == "queue"]
    staleness = [
        panel
        for panel in query_panels(wallboard)
        if any(re.search(r"time\(\) - .*last_event_timestamp_seconds", t["expr"]) for t in panel["targets"])
    ]
    assert staleness, "no panel shows how old the newest event is"
    for panel in staleness:
        colours = [step["color"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        assert colours[-1] == "red", f"{panel['title']!r} never turns red"


def test_the_queue_detail_shows_the_wait_histogram() -> None:
    exprs = [expr for where, expr in ops_queries.dashboard_queries() if where.startswith("queue-detail.json")]
    assert any("histogram_quantile(" in expr and "callcenter_answered_wait_seconds_bucket" in expr for expr in exprs)


# ---------------------------------------------------------------- the query helper


def test_grafana_variables_are_substituted_in_every_form() -> None:
    expr = 'x{queue=~"$queue", window="${window}"}[$__rate_interval] + y{queue=~"[[queue]]"}'
    assert ops_queries.substitute_variables(expr, {"queue": "sales"}) == (
        'x{queue=~"sales", window="30m"}[1m] + y{queue=~"sales"}'
    )
    with pytest.raises(KeyError, match=r"\$tenant"):
        ops_queries.substitute_variables('x{tenant="$tenant"}')
    for _, expr in ops_queries.all_queries():
        assert "$" not in expr and "[[" not in expr


def test_metric_names_leave_out_functions_labels_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le) (rate(callcenter_answered_wait_seconds_bucket{queue=~"a"}[5m])))'
        " / on(queue) group_left() max without(instance) (up offset 5m) and callcenter:opening_hours > bool 1e3"
    )
    assert ops_queries.metric_names(expr) == {
        "callcenter_answered_wait_seconds_bucket",
        "up",
        "callcenter:opening_hours",
    }
    assert ops_queries.unknown_metric_names("callcenter_calls_waitin + faust_events_total") == {
        "callcenter_calls_waitin"
    }


# ---------------------------------------------------------------- Docker


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker is not None:
        plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=TOOL_TIMEOUT_SECONDS)
        if plugin.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is None:
        missing_tool("neither `docker compose` nor docker-compose is installed")
    return [standalone]


def test_docker_compose_accepts_the_compose_file() -> None:
    run_tool([*compose_command(), "--file", str(COMPOSE_FILE), "config", "--quiet"])


def test_compose_runs_the_whole_stack() -> None:
    services = load_yaml(COMPOSE_FILE)["services"]
    assert {"kafka", "worker", "simulator", "prometheus", "alertmanager", "grafana"} <= services.keys()
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    worker = services["worker"]
    assert worker["build"] == "."
    assert worker["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert worker["environment"]["STREAMER_WEB_HOST"] == "0.0.0.0"
    assert services["simulator"]["command"] == ["simulate", "--scenario", "demo"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_installs_the_project_and_runs_the_worker() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("ENTRYPOINT", '["streamer"]') in instructions and ("CMD", '["worker"]') in instructions
    assert any(keyword == "RUN" and "pip install ." in args for keyword, args in instructions)
    kept = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    for keyword, args in instructions:
        if keyword == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"
                assert source.rstrip("/") in kept, f".dockerignore leaves {source} out of the build context"


def test_the_install_script_is_valid_bash() -> None:
    run_tool(["bash", "-n", str(ROOT / "scripts" / "install-system-deps.sh")])
