// Package snmptest runs a real net-snmp agent (snmpd) on a loopback UDP port
// for integration tests, with a v2c community and SNMPv3 users at every
// security level.
//
// The agent is started in the foreground (-f), reads only the configuration
// written into the test's temporary directory (-C -c) and keeps its
// persistent state (engine ID, engineBoots, localized keys) there too, so it
// never touches /etc/snmp or /var/lib/snmp. Stop, Start and Restart let
// tests simulate an outage or a reboot: after Restart, sysUpTime counts from
// zero again while the engine ID is kept, as on a real device.
package snmptest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// Credentials configured in every agent. Passphrases are at least 8
// characters because net-snmp refuses shorter ones.
const (
	Community = "vigia-ro"

	// UserAuthPriv authenticates with SHA-256 and encrypts with AES-128.
	UserAuthPriv = "vigia-priv"
	// UserAuthNoPriv authenticates with SHA-1 and does not encrypt.
	UserAuthNoPriv = "vigia-auth"
	// UserNoAuth neither authenticates nor encrypts.
	UserNoAuth = "vigia-noauth"

	AuthPassphrase = "auth-passphrase-1"
	PrivPassphrase = "priv-passphrase-1"
)

// sysUpTime is the readiness probe and what tests compare across restarts.
const oidSysUpTime = ".1.3.6.1.2.1.1.3.0"

// readyTimeout is generous: on a loaded 2-core CI machine snmpd can take a
// second or two to load its modules.
const readyTimeout = 15 * time.Second

// Agent is one snmpd instance owned by a test.
type Agent struct {
	// Host and Port are where the agent listens; Port stays the same across
	// Restart so a device's endpoint remains valid.
	Host string
	Port int

	t    testing.TB
	bin  string
	dir  string
	logs *lockedBuffer
	mu   sync.Mutex // guards run
	run  *run       // the running snmpd, nil when stopped
	// storage is the simulated hrStorageTable's file (StartWithStorage).
	storage string
	// args are extra snmpd arguments (modules left out).
	args []string
}

// run is one snmpd process. err is written before exited is closed.
type run struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// kill stops the process: SIGTERM lets snmpd save its persistent state
// (engineBoots) as a clean shutdown of a device would; SIGKILL if it hangs.
func (r *run) kill(grace time.Duration) {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(grace):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// Start runs snmpd on a free loopback UDP port and waits until it answers.
// The agent is killed in t.Cleanup. A missing snmpd skips the test, or fails
// it in CI.
func Start(t testing.TB) *Agent {
	t.Helper()
	return startWith(t, func(string) []string { return nil }, nil)
}

// startWith is Start with more snmpd.conf lines, made by extra in the
// agent's directory before snmpd starts.
func startWith(t testing.TB, extra func(dir string) []string, args []string) *Agent {
	t.Helper()
	bin := testpeer.Command(t, "snmpd", "snmpd")
	dir := t.TempDir()
	a := &Agent{Host: "127.0.0.1", t: t, bin: bin, dir: dir, logs: &lockedBuffer{}, args: args}
	if err := os.MkdirAll(filepath.Join(dir, "persist"), 0o700); err != nil {
		t.Fatalf("snmptest: %v", err)
	}
	conf := config() + strings.Join(extra(dir), "\n") + "\n"
	if err := os.WriteFile(a.confPath(), []byte(conf), 0o600); err != nil {
		t.Fatalf("snmptest: write snmpd.conf: %v", err)
	}
	t.Cleanup(a.Stop)

	// The free port is found by binding and releasing it, so another process
	// may grab it in between: try a few ports before giving up.
	var err error
	for range 3 {
		a.Port, err = freeUDPPort()
		if err != nil {
			t.Fatalf("snmptest: %v", err)
		}
		if err = a.start(); err == nil {
			return a
		}
	}
	t.Fatalf("snmptest: %v\nsnmpd output:\n%s", err, a.logs.String())
	return nil
}

// Addr is host:port, as snmpget takes it after "udp:".
func (a *Agent) Addr() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// V2c is the agent's endpoint with the read-only community.
func (a *Agent) V2c() assets.SNMPEndpoint {
	return assets.SNMPEndpoint{Host: a.Host, Port: a.Port, Version: "v2c", Community: assets.NewSecret(Community)}
}

// V3 is the agent's endpoint for the authPriv user (SHA-256, AES).
func (a *Agent) V3() assets.SNMPEndpoint {
	return assets.SNMPEndpoint{
		Host: a.Host, Port: a.Port, Version: "v3", User: UserAuthPriv,
		AuthProtocol: "SHA256", AuthPassphrase: assets.NewSecret(AuthPassphrase),
		PrivProtocol: "AES", PrivPassphrase: assets.NewSecret(PrivPassphrase),
	}
}

// V3AuthNoPriv is the agent's endpoint for the authNoPriv user (SHA-1).
func (a *Agent) V3AuthNoPriv() assets.SNMPEndpoint {
	return assets.SNMPEndpoint{
		Host: a.Host, Port: a.Port, Version: "v3", User: UserAuthNoPriv,
		AuthProtocol: "SHA", AuthPassphrase: assets.NewSecret(AuthPassphrase),
	}
}

// V3NoAuth is the agent's endpoint for the noAuthNoPriv user.
func (a *Agent) V3NoAuth() assets.SNMPEndpoint {
	return assets.SNMPEndpoint{Host: a.Host, Port: a.Port, Version: "v3", User: UserNoAuth}
}

// Logs is what snmpd has written so far, for failure messages.
func (a *Agent) Logs() string { return a.logs.String() }

// Stop terminates snmpd and waits for it to exit; the port then answers
// nothing (ICMP port unreachable on loopback). Stopping a stopped agent
// does nothing.
func (a *Agent) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run == nil {
		return
	}
	a.run.kill(5 * time.Second)
	a.run = nil
}

