#!/usr/bin/env bash
# What `make run` calls after installing dependencies and building: starts quell-server on
# 127.0.0.1:8443 (REST) / 127.0.0.1:8444 (agents) with its state under ./var, prints an admin
# token with CLI and curl examples, writes var/cli.json, and, when run as root, starts a lab
# of two network-namespace hosts each running an enrolled quell-agent. Runs in the
# foreground until Ctrl-C, then removes the lab (namespaces, portal, agents) and stops the
# server. Extra arguments go to scripts/lab.py (see `scripts/lab.py --help`).
#
# Environment: BUILD_DIR (default ./build) — where the binaries were built.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}

if [[ $(id -u) -ne 0 ]]; then
  echo "run: not root, so no lab: the lab hosts are network namespaces, which need root." >&2
  echo "run: starting the server alone (use 'sudo make run' for the full lab)." >&2
fi

exec /usr/bin/python3 -B scripts/lab.py --bin-dir "$BUILD_DIR" --var var "$@"
