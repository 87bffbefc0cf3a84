#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` are on the machine (the deploy tests check the alert rules with
# promtool and scrape the service with a real Prometheus). Installs Debian's `prometheus` package, which
# brings both, when they are missing and apt-get is usable; prints where they are.
#
#   bash scripts/ensure-prometheus.sh      # called by scripts/test.sh before the tests
#
# The package's own service is never started: we run our own Prometheus on loopback in the tests.
set -euo pipefail

log() { printf '[prometheus] %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if find_bin promtool >/dev/null && find_bin prometheus >/dev/null; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "missing: prometheus/promtool; install them (Debian/Ubuntu: apt-get install -y prometheus) and retry"
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    log "missing: prometheus/promtool; run as root or install them: apt-get install -y prometheus"
    exit 1
  fi
fi

# Keep the package from starting a system Prometheus on :9090 (a policy-rc.d that says "no" to every
# service start, only for the length of the install, and only when the machine has none of its own).
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  own_policy=1
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi
cleanup() { if [ -n "$own_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing Debian's prometheus package (prometheus + promtool)"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
find_bin promtool >/dev/null && find_bin prometheus >/dev/null || { log "prometheus installed but promtool/prometheus not found"; exit 1; }
