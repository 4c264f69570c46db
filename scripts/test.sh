#!/usr/bin/env bash
# The full test suite: set up everything the tests need, then lint, type-check and run every tier
# (unit, component against real wireguard-go in network namespaces, behaviour). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "==> ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
# leftovers of an earlier, killed run must not collide with this one
.venv/bin/python -m wgsiem.lab.cleanup || true
exec .venv/bin/pytest -p no:cacheprovider "$@"
