# shellcheck shell=bash
# The helpers that bench/latency.sh, portal.sh, probes.sh, snmp.sh, board.sh,
# mixed.sh and storm.sh share: logging, stopping processes, undoing a run on
# any exit, bounded waits, building vigia and a fresh private PostgreSQL.
# Each script sources it after its `cd` to the repository root and then
# calls bench_start.
#
# Sourced under the script's `set -euo pipefail`: call these functions as
# plain commands (not inside `if`, `||`, `&&`, `!` or `$(...)`, where bash
# ignores errexit), so that a command failing inside them still fails the run.
#
# Sets, for the scripts: tmp, vigia (bench_start); built (build_vigia);
# db_url, pg_pid (fresh_pg); serve_addr (serve_ready).
# shellcheck disable=SC2034 # those variables are read by the scripts

# bench_start NAME LOGDIR PGDIR PIDVARS KEEP...: installs what is missing
# (scripts/install-deps.sh bench), makes the run's scratch directory $tmp
# (/tmp/vigia-bench-NAME.*, $vigia is built into it) and sets the traps that
# undo the run on any exit. NAME is the script's (NAME.sh in log lines) and
# its helper's (bench/NAME). On exit, cleanup stops the processes whose PIDs
# are in the variables named by PIDVARS, in that order ("NAME[@]" for an
# array; names rather than PIDs, since the processes start later and some
# are stopped and cleared during the run), stops the PostgreSQL in PGDIR and
# removes it, and keeps the files of $tmp that match the KEEP patterns in
# LOGDIR.
bench_start() {
	bench_name=$1 bench_logdir=$2 bench_pgdir=$3 bench_pids=$4
	bench_keep=("${@:5}")
	scripts/install-deps.sh bench
	tmp=$(mktemp -d "/tmp/vigia-bench-$bench_name.XXXXXX")
	vigia=$tmp/vigia
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

log() { echo "$(date +%H:%M:%S) $bench_name.sh: $*" >&2; }

# stop PID: SIGTERM, up to 20 s to exit, then SIGKILL. It then reaps PID (a
# child of this shell), so that the process is gone when it returns: after a
# SIGKILL too, and before snmp.sh starts the next vigia serve.
stop() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	local v pid pattern keep=()
	set +e
	for v in $bench_pids; do
		for pid in "${!v}"; do stop "$pid"; done
	done
	# Removed only after a clean stop: never delete a running cluster's files.
	if [ -x "$vigia" ] && [ -d "$bench_pgdir" ]; then
		"$vigia" pg stop --dir "$bench_pgdir" >/dev/null 2>&1 && rm -rf "$bench_pgdir"
	fi
	mkdir -p "$bench_logdir"
	# shellcheck disable=SC2206 # the patterns are meant to glob
	for pattern in "${bench_keep[@]}"; do keep+=("$tmp"/$pattern); done
	cp "${keep[@]}" "$bench_logdir"/ 2>/dev/null
	rm -rf "$tmp"
	[ $rc -ne 0 ] && log "failed (exit $rc); logs in $bench_logdir/"
	exit $rc
}

# wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND until it
# succeeds or SECONDS of wall time have passed.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		"$@" && return 0
		sleep 0.5
	done
	log "gave up waiting ${secs}s for $what"
	return 1
}
alive() { kill -0 "$1" 2>/dev/null; }
# died NAME PID LOG: fails the run at once when a process it waits for exits.
died() {
	alive "$2" && return 1
	log "$1 exited: $(tail -n 5 "$3")"
	exit 1
}

# build_vigia [REV]: $vigia from the binary $VIGIA if set, else from git
# revision REV if given, else from the working tree; and the script's helper
# bench/NAME, always from the working tree, as $tmp/bench-NAME. Both go into
# $tmp, not bin/: other engineers may be running bin/vigia. REV is an
# argument, not read from the environment, because only probes.sh offers it.
# shellcheck disable=SC2120 # REV is optional
build_vigia() {
	local rev=${1:-} commit
	if [ -n "${VIGIA:-}" ]; then
		cp "$VIGIA" "$vigia"
		built="binary $VIGIA"
	elif [ -n "$rev" ]; then
		commit=$(git rev-parse --short "$rev")
		mkdir "$tmp/src"
		git archive "$rev" | tar -x -C "$tmp/src"
		(cd "$tmp/src" && go build -o "$vigia" ./cmd/vigia)
		built="commit $commit"
	else
		built="working tree at $(git describe --always --dirty)"
		go build -o "$vigia" ./cmd/vigia
	fi
	go build -o "$tmp/bench-$bench_name" "./bench/$bench_name"
	log "built vigia ($built)"
}

# fresh_pg DATABASE: a new private PostgreSQL (fsync on, as in production)
# in PGDIR, after stopping and removing one an earlier run left there.
fresh_pg() {
	mkdir -p "$(dirname "$bench_pgdir")"
	if [ -d "$bench_pgdir" ]; then
		"$vigia" pg stop --dir "$bench_pgdir" >/dev/null 2>&1 || true
		rm -rf "$bench_pgdir"
	fi
	db_url=$("$vigia" pg start --dir "$bench_pgdir" --database "$1" 2>"$tmp/pg.log" | tail -n 1)
	pg_pid=$(head -n 1 "$bench_pgdir/postmaster.pid")
	log "postgres $pg_pid at $bench_pgdir"
}

# serve_ready PID: whether vigia serve (PID, stderr in $tmp/serve.log)
# answers /metrics on one of its listening addresses, left in $serve_addr;
# fails the run if it has exited. For wait_for.
serve_ready() {
	alive "$1" || died "vigia serve" "$1" "$tmp/serve.log"
	local a
	for a in $(ss -ltnpH 2>/dev/null | awk -v p="pid=$1," 'index($0, p) {print $4}'); do
		curl -fsS -o /dev/null "http://$a/metrics" 2>/dev/null && serve_addr=$a && return 0
	done
	return 1
}
