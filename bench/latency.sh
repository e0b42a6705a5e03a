#!/usr/bin/env bash
# Detection latency (issue 8): from a device going dark to its `down` row,
# its ticket row, and its e-mail leaving the outbox (outbox.sent_at and the
# arrival at an SMTP server). Everything runs on loopback: a private
# PostgreSQL under var/bench-latency/pg (recreated on every run), `vigia
# simulate fleet`, an aiosmtpd sink that logs the arrival time of every
# message, `vigia serve --smtp-addr` to it, and bench/latency, which takes
# SAMPLES modalities down (refused), one per site, one every SPACING, and
# polls the database. Every process it starts is stopped on exit; every wait
# is bounded. Prints a Markdown section on stdout; logs go to stderr and
# var/bench-latency/.
#
#   bench/latency.sh
#   N=400 SAMPLES=15 bench/latency.sh     # quicker
#
# Environment (defaults): N (2000) devices (one site per 20, so N/20 sites),
# SAMPLES (80), SPACING (2s), INTERVAL (10s), RETRIES (2), BASE_PORT
# (24000, TCP, below the ephemeral range), VIGIA (empty: build the working
# tree).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${N:-2000}
SAMPLES=${SAMPLES:-80}
SPACING=${SPACING:-2s}
INTERVAL=${INTERVAL:-10s}
RETRIES=${RETRIES:-2}
BASE_PORT=${BASE_PORT:-24000}

workdir=var/bench-latency
pgdir=$workdir/pg
sim_pid='' serve_pid='' smtp_pid='' helper_pid=''
bench_start latency "$workdir" "$pgdir" 'helper_pid serve_pid sim_pid smtp_pid' '*.log'

# The first python3 with aiosmtpd (PATH's may be a private build without
# Debian's python3-* packages).
py=
for c in "$(command -v python3 || true)" /usr/bin/python3 /usr/local/bin/python3; do
	[ -n "$c" ] && "$c" -c 'import aiosmtpd' 2>/dev/null && { py=$c; break; }
done
[ -n "$py" ] || { log "aiosmtpd missing: apt-get install -y python3-aiosmtpd"; exit 1; }

build_vigia
fresh_pg vigia_bench_latency

# The SMTP sink: accepts everything, appends {"t", "message_id", "to"} per
# message (t = time.time() when DATA is accepted).
cat >"$tmp/sink.py" <<'EOF'
import asyncio, json, sys, time
from email.parser import BytesHeaderParser
from aiosmtpd.smtp import SMTP

out = open(sys.argv[1], "a", buffering=1)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        t = time.time()
        h = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        out.write(json.dumps({"t": t, "message_id": h.get("Message-ID", ""), "to": envelope.rcpt_tos}) + "\n")
        return "250 2.0.0 accepted"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
EOF
"$py" "$tmp/sink.py" "$tmp/smtp-received.log" >"$tmp/smtp.out" 2>"$tmp/smtp.log" &
smtp_pid=$!
smtp_ready() { ! died "SMTP sink" "$smtp_pid" "$tmp/smtp.log" && [ -s "$tmp/smtp.out" ]; }
wait_for 30 "the SMTP sink" smtp_ready
smtp_addr=127.0.0.1:$(head -n 1 "$tmp/smtp.out")
log "SMTP sink $smtp_pid at $smtp_addr"

# The fleet (skipping port ranges in use, as bench/probes.sh does).
range_free() { ! ss -ltnH | awk -v lo="$1" -v hi="$(($1 + N))" '{sub(/.*:/, "", $4); if ($4 >= lo && $4 < hi) f = 1} END {exit !f}'; }
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
	for _ in $(seq 1 240); do
		if ! alive "$sim_pid"; then
			grep -q 'address already in use' "$tmp/sim.log" || died simulator "$sim_pid" "$tmp/sim.log"
			break
		fi
		grep -q '^control on http://' "$tmp/sim.out" && { ok=1; break; }
		sleep 0.5
	done
	[ -n "$ok" ] && break
	alive "$sim_pid" && { log "the simulator is not ready after 120s"; exit 1; }
	port=$((port + N))
done
control=$(grep -o '^control on http://[^ ]*' "$tmp/sim.out" | sed 's/^control on //')
log "simulator $sim_pid on ports $port–$((port + N - 1))"

# The generated inventory has no notification address: give the customer one.
sed -i '0,/^    language: es$/s//    language: es\n    notify_email: noc@bench.example/' "$tmp/fleet.yaml"
grep -q '^    notify_email: ' "$tmp/fleet.yaml" || { log "could not add notify_email to the inventory"; exit 1; }
"$vigia" import --database-url "$db_url" "$tmp/fleet.yaml" >"$tmp/import.log" 2>&1
log "inventory imported"

"$vigia" serve --database-url "$db_url" --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-level warn \
	--probe-concurrency 256 --smtp-addr "$smtp_addr" >"$tmp/serve.out" 2>"$tmp/serve.log" &
serve_pid=$!
wait_for 120 "vigia serve" serve_ready "$serve_pid"
log "vigia serve $serve_pid"

bound=$(python3 -c "import re,sys; d=lambda s: float(re.match(r'([0-9.]+)s$', s).group(1)); print(f'{d(\"$INTERVAL\") * ($RETRIES + 1) + 2:g}s')")
started=$(date -u '+%Y-%m-%d %H:%M UTC')
timeout 30m "$tmp/bench-latency" -db "$db_url" -control "$control" -smtp-log "$tmp/smtp-received.log" \
	-samples "$SAMPLES" -spacing "$SPACING" -bound "$bound" >"$tmp/report.md" 2> >(tee "$tmp/helper.log" >&2) &
helper_pid=$!
wait "$helper_pid"
helper_pid=

cpu=$(lscpu | sed -n 's/^Model name: *//p' | sed -n 1p)
cat <<EOF
Command: \`$(env | grep -E '^(N|SAMPLES|SPACING|INTERVAL|RETRIES|BASE_PORT|VIGIA)=' | sort | tr '\n' ' ')bench/latency.sh\`

Measured $started on $cpu, $(nproc) CPUs ($(uname -sr)), $(go version | awk '{print $3}'), vigia built from the $built; \`vigia serve --probe-concurrency 256 --smtp-addr\` an aiosmtpd $("$py" -c 'import aiosmtpd; print(aiosmtpd.__version__)') sink; PostgreSQL $(cat "$pgdir/PG_VERSION") with fsync on; all on loopback.

EOF
cat "$tmp/report.md"
