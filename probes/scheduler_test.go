package probes

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
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
	h := newHarness(t, oneSiteInventory(devs.String()))
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

// blockingProber holds every probe until released, counting how many run.
type blockingProber struct {
	release  chan struct{}
	mu       sync.Mutex
	inFlight map[string]int
	total    int
	maxTotal int
	overlap  bool
	runs     map[string]int
}

func (p *blockingProber) Applies(assets.Device) bool { return true }
func (p *blockingProber) Probe(ctx context.Context, d assets.Device) Result {
	p.mu.Lock()
	p.inFlight[d.ID]++
	p.runs[d.ID]++
	p.total++
	p.maxTotal = max(p.maxTotal, p.total)
	p.overlap = p.overlap || p.inFlight[d.ID] > 1
	p.mu.Unlock()
	select {
	case <-p.release:
	case <-ctx.Done():
	}
	p.mu.Lock()
	p.inFlight[d.ID]--
	p.total--
	p.mu.Unlock()
	return Result{Outcome: OK, Detail: "ok"}
}

// A check never overlaps itself, at most Concurrency run at once, and the
// checks due meanwhile are counted as waiting.
func TestSchedulerBoundsConcurrencyAndNeverOverlaps(t *testing.T) {
	var devs strings.Builder
	for i := range 4 {
		fmt.Fprintf(&devs, "          - {id: dev-%d, name: D%d, kind: network, tcp: {host: 127.0.0.1, port: 9}, probe: {interval: 1s, retries: 0}}\n", i, i)
	}
	h := newHarness(t, oneSiteInventory(devs.String()))
	fake := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	p := &blockingProber{release: make(chan struct{}), inFlight: map[string]int{}, runs: map[string]int{}}
	h.cfg.Clock = fake
	h.cfg.Probers = map[string]Prober{"blocking": p}
	h.restart()
	sc, err := NewScheduler(h.engine, SchedulerConfig{Concurrency: 2, SyncEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sc.RegisterMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s", what)
			}
		}
	}
	running := func() int { p.mu.Lock(); defer p.mu.Unlock(); return p.total }
	// Three intervals pass while every probe hangs.
	for range 30 {
		fake.Advance(100 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	eventually("two checks running", func() bool { return running() == 2 })
	eventually("two checks waiting", func() bool { return gaugeValue(t, reg, "vigia_probe_queue_waiting") == 2 })
	time.Sleep(50 * time.Millisecond)
	p.mu.Lock()
	if p.total != 2 || len(p.runs) != 2 {
		t.Fatalf("%d checks running of %d devices started, want the limit of 2", p.total, len(p.runs))
	}
	p.mu.Unlock()
	// Released, every device gets checked, none twice at once.
	close(p.release)
	eventually("every device checked", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.runs) == 4
	})
	for range 30 {
		fake.Advance(100 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.overlap {
		t.Error("two checks of one device ran at once")
	}
	if p.maxTotal > 2 {
		t.Errorf("%d checks ran at once, limit 2", p.maxTotal)
	}
	// The two checks held back by the busy workers started late, by the
	// driven seconds they waited: vigia_probe_start_lateness_seconds says so.
	n, late := lateness(t, reg)
	if n < 4 || late < 2 {
		t.Errorf("lateness histogram: %d checks, %d started over half a second late; want at least 4 and 2", n, late)
	}
}

// lateness reads vigia_probe_start_lateness_seconds: how many checks, and
// how many started over half a second after they were due.
func lateness(t *testing.T, reg *prometheus.Registry) (total, overHalfSecond uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigia_probe_start_lateness_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		var under uint64
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() < 1 {
				under = b.GetCumulativeCount()
			}
		}
		return h.GetSampleCount(), h.GetSampleCount() - under
	}
	t.Fatal("no vigia_probe_start_lateness_seconds")
	return 0, 0
}

// gaugeValue reads a gauge as /metrics would show it.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// oneSiteInventory is an inventory of one customer and one site holding
// the given device lines.
func oneSiteInventory(devices string) string {
	return `
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
` + devices
}
