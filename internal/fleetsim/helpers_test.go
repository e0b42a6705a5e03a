package fleetsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

var (
	errRefused = syscall.ECONNREFUSED
	errTimeout = os.ErrDeadlineExceeded
)

func itoa(n int) string { return strconv.Itoa(n) }

// freeAddrs returns n loopback addresses nobody listens on right now.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return addrs
}

// freeBlock returns the first of n consecutive free loopback ports, below
// the ephemeral range so that other tests' port 0 listeners cannot take
// them meanwhile.
func freeBlock(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		base := 12000 + rand.IntN(20000-n)
		var ls []net.Listener
		ok := true
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no block of %d free ports", n)
	return 0
}

// logBuffer collects a simulator's log, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a simulator for the test's duration.
func start(t *testing.T, devices []Device, opts Options) *Simulator {
	t.Helper()
	s, err := New(devices, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func echo(addr, ae string, timeout time.Duration) error {
	_, err := dicomping.Echo(context.Background(), addr, dicomping.Options{CalledAETitle: ae, Timeout: timeout})
	return err
}

// refused reports whether err is a refused connection, what a prober
// sees of a host whose service is down.
func refused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) && dicomping.Classify(err) == dicomping.ClassDown
}

// dial tries a TCP connect, as the TCP prober does.
func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// dialWithin tries a TCP connect for at most d.
func dialWithin(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err == nil {
		c.Close()
	}
	return err
}

// timedOut reports whether err is a connect that got no answer at all.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && !errors.Is(err, syscall.ECONNREFUSED)
}

// eventually polls cond every 5 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

func dicomDevice(id, site, addr string) Device {
	return Device{ID: id, Site: site, DICOM: &DICOM{Addr: addr, AETitle: fmt.Sprintf("AE_%s", id)}}
}
