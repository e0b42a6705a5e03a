// Package testpeer lets integration tests find the real programs they talk
// to (PostgreSQL, dcmtk, Orthanc, net-snmp, Prometheus, Chromium).
//
// A missing peer skips the test on a developer's machine but fails it in CI
// (CI=true): CI must never report green for a test that did not run.
package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a peer program until the test ends and returns its loopback
// address once it accepts TCP connections on port; a peer that exits first,
// or does not listen within 20 s, fails the test with its output.
func Start(t testing.TB, port int, name string, args ...string) string {
	t.Helper()
	var out strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := WaitListening(addr, exited, 20*time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out.String())
	}
	return addr
}

// WaitListening waits until addr accepts TCP connections, giving up when
// the process reports on exited or after limit.
func WaitListening(addr string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s", addr, limit)
		}
	}
}
