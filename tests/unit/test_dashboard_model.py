"""The Grafana dashboards against Grafana's own model, PromQL parser and provisioned datasource.

- **Model.** tests/dashboards/ is a small Go program that strict-decodes each dashboard with Grafana's
  foundation SDK (the Go types Grafana generates from its schemas, panel plugins registered): an
  unknown field or a wrong type anywhere is an error; a panel option the schema calls required but
  Grafana fills with its default when absent is a warning only. The test builds it once per source
  hash into the cache dir (modules come from the Go module proxy on the first build).
- **Queries.** Every panel query and query variable, as the model decoded it, parses with promtool
  once for every value of each dashboard variable and with Grafana's built-in variables filled in
  (wrapped as recording rules in a throw-away rule file: promtool 2.42 has no query-only check).
- **Datasources.** Every datasource reference, anywhere in a dashboard, names the Prometheus of
  grafana/provisioning/datasources by uid and type (Grafana's built-in annotation source apart).

Go and promtool are installed on every machine (promtool by scripts/install-system-deps.sh); without
one the test skips locally and fails under CI.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamer.devkafka.settings import cache_root
from tests import ops_queries
from tests.ops_queries import ROOT
from tests.unit.test_ops_config import missing_tool, require_tool, run_tool

CHECKER_DIR = ROOT / "tests" / "dashboards"
CHECKER_SOURCES = ("go.mod", "go.sum", "main.go")
DATASOURCES_DIR = ROOT / "grafana" / "provisioning" / "datasources"
GO_BUILD_TIMEOUT_SECONDS = 480
# Where Go's tarball and Debian's golang package put it, for a CI shell whose PATH lacks it.
GO_LOCATIONS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
# Grafana's own annotation source ("Annotations & Alerts"), present in every Grafana, never provisioned.
BUILT_IN_DATASOURCES = {("grafana", "-- Grafana --")}
# Grafana's global variables, at values a dashboard on a 5 s scrape job would get for the last hour.
BUILT_IN_VARIABLES = {
    "__interval": "15s",
    "__interval_ms": "15000",
    "__rate_interval": "1m",
    "__rate_interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# What Grafana puts in for "All" of a multi-value variable without a custom all value: a regex of
# every value; ".*" stands for it, and one plain queue name for a single choice.
ALL_QUEUES = (".*", "sales", "sales|support")


def find_go() -> str:
    candidates = [shutil.which("go"), *GO_LOCATIONS]
    found = next((path for path in candidates if path and os.access(path, os.X_OK)), None)
    if found is None:
        missing_tool("go is not installed")
    return found


def checker_hash() -> str:
    digest = hashlib.sha256()
    for name in CHECKER_SOURCES:
        digest.update((CHECKER_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def checker() -> Path:
    """The built dashboardcheck binary, reused while its sources are unchanged."""
    go = find_go()
    binary = cache_root() / "dashboardcheck" / f"dashboardcheck-{checker_hash()}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_suffix(".partial")
        # -mod=readonly: go.sum is the lock file; a build never edits it.
        env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "CGO_ENABLED": "0"}
        result = subprocess.run([go, "build", "-o", str(partial), "."], cwd=CHECKER_DIR, env=env, capture_output=True,
                                text=True, timeout=GO_BUILD_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"go build of tests/dashboards failed:\n{result.stdout}\n{result.stderr}"
        partial.replace(binary)
    return binary


def run_checker(checker: Path, files: list[Path]) -> dict[str, dict[str, Any]]:
    """File name → the checker's report on it."""
    result = run_tool([str(checker), *map(str, files)])
    return {Path(report["file"]).name: report for report in json.loads(result.stdout)["dashboards"]}


def provisioned_datasources() -> dict[str, str]:
    """uid → type of every datasource Grafana is provisioned with."""
    found = {}
    for path in sorted(DATASOURCES_DIR.glob("*.yml")):
        for datasource in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            found[datasource["uid"]] = datasource["type"]
    return found


