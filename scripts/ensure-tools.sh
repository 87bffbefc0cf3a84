#!/usr/bin/env bash
# Makes sure the Debian tools the deploy tests run are on the machine, installing their packages when they
# are missing and apt-get is usable:
#   prometheus + promtool   (package prometheus)       check the alert rules, lint /metrics, scrape the service
#   docker-compose          (package docker-compose)   parse docker-compose.yml (`docker-compose config`
#                                                       needs no Docker engine)
#
#   bash scripts/ensure-tools.sh      # called by scripts/test.sh before the tests
#
# The prometheus package's own service is never started: we run our own Prometheus on loopback in the tests.
set -euo pipefail

log() { printf '[tools] %s\n' "$*" >&2; }

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# binary:package
wanted=(promtool:prometheus prometheus:prometheus docker-compose:docker-compose)
packages=()
for pair in "${wanted[@]}"; do
  bin="${pair%%:*}" pkg="${pair#*:}"
  if ! find_bin "$bin" >/dev/null; then
    case " ${packages[*]-} " in *" $pkg "*) ;; *) packages+=("$pkg") ;; esac
  fi
done
[ "${#packages[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  log "missing: ${packages[*]}; install them (Debian/Ubuntu: apt-get install -y ${packages[*]}) and retry"
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    log "missing: ${packages[*]}; run as root or install them: apt-get install -y ${packages[*]}"
    exit 1
  fi
fi

# Keep a package from starting a system service (Prometheus on :9090): a policy-rc.d that says "no" to every
# service start, only for the length of the install, and only when the machine has none of its own.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  own_policy=1
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi
cleanup() { if [ -n "$own_policy" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT

log "installing Debian's ${packages[*]}"
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
for pair in "${wanted[@]}"; do
  find_bin "${pair%%:*}" >/dev/null || { log "${pair#*:} installed but ${pair%%:*} not found"; exit 1; }
done
