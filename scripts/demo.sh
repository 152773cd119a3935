#!/usr/bin/env bash
# The main job on one command: install, then `streamer demo` (a local Kafka broker, a worker, live
# simulated traffic, and the wallboard on http://127.0.0.1:6066/). Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
exec .venv/bin/streamer demo "$@"
