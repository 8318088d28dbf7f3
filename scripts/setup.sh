#!/usr/bin/env bash
# Installs what the gateway and its test suite need on a fresh Debian bookworm machine (root), idempotently.
#   scripts/setup.sh          runtime only (virtualenv with the gateway)
#   scripts/setup.sh --test   plus the independent reference implementations the tests check against
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=()
if [ "$want_test" = 1 ]; then
  # tshark: Wireshark's dissectors; libosmogsm18: libosmocore's GSM 7-bit (ctypes);
  # user-mode-linux + busybox-static: a kernel with SCTP for the SCTP tests; debootstrap: osmo-stp chroot.
  # redis-server: the state store of the third-party anysd application (tests/apps/anysd_app);
  # openssl: the self-signed certificate of the https application test.
  # postgresql: the push store's PostgreSQL backend runs against a real server (tests/support/postgres.py starts
  # its own on loopback from the binaries; the packaged cluster's service is not used).
  apt_pkgs+=(tshark libosmogsm18 libosmocore19 user-mode-linux busybox-static debootstrap redis-server openssl
             postgresql)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if [ "$want_test" = 1 ]; then
  .venv/bin/pip install -q -e '.[test,sctp]'
else
  .venv/bin/pip install -q -e '.[sctp]'
fi
if [ "$want_test" = 1 ] && [ ! -f .cache/venv-anysd/.done ]; then
  # A third-party USSD framework app (anysd from PyPI, with Flask and its Redis client) in its own virtualenv, as an
  # application server would be deployed; anysd 1.2.7 passes charset= to redis.Redis, which redis-py 5 removed.
  rm -rf .cache/venv-anysd
  "$PY" -m venv .cache/venv-anysd
  .cache/venv-anysd/bin/pip install -q "anysd==1.2.7" "redis>=4.6,<5" "flask>=3,<4"
  touch .cache/venv-anysd/.done
fi
