#!/usr/bin/env bash
# SNMP probe capacity (issue 8): CPU per device poll of `vigia serve` beside
# Prometheus snmp_exporter, both polling the same snmpsim agents for the same
# OIDs (sysUpTime; ifDescr, ifAdminStatus, ifOperStatus; on servers also
# hrStorageType, Descr, AllocationUnits, Size, Used) every 10 s per device,
# with SNMP v2c and with v3 authPriv (SHA/AES).
#
# Pollers take turns, never overlap: in each round and for each version,
# vigia serve polls N devices alone (then stops), and snmp_exporter, driven
# by bench/snmp like a Prometheus scrape pool (every target every 10 s, at
# spread phases), polls the same N agents alone. Each phase waits WARMUP,
# then counts polls and the poller's utime+stime (/proc) over WINDOW. The
# order alternates between rounds so that a change in the machine's load
# hits both alike. Everything runs on loopback: SIM_PROCS snmpsimd processes
# of SIM_PORTS UDP endpoints each (N devices spread over them round robin),
# a private PostgreSQL under var/bench-snmp/pg (recreated), vigia serve,
# snmp_exporter. Every process it starts is stopped on exit; every wait is
# bounded. Prints a Markdown section on stdout; logs go to stderr and
# var/bench-snmp/.
#
#   bench/snmp.sh
#   N=500 ROUNDS=1 WINDOW=60s bench/snmp.sh
#
# Each round measures N_LOW devices and then N, so that the report can
# separate a poller's fixed CPU from its marginal CPU per poll and
# extrapolate (labelled as such) to 10 000 devices: snmpsim, in Python,
# answers a few hundred requests per second per core, far from the
# 1 000 polls/s of 10 000 devices at 10 s.
#
# Environment (defaults): N (500) and N_LOW (100) devices per phase, ROUNDS
# (1), WARMUP (25s), WINDOW (60s), SIM_PROCS (4), SIM_PORTS (5), BASE_PORT (16100, UDP),
# EXPORTER_PORT (19116), SERVERS (5: every 5th device is a PACS, whose
# storage is read too), VIGIA (empty: build from the working tree), AGENT
# (snmpsim; or snmpd: SIM_PROCS net-snmp snmpd processes instead, a C agent
# fast enough to poll 10 000 devices at 10 s for real; their ifTable and
# hrStorageTable are this machine's), POLLERS ("vigia exporter"; "vigia"
# alone measures capacity where snmp_exporter could not keep up), PROFILE (0:
# seconds of `perf record` of vigia serve after its window at N devices, the
# flat profile saved to var/bench-snmp/perf-<version>.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${N:-500}
N_LOW=${N_LOW:-100}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-25s}
WINDOW=${WINDOW:-60s}
SIM_PROCS=${SIM_PROCS:-4}
SIM_PORTS=${SIM_PORTS:-5}
BASE_PORT=${BASE_PORT:-16100}
EXPORTER_PORT=${EXPORTER_PORT:-19116}
SERVERS=${SERVERS:-5}
AGENT=${AGENT:-snmpsim}
POLLERS=${POLLERS:-vigia exporter}
PROFILE=${PROFILE:-0}

workdir=var/bench-snmp
pgdir=$workdir/pg
sim_pids=() serve_pid='' exporter_pid=''
bench_start snmp "$workdir" "$pgdir" 'serve_pid exporter_pid sim_pids[@]' '*.log' results.tsv snmp.yml 'perf-*.txt'
chmod 755 "$tmp" # snmpsimd drops to nobody and must read its data

case $AGENT in snmpsim) agent_bin=snmpsimd ;; snmpd) agent_bin=snmpd ;; *) log "AGENT must be snmpsim or snmpd"; exit 1 ;; esac
for cmd in "$agent_bin" prometheus-snmp-exporter snmpget; do
	command -v "$cmd" >/dev/null || { log "$cmd missing: apt-get install -y snmpsim prometheus-snmp-exporter snmp"; exit 1; }
done

# 1. Build.
build_vigia
fresh_pg vigia_bench_snmp

# 2. The agents. One data file per endpoint, named after its snmpsim
# transport ID: an SNMPv3 request with the empty context name (Vigía sends
# no context) selects the data file by transport ID; a v2c request selects
# it by community, which is that same name. Every agent: sysUpTime, an
# 8-port ifTable (one port down), a 3-entry hrStorageTable (RAM, two disks).
endpoints=$((SIM_PROCS * SIM_PORTS))
udp_taken() { ss -lunH | awk -v lo="$1" -v hi="$2" '{sub(/.*:/, "", $4); if ($4 >= lo && $4 < hi) f = 1} END {exit !f}'; }
port=$BASE_PORT
for _ in 1 2 3 4 5; do
	udp_taken "$port" $((port + endpoints)) || break
	port=$((port + endpoints + 100))
