#!/usr/bin/env bash
# Makes sure the Debian tools the deploy tests run are on the machine, installing their packages when they
# are missing and apt-get is usable:
#   prometheus + promtool   (package prometheus)       check the alert rules, lint /metrics, scrape the service
#   docker-compose          (package docker-compose)   parse docker-compose.yml (`docker-compose config`
#                                                       needs no Docker engine)
#
#   bash scripts/ensure-tools.sh      # called by scripts/test.sh before the tests
#
# The prometheus package's own service is never started (apt_install in scripts/lib.sh): we run our own
# Prometheus on loopback in the tests.
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

apt_install tools "${packages[@]}"
for pair in "${wanted[@]}"; do
  find_bin "${pair%%:*}" >/dev/null || { log "${pair#*:} installed but ${pair%%:*} not found"; exit 1; }
done
