# The two commands a newcomer runs: `make run` and `make test`.
# Both install what is missing (apt-get, as root or through sudo) first.
SHELL := /bin/bash
BIN   := bin/vigia
GO    ?= go

.PHONY: run test build deps test-deps vet bench clean

run: deps build
	scripts/run.sh

test: test-deps
	scripts/test.sh

build:
	$(GO) build -o $(BIN) ./cmd/vigia

deps:
	scripts/install-deps.sh run

test-deps:
	scripts/install-deps.sh test

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
