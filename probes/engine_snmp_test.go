package probes

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/snmptest"
)

// net-snmp's snmpd with a v3 authPriv user, watched by the engine: up;
// a wrong passphrase is misconfigured (never "up"); stopped is down; a
// restart is seen as a reboot from sysUpTime.
func TestSNMPDeviceLifecycle(t *testing.T) {
	agent := snmptest.Start(t)
	inv := fmt.Sprintf(`
customers:
  - id: c1
    name: C
    country: PE
    time_zone: America/Lima
    sites:
      - id: s1
        name: Data centre
        kind: hospital
        devices:
          - id: pacs-srv
            name: PACS server
            kind: pacs
            role: core
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[2]s, auth_protocol: SHA256, auth_passphrase: %[3]s, priv_protocol: AES, priv_passphrase: %[4]s}
            probe: {interval: 3s, retries: 1}
          - id: pacs-wrong-pass
            name: PACS server, wrong passphrase
            kind: pacs
            snmp: {host: 127.0.0.1, port: %[1]d, version: v3, user: %[2]s, auth_protocol: SHA256, auth_passphrase: not-the-passphrase, priv_protocol: AES, priv_passphrase: %[4]s}
            probe: {interval: 3s, retries: 1}
`, agent.Port, snmptest.UserAuthPriv, snmptest.AuthPassphrase, snmptest.PrivPassphrase)
	h := newHarness(t, inv)
	h.cfg.Probers = map[string]Prober{"snmp": NewSNMPProber()}
	h.restart()

	if s := h.check("pacs-srv"); s != StateUp {
		st, _ := h.engine.Status("pacs-srv")
		t.Fatalf("pacs-srv: %s (%s), want up", s, st.LastDetail)
	}
	if s := h.check("pacs-wrong-pass"); s != StateMisconfigured {
		st, _ := h.engine.Status("pacs-wrong-pass")
		t.Fatalf("wrong passphrase: %s (%s), want misconfigured", s, st.LastDetail)
	}
	// Let the agent's uptime grow so that a restart is unmistakably lower.
	for agent.Uptime() < 3*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if s := h.check("pacs-srv"); s != StateUp {
		t.Fatalf("pacs-srv: %s", s)
	}
	agent.Stop()
	if s := h.check("pacs-srv"); s != StateDown {
		t.Fatalf("snmpd stopped: %s, want down", s)
	}
	if n := h.events(EventDeviceDown); n != 1 {
		t.Errorf("device_down events = %d", n)
	}
	agent.Start()
	h.check("pacs-srv")
	if s := h.check("pacs-srv"); s != StateUp {
		t.Fatalf("snmpd back: %s, want up", s)
	}
	if n := h.events(EventRebooted); n != 1 {
		t.Errorf("rebooted events = %d, want 1 (sysUpTime went back)", n)
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'pacs-wrong-pass'`); n != 0 {
		t.Errorf("a wrong passphrase opened %d outages", n)
	}
}
