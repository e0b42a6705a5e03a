#!/usr/bin/env bash
# A regional storm (issue 21): SITES sites of PER_SITE devices each lose
# their uplinks within SPREAD, and Vigía must open one site ticket and send
# one e-mail per site, none per device, with a kill -9 of vigia serve in
# the middle (KILL_AFTER after the first site goes dark; it is started
# again at once with the same instance id). Reports dark → ticket row and
# dark → e-mail accepted by an SMTP sink (p50/p99/max), and duplicates and
# missing tickets and e-mails, which must be zero.
#
# Everything runs on loopback: a private PostgreSQL under var/bench-storm/pg
# (recreated), `vigia simulate fleet`, and bench/storm, which runs the SMTP
# sink and vigia serve itself (to kill it at the right moment). Every
# process it starts is stopped on exit; every wait is bounded. Prints a
# Markdown section on stdout; logs go to stderr and var/bench-storm/.
#
#   bench/storm.sh
#   SITES=10 PER_SITE=5 bench/storm.sh     # a quick check
#
# Environment (defaults): SITES (250), PER_SITE (20, the gateway included),
# SPREAD (10s), KILL_AFTER (5s; 0: no kill), MODE (refuse, or blackhole:
# nothing answers), INTERVAL (10s), RETRIES (2), BASE_PORT (10000, below
# the ephemeral range), VIGIA_PORT (9181, below the fleet's ports), VIGIA
# (empty: build the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

SITES=${SITES:-250}
PER_SITE=${PER_SITE:-20}
SPREAD=${SPREAD:-10s}
KILL_AFTER=${KILL_AFTER:-5s}
MODE=${MODE:-refuse}
INTERVAL=${INTERVAL:-10s}
RETRIES=${RETRIES:-2}
BASE_PORT=${BASE_PORT:-10000}
VIGIA_PORT=${VIGIA_PORT:-9181}

workdir=var/bench-storm
pgdir=$workdir/pg
sim_pid='' helper_pid=''
bench_start storm "$workdir" "$pgdir" 'helper_pid sim_pid' '*.log' '*.out'

build_vigia
fresh_pg vigia_bench_storm

n=$((SITES * PER_SITE))
"$vigia" simulate fleet --devices "$n" --sites "$SITES" --base-port "$BASE_PORT" --interval "$INTERVAL" --retries "$RETRIES" \
	--control 127.0.0.1:0 --write-inventory "$tmp/fleet.yaml" >"$tmp/sim.out" 2>"$tmp/sim.log" &
sim_pid=$!
fleet_ready() {
	alive "$sim_pid" || died simulator "$sim_pid" "$tmp/sim.log"
	grep -q '^control on http://' "$tmp/sim.out"
}
wait_for 180 "the simulator" fleet_ready
control=$(grep -o '^control on http://[^ ]*' "$tmp/sim.out" | sed 's/^control on //')
log "simulator $sim_pid: $(head -n 1 "$tmp/sim.out")"
"$vigia" import --database-url "$db_url" "$tmp/fleet.yaml" >"$tmp/import.log" 2>&1
# One address per customer: one e-mail per site ticket.
psql -q "$db_url" -c "UPDATE customers SET notify_email = 'noc@hospital.example'" >/dev/null
log "inventory imported: $n devices on $SITES sites"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
timeout 30m "$tmp/bench-storm" -vigia "$vigia" -db "$db_url" -control "$control" -listen "127.0.0.1:$VIGIA_PORT" \
	-serve-log "$tmp/serve.log" -expect "$n" -spread "$SPREAD" -kill-after "$KILL_AFTER" -mode "$MODE" \
	>"$tmp/report.md" 2> >(tee "$tmp/helper.log" >&2) &
helper_pid=$!
wait "$helper_pid"
helper_pid=
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(SITES|PER_SITE|SPREAD|KILL_AFTER|MODE|INTERVAL|RETRIES|BASE_PORT|VIGIA_PORT|VIGIA)=' | sort | tr '\n' ' ')bench/storm.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --probe-concurrency 512\` with its SMTP relay the helper's sink, PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on, all on loopback. $n devices on $SITES sites, every device every $INTERVAL with $RETRIES retries (detection bound interval × (retries + 1) + 2 s). Load average $load_start at start, $load_end at end.

| measure | value |
|---|---|
EOF
cat "$tmp/report.md"
