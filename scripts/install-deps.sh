#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Vigía needs that are not yet installed.
#   scripts/install-deps.sh run    what `make run` needs
#   scripts/install-deps.sh test   what `make test` needs (the real peers too)
#   scripts/install-deps.sh bench  what the scripts under bench/ need
# Runs apt-get only when something is missing, through sudo when not root.
set -euo pipefail

# PostgreSQL is the system of record; the private cluster uses its binaries.
# Chromium prints the monthly reports to PDF (headless).
run_pkgs=(postgresql ca-certificates chromium)
# The real peers the integration tests talk to.
test_pkgs=("${run_pkgs[@]}" dcmtk orthanc snmpd snmp python3 python3-aiosmtpd python3-hl7 python3-icalendar prometheus poppler-utils dovecot-imapd)
# The benchmarks' load generator and the peers they are compared with.
bench_pkgs=("${test_pkgs[@]}" wrk snmpsim prometheus-snmp-exporter)

case "${1:-run}" in
  run) want=("${run_pkgs[@]}") ;;
  test) want=("${test_pkgs[@]}") ;;
  bench) want=("${bench_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go is not on PATH. Vigía needs Go 1.26 (https://go.dev/dl/; older Go fetches it itself through GOTOOLCHAIN=auto)." >&2
  exit 1
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing packages (${missing[*]}) and no apt-get: install them with your package manager." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root or install sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian packages that ship a service (orthanc, snmpd, prometheus) must not
# start it: the project starts its own instances on loopback ports.
policy_created=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  policy_created=1
fi
trap '[ -n "$policy_created" ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
