#!/usr/bin/env bash
# Hospital portal ticket list under load (issue 8): p99 latency of
# GET /api/v1/tickets (first page, default limit 50) with a customer's
# token, with TICKETS tickets in the database, at RATE requests per second.
#
# A private PostgreSQL under var/bench-portal/pg (recreated on every run)
# gets a small inventory of CUSTOMERS hospital networks (4 sites × 5 devices
# each) and TICKETS tickets written with generate_series straight into
# tickets (valid rows: every CHECK holds, numbers VG-YYYY-NNNNNN per year
# with ticket_counters set to match, one id per ticket, opened over two
# years; customers get 40/25/20/13/2 % of them; statuses: the last 1 % open
# in every status, older ones closed or solved). Then `vigia serve`, a
# customer token per measured customer (the largest and the smallest), and
# for each: wrk paced by a Lua delay() to about RATE req/s, bench/portal (an
# open-loop Go client at exactly RATE req/s, latency from the scheduled
# instant), and wrk unpaced (the most it serves). EXPLAIN (ANALYZE, BUFFERS)
# of the list query as the store runs it comes last. Every process it starts
# is stopped on exit; every wait is bounded. Prints a Markdown section on
# stdout; logs go to stderr and var/bench-portal/.
#
#   bench/portal.sh
#   TICKETS=100000 DURATION=20s bench/portal.sh
#
# Environment (defaults): TICKETS (1000000), RATE (200), DURATION (60s),
# CUSTOMERS (5, at least 2), ROUNDS (1: each round runs the three clients
# for both customers, so repeats interleave), VIGIA (empty: build the
# working tree).
set -euo pipefail
cd "$(dirname "$0")/.."

TICKETS=${TICKETS:-1000000}
RATE=${RATE:-200}
DURATION=${DURATION:-60s}
CUSTOMERS=${CUSTOMERS:-5}
ROUNDS=${ROUNDS:-1}

workdir=var/bench-portal
pgdir=$workdir/pg
tmp=$(mktemp -d /tmp/vigia-bench-portal.XXXXXX)
vigia=$tmp/vigia
serve_pid=

log() { echo "$(date +%H:%M:%S) portal.sh: $*" >&2; }

