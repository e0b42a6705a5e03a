// Package testpeer lets integration tests find the real programs they talk
// to (PostgreSQL, dcmtk, Orthanc, net-snmp, Prometheus, Chromium).
//
// A missing peer skips the test on a developer's machine but fails it in CI
// (CI=true): CI must never report green for a test that did not run.
package testpeer

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run in CI, where missing peers are fatal.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it in CI, explaining what to install.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := what + " is not available; install it with `" + install + "` or run `make test`, which installs every peer"
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Command returns the path of program, looking in PATH and then in extra
// directories (Debian puts some daemons in /usr/sbin, outside a user's PATH).
// When it is missing the test is skipped, or failed in CI.
func Command(t testing.TB, program, debianPackage string, extraDirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, d := range append(extraDirs, "/usr/sbin", "/usr/local/sbin", "/sbin") {
		p := filepath.Join(d, program)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, program, "apt-get install "+debianPackage)
	return ""
}
