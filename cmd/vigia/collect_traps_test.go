package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/internal/worklisttest"
)

// freeUDPAddr is a loopback UDP address free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// Traps and worklists behind a collector end up at the NOC exactly as in
// front of serve. One `vigia serve` listens for traps and probes site C
// itself; one `vigia collect` listens for site A's traps and probes it.
// The same UPS informs (net-snmp's snmptrap) go to serve for C's UPS and to
// the collector for A's, the same empty worklist (dcmtk's wlmscpfs) is
// probed by both: the trap rows, conditions, states, events and tickets
// must be the same. Then a trap sent while the uplink is cut (and the
// collector killed and restarted) is applied once at its instant; a trap
// from an unknown address is dropped and counted at the collector; a
// forwarded trap for another site's device, or oversized, is refused.
func TestCollectorTrapsAndWorklist(t *testing.T) {
	snmptrap := testpeer.Command(t, "snmptrap", "snmp")
	agent := snmptest.Start(t)
	wlm := worklisttest.StartWlmscpfs(t, "WLMSCP") // no item: an empty worklist
	url := pgtest.URL(t)
	bin := buildVigia(t)
	b1 := newTCPDevice(t)
	dir := t.TempDir()
	inventory := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inventory, fmt.Appendf(nil, `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: site-a
        name: Sede Norte
        kind: hospital
        devices:
          - id: ups-a
            name: SAI Norte
            kind: biomedical
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[2]s, auth_protocol: SHA, auth_passphrase: %[3]s}
            probe: {interval: 10s, retries: 1}
          - {id: sw-a, name: Switch Norte, kind: network, snmp: {host: 127.0.0.1, port: %[1]d, version: v2c, community: %[4]s}, probe: {interval: 10s, retries: 1}}
          - {id: wl-a, name: Broker Norte, kind: broker, dicom: {host: 127.0.0.1, port: %[5]d, called_ae: WLMSCP, worklist: {modality: CT, expect_items: true}}, probe: {interval: 2s, retries: 0}}
      - id: site-b
        name: Sede Sur
        kind: hospital
        devices:
          - {id: b1, name: RIS Sur, kind: ris, tcp: {host: 127.0.0.1, port: %[6]d}, probe: {interval: 2s, retries: 1}}
      - id: site-c
        name: Sede Centro
        kind: hospital
        devices:
          - id: ups-c
            name: SAI Centro
            kind: biomedical
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[7]s, auth_protocol: SHA256, auth_passphrase: %[3]s, priv_protocol: AES, priv_passphrase: %[8]s}
            probe: {interval: 10s, retries: 1}
          - {id: wl-c, name: Broker Centro, kind: broker, dicom: {host: 127.0.0.1, port: %[5]d, called_ae: WLMSCP, worklist: {modality: CT, expect_items: true}}, probe: {interval: 2s, retries: 0}}
    contracts:
      - {id: hsr-img, sla_policy: imaging-24x7, devices: [wl-a, wl-c], start: 2026-01-01, end: 2027-12-31, activated: 2026-01-01}
`, agent.Port, snmptest.UserAuthNoPriv, snmptest.AuthPassphrase, snmptest.Community, wlm.Port, b1.port(),
		snmptest.UserAuthPriv, snmptest.PrivPassphrase), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "import", "--database-url", url, inventory); code != 0 {
		t.Fatalf("import: %s %s", out, errs)
	}
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	noc := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	nocTraps, colTraps := freeUDPAddr(t), freeUDPAddr(t)
	col := newCollectorSetup(t, conn, url, dir, noc, "site-a")
	startProc(t, bin, "serve", "--database-url", url, "--listen", noc, "--snmp-trap-listen", nocTraps, "--collector-grace", "2m")
	waitNOC(t, noc)
	// Started with the test's t, not a subtest's: it outlives the subtest.
	startCollector := func() { col.start(t, bin, "--snmp-trap-listen", colTraps) }
	startCollector()
	state := func(id string) string {
		var s string
		conn.Get(&s, `SELECT state FROM device_states WHERE device_id = $1`, id)
		return s
	}
	waitUntil(t, "both UPSes and switch up", 60*time.Second, func() bool {
		return state("ups-a") == "up" && state("ups-c") == "up" && state("sw-a") == "up"
	})
	// The collector's trap port is open once it has its configuration.
	waitUntil(t, "the collector's trap listener", 30*time.Second, func() bool {
		_, ok := col.metric(`vigia_snmp_traps_received_total{result="accepted"}`)
		return ok
	})

	// send runs snmptrap (an inform when inform) from 127.0.0.1, or from.
	send := func(to, from string, inform bool, auth []string, trap ...string) {
		t.Helper()
		args := append([]string{"-r", "2", "-t", "3"}, auth...)
		if inform {
			args = append(args, "-Ci")
		}
		if from != "" {
			args = append(args, "--clientaddr="+from)
		}
		args = append(append(args, to, ""), trap...)
		cmd := exec.Command(snmptrap, args...)
		cmd.Env = []string{"MIBS=", "SNMP_PERSISTENT_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("snmptrap %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	authC := []string{"-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authPriv", "-a", "SHA-256", "-A", snmptest.AuthPassphrase,
		"-x", "AES", "-X", snmptest.PrivPassphrase}
	authA := []string{"-v", "3", "-u", snmptest.UserAuthNoPriv, "-l", "authNoPriv", "-a", "SHA", "-A", snmptest.AuthPassphrase}
	v2c := []string{"-v", "2c", "-c", snmptest.Community}
	ticket := func(device string) upsTicket {
		var tk upsTicket
		conn.Get(&tk, `SELECT count(*) OVER () AS n, severity, status FROM tickets WHERE auto_key = $1`, "trap:"+device+":ups_low_battery")
		return tk
	}

	t.Run("UPS informs: the same at the NOC through the collector as through serve", func(t *testing.T) {
		for i, s := range upsInforms {
			send(nocTraps, "", true, authC, s.trap...)
			send(colTraps, "", true, authA, s.trap...)
			waitUntil(t, s.name+" at the NOC for both UPSes", 30*time.Second, func() bool {
				return count(t, conn, `SELECT count(*) FROM device_traps WHERE device_id = 'ups-a'`) == i+1 &&
					count(t, conn, `SELECT count(*) FROM device_traps WHERE device_id = 'ups-c'`) == i+1 &&
					state("ups-a") == string(s.state) && state("ups-c") == string(s.state) &&
					ticket("ups-a") == s.ticket && ticket("ups-c") == s.ticket
			})
		}
		type trapRow struct {
			Version  string `db:"version"`
			Inform   bool   `db:"inform"`
			OID      string `db:"trap_oid"`
			Rule     string `db:"rule"`
			Effect   string `db:"effect"`
			Cond     string `db:"condition"`
			Varbinds string `db:"varbinds"`
		}
		rows := func(device string) []trapRow {
			var out []trapRow
			if err := conn.Select(&out, `SELECT version, inform, trap_oid, rule, effect, condition, varbinds::text AS varbinds
				FROM device_traps WHERE device_id = $1 ORDER BY at, id`, device); err != nil {
				t.Fatal(err)
			}
			// The uptime varbind (sysUpTime.0) is each sender's own.
			for i := range out {
				var parts []string
				for _, p := range strings.Split(out[i].Varbinds, "}, {") {
					if !strings.Contains(p, ".1.3.6.1.2.1.1.3.0") {
						parts = append(parts, p)
					}
				}
				out[i].Varbinds = strings.Join(parts, "}, {")
			}
			return out
		}
		if a, c := rows("ups-a"), rows("ups-c"); !reflect.DeepEqual(a, c) || len(a) != 4 {
			t.Errorf("trap rows through the collector:\n%+v\nthrough serve:\n%+v", a, c)
		}
		sequence := func(q, device string) []string {
			var out []string
			if err := conn.Select(&out, q, device); err != nil {
				t.Fatal(err)
			}
			return out
		}
		for _, q := range []string{
			`SELECT from_state || '→' || to_state FROM device_transitions WHERE device_id = $1 ORDER BY id`,
			`SELECT kind FROM device_events WHERE device_id = $1 ORDER BY at, id`,
			`SELECT condition FROM device_trap_conditions WHERE device_id = $1 ORDER BY condition`,
		} {
			if a, c := sequence(q, "ups-a"), sequence(q, "ups-c"); !reflect.DeepEqual(a, c) {
				t.Errorf("%s\nthrough the collector %v, through serve %v", q, a, c)
			}
		}
		if n, _ := col.metric(`vigia_snmp_traps_received_total{result="accepted"}`); n != 4 {
			t.Errorf("the collector counted %v traps accepted, want 4", n)
		}
	})

	t.Run("a trap sent while the uplink is cut is applied once, at its instant", func(t *testing.T) {
		queued, _ := col.metric("vigia_collector_traps_queued_total")
		col.link.Cut()
		sentAt := time.Now()
		send(colTraps, "", false, v2c, append([]string{".1.3.6.1.6.3.1.1.5.3"},
			".1.3.6.1.2.1.2.2.1.1.3", "i", "3", ".1.3.6.1.2.1.2.2.1.7.3", "i", "1", ".1.3.6.1.2.1.2.2.1.8.3", "i", "2",
			".1.3.6.1.2.1.2.2.1.2.3", "s", "ge-0/0/3")...)
		waitUntil(t, "the trap queued on the collector's disk", 10*time.Second, func() bool {
			n, _ := col.metric("vigia_collector_traps_queued_total")
			return n == queued+1
		})
		// A collector restart meanwhile loses nothing.
		col.proc.kill9()
		startCollector()
		time.Sleep(3 * time.Second)
		if n := count(t, conn, `SELECT count(*) FROM device_traps WHERE device_id = 'sw-a'`); n != 0 {
			t.Fatalf("the NOC recorded sw-a's trap through a cut uplink (%d)", n)
		}
		restoredAt := time.Now()
		col.link.Restore()
		waitUntil(t, "sw-a's trap at the NOC", 30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM device_traps WHERE device_id = 'sw-a'`) > 0
		})
		waitUntil(t, "sw-a degraded by its interface down", 30*time.Second, func() bool { return state("sw-a") == "degraded" })
		time.Sleep(2 * time.Second)
		var tr struct {
			N     int       `db:"n"`
			At    time.Time `db:"at"`
			Cond  string    `db:"condition"`
			Since time.Time `db:"since"`
		}
		if err := conn.Get(&tr, `SELECT count(*) OVER () AS n, t.at, t.condition, c.since FROM device_traps t
			JOIN device_trap_conditions c ON c.device_id = t.device_id AND c.condition = t.condition WHERE t.device_id = 'sw-a'`); err != nil {
			t.Fatal(err)
		}
		if tr.N != 1 || tr.Cond != "interface:3" || tr.At.Before(sentAt.Add(-time.Second)) || !tr.At.Before(restoredAt) || !tr.Since.Equal(tr.At) {
			t.Errorf("sent %s, link back %s: %+v", sentAt, restoredAt, tr)
		}
		checkSequence(t, conn, col.id)
	})

	t.Run("a trap from an address that is none of the collector's devices is dropped and counted", func(t *testing.T) {
		before := count(t, conn, `SELECT count(*) FROM device_traps`)
		queued, _ := col.metric("vigia_collector_traps_queued_total")
		send(colTraps, "127.0.0.3", false, v2c, ".1.3.6.1.6.3.1.1.5.1")
		waitUntil(t, "the unknown source counted", 10*time.Second, func() bool {
			n, _ := col.metric(`vigia_snmp_traps_received_total{result="unknown_source"}`)
			return n == 1
		})
		time.Sleep(time.Second)
		if n, _ := col.metric("vigia_collector_traps_queued_total"); n != queued {
			t.Errorf("traps queued went from %v to %v", queued, n)
		}
		if n := count(t, conn, `SELECT count(*) FROM device_traps`); n != before {
			t.Errorf("trap rows went from %d to %d", before, n)
		}
	})

	t.Run("a forwarded trap for another site's device, or oversized, is refused", func(t *testing.T) {
		at := time.Now().UTC().Format(time.RFC3339Nano)
		trap := func(device, varbinds string) string {
			return fmt.Sprintf(`{"checks":[{"seq":900000,"device":%q,"trap":{"at":%q,"source":"127.0.0.1:40000","version":"v2c",
				"oid":".1.3.6.1.6.3.1.1.5.1","varbinds":[%s]}}]}`, device, at, varbinds)
		}
		refused := count(t, conn, `SELECT results_refused FROM collectors WHERE id = $1`, col.id)
		if code, answer := postBatch(t, noc, col.token, trap("b1", "")); code != http.StatusForbidden {
			t.Errorf("a trap of site B's device: %d %s, want 403", code, answer)
		}
		if n := count(t, conn, `SELECT results_refused FROM collectors WHERE id = $1`, col.id); n != refused+1 {
			t.Errorf("refused counted %d, want %d", n, refused+1)
		}
		many := strings.TrimSuffix(strings.Repeat(`{"oid":".1.3.6.1.2.1.1.5.0","type":"OctetString","value":"x"},`, 65), ",")
		long := fmt.Sprintf(`{"oid":".1.3.6.1.2.1.1.5.0","type":"OctetString","value":%q}`, strings.Repeat("x", 1025))
		for name, body := range map[string]string{"65 varbinds": trap("sw-a", many), "a value of 1025 bytes": trap("sw-a", long)} {
			if code, answer := postBatch(t, noc, col.token, body); code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, code, answer)
			}
		}
		if n := count(t, conn, `SELECT count(*) FROM device_traps WHERE device_id = 'b1' OR at = $1`, at); n != 0 {
			t.Errorf("%d refused traps recorded", n)
		}
		if n := count(t, conn, `SELECT count(*) FROM collector_results WHERE seq = 900000`); n != 0 {
			t.Errorf("a refused check was recorded")
		}
	})

	t.Run("an empty worklist in working hours: the same through the collector as through serve", func(t *testing.T) {
		waitUntil(t, "both worklists degraded with their ticket", 60*time.Second, func() bool {
			return state("wl-a") == "degraded" && state("wl-c") == "degraded" &&
				count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key IN ('worklist:wl-a', 'worklist:wl-c')`) == 2
		})
		type outcome struct {
			Detail   string `db:"last_detail"`
			Failing  bool   `db:"worklist_failing"`
			Events   int    `db:"events"`
			Severity int    `db:"severity"`
			Status   string `db:"status"`
		}
		get := func(id string) outcome {
			var o outcome
			if err := conn.Get(&o, `SELECT s.last_detail, s.worklist_failing,
					(SELECT count(*) FROM device_events WHERE device_id = $1 AND kind = 'worklist_failing') AS events,
					t.severity, t.status
				FROM device_states s, tickets t WHERE s.device_id = $1 AND t.auto_key = 'worklist:' || $1`, id); err != nil {
				t.Fatal(err)
			}
			return o
		}
		a, c := get("wl-a"), get("wl-c")
		if a != c || !a.Failing || a.Events != 1 || a.Severity != 2 || !strings.Contains(a.Detail, "empty during working hours") {
			t.Errorf("through the collector %+v, through serve %+v", a, c)
		}
	})
}

// checkSequence verifies that a collector's results were applied once
// each, none missing: every number from 1 to the last.
func checkSequence(t *testing.T, conn *sqlx.DB, id int64) {
	t.Helper()
	var st struct {
		Last    int64 `db:"last_seq"`
		Missing int64 `db:"results_missing"`
		Rows    int64 `db:"rows"`
	}
	if err := conn.Get(&st, `SELECT last_seq, results_missing, (SELECT count(*) FROM collector_results WHERE collector_id = c.id) AS rows
		FROM collectors c WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if st.Missing != 0 || st.Rows != st.Last {
		t.Errorf("collector %d: %+v", id, st)
	}
}