done
udp_taken "$port" $((port + endpoints)) && { log "no free UDP range"; exit 1; }
community() { if [ "$AGENT" = snmpd ]; then echo vigia-bench; else echo "1.3.6.1.6.1.1.$1"; fi; }
if [ "$AGENT" = snmpsim ]; then
python3 - "$tmp/sim" "$SIM_PROCS" "$SIM_PORTS" <<'EOF'
import os, sys
base, procs, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = ["1.3.6.1.2.1.1.1.0|4|Vigia bench agent", "1.3.6.1.2.1.1.3.0|67|{uptime}", "1.3.6.1.2.1.1.5.0|4|agent{n}"]
nif = 8
for col, val in [(1, lambda i: f"2|{i}"), (2, lambda i: f"4|eth{i - 1}"), (3, lambda i: "2|6"),
                 (7, lambda i: "2|1"), (8, lambda i: "2|2" if i == nif else "2|1")]:
    rows += [f"1.3.6.1.2.1.2.2.1.{col}.{i}|{val(i)}" for i in range(1, nif + 1)]
vols = [(1, "1.3.6.1.2.1.25.2.1.2", "Physical memory", 1024, 16000000, 8000000),
        (2, "1.3.6.1.2.1.25.2.1.4", "/", 4096, 2500000, 1200000),
        (3, "1.3.6.1.2.1.25.2.1.4", "/data", 4096, 250000000, 150000000)]
for col in range(1, 7):
    for v in vols:
        val = [f"2|{v[0]}", f"6|{v[1]}", f"4|{v[2]}", f"2|{v[3]}", f"2|{v[4]}", f"2|{v[5]}"][col - 1]
        rows.append(f"1.3.6.1.2.1.25.2.3.1.{col}.{v[0]}|{val}")
rows.sort(key=lambda l: [int(x) for x in l.split("|")[0].split(".")])
text = "\n".join(rows) + "\n"
for p in range(procs):
    d = os.path.join(base, f"p{p}")
    os.makedirs(d, exist_ok=True)
    for e in range(ports):
        t = p * ports + e
        with open(os.path.join(d, f"1.3.6.1.6.1.1.{t}.snmprec"), "w") as f:
            f.write(text.format(uptime=100000 + t, n=t))
EOF
mkdir -p "$tmp/sim-cache"
chmod -R a+rwX "$tmp/sim" "$tmp/sim-cache"
for p in $(seq 0 $((SIM_PROCS - 1))); do
	eps=()
	for e in $(seq 0 $((SIM_PORTS - 1))); do eps+=("--agent-udpv4-endpoint=127.0.0.1:$((port + p * SIM_PORTS + e))"); done
	snmpsimd --process-user=nobody --process-group=nogroup --data-dir="$tmp/sim/p$p" --cache-dir="$tmp/sim-cache" \
		--transport-id-offset=$((p * SIM_PORTS)) --v3-engine-id="80001f8880$(printf '%08x' $((0xbe0000 + p)))" \
		--v3-user=vigia --v3-auth-key=vigia-auth-pass --v3-auth-proto=SHA --v3-priv-key=vigia-priv-pass --v3-priv-proto=AES \
		--logging-method=stderr:error "${eps[@]}" >"$tmp/snmpsim-$p.log" 2>&1 &
	sim_pids+=($!)
done
else
	for p in $(seq 0 $((SIM_PROCS - 1))); do
		d=$tmp/snmpd-$p
		mkdir -p "$d/persist"
		printf '%s\n' "rocommunity vigia-bench 127.0.0.1" 'createUser vigia SHA "vigia-auth-pass" AES "vigia-priv-pass"' \
			"rouser vigia priv" "dontLogTCPWrappersConnects yes" >"$d/snmpd.conf"
		listen=''
		for e in $(seq 0 $((SIM_PORTS - 1))); do listen+="${listen:+,}udp:127.0.0.1:$((port + p * SIM_PORTS + e))"; done
		SNMP_PERSISTENT_DIR=$d/persist MIBS='' snmpd -f -Lo -C -c "$d/snmpd.conf" -p "$d/snmpd.pid" "$listen" \
			>"$tmp/snmpsim-$p.log" 2>&1 &
		sim_pids+=($!)
	done
