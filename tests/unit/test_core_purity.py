"""The metric core stays pure: no module under streamer/core imports the Kafka, Faust, Prometheus or web
shells, so the offline report and the unit tests run without them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import streamer.core

CORE = Path(streamer.core.__file__).parent
FORBIDDEN = frozenset({"faust", "aiokafka", "prometheus_client", "aiohttp", "mode", "kafka", "confluent_kafka"})


def imported_top_level_names(source: str) -> set[str]:
    """Top-level package of every absolute import in `source` (relative imports stay in the package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_scanner_sees_imports_in_every_form():
    source = "import faust\nimport aiokafka.errors as e\nfrom prometheus_client import Gauge\nfrom . import x\n"
    source += "def f():\n    import aiohttp.web\n"
    assert imported_top_level_names(source) == {"faust", "aiokafka", "prometheus_client", "aiohttp"}


def test_the_core_has_the_modules_the_design_names():
    names = {path.stem for path in core_modules()}
    assert {"events", "calls", "counters", "windows", "config", "tracker", "report"} <= names


def test_no_core_module_imports_a_shell_library():
    offenders = {
        str(path.relative_to(CORE)): sorted(imported_top_level_names(path.read_text("utf-8")) & FORBIDDEN)
        for path in core_modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_importing_the_whole_core_loads_no_shell_library():
    modules = ", ".join(
        ".".join(("streamer", "core", *path.relative_to(CORE).with_suffix("").parts))
        for path in core_modules() if path.stem != "__init__"
    )
    probe = (
        f"import sys, importlib\n"
        f"for name in {modules!r}.split(', '):\n"
        f"    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
