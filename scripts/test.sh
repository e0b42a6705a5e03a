#!/usr/bin/env bash
# `make test`: start a throwaway private PostgreSQL, then go vet and the
# whole test suite with the race detector, real peers included.
set -euo pipefail
cd "$(dirname "$0")/.."

go build -o bin/vigia ./cmd/vigia

# A fresh cluster each run: tests create their databases in it.
pgdir="${VIGIA_TEST_PGDIR:-$PWD/var/pgtest}"
bin/vigia pg stop --dir "$pgdir" >/dev/null 2>&1 || true
rm -rf "$pgdir"
VIGIA_TEST_DATABASE_URL="$(bin/vigia pg start --fast --dir "$pgdir" --database postgres)"
export VIGIA_TEST_DATABASE_URL
trap 'bin/vigia pg stop --dir "$pgdir" || true' EXIT

go vet ./...
go test -race -count=1 -timeout 14m ./...