// Start starts a stopped agent again on the same port and waits until it
// answers. It fails the test if the agent cannot start.
func (a *Agent) Start() {
	a.t.Helper()
	if err := a.start(); err != nil {
		a.t.Fatalf("snmptest: %v\nsnmpd output:\n%s", err, a.logs.String())
	}
}

// Restart stops and starts the agent: its sysUpTime starts again from zero,
// which is how a probe sees a reboot.
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	a.Start()
}

func (a *Agent) confPath() string { return filepath.Join(a.dir, "snmpd.conf") }

func (a *Agent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.run != nil {
		return errors.New("snmpd is already running")
	}
	endpoint := "udp:" + a.Addr()
	args := append([]string{"-f", "-Lo", "-C", "-c", a.confPath(), "-p", filepath.Join(a.dir, "snmpd.pid")}, a.args...)
	cmd := exec.Command(a.bin, append(args, endpoint)...)
	cmd.Env = append(os.Environ(),
		"SNMP_PERSISTENT_DIR="+filepath.Join(a.dir, "persist"),
		// The agent needs no MIB files; loading the incomplete set Debian
		// ships only fills the log with warnings.
		"MIBS=",
	)
	cmd.Stdout = a.logs
	cmd.Stderr = a.logs
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(a.logs, "--- snmptest: starting snmpd on %s\n", endpoint)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start snmpd: %w", err)
	}
	r := &run{cmd: cmd, exited: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()
	if err := a.waitReady(r); err != nil {
		r.kill(time.Second)
		return err
	}
	a.run = r
	return nil
}

// waitReady polls sysUpTime over v2c until the agent answers, it exits, or
// readyTimeout passes.
func (a *Agent) waitReady(r *run) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-r.exited:
			return fmt.Errorf("snmpd exited before answering: %v", r.err)
		default:
		}
		if _, err := a.getUptime(200 * time.Millisecond); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("snmpd did not answer on %s within %s", a.Addr(), readyTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Uptime reads the agent's sysUpTime over v2c, failing the test if it does
// not answer.
func (a *Agent) Uptime() time.Duration {
	a.t.Helper()
	d, err := a.getUptime(2 * time.Second)
	if err != nil {
		a.t.Fatalf("snmptest: read sysUpTime: %v", err)
	}
	return d
}

func (a *Agent) getUptime(timeout time.Duration) (time.Duration, error) {
	g := &gosnmp.GoSNMP{
		Target: a.Host, Port: uint16(a.Port), Version: gosnmp.Version2c,
		Community: Community, Timeout: timeout, Retries: 0,
	}
	if err := g.Connect(); err != nil {
		return 0, err
	}
	defer g.Close()
	pkt, err := g.Get([]string{oidSysUpTime})
	if err != nil {
		return 0, err
	}
	if len(pkt.Variables) != 1 || pkt.Variables[0].Type != gosnmp.TimeTicks {
		return 0, fmt.Errorf("unexpected answer to sysUpTime: %+v", pkt.Variables)
	}
	ticks := gosnmp.ToBigInt(pkt.Variables[0].Value).Int64()
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// config is the agent's snmpd.conf. createUser in the main file is accepted
// by net-snmp 5.9; snmpd localizes the keys into the persistent directory on
// first start and re-reads the line on every restart.
func config() string {
	lines := []string{
		"rocommunity " + Community + " 127.0.0.1",
		fmt.Sprintf("createUser %s SHA-256 %q AES %q", UserAuthPriv, AuthPassphrase, PrivPassphrase),
		"rouser " + UserAuthPriv + " priv",
		fmt.Sprintf("createUser %s SHA %q", UserAuthNoPriv, AuthPassphrase),
		"rouser " + UserAuthNoPriv + " auth",
		"createUser " + UserNoAuth,
		"rouser " + UserNoAuth + " noauth",
		// One line per request otherwise; the log is kept for failures.
		"dontLogTCPWrappersConnects yes",
	}
	return strings.Join(lines, "\n") + "\n"
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free UDP port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// lockedBuffer collects snmpd's output, written by exec's copier goroutine
// and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
