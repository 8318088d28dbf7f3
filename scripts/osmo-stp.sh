#!/usr/bin/env bash
# osmo-stp 2.x (Osmocom's STP, M3UA over TCP) for the interop tests: Debian bookworm ships only 1.6 (SCTP only),
# so trixie's package is installed into a chroot (design.md §6). Idempotent; about 30 s and 230 MB the first time.
#   scripts/osmo-stp.sh install      create the chroot (cached in $OSMO_STP_ROOT, default .cache/osmo-stp-root)
#   scripts/osmo-stp.sh path         print the chroot's path
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${OSMO_STP_ROOT:-$PWD/.cache/osmo-stp-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
case "${1:-install}" in
  install)
    if [ -x "$ROOT/usr/bin/osmo-stp" ]; then exit 0; fi
    command -v debootstrap >/dev/null || { echo "debootstrap is missing: scripts/setup.sh --test installs it" >&2; exit 1; }
    rm -rf "$ROOT.partial"
    mkdir -p "$(dirname "$ROOT")"
    debootstrap --variant=minbase --include=osmo-stp trixie "$ROOT.partial" "$MIRROR" >"$ROOT.log" 2>&1 \
      || { tail -20 "$ROOT.log" >&2; exit 1; }
    mv "$ROOT.partial" "$ROOT"
    ;;
  path) echo "$ROOT" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
