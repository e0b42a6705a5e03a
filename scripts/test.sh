#!/usr/bin/env bash
# `make test`: start a throwaway private PostgreSQL, then go vet and the
# whole test suite with the race detector, real peers included.
set -euo pipefail
cd "$(dirname "$0")/.."

# go.mod and go.sum must say exactly what the code imports.
if ! go mod tidy -diff >/dev/null; then
  echo "make test: go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result (see 'go mod tidy -diff')" >&2
  exit 1
fi

go build -o bin/vigia ./cmd/vigia

# A fresh cluster each run: tests create their databases in it. As root in a
# folder the postgres user cannot enter (a home or mktemp directory), the
# cluster itself lives under /var/lib/vigia/clusters; `pg remove` deletes it
# wherever it is.
pgdir="${VIGIA_TEST_PGDIR:-$PWD/var/pgtest}"
bin/vigia pg remove --dir "$pgdir" >/dev/null 2>&1 || rm -rf "$pgdir"
VIGIA_TEST_DATABASE_URL="$(bin/vigia pg start --fast --dir "$pgdir" --database postgres)"
export VIGIA_TEST_DATABASE_URL
trap 'bin/vigia pg remove --dir "$pgdir" || true' EXIT

go vet ./...
go test -race -count=1 -timeout 14m ./...
