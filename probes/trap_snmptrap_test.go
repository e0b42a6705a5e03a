package probes

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// trapHarness is a trap listener on a loopback port in front of the engine
// harness, with a real snmpd as both devices' agent (so that they are up
// until a trap says otherwise).
type trapHarness struct {
	*harness
	listener *TrapListener
	conds    *TrapConditions
	addr     string
	logs     *syncBuffer
	reg      *prometheus.Registry
	snmptrap string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A v2c switch and a v3 (authPriv) UPS, both answering polls from one snmpd
// on 127.0.0.1, which is also where snmptrap sends from.
func newTrapHarness(t *testing.T) *trapHarness {
	t.Helper()
	bin := testpeer.Command(t, "snmptrap", "snmp")
	agent := snmptest.Start(t)
	inv := fmt.Sprintf(`
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sala de servidores
        kind: hospital
        devices:
          - id: sw1
            name: Switch core
            kind: network
            snmp: {host: 127.0.0.1, port: %[1]d, version: v2c, community: %[2]s}
            probe: {interval: 10s, retries: 1}
          - id: ups1
            name: SAI sala
            kind: biomedical
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[3]s, auth_protocol: SHA256, auth_passphrase: %[4]s, priv_protocol: AES, priv_passphrase: %[5]s}
            probe: {interval: 10s, retries: 1}
`, agent.Port, snmptest.Community, snmptest.UserAuthPriv, snmptest.AuthPassphrase, snmptest.PrivPassphrase)
	h := newHarness(t, inv)
	conds := NewTrapConditions(h.db)
	h.cfg.Probers = map[string]Prober{"snmp": NewSNMPProber(), "trap": conds}
	h.restart()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	l, err := NewTrapListener(h.db, TrapConfig{Inventory: h.assets, Conditions: conds, Registerer: reg,
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &trapHarness{harness: h, listener: l, conds: conds, addr: conn.LocalAddr().String(), logs: logs, reg: reg, snmptrap: bin}
}

// send runs net-snmp's snmptrap with args before the address and the
// trap (uptime ” = now, then the trap OID and varbinds).
func (th *trapHarness) send(t *testing.T, from string, auth []string, inform bool, trap ...string) error {
	t.Helper()
	args := append([]string{"-r", "1", "-t", "2"}, auth...)
	if inform {
		args = append(args, "-Ci")
	}
	if from != "" {
		args = append(args, "--clientaddr="+from)
	}
	if len(auth) > 1 && auth[1] == "1" {
		// v1: enterprise, agent address, generic and specific trap, then uptime.
		args = append(append(args, th.addr), trap...)
	} else {
		args = append(append(args, th.addr, ""), trap...)
	}
	cmd := exec.Command(th.snmptrap, args...)
	cmd.Env = []string{"MIBS=", "SNMP_PERSISTENT_DIR=" + t.TempDir(), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("snmptrap %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (th *trapHarness) received(result string) float64 {
	mfs, err := th.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigia_snmp_traps_received_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

var (
	v2cAuth   = []string{"-v", "2c", "-c", snmptest.Community}
	v3Auth    = []string{"-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authPriv", "-a", "SHA-256", "-A", snmptest.AuthPassphrase, "-x", "AES", "-X", snmptest.PrivPassphrase}
	v3TrapEng = []string{"-e", "0x8000000001020304"}
)

const (
	trapLinkDown   = ".1.3.6.1.6.3.1.1.5.3"
	trapLinkUp     = ".1.3.6.1.6.3.1.1.5.4"
	trapColdStart  = ".1.3.6.1.6.3.1.1.5.1"
	trapOnBattery  = ".1.3.6.1.2.1.33.2.1"
	trapAlarmAdded = ".1.3.6.1.2.1.33.2.3"
	trapAlarmGone  = ".1.3.6.1.2.1.33.2.4"
)

func ifVarbinds(idx int, name string, admin, oper int) []string {
	return []string{
		fmt.Sprintf(".1.3.6.1.2.1.2.2.1.1.%d", idx), "i", fmt.Sprint(idx),
		fmt.Sprintf(".1.3.6.1.2.1.2.2.1.7.%d", idx), "i", fmt.Sprint(admin),
		fmt.Sprintf(".1.3.6.1.2.1.2.2.1.8.%d", idx), "i", fmt.Sprint(oper),
		fmt.Sprintf(".1.3.6.1.2.1.2.2.1.2.%d", idx), "s", name,
	}
}

func alarmVarbinds(id int, alarm string) []string {
	return []string{
		fmt.Sprintf(".1.3.6.1.2.1.33.1.6.2.1.2.%d", id), "o", alarm,
		fmt.Sprintf(".1.3.6.1.2.1.33.1.6.2.1.3.%d", id), "t", "100",
	}
}

// waitTraps waits until the device has n traps stored.
func (th *trapHarness) waitTraps(t *testing.T, device string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for th.count(`SELECT count(*) FROM device_traps WHERE device_id = $1`, device) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d traps stored, want %d; log:\n%s", device, th.count(`SELECT count(*) FROM device_traps WHERE device_id = $1`, device), n, th.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Real traps and informs from net-snmp's snmptrap, v2c and v3 authPriv,
// through the listener into history, conditions, device state and events.
func TestTrapsFromSnmptrap(t *testing.T) {
	th := newTrapHarness(t)
	if s := th.check("sw1"); s != StateUp {
		t.Fatalf("sw1 before any trap: %s", s)
	}
	if s := th.check("ups1"); s != StateUp {
		t.Fatalf("ups1 before any trap: %s", s)
	}
	steps := []struct {
		name      string
		device    string
		auth      []string
		inform    bool
		trap      []string
		rule      string
		state     State
		condition string // standing afterwards ("" = none)
		events    map[string]int
	}{
		{"v2c trap linkDown of a watched interface degrades", "sw1", v2cAuth, false,
			append([]string{trapLinkDown}, ifVarbinds(3, "Gi0/3", 1, 2)...), "linkDown", StateDegraded, "interface:3", nil},
		{"v2c inform linkDown of a shut interface only records", "sw1", v2cAuth, true,
			append([]string{trapLinkDown}, ifVarbinds(4, "Gi0/4", 2, 2)...), "linkDown", StateDegraded, "interface:3", nil},
		{"v2c inform linkUp clears it", "sw1", v2cAuth, true,
			append([]string{trapLinkUp}, ifVarbinds(3, "Gi0/3", 1, 1)...), "linkUp", StateUp, "", nil},
		{"v2c trap coldStart is a reboot", "sw1", v2cAuth, false,
			[]string{trapColdStart}, "coldStart", StateUp, "", map[string]int{EventRebooted: 1}},
		{"v3 authPriv trap coldStart is a reboot", "ups1", append(append([]string{}, v3Auth...), v3TrapEng...), false,
			[]string{trapColdStart}, "coldStart", StateUp, "", map[string]int{EventRebooted: 2}},
		{"v3 authPriv inform on battery degrades", "ups1", v3Auth, true,
			[]string{trapOnBattery, ".1.3.6.1.2.1.33.1.2.2.0", "i", "120"}, "upsTrapOnBattery", StateDegraded, "ups_on_battery", nil},
		{"v3 authPriv trap on battery again changes nothing", "ups1", append(append([]string{}, v3Auth...), v3TrapEng...), false,
			[]string{trapOnBattery, ".1.3.6.1.2.1.33.1.2.2.0", "i", "60"}, "upsTrapOnBattery", StateDegraded, "ups_on_battery", nil},
		{"v3 authPriv inform low battery raises a Sev 2 alarm", "ups1", v3Auth, true,
			append([]string{trapAlarmAdded}, alarmVarbinds(7, ".1.3.6.1.2.1.33.1.6.3.3")...), "upsAlarmLowBatteryAdded", StateDegraded, "ups_on_battery,ups_low_battery",
			map[string]int{EventTrapAlarm: 1}},
		{"v3 authPriv inform low battery removed clears the alarm", "ups1", v3Auth, true,
			append([]string{trapAlarmGone}, alarmVarbinds(7, ".1.3.6.1.2.1.33.1.6.3.3")...), "upsAlarmLowBatteryRemoved", StateDegraded, "ups_on_battery",
			map[string]int{EventTrapAlarm: 1, EventTrapCleared: 1}},
		{"v3 authPriv inform back on mains", "ups1", v3Auth, true,
			append([]string{trapAlarmGone}, alarmVarbinds(6, ".1.3.6.1.2.1.33.1.6.3.2")...), "upsAlarmOnBatteryRemoved", StateUp, "", nil},
		{"v1 trap coldStart is a reboot", "sw1", []string{"-v", "1", "-c", snmptest.Community}, false,
			[]string{".1.3.6.1.4.1.8072.4", "127.0.0.1", "0", "0", ""}, "coldStart", StateUp, "", map[string]int{EventRebooted: 3}},
		{"an unknown trap is recorded", "sw1", v2cAuth, false,
			[]string{".1.3.6.1.4.1.9.9.41.2.0.1", ".1.3.6.1.4.1.9.9.41.1.2.3.1.5.1", "s", "config changed"}, "", StateUp, "", nil},
	}
	stored := map[string]int{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := th.send(t, "", st.auth, st.inform, st.trap...); err != nil {
				t.Fatal(err)
			}
			stored[st.device]++
			th.waitTraps(t, st.device, stored[st.device])
			var rule string
			if err := th.db.Get(&rule, `SELECT rule FROM device_traps WHERE device_id = $1 ORDER BY id DESC LIMIT 1`, st.device); err != nil {
				t.Fatal(err)
			}
			if rule != st.rule {
				t.Errorf("rule %q, want %q", rule, st.rule)
			}
			var standing []string
			for _, c := range th.conds.Standing(st.device) {
				standing = append(standing, c.Condition)
			}
			if want := st.condition; strings.Join(standing, ",") != want {
				t.Errorf("standing conditions %v, want %q", standing, want)
			}
			if s := th.check(st.device); s != st.state {
				status, _ := th.engine.Status(st.device)
				t.Errorf("state %s (%s), want %s", s, status.LastDetail, st.state)
			}
			for kind, n := range st.events {
				if got := th.events(kind); got != n {
					t.Errorf("%s events = %d, want %d", kind, got, n)
				}
			}
		})
	}
	var sev int
	if err := th.db.Get(&sev, `SELECT (detail->>'severity')::int FROM device_events WHERE kind = 'trap_alarm'`); err != nil || sev != 2 {
		t.Errorf("trap_alarm severity %d (%v), want 2", sev, err)
	}
	if n := th.received(trapAccepted); n != float64(len(steps)) {
		t.Errorf("accepted %v, want %d", n, len(steps))
	}
}

// Refused traps are counted and logged once per source and reason, and
// leave no row and no event.
func TestTrapsRefused(t *testing.T) {
	th := newTrapHarness(t)
	wrongV3User := []string{"-v", "3", "-u", "intruder", "-l", "authPriv", "-a", "SHA-256", "-A", snmptest.AuthPassphrase, "-x", "AES",
		"-X", snmptest.PrivPassphrase, "-e", "0x8000000001020304"}
	wrongV3Pass := []string{"-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authPriv", "-a", "SHA-256", "-A", "not-the-passphrase", "-x", "AES",
		"-X", snmptest.PrivPassphrase, "-e", "0x8000000001020304"}
	wrongV3Priv := []string{"-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authPriv", "-a", "SHA-256", "-A", snmptest.AuthPassphrase, "-x", "AES",
		"-X", "not-the-priv-passphrase", "-e", "0x8000000001020304"}
	v3NoPriv := []string{"-v", "3", "-u", snmptest.UserAuthPriv, "-l", "authNoPriv", "-a", "SHA-256", "-A", snmptest.AuthPassphrase,
		"-e", "0x8000000001020304"}
	cases := []struct {
		name   string
		from   string
		auth   []string
		result string
	}{
		{"wrong community", "", []string{"-v", "2c", "-c", "not-the-community"}, trapWrongCommunity},
		{"unknown sender", "127.0.0.2", v2cAuth, trapUnknownSource},
		{"v3 unknown user", "", wrongV3User, trapWrongCredentials},
		{"v3 wrong auth passphrase", "", wrongV3Pass, trapWrongCredentials},
		{"v3 wrong privacy passphrase", "", wrongV3Priv, trapWrongCredentials},
		{"v3 authNoPriv from an authPriv user", "", v3NoPriv, trapWrongCredentials},
		{"v1 wrong community", "", []string{"-v", "1", "-c", "not-the-community"}, trapWrongCommunity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := th.received(c.result)
			trap := []string{trapLinkDown}
			if c.auth[1] == "1" {
				trap = []string{".1.3.6.1.4.1.8072.4", "127.0.0.1", "2", "0", ""}
			}
			for range 2 {
				if err := th.send(t, c.from, c.auth, false, trap...); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for th.received(c.result) < before+2 {
				if time.Now().After(deadline) {
					t.Fatalf("%s counted %v times, want %v; log:\n%s", c.result, th.received(c.result), before+2, th.logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := strings.Count(th.logs.String(), "reason="+c.result); n != 1 {
				t.Errorf("logged %d times, want once:\n%s", n, th.logs.String())
			}
		})
	}
	if n := th.count(`SELECT count(*) FROM device_traps`); n != 0 {
		t.Errorf("%d refused traps stored", n)
	}
	if n := th.count(`SELECT count(*) FROM device_events`); n != 0 {
		t.Errorf("%d events from refused traps", n)
	}
	// A wrong v3 inform gets no acknowledgement: snmptrap -Ci gives up.
	if err := th.send(t, "", wrongV3Pass[:len(wrongV3Pass)-2], true, trapLinkDown); err == nil {
		t.Error("an inform with a wrong passphrase was acknowledged")
	}
	for _, s := range []string{snmptest.Community, snmptest.AuthPassphrase, snmptest.PrivPassphrase, "not-the-community", "not-the-passphrase",
		"not-the-priv-passphrase"} {
		if strings.Contains(th.logs.String(), s) {
			t.Errorf("a secret (%q) reached the log", s)
		}
	}
}
