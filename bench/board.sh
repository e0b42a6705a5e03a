#!/usr/bin/env bash
# The NOC board with 10 000 devices (issue 21): how long `vigia serve`
# takes to render /console/noc, p95 against the 200 ms acceptance.
#
# A private PostgreSQL under var/bench-board/pg (recreated on every run)
# gets an inventory of DEVICES devices: CUSTOMERS hospital networks, SITES
# sites in all, DEVICES / SITES devices per site, each with a serial number
# and a DICOM AE title (the board searches both). Their states are written
# straight into device_states: 1 % down, 0.5 % unreachable, 1 % degraded,
# 0.2 % misconfigured, 0.1 % in maintenance, 0.4 % flapping, the rest up,
# spread over the sites. `vigia serve --probe=false` (nothing is probed, so
# nothing changes while measuring) serves the console; bench/board logs in
# as a NOC user and sends REQUESTS board requests one after another per URL
# (the full page; its live fragment, as the page reloads it every few
# seconds; the problems filter; a search by serial; a page deep in the
# list) and reports p50/p95/p99/max. Every process it starts is stopped on
# exit; every wait is bounded. Prints a Markdown section on stdout; logs go
# to stderr and var/bench-board/.
#
#   bench/board.sh
#   DEVICES=1000 SITES=25 REQUESTS=20 bench/board.sh   # a quick check
#
# Environment (defaults): DEVICES (10000), SITES (250), CUSTOMERS (25),
# REQUESTS (200), VIGIA (empty: build the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

DEVICES=${DEVICES:-10000}
SITES=${SITES:-250}
CUSTOMERS=${CUSTOMERS:-25}
REQUESTS=${REQUESTS:-200}

workdir=var/bench-board
pgdir=$workdir/pg
serve_pid=
bench_start board "$workdir" "$pgdir" serve_pid '*.log' '*.txt'

command -v psql >/dev/null || { log "psql missing: apt-get install -y postgresql-client"; exit 1; }
[ $((SITES % CUSTOMERS)) -eq 0 ] && [ $((DEVICES % SITES)) -eq 0 ] ||
	{ log "SITES must be a multiple of CUSTOMERS and DEVICES of SITES"; exit 1; }

build_vigia
fresh_pg vigia_bench_board

per_site=$((DEVICES / SITES)) sites_per_customer=$((SITES / CUSTOMERS))
awk -v customers="$CUSTOMERS" -v sites="$sites_per_customer" -v devices="$per_site" 'BEGIN {
	print "customers:"
	for (c = 1; c <= customers; c++) {
		printf "  - id: h%d\n    name: Red hospitalaria %d\n    country: CO\n    time_zone: America/Bogota\n    sites:\n", c, c
		for (s = 1; s <= sites; s++) {
			printf "      - id: h%d-s%d\n        name: Sede %d.%d\n        kind: hospital\n        devices:\n", c, s, c, s
			for (d = 1; d <= devices; d++)
				printf "          - id: h%d-s%d-d%d\n            name: Equipo %d.%d.%d\n            kind: modality\n            modality: CT\n            serial: SN%06d%03d%03d\n            dicom: {host: 127.0.0.1, port: 104, called_ae: AE%dS%dD%d}\n",
					c, s, d, c, s, d, c, s, d, c, s, d
		}
	}
}' >"$tmp/inventory.yaml"
t0=$SECONDS
"$vigia" import --database-url "$db_url" "$tmp/inventory.yaml" >"$tmp/import.log" 2>&1
log "inventory imported: $DEVICES devices, $SITES sites, $CUSTOMERS customers in $((SECONDS - t0)) s"

psql -v ON_ERROR_STOP=1 -q "$db_url" >"$tmp/states.log" 2>&1 <<'EOF'
INSERT INTO device_states (device_id, state, since, flapping, last_probe_at, updated_at)
SELECT id,
       CASE WHEN k % 100 = 0 THEN 'down' WHEN k % 200 = 1 THEN 'unreachable' WHEN k % 100 = 2 THEN 'degraded'
            WHEN k % 500 = 3 THEN 'misconfigured' WHEN k % 1000 = 4 THEN 'maintenance' ELSE 'up' END,
       now() - (k % 720) * interval '1 minute', k % 250 = 5, now(), now()
FROM (SELECT id, (row_number() OVER (ORDER BY md5(id)))::int AS k FROM devices) d;
VACUUM ANALYZE;
EOF
psql -At "$db_url" -c "SELECT state || ' ' || count(*) FROM device_states GROUP BY state ORDER BY 1" | tr '\n' ',' >"$tmp/states.txt"
serial=$(psql -At "$db_url" -c "SELECT serial FROM devices ORDER BY md5(id) DESC LIMIT 1")

export VIGIA_USER_PASSWORD="bench board password"
"$vigia" user create --database-url "$db_url" --role noc --username bench --time-zone America/Bogota >"$tmp/user.log" 2>&1
"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-level warn --probe=false \
	>"$tmp/serve.out" 2>"$tmp/serve.log" &
serve_pid=$!
wait_for 120 "vigia serve" serve_ready "$serve_pid"
log "vigia serve $serve_pid at $serve_addr; measuring $REQUESTS requests per board URL"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
BENCH_PASSWORD=$VIGIA_USER_PASSWORD "$tmp/bench-board" -url "http://$serve_addr" -user bench -serial "$serial" \
	-requests "$REQUESTS" >"$tmp/rows.txt" 2>>"$tmp/bench.log"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
rss=$(awk '/VmHWM/ {printf "%d MB", $2 / 1024}' "/proc/$serve_pid/status")

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(DEVICES|SITES|CUSTOMERS|REQUESTS|VIGIA)=' | sort | tr '\n' ' ')bench/board.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on; all on loopback. $DEVICES devices in $SITES sites of $CUSTOMERS customers; states: $(sed 's/,$//; s/,/, /g' "$tmp/states.txt"). A NOC user in America/Bogota; requests one after another (each is one render), latency from sending the request to the last byte. vigia's peak RSS $rss. Load average $load_start at start, $load_end at end.

| board URL | requests | p50 | p95 | p99 | max | size |
|---|---:|---:|---:|---:|---:|---:|
EOF
cat "$tmp/rows.txt"
