#!/usr/bin/env bash
# Measures a collector (issue 20): one `vigia collect` probing a simulated
# fleet and pushing to a `vigia serve`, against the same fleet probed by
# `vigia serve` directly. Everything runs on loopback: a private PostgreSQL
# under var/bench-collect-pg (recreated on every run), the fleet simulator,
# vigia serve and vigia collect. Every process it starts is stopped on exit,
# and every wait is bounded. Prints a Markdown section for BENCHMARKS.md on
# stdout; progress goes to stderr, the processes' logs to var/bench-collect/.
#
#   bench/collect.sh                          # 5 000 devices at 60 s
#   N=1000 WINDOW=60 OUTAGE=60 bench/collect.sh
#
# Phases: (1) steady state through the collector: CPU of the collector, of
# vigia serve (ingest only) and of PostgreSQL over WINDOW seconds; (2) NOC
# ingest capacity: vigia serve is stopped for OUTAGE seconds while the
# collector queues, then restarted, and the backlog's drain is timed
# (results applied per second); (3) the collector revoked and stopped, the
# same fleet probed by vigia serve itself, CPU over WINDOW seconds.
#
# Environment (defaults): N (5000) devices, BASE_PORT (22000), INTERVAL
# (60s), RETRIES (1), WARMUP (60) and WINDOW (180) seconds, OUTAGE (120)
# seconds, BATCH (1000) checks per push.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${N:-5000}
BASE_PORT=${BASE_PORT:-22000}
INTERVAL=${INTERVAL:-60s}
RETRIES=${RETRIES:-1}
WARMUP=${WARMUP:-60}
WINDOW=${WINDOW:-180}
OUTAGE=${OUTAGE:-120}
BATCH=${BATCH:-1000}

pgdir=var/bench-collect-pg
logdir=var/bench-collect
sim_pid='' serve_pid='' collect_pid=''
# bench_start without its install step: this needs PostgreSQL (and psql,
# curl) only, not the other benchmarks' load generators.
bench_name=collect bench_logdir=$logdir bench_pgdir=$pgdir bench_pids='collect_pid serve_pid sim_pid'
bench_keep=('*.log')
scripts/install-deps.sh run
tmp=$(mktemp -d "/tmp/vigia-bench-collect.XXXXXX")
vigia=$tmp/vigia
trap cleanup EXIT
trap 'exit 130' INT TERM

built="working tree at $(git describe --always --dirty)"
go build -o "$vigia" ./cmd/vigia
log "built vigia ($built)"
fresh_pg vigia_bench
sql() { psql "$db_url" -XAtqc "$1"; }
hz=$(getconf CLK_TCK)
# ticks PID...: utime+stime of the processes, in clock ticks.
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
pg_pids() { echo "$pg_pid $(pgrep -d ' ' -P "$pg_pid" || true)"; }
pct() { awk -v a="$1" -v b="$2" -v s="$3" -v hz="$hz" 'BEGIN {printf "%.1f", 100 * (b - a) / hz / s}'; }
metric() { curl -fsS "http://$1/metrics" 2>/dev/null | awk -v m="$2" '$1 == m {print $2}'; }

# The fleet.
"$vigia" simulate fleet --devices "$N" --base-port "$BASE_PORT" --interval "$INTERVAL" --retries "$RETRIES" \
	--write-inventory "$tmp/fleet.yaml" --control 127.0.0.1:0 >"$tmp/sim.out" 2>"$tmp/sim.log" &
sim_pid=$!
sim_ready() { alive "$sim_pid" || died simulator "$sim_pid" "$tmp/sim.log"; grep -q '^control on http://' "$tmp/sim.out"; }
wait_for 180 simulator sim_ready
"$vigia" import --database-url "$db_url" "$tmp/fleet.yaml" >"$tmp/import.log" 2>&1
mapfile -t sites < <(sed -n 's/^      - id: \(sim-s[0-9]*\)$/\1/p' "$tmp/fleet.yaml")
site_flags=()
for s in "${sites[@]}"; do site_flags+=(--site "$s"); done
"$vigia" collector create --database-url "$db_url" --customer sim --name bench "${site_flags[@]}" >"$tmp/token" 2>"$tmp/create.log"
chmod 600 "$tmp/token"
log "fleet of $N devices on ${#sites[@]} sites, one collector for them all"

start_serve() {
	"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen "${serve_addr:-127.0.0.1:0}" --log-level warn \
		--collector-grace 1h >>"$tmp/serve.out" 2>>"$tmp/serve.log" &
	serve_pid=$!
	wait_for 120 "vigia serve" serve_ready "$serve_pid"
}
start_serve
"$vigia" collect --upstream "http://$serve_addr" --token-file "$tmp/token" --data-dir "$tmp/collector" --listen 127.0.0.1:0 \
	--batch-checks "$BATCH" --log-level warn >"$tmp/collect.out" 2>"$tmp/collect.log" &
collect_pid=$!
# collect_ready: its /metrics answers on the address it listens on.
collect_ready() {
	alive "$collect_pid" || died "vigia collect" "$collect_pid" "$tmp/collect.log"
	local a
	for a in $(ss -ltnpH 2>/dev/null | awk -v p="pid=$collect_pid," 'index($0, p) {print $4}'); do
		curl -fsS -o /dev/null "http://$a/metrics" 2>/dev/null && col_addr=$a && return 0
	done
	return 1
}
wait_for 60 "vigia collect" collect_ready
all_up() { alive "$collect_pid" || died "vigia collect" "$collect_pid" "$tmp/collect.log"; [ "$(sql "SELECT count(*) FROM device_states WHERE state = 'up'")" -eq "$N" ]; }
wait_for 600 "every device up through the collector" all_up
log "all $N devices up; warming up ${WARMUP}s"
sleep "$WARMUP"

