#!/usr/bin/env bash
# `make run`: serve the example hospital network with a private PostgreSQL
# under ./var (or DATABASE_URL when set). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bin/vigia serve --import examples/inventory.yaml --demo --listen "${VIGIA_LISTEN:-127.0.0.1:8080}"
