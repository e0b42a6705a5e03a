// Package hl7test runs a real HL7 v2 MLLP listener for tests: Debian's
// python3-hl7 (its hl7.mllp asyncio server) answering AA, AE, or nothing.
package hl7test

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

//go:embed testdata/mllp_server.py
var script []byte

// Modes of the engine: acknowledge with AA, refuse with AE (MSA-3 and an
// ERR segment saying "Unknown receiving application"), or never answer.
const (
	AA     = "AA"
	AE     = "AE"
	Silent = "silent"
)

// Start runs the engine on a free loopback port until the test ends and
// returns the port.
func Start(t testing.TB, mode string) int {
	t.Helper()
	// Debian's interpreter, where python3-hl7 is installed (a python3
	// earlier in PATH may be another one).
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import hl7.mllp").Run(); err != nil {
		testpeer.Missing(t, "python3 with hl7.mllp", "apt-get install python3-hl7")
	}
	path := filepath.Join(t.TempDir(), "mllp_server.py")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		t.Fatal(err)
	}
	port := testpeer.FreePort(t)
	testpeer.Start(t, port, python, path, mode, strconv.Itoa(port))
	return port
}
