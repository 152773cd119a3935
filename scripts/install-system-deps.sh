#!/usr/bin/env bash
# Install the Debian packages the test suite needs besides Python:
#   promtool        (package prometheus)              - checks and unit-tests the Prometheus config and rules
#   amtool          (package prometheus-alertmanager) - checks the Alertmanager config
#   chromium        (package chromium)                - the browser test of the wallboard page
#   docker-compose  (package docker-compose)          - `config` validates docker-compose.yml (no engine needed);
#                                                       skipped when the `docker compose` plugin is present
#
# Idempotent and non-interactive (CI=true, no stdin): when every binary is already on PATH it does
# nothing and touches no package list. Run as root, or as a user with sudo.
set -euo pipefail

declare -A package_for_binary=(
    [promtool]=prometheus
    [amtool]=prometheus-alertmanager
    [chromium]=chromium
)
if ! docker compose version >/dev/null 2>&1; then
    package_for_binary[docker-compose]=docker-compose
fi

missing_packages=()
for binary in "${!package_for_binary[@]}"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        missing_packages+=("${package_for_binary[$binary]}")
    fi
done

if [ "${#missing_packages[@]}" -eq 0 ]; then
    echo "install-system-deps: promtool, amtool, chromium and a compose client are already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    echo "install-system-deps: need root to install ${missing_packages[*]}; run as root or install sudo" >&2
    exit 1
fi

# The prometheus and alertmanager packages would start their daemons (ports 9090/9093) on install,
# where they would collide with the test Prometheus. A policy-rc.d that exits 101 forbids service
# starts; install a temporary one only when the machine has none of its own.
policy_file=/usr/sbin/policy-rc.d
if [ ! -e "$policy_file" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy_file" >/dev/null
    "${as_root[@]}" chmod 755 "$policy_file"
    trap '"${as_root[@]}" rm -f "$policy_file"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
# Other jobs on the machine may hold the dpkg lock for a while; wait for it instead of failing.
apt_options=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)

echo "install-system-deps: installing ${missing_packages[*]}"
"${as_root[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update </dev/null
# Some images delete downloaded .deb files between dpkg runs, which breaks an install that also
# upgrades essential packages ("cannot access archive"); repairing and retrying once gets past it.
if ! "${as_root[@]}" apt-get install "${apt_options[@]}" "${missing_packages[@]}" </dev/null; then
    echo "install-system-deps: install failed; repairing with apt-get -f install and retrying once" >&2
    "${as_root[@]}" apt-get install -f "${apt_options[@]}" </dev/null || true
    "${as_root[@]}" apt-get install "${apt_options[@]}" "${missing_packages[@]}" </dev/null
fi

for binary in "${!package_for_binary[@]}"; do
    if ! command -v "$binary" >/dev/null 2>&1; then
        echo "install-system-deps: ${package_for_binary[$binary]} installed but $binary is not on PATH" >&2
        exit 1
    fi
done
echo "install-system-deps: done"
