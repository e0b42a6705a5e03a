package snmptest

import (
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

//go:embed hrstorage.py
var hrStoragePass []byte

// Volume is one fixed disk of a simulated agent's hrStorageTable.
type Volume struct {
	Descr string `json:"descr"`
	Units int64  `json:"units"` // bytes per allocation unit
	Size  int64  `json:"size"`  // in units
	Used  int64  `json:"used"`  // in units
}

// StartWithStorage runs snmpd answering hrStorageTable with vols instead of
// the host's disks (through a "pass_persist" handler that reads a file at
// every request), so a test can fill a disk with SetStorage. Everything else is
// the real agent.
func StartWithStorage(t testing.TB, vols []Volume) *Agent {
	t.Helper()
	python := testpeer.Command(t, "python3", "python3")
	var state string
	a := startWith(t, func(dir string) []string {
		script := filepath.Join(dir, "hrstorage.py")
		state = filepath.Join(dir, "storage.json")
		if err := os.WriteFile(script, hrStoragePass, 0o600); err != nil {
			t.Fatalf("snmptest: %v", err)
		}
		writeStorage(t, state, vols)
		return []string{"pass_persist .1.3.6.1.2.1.25.2.3.1 " + python + " " + script + " " + state}
	}, []string{"-I", "-hrh_storage"}) // the host's own disks module would answer first
	a.storage = state
	return a
}

// SetStorage replaces the simulated disks; the next request sees them.
func (a *Agent) SetStorage(vols []Volume) {
	a.t.Helper()
	if a.storage == "" {
		a.t.Fatal("snmptest: SetStorage on an agent not started with StartWithStorage")
	}
	writeStorage(a.t, a.storage, vols)
}

// writeStorage replaces the file atomically: snmpd may read it meanwhile.
func writeStorage(t testing.TB, path string, vols []Volume) {
	b, err := json.Marshal(vols)
	if err != nil {
		t.Fatalf("snmptest: %v", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatalf("snmptest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("snmptest: %v", err)
	}
}
