package snmptest

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// The simulated hrStorageTable, read with net-snmp's own snmpbulkwalk:
// exactly the volumes given, and the next walk sees SetStorage's.
func TestStorageAgentServesAndChangesVolumes(t *testing.T) {
	t.Parallel()
	walk := testpeer.Command(t, "snmpbulkwalk", "snmp")
	a := StartWithStorage(t, []Volume{{Descr: "/data", Units: 4096, Size: 1000, Used: 100}})
	read := func() string {
		t.Helper()
		cmd := exec.Command(walk, "-On", "-t", "2", "-r", "1", "-v2c", "-c", Community, "udp:"+a.Addr(), ".1.3.6.1.2.1.25.2.3.1")
		cmd.Env = append(cmd.Environ(), "MIBS=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("snmpbulkwalk: %v\n%s", err, out)
		}
		return string(out)
	}
	want := strings.Join([]string{
		".1.3.6.1.2.1.25.2.3.1.1.1 = INTEGER: 1",
		".1.3.6.1.2.1.25.2.3.1.2.1 = OID: .1.3.6.1.2.1.25.2.1.4",
		`.1.3.6.1.2.1.25.2.3.1.3.1 = STRING: "/data"`,
		".1.3.6.1.2.1.25.2.3.1.4.1 = INTEGER: 4096",
		".1.3.6.1.2.1.25.2.3.1.5.1 = INTEGER: 1000",
		".1.3.6.1.2.1.25.2.3.1.6.1 = INTEGER: 100",
	}, "\n") + "\n"
	if got := read(); got != want {
		t.Fatalf("walk:\n%s\nwant:\n%s", got, want)
	}
	a.SetStorage([]Volume{{Descr: "/data", Units: 4096, Size: 1000, Used: 750}, {Descr: "/archive", Units: 512, Size: 10, Used: 1}})
	got := read()
	for _, line := range []string{".1.3.6.1.2.1.25.2.3.1.6.1 = INTEGER: 750", `.1.3.6.1.2.1.25.2.3.1.3.2 = STRING: "/archive"`} {
		if !strings.Contains(got, line) {
			t.Errorf("after SetStorage, walk lacks %q:\n%s", line, got)
		}
	}
}
