#!/usr/bin/env bash
# Installs what wgsiem and its tests need on a fresh Debian/Ubuntu host: the system packages (real
# WireGuard userspace + tools, iproute2, nftables) and the Python environment in ./.venv.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  wireguard-go wireguard-tools iproute2 nftables procps python3-venv
  softflowd nfdump prometheus rsyslog tcpdump openssl systemd-journal-remote
  slapd ldap-utils openssh-server rsyslog-gnutls conntrack sudo zstd
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: setup needs root (apt-get, network namespaces) — run it with sudo" >&2
    exit 2
  fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root
  echo "==> installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # The tests start their own sshd, slapd, rsyslog and prometheus on loopback or in lab namespaces;
  # keep the packages' own services from starting on the host at install time (policy-rc.d, 101 = deny).
  policy_set=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_set=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    if [ "$policy_set" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    echo "setup: apt-get install failed for: ${missing[*]}" >&2
    exit 1
  }
  if [ "$policy_set" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: wgsiem needs Python >= 3.11 (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.wgsiem-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing the Python environment"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  # The pySigma backends that convert the detections to Splunk SPL and Elastic queries still declare
  # pysigma<2 but work with the pySigma 2 the engine needs (tested in tests/detect/export): installed
  # without their dependency pin until releases declare pySigma 2.
  .venv/bin/python -m pip install -q --no-deps \
    'pysigma-backend-splunk>=2.1.0,<3' 'pysigma-backend-elasticsearch>=2.1.1,<3'
  touch "$stamp"
fi
echo "==> setup done: $(.venv/bin/wgsiem --version)"
