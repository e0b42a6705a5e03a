#!/usr/bin/env bash
# Measures the client-side cost of a DICOM C-ECHO: dicomping.Echo against
# `vigia simulate dicom` and dcmtk storescp, next to dcmtk echoscu run as one
# process per echo, a bare TCP connect+close as the floor, and two measuring
# sticks doing the same exchanges (bench/dicomping/bound.go). Prints a
# Markdown section for BENCHMARKS.md. Installs dcmtk if missing
# (scripts/install-deps.sh bench).
#   bench/dicomping.sh [-n 10000] [-n-storescp 300] [-n-echoscu 300]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/vigia" ./cmd/vigia
go build -o "$tmp/bench-dicomping" ./bench/dicomping
echo "Command: \`bench/dicomping.sh $*\`"
echo
"$tmp/bench-dicomping" -vigia "$tmp/vigia" "$@"
