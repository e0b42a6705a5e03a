#!/usr/bin/env bash
# `make run`: the example hospital network, live. Starts the device
# simulator for examples/inventory.yaml (with one scheduled outage of the
# core PACS), then Vigía with a private PostgreSQL under ./var (or
# DATABASE_URL when set). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
listen="${VIGIA_LISTEN:-127.0.0.1:8080}"
control="${VIGIA_SIM_CONTROL:-127.0.0.1:8099}"
outage="${VIGIA_DEMO_OUTAGE:-hsr-pacs@40s+5m}"

bin/vigia simulate fleet --from examples/inventory.yaml --vigia "http://$listen" --control "$control" --outage "$outage" --worklist-dir examples/worklists &
sim=$!
trap 'kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true' EXIT

cat <<INFO

Simulated devices of examples/inventory.yaml are answering on 127.0.0.1:11112-11132.
  scheduled outage: $outage (the core PACS goes dark, then comes back)
  take devices down yourself:  curl -X POST http://$control/devices/hsr-ct1/down
                               curl -X POST http://$control/sites/hsr-norte/down
INFO
bin/vigia serve --import examples/inventory.yaml --demo --listen "$listen"
