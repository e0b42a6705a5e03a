#!/usr/bin/env bash
# vigia's CPU per plain TCP check (issue 21): N devices checked over TCP
# only, first on the lan profile (loopback speed), then behind a WAN (20-80
# ms per round trip) carried by the simulator's delay line, so that the
# connect itself takes the round trip. Each fleet has a vigia serve and a
# database of its own, both measured at once in one run. Needs root (the
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
# BASE_PORT+4N-1, below the ephemeral range), DELAY_LINE (198.18.0.0/16),
# VIGIA_PORT (9190, and the next one), VIGIA (empty: build the working tree).
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
sim_pids=() serve_pids=() helper_pids=()
bench_start tcpwan "$workdir" "$pgdir" 'helper_pids[@] serve_pids[@] sim_pids[@]' '*.log' '*.out' '*.md'

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

# Both fleets and both vigia serves run at once and are measured over the
# same window: on a shared machine, one after the other would compare two
# different loads.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
declare -A serve_of addr_of url_of
i=0
for profile in lan wan; do
	"$vigia" simulate fleet --devices $((2 * N)) --sites "$N" --serve tcp --base-port $((BASE_PORT + i * 2 * N)) \
		--interval "$INTERVAL" --retries "$RETRIES" --profiles "$profile:100" --delay-line "$DELAY_LINE" --control 127.0.0.1:0 \
		--write-inventory "$tmp/fleet-$profile.yaml" >"$tmp/sim-$profile.out" 2>"$tmp/sim-$profile.log" &
	sim_pids+=($!)
	wait_for 120 "the simulator" fleet_ready "$!" "sim-$profile"
	log "simulator ${sim_pids[-1]}: $(head -n 1 "$tmp/sim-$profile.out")"
	if [ "$profile" = wan ] && ! grep -q 'behind the delay line' "$tmp/sim-$profile.out"; then
		log "the WAN devices are not behind the delay line: $(cat "$tmp/sim-$profile.log")"
		exit 1
	fi
	tcp_only "$tmp/fleet-$profile.yaml" >"$tmp/tcp-$profile.yaml"
	psql -q "$db_url" -c "CREATE DATABASE vigia_tcp_$profile" >/dev/null
	url_of[$profile]=${db_url/\/vigia_bench_tcpwan\?//vigia_tcp_$profile?}
	"$vigia" import --database-url "${url_of[$profile]}" "$tmp/tcp-$profile.yaml" >"$tmp/import-$profile.log" 2>&1
	"$vigia" serve --database-url "${url_of[$profile]}" --data-dir "$tmp/data-$profile" --listen "127.0.0.1:$((VIGIA_PORT + i))" \
		--log-level warn >"$tmp/serve-$profile.out" 2>"$tmp/serve.log" &
	serve_pids+=($!)
	serve_of[$profile]=$!
	wait_for 120 "vigia serve" serve_ready "$!"
	addr_of[$profile]=$serve_addr
	i=$((i + 1))
done
# ticks PID: the CPU time of a process so far, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sim_ticks0=("$(ticks "${sim_pids[0]}")" "$(ticks "${sim_pids[1]}")")
sim_t0=$(date +%s.%N)
for profile in lan wan; do
	label="lan (loopback speed)"
	[ "$profile" = wan ] && label="wan (20-80 ms round trip, delay line)"
	timeout 30m "$tmp/bench-mixed" -phase echo -kind tcp -label "$label" -metrics "http://${addr_of[$profile]}/metrics" \
		-vigia-pid "${serve_of[$profile]}" -pg-pid "$pg_pid" -db "${url_of[$profile]}" -expect "$N" -interval "$INTERVAL" \
		-retries "$RETRIES" -warmup "$WARMUP" -window "$WINDOW" >"$tmp/row-$profile.md" 2> >(tee -a "$tmp/helper.log" >&2) &
	helper_pids+=($!)
done
for pid in "${helper_pids[@]}"; do wait "$pid"; done
helper_pids=()
sim_cpu=()
for j in 0 1; do
	sim_cpu+=("$(awk -v a="${sim_ticks0[$j]}" -v b="$(ticks "${sim_pids[$j]}")" -v t0="$sim_t0" -v t1="$(date +%s.%N)" -v hz="$(getconf CLK_TCK)" \
		'BEGIN {printf "%.1f", (b - a) / hz / (t1 - t0) * 100}')")
done
cat "$tmp/row-lan.md" "$tmp/row-wan.md" >"$tmp/rows.md"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`N=$N INTERVAL=$INTERVAL WARMUP=$WARMUP WINDOW=$WINDOW bench/tcpwan.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --log-level warn\`, PostgreSQL $(cat "$pgdir/PG_VERSION"), the simulator on the same machine. Load average $load_start at start, $load_end at end.

$N devices checked over TCP every $INTERVAL for each profile, each fleet watched by a vigia serve with a database of its own, both measured over the same window.

| peers | checks/s | vigia CPU | CPU per check | check p50 | check p99 |
|---|---:|---:|---:|---:|---:|
EOF
cat "$tmp/rows.md"
echo
echo "The simulators over the warm-up and the window: ${sim_cpu[0]} % of a core for the lan fleet, ${sim_cpu[1]} % for the wan fleet and its delay line."