def datasource_refs(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(where, value) of every `datasource` key anywhere in a dashboard's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield where or "dashboard", value
            yield from datasource_refs(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from datasource_refs(value, f"{where}[{index}]")


def unresolved(ref: Any, provisioned: Mapping[str, str]) -> str | None:
    """Why a datasource reference does not resolve to a provisioned datasource, or None."""
    if not isinstance(ref, dict):
        return f"{ref!r} is not a {{type, uid}} reference (a name or a default is resolved by Grafana, not here)"
    pair = (ref.get("type"), ref.get("uid"))
    if pair in BUILT_IN_DATASOURCES:
        return None
    if ref.get("uid") not in provisioned:
        return f"uid {ref.get('uid')!r} is not provisioned (provisioned: {sorted(provisioned)})"
    if ref.get("type") != provisioned[ref["uid"]]:
        return f"type {ref.get('type')!r}, but datasource {ref['uid']!r} is {provisioned[ref['uid']]!r}"
    return None


def variable_choices(dashboard: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """name → every value a dashboard variable can take (custom: its options; query: ALL_QUEUES)."""
    choices: dict[str, tuple[str, ...]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "custom":
            choices[variable["name"]] = tuple(v.strip() for v in str(variable["query"]).split(",") if v.strip())
        elif variable["type"] == "query":
            choices[variable["name"]] = ALL_QUEUES
        elif variable["type"] == "interval":
            choices[variable["name"]] = tuple(v.strip() for v in str(variable["query"]).split(",") if v.strip())
        else:
            choices[variable["name"]] = (str(variable.get("current", {}).get("value", "")),)
    return choices


def substitutions(dashboard: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every combination of the dashboard's variable values, with Grafana's built-in ones."""
    choices = variable_choices(dashboard)
    names = sorted(choices)
    return [{**BUILT_IN_VARIABLES, **dict(zip(names, combo, strict=True))}
            for combo in itertools.product(*(choices[name] for name in names))]


def model_queries(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(query["where"], query["expr"]) for query in report["queries"]]


def test_every_dashboard_decodes_strictly_with_grafanas_model(checker: Path) -> None:
    files = ops_queries.dashboard_files()
    reports = run_checker(checker, files)
    assert sorted(reports) == sorted(path.name for path in files)
    for name, report in reports.items():
        assert report["errors"] == [], f"{name} does not fit Grafana's dashboard model:\n" + "\n".join(report["errors"])
        for warning in report["warnings"]:
            # Shown, not failed: Grafana's panel plugins fill these from their defaults on load.
            print(f"{name}: left to Grafana's default: {warning}")
        path = ROOT / "grafana" / "dashboards" / name
        dashboard = ops_queries.load_dashboard(path)
        assert report["panels"] == len(list(ops_queries.panels(dashboard))), f"{name}: the model lost panels"
        # The model read every query the file holds, each as a Prometheus query.
        decoded = sorted(ops_queries.as_promql(expr) for _, expr in model_queries(report))
        assert decoded == sorted(expr for _, expr in ops_queries.raw_dashboard_queries(path)), name


def plant(dashboard: dict[str, Any], how: str) -> dict[str, Any]:
    planted = copy.deepcopy(dashboard)
    panel = next(p for p in planted["panels"] if p["type"] != "row")
    if how == "unknown panel field":
        panel["colour"] = "red"
    elif how == "unknown option":
        panel["options"]["legendz"] = {"show": True}
    elif how == "unknown dashboard field":
        planted["refreshEvery"] = "5s"
    elif how == "wrong type":
        panel["gridPos"]["w"] = "wide"
    return planted


@pytest.mark.parametrize("how", ["unknown panel field", "unknown option", "unknown dashboard field", "wrong type"])
def test_the_model_check_fails_on_a_planted_mistake(checker: Path, tmp_path: Path, how: str) -> None:
    for path in ops_queries.dashboard_files():
        copy_path = tmp_path / path.name
        copy_path.write_text(json.dumps(plant(ops_queries.load_dashboard(path), how)), encoding="utf-8")
        report = run_checker(checker, [copy_path])[path.name]
        assert report["errors"], f"{how} planted in a copy of {path.name} went unnoticed"
        expected = {"unknown panel field": "'colour'", "unknown option": "'legendz'",
                    "unknown dashboard field": "'refreshEvery'", "wrong type": "gridPos.w"}[how]
        assert any(expected in error for error in report["errors"]), report["errors"]


def test_every_query_parses_with_promtool_for_every_variable_value(checker: Path, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    reports = run_checker(checker, ops_queries.dashboard_files())
    rules = []
    for name, report in reports.items():
        dashboard = ops_queries.load_dashboard(ROOT / "grafana" / "dashboards" / name)
        for variables in substitutions(dashboard):
            for _where, expr in model_queries(report):
                text = ops_queries.substitute_variables(ops_queries.as_promql(expr), variables)
                rules.append({"record": f"dashboard:query_{len(rules)}", "expr": text})
    assert len(rules) > 100, "every query times every variable value"
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    run_tool([promtool, "check", "rules", str(rule_file)])


def test_a_query_promtool_cannot_parse_fails_the_check(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rule_file = tmp_path / "broken.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [
        {"record": "dashboard:query_0", "expr": 'max without(instance (callcenter_calls_waiting{queue=~".*"})'}]}]}))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_every_datasource_reference_resolves_to_the_provisioned_prometheus(checker: Path) -> None:
    provisioned = provisioned_datasources()
    assert provisioned, "grafana/provisioning/datasources provisions no datasource"
    reports = run_checker(checker, ops_queries.dashboard_files())
    for path in ops_queries.dashboard_files():
        found = list(datasource_refs(ops_queries.load_dashboard(path)))
        model = [(ref["where"], {"type": ref["type"], "uid": ref["uid"]}) for ref in reports[path.name]["datasources"]]
        assert len(model) == len(found), f"{path.name}: the model read {len(model)} references, the file {len(found)}"
        problems = [f"{where}: {why}" for where, ref in found + model if (why := unresolved(ref, provisioned))]
        assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_an_unprovisioned_datasource_does_not_resolve() -> None:
    provisioned = provisioned_datasources()
    assert unresolved({"type": "prometheus", "uid": "DS_PROMETHEUS"}, provisioned)
    assert unresolved({"type": "loki", "uid": "prometheus"}, provisioned)
    assert unresolved("Prometheus", provisioned)
    assert unresolved({"type": "prometheus", "uid": "prometheus"}, provisioned) is None
