#!/usr/bin/env bash
# vigia's CPU per plain TCP check (issue 21): N devices checked over TCP
# only, first on the lan profile (loopback speed), then behind a WAN (20-80
# ms per round trip) carried by the simulator's delay line, so that the
# connect itself takes the round trip. Each phase has a vigia serve and a
# database of its own, one after the other in one run. Needs root (the
# delay line's TUN device); a run without it fails rather than measure a
# WAN that is not there.
#
# Everything runs on this machine: a private PostgreSQL under
# var/bench-tcpwan/pg (recreated), `vigia simulate fleet` (the gateways of a
# generated fleet of 2N devices on N sites, the only devices it serves and
# the only ones imported), `vigia serve`, bench/mixed (the measuring helper,
# phase echo with -kind tcp). Every process it starts is stopped on exit;
# every wait is bounded. Prints a Markdown section on stdout; logs go to
# stderr and var/bench-tcpwan/. A benchmark on a loaded machine measures the
# load: the load average is reported.
#
#   bench/tcpwan.sh
#   N=200 WARMUP=10s WINDOW=20s bench/tcpwan.sh   # a quick check
#
# Environment (defaults): N (1000) TCP devices, INTERVAL (10s), RETRIES
# (2), WARMUP (30s), WINDOW (60s), BASE_PORT (14000: TCP ports BASE_PORT to
# BASE_PORT+2N-1, below the ephemeral range), DELAY_LINE (198.18.0.0/16),
# VIGIA_PORT (9190), VIGIA (empty: build the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${N:-1000}
INTERVAL=${INTERVAL:-10s}
RETRIES=${RETRIES:-2}
WARMUP=${WARMUP:-30s}
WINDOW=${WINDOW:-60s}
BASE_PORT=${BASE_PORT:-14000}
DELAY_LINE=${DELAY_LINE:-198.18.0.0/16}
VIGIA_PORT=${VIGIA_PORT:-9190}

workdir=var/bench-tcpwan
pgdir=$workdir/pg
sim_pid='' serve_pid='' helper_pid=''
bench_start tcpwan "$workdir" "$pgdir" 'helper_pid serve_pid sim_pid' '*.log' '*.out' '*.md'

[ "$(id -u)" = 0 ] || { log "needs root: the delay line makes a TUN device"; exit 1; }
bench_name=mixed build_vigia # the helper is bench/mixed's, built into $tmp/bench-mixed
fresh_pg vigia_bench_tcpwan

# tcp_only: the generated inventory without its DICOM devices (every
# site keeps its gateway, checked over TCP).
tcp_only() {
	awk '
	function flush() { if (blk != "" && !drop) printf "%s", blk; blk = ""; drop = 0 }
	/^          - id: / { flush(); blk = $0 "\n"; next }
	blk != "" && /^            / { blk = blk $0 "\n"; if ($0 ~ /^            dicom: /) drop = 1; next }
	{ flush(); print }
	END { flush() }' "$1"
}
fleet_ready() {
	alive "$1" || died simulator "$1" "$tmp/$2.log"
	grep -q '^control on http://' "$tmp/$2.out"
}
serve_up() {
	"$vigia" serve --database-url "$1" --data-dir "$tmp/data-$2" --listen "127.0.0.1:$VIGIA_PORT" --log-level warn \
		>"$tmp/serve-$2.out" 2>"$tmp/serve.log" &
	serve_pid=$!
	wait_for 120 "vigia serve" serve_ready "$serve_pid"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for profile in lan wan; do
	"$vigia" simulate fleet --devices $((2 * N)) --sites "$N" --serve tcp --base-port "$BASE_PORT" --interval "$INTERVAL" \
		--retries "$RETRIES" --profiles "$profile:100" --delay-line "$DELAY_LINE" --control 127.0.0.1:0 \
		--write-inventory "$tmp/fleet-$profile.yaml" >"$tmp/sim-$profile.out" 2>"$tmp/sim-$profile.log" &
	sim_pid=$!
	wait_for 120 "the simulator" fleet_ready "$sim_pid" "sim-$profile"
	log "simulator $sim_pid: $(head -n 1 "$tmp/sim-$profile.out")"
	if [ "$profile" = wan ] && ! grep -q 'behind the delay line' "$tmp/sim-$profile.out"; then
		log "the WAN devices are not behind the delay line: $(cat "$tmp/sim-$profile.log")"
		exit 1
	fi
	tcp_only "$tmp/fleet-$profile.yaml" >"$tmp/tcp-$profile.yaml"
	psql -q "$db_url" -c "CREATE DATABASE vigia_tcp_$profile" >/dev/null
	url=${db_url/\/vigia_bench_tcpwan\?//vigia_tcp_$profile?}
	"$vigia" import --database-url "$url" "$tmp/tcp-$profile.yaml" >"$tmp/import-$profile.log" 2>&1
	serve_up "$url" "$profile"
	label="lan (loopback speed)"
	[ "$profile" = wan ] && label="wan (20-80 ms round trip, delay line)"
	timeout 30m "$tmp/bench-mixed" -phase echo -kind tcp -label "$label" -metrics "http://$serve_addr/metrics" \
		-vigia-pid "$serve_pid" -pg-pid "$pg_pid" -db "$url" -expect "$N" -interval "$INTERVAL" -retries "$RETRIES" \
		-warmup "$WARMUP" -window "$WINDOW" >>"$tmp/rows.md" 2> >(tee -a "$tmp/helper.log" >&2) &
	helper_pid=$!
	wait "$helper_pid"
	helper_pid=
	stop "$serve_pid"
	serve_pid=
	stop "$sim_pid"
	sim_pid=
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`N=$N INTERVAL=$INTERVAL WARMUP=$WARMUP WINDOW=$WINDOW bench/tcpwan.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --log-level warn\`, PostgreSQL $(cat "$pgdir/PG_VERSION"), the simulator on the same machine. Load average $load_start at start, $load_end at end.

$N devices checked over TCP every $INTERVAL, a vigia serve and a database for each profile, one after the other.

| peers | checks/s | vigia CPU | CPU per check | check p50 | check p99 |
|---|---:|---:|---:|---:|---:|
EOF
cat "$tmp/rows.md"
