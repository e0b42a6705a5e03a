package sweeps

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/leader"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// countingPoster records webhook deliveries by event key.
type countingPoster struct {
	mu   sync.Mutex
	sent map[string]int
}

func (p *countingPoster) Post(_ context.Context, _, key string, _ []byte, _ time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent[key]++
	return nil
}

// TestRunScheduled: two instances' job schedulers, leader-elected on one
// database, record the SLA marks, open the preventive work order and
// deliver the NOC notifications, each once; cancelling stops them.
func TestRunScheduled(t *testing.T) {
	f := newFixture(t, "http://noc.example/hook")
	f.usePolicy(t, "desk-standard")
	ctx := context.Background()
	tk := f.open(t, "acme-pacs", 1, monday15)
	if _, err := f.plans.CreatePlan(ctx, noc, PlanInput{DeviceID: "acme-ct", Title: "trimestral", EveryMonths: 3, FirstDue: "2026-06-10"}, monday15); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return monday15.Add(3 * time.Hour) }
	poster := &countingPoster{sent: map[string]int{}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	for range 2 {
		cfg := JobsConfig{Store: f.store, Preventive: f.plans, Sender: notify.NewSender(f.db, nil, poster, quiet), Metrics: maintenance.NewMetrics(prometheus.NewRegistry(), f.db),
			Elector: leader.New(f.db.DB, "maintenance-jobs"), Now: now, Log: quiet,
			SweepEvery: 20 * time.Millisecond, WatchEvery: 20 * time.Millisecond, PreventiveEvery: 20 * time.Millisecond, SendEvery: 20 * time.Millisecond}
		go func() { errc <- RunScheduled(runCtx, cfg) }()
	}
	deadline := time.Now().Add(15 * time.Second)
	for f.count(t, `SELECT count(*) FROM sla_marks`) < 4 || f.count(t, `SELECT count(*) FROM preventive_visits`) < 1 ||
		f.count(t, `SELECT count(*) FROM outbox WHERE channel = 'webhook' AND sent_at IS NULL`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("jobs did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // more runs: still once
	cancel()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	marks, err := f.store.Marks(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != 4 || f.count(t, `SELECT count(*) FROM preventive_visits`) != 1 {
		t.Fatalf("marks %v and %d visits, want 4 and 1", marks, f.count(t, `SELECT count(*) FROM preventive_visits`))
	}
	poster.mu.Lock()
	defer poster.mu.Unlock()
	if len(poster.sent) != 6 { // 4 SLA marks + 2 tickets opened
		t.Errorf("webhooks delivered %v, want the 4 SLA marks and 2 openings", poster.sent)
	}
	for k, n := range poster.sent {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}