fi
agent_ok() {
	local t=$1 p=$((port + $1)) i
	for i in "${!sim_pids[@]}"; do
		alive "${sim_pids[$i]}" || { log "$AGENT $i exited: $(tail -n 3 "$tmp/snmpsim-$i.log")"; exit 1; }
	done
	snmpget -v2c -c "$(community "$t")" -t 1 -r 0 -Oqv "127.0.0.1:$p" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 &&
		snmpget -v3 -l authPriv -u vigia -a SHA -A vigia-auth-pass -x AES -X vigia-priv-pass -t 1 -r 0 -Oqv \
			"127.0.0.1:$p" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1
}
for t in $(seq 0 $((endpoints - 1))); do
	wait_for 60 "snmpsim endpoint $((port + t))" agent_ok "$t"
done
log "$AGENT: ${#sim_pids[@]} processes (${sim_pids[*]}), $endpoints agents on UDP $port–$((port + endpoints - 1)), v2c and v3 answer"

# 3. Inventories (one per version: importing one retires the other's
# devices) and the exporter's targets; modules written as the generator
# would (net-snmp's MIB files are not in Debian main, so by OID).
python3 - "$tmp" "$N_LOW $N" "$endpoints" "$port" "$SERVERS" "$AGENT" <<'EOF'
import sys
tmp, sizes, eps, port, servers = sys.argv[1], [int(x) for x in sys.argv[2].split()], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
community = (lambda t: "vigia-bench") if sys.argv[6] == "snmpd" else (lambda t: f"1.3.6.1.6.1.1.{t}")
for ver, n in [(v, n) for v in ("v2c", "v3") for n in sizes]:
    out = ["customers:", "  - id: bench", "    name: Bench hospital network", "    country: CO",
           "    time_zone: America/Bogota", "    sites:"]
    targets = []
    for i in range(n):
        if i % 20 == 0:
            out += [f"      - id: site-{i // 20:04d}", f"        name: Site {i // 20}", "        kind: hospital", "        devices:"]
        t = i % eps
        server = i % servers == 0
        kind = "pacs" if server else "network"
        if ver == "v2c":
            snmp = f"{{host: 127.0.0.1, port: {port + t}, version: v2c, community: {community(t)}}}"
        else:
            snmp = (f"{{host: 127.0.0.1, port: {port + t}, version: v3, user: vigia, auth_protocol: SHA, "
                    "auth_passphrase: vigia-auth-pass, priv_protocol: AES, priv_passphrase: vigia-priv-pass}")
        out += [f"          - id: {ver}-{i:05d}", f"            name: {ver} agent {i}", f"            kind: {kind}",
                f"            snmp: {snmp}", "            probe: {interval: 10s, retries: 2}"]
        targets.append(f"127.0.0.1:{port + t} vigia_{ver}_{t}_{'server' if server else 'net'}")
    open(f"{tmp}/{ver}-{n}.yaml", "w").write("\n".join(out) + "\n")
    open(f"{tmp}/{ver}-{n}.targets", "w").write("\n".join(targets) + "\n")

def table(cols, idx, lookup_oid, lookup):
    return "".join(f"""  - name: {name}
    oid: {oid}
    type: gauge
    indexes:
    - labelname: {idx}
      type: gauge
    lookups:
    - labels: [{idx}]
      labelname: {lookup}
      oid: {lookup_oid}
      type: DisplayString
""" for name, oid in cols)
IF = table([("ifAdminStatus", "1.3.6.1.2.1.2.2.1.7"), ("ifOperStatus", "1.3.6.1.2.1.2.2.1.8")], "ifIndex", "1.3.6.1.2.1.2.2.1.2", "ifDescr")
HR = table([("hrStorageType", "1.3.6.1.2.1.25.2.3.1.2"), ("hrStorageAllocationUnits", "1.3.6.1.2.1.25.2.3.1.4"),
            ("hrStorageSize", "1.3.6.1.2.1.25.2.3.1.5"), ("hrStorageUsed", "1.3.6.1.2.1.25.2.3.1.6")],
           "hrStorageIndex", "1.3.6.1.2.1.25.2.3.1.3", "hrStorageDescr")
y = []
for t in range(eps):
    auths = {"v2c": f"  version: 2\n  auth:\n    community: {community(t)}\n",
             "v3": "  version: 3\n  auth:\n    username: vigia\n    security_level: authPriv\n    password: vigia-auth-pass\n"
                   "    auth_protocol: SHA\n    priv_protocol: AES\n    priv_password: vigia-priv-pass\n"}
    for ver, auth in auths.items():
        for kind in ("net", "server"):
            walk = ["1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"]
            metrics = "  - name: sysUpTime\n    oid: 1.3.6.1.2.1.1.3\n    type: gauge\n" + IF
            if kind == "server":
                walk += [f"1.3.6.1.2.1.25.2.3.1.{c}" for c in (2, 3, 4, 5, 6)]
                metrics += HR
            y.append(f"vigia_{ver}_{t}_{kind}:\n  get:\n  - 1.3.6.1.2.1.1.3.0\n  walk:\n" + "".join(f"  - {w}\n" for w in walk)
                     + "  metrics:\n" + metrics + auth + "  max_repetitions: 25\n  retries: 1\n  timeout: 2s\n")
