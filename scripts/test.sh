#!/usr/bin/env bash
# The whole test suite from a fresh clone: Python environment, system packages (Prometheus tools,
# Chromium), lint, then unit, integration (real Kafka) and end-to-end
# tests. The Kafka broker (resolved from Maven Central on first use) is started and stopped by the
# tests themselves.
#   Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --dev
bash scripts/install-system-deps.sh
. .venv/bin/activate

echo "== ruff"
ruff check .

echo "== pytest"
exec pytest -ra "$@"
