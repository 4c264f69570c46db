#!/usr/bin/env bash
# One command to see wgsiem work: sets up, and — when this host has no WireGuard interface — builds a
# real WireGuard lab (wireguard-go in network namespaces) with clients that connect, move traffic, roam
# and go idle; then runs wgsiem with a live peer table, writing ECS NDJSON and the session store.
# Ctrl-C stops it (every buffer flushed); the lab is torn down on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
STATE=${WGSIEM_STATE_DIR:-$PWD/var/quickstart}
mkdir -p "$STATE"
has_wg() {
  [ -n "$(wg show interfaces 2>/dev/null)" ] || ls /var/run/wireguard/*.sock >/dev/null 2>&1
}
ARGS=()
if ! has_wg; then
  echo "==> no WireGuard interface on this host: building the demo lab"
  .venv/bin/wgsiem lab up --name demo --clients 3 --state-dir "$STATE/lab"
  trap '.venv/bin/wgsiem lab down --name demo --state-dir "$STATE/lab" >/dev/null 2>&1 || true; kill %1 2>/dev/null || true' EXIT
  # the scenario starts once wgsiem answers, so its first poll sees the lab idle and every change after
  (
    for _ in $(seq 600); do [ -S "$STATE/api.sock" ] && break; sleep 0.1; done
    exec .venv/bin/wgsiem lab demo --name demo --state-dir "$STATE/lab"
  ) >"$STATE/lab-demo.log" 2>&1 &
  ARGS+=(--poll-interval 2 --interface wgdemog0)
fi
echo "==> events: $STATE/events.ndjson   store: $STATE/wgsiem.duckdb"
echo "==> in another shell: .venv/bin/wgsiem peers|sessions|events --follow --state-dir $STATE"
.venv/bin/wgsiem run --state-dir "$STATE" --output "$STATE/events.ndjson" --live "${ARGS[@]}" "$@"