open(f"{tmp}/snmp.yml", "w").write("".join(y))
EOF

# 4. snmp_exporter (idle while vigia polls).
ss -ltnH | awk '{print $4}' | grep -q ":$EXPORTER_PORT\$" && { log "TCP port $EXPORTER_PORT taken: set EXPORTER_PORT"; exit 1; }
prometheus-snmp-exporter --config.file="$tmp/snmp.yml" --web.listen-address="127.0.0.1:$EXPORTER_PORT" --log.level=warn \
	>"$tmp/exporter.log" 2>&1 &
exporter_pid=$!
exporter=http://127.0.0.1:$EXPORTER_PORT
exporter_ok() { alive "$exporter_pid" && curl -fsS "$exporter/snmp?target=127.0.0.1:$port&module=vigia_v3_0_server" 2>/dev/null | grep -q '^hrStorageUsed{'; }
wait_for 30 "snmp_exporter" exporter_ok
log "snmp_exporter $exporter_pid at $exporter ($(prometheus-snmp-exporter --version 2>&1 | head -n 1))"

# 5. The phases.
vigia_phase() {
	local ver=$1 n=$2
	"$vigia" import --database-url "$db_url" "$tmp/$ver-$n.yaml" >>"$tmp/import.log" 2>&1
	"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-level warn \
		--probe-concurrency 256 >"$tmp/serve.out" 2>>"$tmp/serve.log" &
	serve_pid=$!
	wait_for 120 "vigia serve" serve_ready "$serve_pid"
	timeout 15m "$tmp/bench-snmp" vigia -metrics "http://$serve_addr/metrics" -pid "$serve_pid" -pg-pid "$pg_pid" \
		-sim-pids "$(IFS=,; echo "${sim_pids[*]}")" -label "$ver" -devices "$n" -warmup "$WARMUP" -window "$WINDOW" \
		-out "$tmp/results.tsv" 2>>"$tmp/helper.log"
	tail -n 1 "$tmp/helper.log" >&2
	if [ "$PROFILE" != 0 ] && [ "$n" = "$N" ] && command -v perf >/dev/null; then
		perf record -q -F 499 -g -o "$tmp/perf.data" -p "$serve_pid" -- sleep "$PROFILE" 2>/dev/null || true
		perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
			grep -E '^ +[0-9.]+%' | head -n 50 >"$tmp/perf-$ver.txt" || true
		perf report -i "$tmp/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
			grep -E '^ +[0-9.]+%' | head -n 80 >"$tmp/perf-$ver-cumulative.txt" || true
		rm -f "$tmp/perf.data"
	fi
	stop "$serve_pid"
	serve_pid=
}
exporter_phase() {
	local ver=$1 n=$2
	timeout 15m "$tmp/bench-snmp" exporter -exporter "$exporter" -targets "$tmp/$ver-$n.targets" -pid "$exporter_pid" \
		-sim-pids "$(IFS=,; echo "${sim_pids[*]}")" -label "$ver" -warmup "$WARMUP" -window "$WINDOW" \
		-out "$tmp/results.tsv" 2>>"$tmp/helper.log"
	tail -n 1 "$tmp/helper.log" >&2
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
for r in $(seq 1 "$ROUNDS"); do
	for n in $N_LOW $N; do
		for ver in v2c v3; do
			order=$POLLERS
			[ $((r % 2)) -eq 1 ] || order=$(echo "$POLLERS" | tr ' ' '\n' | tac | tr '\n' ' ')
			for poller in $order; do "${poller}_phase" "$ver" "$n"; done
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# 6. The section.
cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(AGENT|POLLERS|PROFILE|N|N_LOW|ROUNDS|WARMUP|WINDOW|SIM_PROCS|SIM_PORTS|BASE_PORT|EXPORTER_PORT|SERVERS|VIGIA)=' | sort | tr '\n' ' ')bench/snmp.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; $(prometheus-snmp-exporter --version 2>&1 | head -n 1 | sed 's/ *(.*//'); agents: $AGENT $(dpkg-query -W -f '${Version}' "$AGENT") ($SIM_PROCS processes × $SIM_PORTS UDP endpoints); PostgreSQL $(cat "$pgdir/PG_VERSION"), all on loopback. N = $N_LOW and $N devices per phase (every ${SERVERS}th a PACS whose hrStorageTable is read too), each polled every 10 s; warm-up $WARMUP, window $WINDOW per phase; load average $load_start at start, $load_end at end.

EOF
"$tmp/bench-snmp" report -in "$tmp/results.tsv"