# (1) Steady state through the collector.
read -r -a pgs <<<"$(pg_pids)"
applied() { sql "SELECT results_applied FROM collectors"; }
c0=$(ticks "$collect_pid") s0=$(ticks "$serve_pid") p0=$(ticks "${pgs[@]}") a0=$(applied) t0=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
sleep "$WINDOW"
c1=$(ticks "$collect_pid") s1=$(ticks "$serve_pid") p1=$(ticks "${pgs[@]}") a1=$(applied) t1=$SECONDS
load1=$(cut -d' ' -f1-3 /proc/loadavg)
span=$((t1 - t0))
col_rss=$(awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$collect_pid/status")
runs=$(metric "$col_addr" 'vigia_collector_probe_runs_total{prober="dicom",result="ok"}')
log "steady state measured over ${span}s"

# (2) Ingest capacity: the NOC away for OUTAGE seconds, then the backlog.
stop "$serve_pid"
serve_pid=
log "vigia serve stopped for ${OUTAGE}s"
sleep "$OUTAGE"
depth=$(metric "$col_addr" vigia_collector_queue_depth)
l0=$(sql "SELECT last_seq FROM collectors")
backlog_end=$((l0 + depth))
b0=$(applied)
start_serve
d0=$SECONDS
# Drained when the NOC has applied the last check queued before it came
# back (the queue itself is never quite empty: probing goes on).
drained() { [ "$(sql "SELECT last_seq FROM collectors")" -ge "$backlog_end" ]; }
wait_for 900 "the backlog to drain" drained
d1=$SECONDS
b1=$(applied)
drain=$((d1 - d0))
# The rate from the NOC's own instants: each batch's rows carry the instant
# it was applied; the first batch's is the start (the collector's retry
# backoff, still running when vigia serve came back, is not ingest time).
read -r after first_to_last <<<"$(sql "WITH r AS (SELECT applied_at FROM collector_results WHERE seq > $l0 AND seq <= $backlog_end),
	f AS (SELECT min(applied_at) AS m FROM r)
	SELECT count(*) FILTER (WHERE applied_at > f.m), COALESCE(EXTRACT(EPOCH FROM max(applied_at) - f.m), 0) FROM r, f GROUP BY f.m" | tr '|' ' ')"
rate=$(awk -v n="${after:-0}" -v s="${first_to_last:-0}" 'BEGIN {if (s > 0) printf "%.0f", n / s; else print "n/a"}')
log "backlog of $depth checks applied ${drain}s after the restart; $after of them after the first batch, in ${first_to_last}s"

# (3) The same fleet probed by vigia serve itself.
"$vigia" collector revoke --database-url "$db_url" 1 >/dev/null
stop "$collect_pid"
collect_pid=
stop "$serve_pid"
serve_pid=
start_serve
direct() { [ "$(metric "$serve_addr" vigia_probe_devices_scheduled)" = "$N" ]; }
wait_for 120 "vigia serve scheduling the fleet itself" direct
# A whole interval, so every device has been probed from here, then the warm-up.
sleep "${INTERVAL%s}"
sleep "$WARMUP"
read -r -a pgs <<<"$(pg_pids)"
e0=$(ticks "$serve_pid") q0=$(ticks "${pgs[@]}") u0=$SECONDS
sleep "$WINDOW"
e1=$(ticks "$serve_pid") q1=$(ticks "${pgs[@]}") u1=$SECONDS
dspan=$((u1 - u0))
load2=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(N|BASE_PORT|INTERVAL|RETRIES|WARMUP|WINDOW|OUTAGE|BATCH)=' | sort | tr '\n' ' ')bench/collect.sh\`

Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on, all on loopback. Fleet: $N devices ($(grep -c 'dicom:' "$tmp/fleet.yaml") DICOM, ${#sites[@]} TCP site gateways) at $INTERVAL, retries $RETRIES.

| | through one collector | probed by \`vigia serve\` itself |
|---|---:|---:|
| \`vigia collect\` CPU (utime+stime) | **$(pct "$c0" "$c1" "$span") % of one core** | — |
| \`vigia serve\` CPU | $(pct "$s0" "$s1" "$span") % of one core (ingest only) | **$(pct "$e0" "$e1" "$dspan") % of one core** |
| PostgreSQL CPU | $(pct "$p0" "$p1" "$span") % of one core | $(pct "$q0" "$q1" "$dspan") % of one core |
| results applied per second (steady) | $(awk -v n="$((a1 - a0))" -v s="$span" 'BEGIN {printf "%.1f", n / s}') | — |
| window; load average at start → end | ${span} s; $load0 → $load1 | ${dspan} s; → $load2 |
| \`vigia collect\` RSS at end | $col_rss MiB | — |

NOC ingest capacity: with \`vigia serve\` stopped for ${OUTAGE} s the collector queued $depth checks; restarted, the NOC had applied them all ${drain} s later (the collector's retry backoff included; $((b1 - b0)) results applied meanwhile). From the backlog's first batch applied to its last, $after checks in $(printf '%.2f' "${first_to_last:-0}") s: **≈ $rate results/s** applied, end to end (read from the collector's disk, gzip, HTTP, one transaction per batch of $BATCH, on this machine). The collector counted $runs DICOM probes answered ok in all.
EOF
