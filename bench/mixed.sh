#!/usr/bin/env bash
# One vigia serve watching a mixed fleet as hospitals have it (issue 21):
# DICOM nodes, SNMP agents (v2c and v3 authPriv alternating) and devices
# posting heartbeats, probed every INTERVAL, their sites behind links of
# mixed profiles (lan, wan 20-80 ms, satellite 600 ms) with packet loss,
# some PACS slow (40 ms per association step). Reports vigia's CPU and RSS,
# PostgreSQL's CPU, how late checks start after they are due (p99), the
# probe rate, and the detection time of devices taken dark (p99, and by
# profile). Then, against a fleet of ECHO_N DICOM nodes alone, vigia's CPU
# per echo with every peer on the lan profile and then every peer a slow
# PACS, measured one after the other by the same vigia serve.
#
# Everything runs on loopback: a private PostgreSQL under var/bench-mixed/pg
# (recreated), `vigia simulate fleet` (two of them for the mixed fleet, one
# serving its DICOM and TCP endpoints, the other its SNMP agents and
# heartbeats: over 20 000 listeners do not fit one process's usual limit of
# file descriptors), `vigia serve`, bench/mixed (the measuring helper). Every process it starts is stopped on exit; every wait
# is bounded. Prints a Markdown section on stdout; logs go to stderr and
# var/bench-mixed/. A benchmark on a loaded machine measures the load: run
# it on a quiet one (the load average is reported).
#
#   bench/mixed.sh
#   DICOM=200 SNMP=200 HEARTBEATS=40 SITES=20 ECHO_N=200 WARMUP=10s WINDOW=20s bench/mixed.sh   # a quick check
#
# Environment (defaults): DICOM (10000 DICOM nodes, and one gateway per
# site checked over TCP on top), SNMP (10000), HEARTBEATS (2000), SITES (500),
# INTERVAL (10s), RETRIES (2), PROFILES (lan:60,wan:35,satellite:5, by
# site), DEVICE_PROFILES (slow-pacs:20, by DICOM node and SNMP agent), LOSS
# (1%), CONCURRENCY (512, vigia's --probe-concurrency), WARMUP (60s), WINDOW
# (120s), DOWN (100) devices taken dark, ECHO_N (10000), BASE_PORT (10000:
# TCP and UDP ports BASE_PORT to BASE_PORT+DICOM+SITES+SNMP-1, below the
# ephemeral range), VIGIA_PORT (9180, below the fleet's ports), VIGIA (empty:
# build the working tree), DELAY_LINE (off: the profiles at the application
# level, as recorded in BENCHMARKS.md; a range such as 198.18.0.0/16 puts the
# DICOM and TCP simulator's devices behind its delay line, as root; the SNMP
# and heartbeat simulator keeps its own, since the inventory is the first's).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

DICOM=${DICOM:-10000}
SNMP=${SNMP:-10000}
HEARTBEATS=${HEARTBEATS:-2000}
SITES=${SITES:-500}
INTERVAL=${INTERVAL:-10s}
RETRIES=${RETRIES:-2}
PROFILES=${PROFILES:-lan:60,wan:35,satellite:5}
DEVICE_PROFILES=${DEVICE_PROFILES:-slow-pacs:20}
LOSS=${LOSS:-1%}
CONCURRENCY=${CONCURRENCY:-512}
WARMUP=${WARMUP:-60s}
WINDOW=${WINDOW:-120s}
DOWN=${DOWN:-100}
DELAY_LINE=${DELAY_LINE:-off}
ECHO_N=${ECHO_N:-10000}
BASE_PORT=${BASE_PORT:-10000}
VIGIA_PORT=${VIGIA_PORT:-9180}

workdir=var/bench-mixed
pgdir=$workdir/pg
sim_pid='' sim2_pid='' serve_pid='' helper_pid=''
bench_start mixed "$workdir" "$pgdir" 'helper_pid serve_pid sim_pid sim2_pid' '*.log' '*.out'

build_vigia
fresh_pg vigia_bench_mixed

