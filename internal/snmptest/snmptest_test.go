package snmptest

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// TestSNMPAgentAnswersEveryUser checks the generated configuration with
// net-snmp's own snmpget, so the harness is proven independently of the
// gosnmp client the prober uses.
func TestSNMPAgentAnswersEveryUser(t *testing.T) {
	t.Parallel()
	snmpget := testpeer.Command(t, "snmpget", "snmp")
	a := Start(t)

	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: sysUpTime must be returned
	}{
		{"v2c community", []string{"-v2c", "-c", Community}, ""},
		{"v3 authPriv SHA-256 AES", []string{"-v3", "-l", "authPriv", "-u", UserAuthPriv, "-a", "SHA-256", "-A", AuthPassphrase, "-x", "AES", "-X", PrivPassphrase}, ""},
		{"v3 authNoPriv SHA", []string{"-v3", "-l", "authNoPriv", "-u", UserAuthNoPriv, "-a", "SHA", "-A", AuthPassphrase}, ""},
		{"v3 noAuthNoPriv", []string{"-v3", "-l", "noAuthNoPriv", "-u", UserNoAuth}, ""},
		{"v3 wrong auth passphrase", []string{"-v3", "-l", "authPriv", "-u", UserAuthPriv, "-a", "SHA-256", "-A", "not-the-passphrase", "-x", "AES", "-X", PrivPassphrase}, "Authentication failure"},
		{"v3 unknown user", []string{"-v3", "-l", "authPriv", "-u", "nobody-here", "-a", "SHA-256", "-A", AuthPassphrase, "-x", "AES", "-X", PrivPassphrase}, "Unknown user name"},
		// rouser ... priv: the VACM refuses a lower security level.
		{"v3 priv user without privacy", []string{"-v3", "-l", "authNoPriv", "-u", UserAuthPriv, "-a", "SHA-256", "-A", AuthPassphrase}, "authorizationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-On", "-t", "2", "-r", "1"}, tt.args...)
			args = append(args, "udp:"+a.Addr(), oidSysUpTime)
			cmd := exec.Command(snmpget, args...)
			cmd.Env = append(cmd.Environ(), "MIBS=")
			out, err := cmd.CombinedOutput()
			got := string(out)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(got, oidSysUpTime+" = Timeticks:") {
					t.Fatalf("snmpget %v: %v\n%s\nagent log:\n%s", tt.args, err, got, a.Logs())
				}
				return
			}
			if !strings.Contains(got, tt.wantErr) {
				t.Fatalf("snmpget %v = %q, want it to contain %q", tt.args, got, tt.wantErr)
			}
		})
	}
}

// TestSNMPAgentStopStartRestart checks what the reboot-detection tests rely
// on: a stopped agent is silent, and after Restart sysUpTime is lower.
func TestSNMPAgentStopStartRestart(t *testing.T) {
	t.Parallel()
	a := Start(t)
	port := a.Port

	// Let the first run's uptime grow well past how long a restart takes on
	// a loaded machine, so "lower" cannot be a coincidence of timing.
	before := a.Uptime()
	if before < 2*time.Second {
		time.Sleep(2*time.Second - before)
		before = a.Uptime()
	}

	a.Stop()
	if _, err := a.getUptime(300 * time.Millisecond); err == nil {
		t.Fatal("stopped agent still answers")
	}
	a.Stop() // idempotent

	a.Start()
	if a.Port != port {
		t.Fatalf("port changed across Start: %d → %d", port, a.Port)
	}
	a.Restart()
	after := a.Uptime()
	if after >= before {
		t.Fatalf("sysUpTime after restart = %s, want lower than %s", after, before)
	}
	if strings.Count(a.Logs(), "--- snmptest: starting snmpd") != 3 {
		t.Fatalf("want 3 starts in the log, got:\n%s", a.Logs())
	}
}