stop() {
	local pid=$1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	set +e
	stop "$serve_pid"
	if [ -x "$vigia" ] && [ -d "$pgdir" ]; then
		"$vigia" pg stop --dir "$pgdir" >/dev/null 2>&1 && rm -rf "$pgdir"
	fi
	mkdir -p "$workdir"
	cp "$tmp"/*.log "$tmp"/*.txt "$workdir"/ 2>/dev/null
	rm -rf "$tmp"
	[ $rc -ne 0 ] && log "failed (exit $rc); logs in $workdir/"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

command -v wrk >/dev/null || { log "wrk missing: apt-get install -y wrk"; exit 1; }
command -v psql >/dev/null || { log "psql missing: apt-get install -y postgresql-client"; exit 1; }
[ "$CUSTOMERS" -ge 2 ] || { log "CUSTOMERS must be at least 2"; exit 1; }

if [ -n "${VIGIA:-}" ]; then
	cp "$VIGIA" "$vigia"
	built="binary $VIGIA"
else
	built="working tree at $(git describe --always --dirty)"
	go build -o "$vigia" ./cmd/vigia
fi
go build -o "$tmp/bench-portal" ./bench/portal
log "built vigia ($built)"

mkdir -p "$workdir"
if [ -d "$pgdir" ]; then
	"$vigia" pg stop --dir "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$pgdir"
fi
db_url=$("$vigia" pg start --dir "$pgdir" --database vigia_bench_portal 2>"$tmp/pg.log" | tail -n 1)
log "postgres at $pgdir"

# The inventory: devices with no endpoint, so that nothing is probed and no
# ticket is opened while measuring.
{
	echo "customers:"
	for c in $(seq 1 "$CUSTOMERS"); do
		printf '  - id: h%d\n    name: Hospital network %d\n    country: CO\n    time_zone: America/Bogota\n    notify_email: noc@h%d.example\n    sites:\n' "$c" "$c" "$c"
		for s in 1 2 3 4; do
			printf '      - id: h%d-s%d\n        name: Site %d.%d\n        kind: hospital\n        devices:\n' "$c" "$s" "$c" "$s"
			for d in 1 2 3 4 5; do
				printf '          - id: h%d-s%d-ct%d\n            name: CT %d.%d.%d\n            kind: modality\n            modality: CT\n' "$c" "$s" "$d" "$c" "$s" "$d"
			done
		done
	done
} >"$tmp/inventory.yaml"
"$vigia" import --database-url "$db_url" "$tmp/inventory.yaml" >"$tmp/import.log" 2>&1
log "inventory imported ($CUSTOMERS customers)"

# The tickets. Customer of ticket i: (i * 7919) % 100 against cumulative
# shares 40, 65, 85, 98 (with 5 customers; h1 the largest, the last the
# smallest); device: (i % 20)th of that customer's devices.
t0=$SECONDS
psql -v ON_ERROR_STOP=1 -q "$db_url" >"$tmp/generate.log" 2>&1 <<EOF
BEGIN;
CREATE TEMP TABLE bench_dev AS
    SELECT customer_id, site_id, id AS device_id,
           (row_number() OVER (PARTITION BY customer_id ORDER BY id) - 1)::int AS k
    FROM devices;
CREATE TEMP TABLE bench_share AS
    SELECT n AS c, 'h' || n AS customer_id,
           CASE WHEN $CUSTOMERS = 5 THEN (ARRAY[0, 40, 65, 85, 98])[n] ELSE (n - 1) * 100 / $CUSTOMERS END AS lo,
           CASE WHEN $CUSTOMERS = 5 THEN (ARRAY[40, 65, 85, 98, 100])[n] ELSE n * 100 / $CUSTOMERS END AS hi
    FROM generate_series(1, $CUSTOMERS) n;
INSERT INTO tickets (number, customer_id, site_id, device_ids, title, description, category, requester,
    severity, opened_severity, source, status, pending_reason, assignee, billable, billable_reason, sla_policy,
    auto_key, opened_at, acknowledged_at, solved_at, solve_round, closed_at, close_reason, created_by, updated_at)
SELECT 'VG-' || extract(year FROM g.opened_at AT TIME ZONE 'UTC') || '-' ||
           lpad((row_number() OVER (PARTITION BY extract(year FROM g.opened_at AT TIME ZONE 'UTC') ORDER BY g.i))::text, 6, '0'),
       d.customer_id, d.site_id, ARRAY[d.device_id],
       'Equipo ' || d.device_id || ' sin respuesta', 'Generated by bench/portal.sh', 'incident',
       CASE WHEN g.open THEN 'portal:' || d.customer_id ELSE '' END,
       1 + g.i % 4, 1 + g.i % 4,
       CASE WHEN g.open THEN 'portal' ELSE 'probe' END,
       g.status,
       CASE WHEN g.status = 'pending' THEN 'customer' END,
       CASE WHEN g.status = 'new' THEN '' ELSE 'ing.' || (g.i % 7) END,
       false, 'covered', 'imaging-8x5',
       CASE WHEN g.status = 'closed' THEN 'device:' || d.device_id END,
       g.opened_at,
       CASE WHEN g.status <> 'new' THEN g.opened_at + interval '10 minutes' END,
       CASE WHEN g.status IN ('solved', 'closed') THEN g.opened_at + interval '4 hours' END,
       CASE WHEN g.status IN ('solved', 'closed') THEN 1 ELSE 0 END,
       CASE WHEN g.status = 'closed' THEN g.opened_at + interval '2 days' END,
       CASE WHEN g.status = 'closed' THEN 'resolved' END,
       'bench', g.opened_at + CASE WHEN g.status = 'closed' THEN interval '2 days' ELSE interval '10 minutes' END
FROM (SELECT i, timestamptz '2026-11-23 12:00:00+00' - ($TICKETS - i) * interval '63 seconds' AS opened_at,
             i > $TICKETS * 99 / 100 AS open,
             CASE WHEN i > $TICKETS * 99 / 100
                  THEN (ARRAY['new', 'acknowledged', 'in_progress', 'pending', 'solved', 'reopened'])[1 + i % 6]
                  WHEN i % 50 = 0 THEN 'solved' ELSE 'closed' END AS status
      FROM generate_series(1, $TICKETS) i) g
JOIN bench_share sh ON (g.i::bigint * 7919) % 100 >= sh.lo AND (g.i::bigint * 7919) % 100 < sh.hi
JOIN bench_dev d ON d.customer_id = sh.customer_id AND d.k = g.i % 20
ORDER BY g.i;
INSERT INTO ticket_counters (year, last)
    SELECT split_part(number, '-', 2)::int, max(split_part(number, '-', 3)::int) FROM tickets GROUP BY 1
    ON CONFLICT (year) DO UPDATE SET last = excluded.last;
COMMIT;
VACUUM ANALYZE tickets;
-- Flush the bulk load now, not during the measurement.
CHECKPOINT;
EOF
gen_secs=$((SECONDS - t0))
psql -At "$db_url" -c "SELECT customer_id, count(*), count(*) FILTER (WHERE closed_at IS NULL) FROM tickets GROUP BY 1 ORDER BY 1" >"$tmp/counts.txt"
total=$(psql -At "$db_url" -c "SELECT count(*) FROM tickets")
[ "$total" -eq "$TICKETS" ] || { log "wrote $total tickets, want $TICKETS"; exit 1; }
log "$total tickets written in ${gen_secs}s: $(tr '\n' ' ' <"$tmp/counts.txt")"
size=$(psql -At "$db_url" -c "SELECT pg_size_pretty(pg_total_relation_size('tickets'))")

"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-level warn \
	>"$tmp/serve.out" 2>"$tmp/serve.log" &
serve_pid=$!
serve_addr=
serve_ready() {
	kill -0 "$serve_pid" 2>/dev/null || { log "vigia serve exited: $(tail -n 5 "$tmp/serve.log")"; exit 1; }
	local a
	for a in $(ss -ltnpH 2>/dev/null | awk -v p="pid=$serve_pid," 'index($0, p) {print $4}'); do
		curl -fsS -o /dev/null "http://$a/metrics" 2>/dev/null && serve_addr=$a && return 0
	done
	return 1
}
wait_for 120 "vigia serve" serve_ready
url="http://$serve_addr/api/v1/tickets"
log "vigia serve $serve_pid at $url"

# wrk: per-connection pacing with delay() (wrk 4 has no rate option):
# 20 connections each waiting 100 ms after every answer make a little under
# 200 requests/s; the achieved rate is reported.
conns=20
pace_ms=$(awk -v c=$conns -v r="$RATE" 'BEGIN {printf "%d", 1000 * c / r}')
cat >"$tmp/paced.lua" <<EOF
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
function delay() return $pace_ms end
EOF
cat >"$tmp/unpaced.lua" <<'EOF'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
EOF
# wrk_row LABEL LUA: one table row from wrk --latency output.
wrk_row() {
	local label=$1 lua=$2 out
	out=$(BENCH_TOKEN=$token wrk -t2 -c$conns -d"$DURATION" --latency -s "$lua" "$url" 2>&1)
	echo "$out" >>"$tmp/wrk.log"
	awk -v label="$label" -v secs="${DURATION%s}" '
		function ms(v) { if (v ~ /us$/) return sprintf("%.1f ms", v / 1000); if (v ~ /ms$/) return sprintf("%.1f ms", v + 0); if (v ~ /s$/) return sprintf("%.1f ms", v * 1000); return v }
		/^ +50%/ { p50 = ms($2) } /^ +90%/ { p90 = ms($2) } /^ +99%/ { p99 = ms($2) }
		/^ +Latency +[0-9]/ { max = ms($4) }
		/requests in/ { n = $1 } /Non-2xx/ { bad = $5 } /Socket errors/ { serr = $0 }
		/^Requests\/sec/ { rps = $2 }
		END { printf "| %s | %d | %d | %.1f | %s | %s | %s | — | %s |\n", label, n, bad + 0, rps, p50, p90, p99, max }' <<<"$out"
}

big=h1 small=h$CUSTOMERS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
rows=()
declare -A tokens
for c in $big $small; do
	tokens[$c]=$("$vigia" token create --database-url "$db_url" --role customer --customer "$c" --name bench 2>>"$tmp/token.log" | tail -n 1)
	curl -fsS -H "Authorization: Bearer ${tokens[$c]}" "$url" -o "$tmp/page-$c.json"
	n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['tickets']))" "$tmp/page-$c.json")
	[ "$n" = 50 ] || { log "first page of $c has $n tickets, want 50"; exit 1; }
done
# with_load ROW: appends the 1-min load average after the run.
with_load() { echo "$1 $(cut -d' ' -f1 /proc/loadavg) |"; }
for r in $(seq 1 "$ROUNDS"); do
	for c in $big $small; do
		token=${tokens[$c]}
		mine=$(grep "^$c|" "$tmp/counts.txt" | cut -d'|' -f2)
		log "round $r, customer $c ($mine tickets): wrk paced, open-loop Go client, wrk unpaced, ${DURATION} each"
		rows+=("| **round $r, $c ($mine tickets)** | | | | | | | | | |")
		rows+=("$(with_load "$(wrk_row "wrk -t2 -c$conns, delay() ${pace_ms} ms per connection" "$tmp/paced.lua")")")
		rows+=("$(with_load "$("$tmp/bench-portal" -url "$url" -token "$token" -rate "$RATE" -duration "$DURATION" 2>>"$tmp/portal.log")")")
		rows+=("$(with_load "$(wrk_row "wrk -t2 -c$conns unpaced (the most it serves)" "$tmp/unpaced.lua")")")
		log "$(printf '%s\n' "${rows[@]: -3}" | awk -F'|' '{print $2 ":" $8 $9}' | tr '\n' ' ')"
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The list query as maintenance.Store.List sends it (lib/pq: an unnamed
# statement, planned with the actual parameters), for the smallest customer.
psql -q "$db_url" >"$tmp/explain.txt" 2>&1 <<EOF
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT * FROM tickets
WHERE ('$small' = '' OR customer_id = '$small') AND ('' = '' OR customer_id = '') AND ('' = '' OR status = '')
  AND (0 = 0 OR severity = 0) AND ('' = '' OR site_id = '') AND ('' = '' OR '' = ANY (device_ids))
  AND (0 = 0 OR id < 0)
ORDER BY id DESC LIMIT 51;
EOF

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(TICKETS|RATE|DURATION|CUSTOMERS|ROUNDS|VIGIA)=' | sort | tr '\n' ' ')bench/portal.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; $(wrk -v 2>&1 | head -n 1 | awk '{print $1, $2}'); PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on; all on loopback. $TICKETS tickets ($size with indexes; written in ${gen_secs} s), per customer (all / open): $(awk -F'|' '{printf "%s%s %d / %d", (NR > 1 ? ", " : ""), $1, $2, $3}' "$tmp/counts.txt"). Request: \`GET /api/v1/tickets\` with the customer's bearer token (first page, default limit 50, ~$(wc -c <"$tmp/page-$big.json") bytes of JSON). Load average $load_start at start, $load_end at end.

| client (${DURATION} each) | requests | errors | req/s | p50 | p90 | p99 | p99.9 | max | load 1-min after |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
printf '%s\n' "${rows[@]}"
echo
echo "wrk's latency is from sending each request (closed loop); the Go client's is from each request's scheduled instant (open loop, no coordinated omission)."
echo
echo "EXPLAIN (ANALYZE, BUFFERS) of the list query for $small:"
echo
echo '```'
grep -v '^$' "$tmp/explain.txt"
echo '```'
