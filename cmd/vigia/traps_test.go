package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/intake"
	"github.com/vigia-noc/vigia/probes"
)

// A UPS announces by SNMPv3 informs (authPriv, from net-snmp's snmptrap)
// that it runs on battery and then that its battery is low, then that both
// are over; wired as serve wires it, the flow is probe → state → event →
// ticket: degraded on battery, one Sev 2 ticket for the low battery,
// solved with the alarm, up again on mains. (Refused traps are tested in
// probes: TestTrapsRefused.)
func TestUPSTrapsToTicket(t *testing.T) {
	snmptrap := testpeer.Command(t, "snmptrap", "snmp")
	agent := snmptest.Start(t)
	conn := pgtest.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := fmt.Sprintf(`
customers:
  - id: hsr
    name: Hospital San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: hsr-main
        name: Sede principal
        kind: hospital
        devices:
          - id: hsr-ups
            name: SAI sala de servidores
            kind: biomedical
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[2]s, auth_protocol: SHA256, auth_passphrase: %[3]s, priv_protocol: AES, priv_passphrase: %[4]s}
            probe: {interval: 60s, retries: 1}
`, agent.Port, snmptest.UserAuthPriv, snmptest.AuthPassphrase, snmptest.PrivPassphrase)
	f, err := assets.ParseFile("inventory.yaml", []byte(inv), parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	store := assets.NewStore(conn)
	if _, err := store.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewRealClock()
	reg := prometheus.NewRegistry()
	flags := trapFlags{listen: "127.0.0.1:0", window: 14 * 24 * time.Hour, threshold: 14 * 24 * time.Hour, urgent: 72 * time.Hour, step: time.Hour}
	parts, err := flags.build(ctx, conn, store, clock, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	snmp := probes.NewSNMPProber()
	snmp.Trend = parts.trend
	engine, err := probes.NewEngine(ctx, probes.NewStore(conn), store, probes.Config{Clock: clock,
		Probers: map[string]probes.Prober{"snmp": snmp, "trap": parts.conditions}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := engine.Check(ctx, "hsr-ups"); err != nil {
		t.Fatal(err)
	}
	checked := make(chan string, 16)
	parts.run(ctx, slog.New(slog.DiscardHandler), func(id string) {
		engine.Check(ctx, id)
		checked <- id
	})
	addr := parts.conn.LocalAddr().(*net.UDPAddr)
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	consumer := intake.NewOutageConsumer(tickets, store, time.Now, slog.New(slog.DiscardHandler))

	inform := func(trap ...string) {
		t.Helper()
		args := append([]string{"-Ci", "-r", "1", "-t", "3", "-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authPriv", "-a", "SHA-256",
			"-A", snmptest.AuthPassphrase, "-x", "AES", "-X", snmptest.PrivPassphrase, addr.String(), ""}, trap...)
		cmd := exec.Command(snmptrap, args...)
		cmd.Env = []string{"MIBS=", "SNMP_PERSISTENT_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("snmptrap: %v\n%s", err, out)
		}
	}
	type ticketRow struct {
		N        int    `db:"n"`
		Severity int    `db:"severity"`
		Status   string `db:"status"`
		Title    string `db:"title"`
	}
	for _, s := range upsInforms {
		want := ticketRow{N: s.ticket.N, Severity: s.ticket.Severity, Status: s.ticket.Status}
		if want.N > 0 {
			want.Title = "SAI con batería baja: SAI sala de servidores en Sede principal"
		}
		t.Run(s.name, func(t *testing.T) {
			inform(s.trap...)
			select {
			case <-checked:
			case <-time.After(10 * time.Second):
				t.Fatal("the trap did not have the device checked")
			}
			if st, _ := engine.Status("hsr-ups"); st.State != s.state {
				t.Errorf("state %s (%s), want %s", st.State, st.LastDetail, s.state)
			}
			if _, err := consumer.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			var got ticketRow
			conn.Get(&got, `SELECT count(*) OVER () AS n, severity, status, title FROM tickets WHERE auto_key = 'trap:hsr-ups:ups_low_battery'`)
			if got != want {
				t.Errorf("ticket %+v, want %+v", got, want)
			}
		})
	}
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM tickets`); err != nil || n != 1 {
		t.Errorf("%d tickets in all (%v), want the low battery's only", n, err)
	}
	if n := metricSamples(t, reg)[`vigia_snmp_traps_received_total{result="accepted"}`]; n != 4 {
		t.Errorf("%v accepted traps counted, want 4", n)
	}
}

// upsTicket is a UPS's low-battery ticket: how many, its severity and status.
type upsTicket struct {
	N        int    `db:"n"`
	Severity int    `db:"severity"`
	Status   string `db:"status"`
}

// upsInform is a UPS's inform (UPS-MIB), the state it leaves the UPS in
// and its low-battery ticket then.
type upsInform struct {
	name   string
	trap   []string
	state  probes.State
	ticket upsTicket
}

// upsInforms go from running on battery to back on mains.
var upsInforms = func() []upsInform {
	alarm := func(id int, which string) []string {
		return []string{fmt.Sprintf(".1.3.6.1.2.1.33.1.6.2.1.2.%d", id), "o", which}
	}
	const (
		onBattery  = ".1.3.6.1.2.1.33.1.6.3.2"
		lowBattery = ".1.3.6.1.2.1.33.1.6.3.3"
		added      = ".1.3.6.1.2.1.33.2.3"
		removed    = ".1.3.6.1.2.1.33.2.4"
	)
	return []upsInform{
		{"on battery", []string{".1.3.6.1.2.1.33.2.1", ".1.3.6.1.2.1.33.1.2.2.0", "i", "60"}, probes.StateDegraded, upsTicket{}},
		{"battery low", append([]string{added}, alarm(2, lowBattery)...), probes.StateDegraded, upsTicket{1, 2, "new"}},
		{"battery no longer low", append([]string{removed}, alarm(2, lowBattery)...), probes.StateDegraded, upsTicket{1, 2, "solved"}},
		{"on mains", append([]string{removed}, alarm(1, onBattery)...), probes.StateUp, upsTicket{1, 2, "solved"}},
	}
}()

// metricSamples reads reg's counters and gauges, keyed as /metrics shows
// them: name{label="value",…}.
func metricSamples(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if c := m.GetCounter(); c != nil {
				v = c.GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
