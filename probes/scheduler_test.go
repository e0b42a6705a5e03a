package probes

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// The scheduler runs on a clock the test drives: each device is checked
// once per interval, first at its jittered offset.
func TestSchedulerOnDrivenClock(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	var devs strings.Builder
	for i := range 5 {
		fmt.Fprintf(&devs, "          - {id: dev-%d, name: D%d, kind: network, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 10s, retries: 1}}\n", i, i, port)
	}
	inv := `
customers:
  - id: c1
    name: C
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: S
        kind: hospital
        devices:
` + devs.String()
	h := newHarness(t, inv)
	fake := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	h.cfg.Clock = fake
	h.cfg.Probers = map[string]Prober{"tcp": &TCP{}}
	h.restart()
	sc, err := NewScheduler(h.engine, SchedulerConfig{Concurrency: 2, SyncEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for accepted.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("accepted %d probes, want %d", accepted.Load(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Nothing runs until the clock moves.
	time.Sleep(200 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d probes before the clock moved", n)
	}
	for step := 1; step <= 3; step++ {
		// Move in small steps so each job's timer fires at its own instant.
		for range 20 {
			fake.Advance(500 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
		waitFor(int64(5 * step))
	}
	time.Sleep(200 * time.Millisecond)
	if n := accepted.Load(); n != 15 {
		t.Errorf("after 30 s of driven time: %d probes, want 15 (5 devices every 10 s)", n)
	}
	if sc.Scheduled() != 5 {
		t.Errorf("scheduled = %d", sc.Scheduled())
	}
	for i := range 5 {
		if st, _ := h.engine.Status(fmt.Sprintf("dev-%d", i)); st.State != StateUp {
			t.Errorf("dev-%d: %s", i, st.State)
		}
	}
}

func TestJitterSpreadsDevices(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 1000 {
		j := jitter(fmt.Sprintf("device-%d", i), 10*time.Second)
		if j < 0 || j >= 10*time.Second {
			t.Fatalf("jitter %s outside the interval", j)
		}
		seen[j/time.Second] = true
	}
	if len(seen) != 10 {
		t.Errorf("1000 devices fall in %d of 10 one-second slots", len(seen))
	}
}