# start_fleet LOG ARGS...: vigia simulate fleet, up to 3 minutes to bind
# its ports; sets sim_pid and control (the previous ones are kept in
# sim2_pid and control2 when KEEP=1).
start_fleet() {
	local name=$1
	shift
	if [ "${KEEP:-}" = 1 ]; then
		sim2_pid=$sim_pid control2=$control
	fi
	# Over 20 000 listeners: more file descriptors than the usual hard
	# limit, which root may raise for this process alone.
	(
		ulimit -n 65536 2>/dev/null || true
		exec "$vigia" simulate fleet --base-port "$BASE_PORT" --interval "$INTERVAL" --retries "$RETRIES" --control 127.0.0.1:0 \
			--vigia "http://127.0.0.1:$VIGIA_PORT" "$@"
	) >"$tmp/$name.out" 2>"$tmp/$name.log" &
	sim_pid=$!
	wait_for 180 "the simulator" fleet_ready "$sim_pid" "$name"
	control=$(grep -o '^control on http://[^ ]*' "$tmp/$name.out" | sed 's/^control on //')
	log "simulator $sim_pid: $(head -n 1 "$tmp/$name.out")"
}
fleet_ready() {
	alive "$1" || died simulator "$1" "$tmp/$2.log"
	grep -q '^control on http://' "$tmp/$2.out"
}
# start_serve DB_URL LOG: vigia serve on VIGIA_PORT; sets serve_pid.
start_serve() {
	"$vigia" serve --database-url "$1" --data-dir "$tmp/data" --listen "127.0.0.1:$VIGIA_PORT" --log-level warn \
		--probe-concurrency "$CONCURRENCY" >"$tmp/$2.out" 2>"$tmp/serve.log" &
	serve_pid=$!
	wait_for 120 "vigia serve" serve_ready "$serve_pid"
	log "vigia serve $serve_pid at $serve_addr"
}
# measure ARGS...: the helper (its waits are bounded; timeout is a backstop).
measure() {
	timeout 60m "$tmp/bench-mixed" -metrics "http://$serve_addr/metrics" -control "$control" -vigia-pid "$serve_pid" \
		-pg-pid "$pg_pid" -interval "$INTERVAL" -retries "$RETRIES" -warmup "$WARMUP" -window "$WINDOW" "$@" \
		2> >(tee -a "$tmp/helper.log" >&2) &
	helper_pid=$!
	wait "$helper_pid"
	helper_pid=
}

# 1. The mixed fleet.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
mixed=(--devices $((DICOM + SITES)) --snmp "$SNMP" --heartbeats "$HEARTBEATS" --sites "$SITES"
	--profiles "$PROFILES" --device-profiles "$DEVICE_PROFILES" --loss "$LOSS")
start_fleet fleet "${mixed[@]}" --serve dicom,tcp --delay-line "$DELAY_LINE" --write-inventory "$tmp/fleet.yaml"
KEEP=1 start_fleet fleet-snmp "${mixed[@]}" --serve snmp,heartbeat --delay-line off
"$vigia" import --database-url "$db_url" "$tmp/fleet.yaml" >"$tmp/import.log" 2>&1
log "mixed inventory imported"
start_serve "$db_url" serve
control="$control,$control2" measure -phase steady -db "$db_url" -expect $((DICOM + SITES + SNMP + HEARTBEATS)) -down "$DOWN" >"$tmp/steady.md"
stop "$serve_pid"
serve_pid=
stop "$sim_pid"
stop "$sim2_pid"
sim_pid='' sim2_pid=

# 2. CPU per echo: ECHO_N DICOM nodes on the lan profile, then the same
# nodes as slow PACS, watched by one vigia serve on a database of its own.
# ECHO_N=0 skips it.
if [ "$ECHO_N" -gt 0 ]; then
psql -q "$db_url" -c "CREATE DATABASE vigia_bench_echo" >/dev/null
echo_url=${db_url/\/vigia_bench_mixed\?//vigia_bench_echo?}
start_fleet echo-lan --devices "$ECHO_N" --sites $((ECHO_N / 20 > 0 ? ECHO_N / 20 : 1)) --write-inventory "$tmp/echo.yaml"
"$vigia" import --database-url "$echo_url" "$tmp/echo.yaml" >"$tmp/import-echo.log" 2>&1
start_serve "$echo_url" serve-echo
measure -phase echo -label "lan (loopback speed)" -db "$echo_url" -expect "$ECHO_N" >"$tmp/echo.md"
stop "$sim_pid"
start_fleet echo-slow --devices "$ECHO_N" --sites $((ECHO_N / 20 > 0 ? ECHO_N / 20 : 1)) --device-profiles slow-pacs:100
measure -phase echo -label "slow-pacs (40 ms per association step)" -db "$echo_url" -expect "$ECHO_N" >>"$tmp/echo.md"
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
mem=$(free -g | awk '/^Mem:/ {print $2}')
cat <<EOF
Command: \`$(env | grep -E '^(DICOM|SNMP|HEARTBEATS|SITES|INTERVAL|RETRIES|PROFILES|DEVICE_PROFILES|LOSS|CONCURRENCY|WARMUP|WINDOW|DOWN|ECHO_N|BASE_PORT|VIGIA_PORT|VIGIA)=' | sort | tr '\n' ' ')bench/mixed.sh\`

Measured $started on $cpu, $(nproc) CPUs, ${mem} GiB ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --probe-concurrency $CONCURRENCY --log-level warn\`, PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on, the simulator on the same machine, all on loopback. Load average $load_start at start, $load_end at end.

Mixed fleet, two simulators: $(head -n 1 "$tmp/fleet.out" | sed 's/; file descriptor limit [0-9]*//'); and $(head -n 1 "$tmp/fleet-snmp.out" | sed 's/; file descriptor limit [0-9]*//'). Every device every $INTERVAL, $RETRIES retries.

| measure | value |
|---|---|
EOF
cat "$tmp/steady.md"
[ "$ECHO_N" -gt 0 ] || exit 0
cat <<EOF

CPU per DICOM echo, $ECHO_N nodes every $INTERVAL, the same vigia serve: all on the lan profile, then all slow PACS.

| peers | echoes/s | vigia CPU | CPU per echo | echo p50 | echo p99 |
|---|---:|---:|---:|---:|---:|
EOF
cat "$tmp/echo.md"
