#!/usr/bin/env bash
# Measures `vigia serve` probing a simulated DICOM fleet (issue 4): its CPU
# and memory, probe throughput and latency, the probe backlog, and the time
# from taking a device down to its `down` row. Everything runs on loopback:
# a private PostgreSQL under var/bench-pg (recreated on every run), the
# fleet simulator, vigia serve, and bench/probes (the measuring helper).
# Every process it starts is stopped on exit, and every wait is bounded.
# Prints a Markdown section for BENCHMARKS.md on stdout; progress and the
# processes' logs go to stderr and var/bench-probes/.
#
#   bench/probes.sh                       # 10 000 devices, 120 s window
#   N=2000 WINDOW=60 bench/probes.sh      # smaller, quicker
#
# Environment (defaults): N (10000) devices, BASE_PORT (22000, below the
# ephemeral range), INTERVAL (10s), RETRIES (2), CONCURRENCY (256, vigia's
# --probe-concurrency), WARMUP (60s), WINDOW (120s), DOWN (100) devices
# taken down refused and BLACKHOLE (20) blackholed, SPACING (1s) between
# take-downs, SAMPLER_RATE (10) C-ECHOs/s of the helper's own latency
# sampler, PROFILE (0) seconds of `perf record` of vigia serve afterwards,
# REV (empty: the working tree) builds vigia from that git revision instead,
# VIGIA (empty) uses that vigia binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${N:-10000}
BASE_PORT=${BASE_PORT:-22000}
INTERVAL=${INTERVAL:-10s}
RETRIES=${RETRIES:-2}
CONCURRENCY=${CONCURRENCY:-256}
WARMUP=${WARMUP:-60s}
WINDOW=${WINDOW:-120s}
DOWN=${DOWN:-100}
BLACKHOLE=${BLACKHOLE:-20}
SPACING=${SPACING:-1s}
SAMPLER_RATE=${SAMPLER_RATE:-10}
PROFILE=${PROFILE:-0}
REV=${REV:-}

pgdir=var/bench-pg
logdir=var/bench-probes
sim_pid='' serve_pid='' helper_pid=''
bench_start probes "$logdir" "$pgdir" 'helper_pid serve_pid sim_pid' '*.log' 'perf-*.txt'

# 1. Build (into $tmp: other engineers may be running bin/vigia).
build_vigia "$REV"

# A fresh private PostgreSQL (fsync on, as in production).
fresh_pg vigia_bench

# The fleet, on N consecutive ports below the ephemeral range. Other
# engineers' tests listen on ports too: skip ranges in use, and try another
# range if one is taken while the simulator binds it.
range_free() { ! ss -ltnH | awk -v lo="$1" -v hi="$(($1 + N))" '{sub(/.*:/, "", $4); if ($4 >= lo && $4 < hi) f = 1} END {exit !f}'; }
sim_bound() {
	alive "$sim_pid" && return 0
	grep -q 'address already in use' "$tmp/sim.log" && return 1
	died simulator "$sim_pid" "$tmp/sim.log"
}
port=$BASE_PORT tries=0
while :; do
	tries=$((tries + 1))
	[ $tries -le 5 ] || { log "no free range of $N ports"; exit 1; }
	[ $((port + N)) -le 32768 ] || port=10000
	range_free "$port" || { port=$((port + N)); continue; }
	"$vigia" simulate fleet --devices "$N" --base-port "$port" --interval "$INTERVAL" --retries "$RETRIES" \
		--write-inventory "$tmp/fleet.yaml" --control 127.0.0.1:0 >"$tmp/sim.out" 2>"$tmp/sim.log" &
	sim_pid=$!
	ok=
	for _ in $(seq 1 360); do
		sim_bound || break
		grep -q '^control on http://' "$tmp/sim.out" && { ok=1; break; }
		sleep 0.5
	done
	[ -n "$ok" ] && break
	alive "$sim_pid" && { log "the simulator is not ready after 180s"; exit 1; }
	log "ports $port.. taken while binding: $(tail -n 1 "$tmp/sim.log")"
	port=$((port + N))
done
control=$(grep -o '^control on http://[^ ]*' "$tmp/sim.out" | sed 's/^control on //')
log "simulator $sim_pid on ports $port–$((port + N - 1)): $(head -n 1 "$tmp/sim.out")"

"$vigia" import --database-url "$db_url" "$tmp/fleet.yaml" >"$tmp/import.log" 2>&1
log "inventory imported"

"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-level warn \
	--probe-concurrency "$CONCURRENCY" >"$tmp/serve.out" 2>"$tmp/serve.log" &
serve_pid=$!
wait_for 120 "vigia serve" serve_ready "$serve_pid"
metrics="http://$serve_addr/metrics"
log "vigia serve $serve_pid at $metrics"

# 2–4. Measure (the helper bounds its own waits; timeout is a backstop).
timeout 45m "$tmp/bench-probes" -metrics "$metrics" -control "$control" -db "$db_url" \
	-vigia-pid "$serve_pid" -sim-pid "$sim_pid" -pg-pid "$pg_pid" \
	-interval "$INTERVAL" -retries "$RETRIES" -warmup "$WARMUP" -window "$WINDOW" \
	-down "$DOWN" -blackhole "$BLACKHOLE" -spacing "$SPACING" -sampler-rate "$SAMPLER_RATE" \
	>"$tmp/report.md" 2> >(tee "$tmp/helper.log" >&2) &
helper_pid=$!
wait "$helper_pid"
helper_pid=

if [ "$PROFILE" != 0 ] && command -v perf >/dev/null; then
	log "perf record of vigia serve for ${PROFILE}s"
	perf record -q -F 499 -g -o "$tmp/perf.data" -p "$serve_pid" -- sleep "$PROFILE" 2>/dev/null
	perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 60 >"$tmp/perf-flat.txt" || true
	perf report -i "$tmp/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 80 >"$tmp/perf-cumulative.txt" || true
fi

# 5. The section.
cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
mem=$(free -g | awk '/^Mem:/ {print $2}')
cat <<EOF
Command: \`$(env | grep -E '^(N|BASE_PORT|INTERVAL|RETRIES|CONCURRENCY|WARMUP|WINDOW|DOWN|BLACKHOLE|SPACING|SAMPLER_RATE|PROFILE|REV|VIGIA)=' | sort | tr '\n' ' ')bench/probes.sh\`

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $cpu, $(nproc) CPUs, ${mem} GiB ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --probe-concurrency $CONCURRENCY --log-level warn\`, PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on, all on loopback.

EOF
cat "$tmp/report.md"
