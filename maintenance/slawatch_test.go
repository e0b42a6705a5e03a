package maintenance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

var noc = auth.Actor{Name: "ana", Role: auth.RoleNOC}

// usePolicy points acme's contract at policy, so acme's tickets run on it.
func (f *fixture) usePolicy(t *testing.T, policy string) {
	t.Helper()
	f.db.MustExec(`UPDATE contracts SET sla_policy = $1 WHERE id = 'acme-2026'`, policy)
}

func (f *fixture) open(t *testing.T, device string, severity int, at time.Time) Ticket {
	t.Helper()
	tk, err := f.store.Create(context.Background(), noc, CreateInput{CustomerID: "acme", DeviceIDs: []string{device},
		Severity: severity, Title: "falla " + device}, at)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (f *fixture) act(t *testing.T, tk Ticket, action string, in ActionInput, at time.Time) {
	t.Helper()
	if _, err := f.store.Act(context.Background(), noc, fmt.Sprint(tk.ID), action, in, at); err != nil {
		t.Fatalf("%s: %v", action, err)
	}
}

func TestTicketGauges(t *testing.T) {
	f := newFixture(t)
	f.usePolicy(t, "imaging-8x5")
	reg := prometheus.NewRegistry()
	NewMetrics(reg, f.db)
	ctx := context.Background()
	f.open(t, "acme-pacs", 1, monday15)                               // warned at 20:00, breached at 00:00
	f.open(t, "acme-ct", 1, monday15.Add(2*time.Hour))                // warned at 22:00
	f.open(t, "acme-north-us", 2, monday15.Add(2*time.Hour))          // warning at 9 h: not yet
	d := f.open(t, "acme-north-mr", 1, monday15.Add(-30*time.Minute)) // warned, then acknowledged
	e := f.open(t, "acme-gw", 1, monday15)                            // closed
	if _, err := f.store.Create(ctx, noc, CreateInput{CustomerID: "beta", Severity: 3, Title: "lento"}, monday15); err != nil {
		t.Fatal(err)
	}
	f.act(t, d, "acknowledge", ActionInput{}, monday15.Add(6*time.Hour))
	f.act(t, e, "close", ActionInput{Reason: CloseDuplicate}, monday15.Add(time.Hour))
	watch(t, f.store, monday15.Add(9*time.Hour+30*time.Minute))
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"acme sev 1 new", "vigia_tickets_open", map[string]string{"customer": "acme", "severity": "1", "status": "new"}, 2},
		{"acme sev 1 acknowledged", "vigia_tickets_open", map[string]string{"customer": "acme", "severity": "1", "status": "acknowledged"}, 1},
		{"acme sev 2", "vigia_tickets_open", map[string]string{"customer": "acme", "severity": "2"}, 1},
		{"closed tickets are not open", "vigia_tickets_open", map[string]string{"customer": "acme"}, 4},
		{"beta", "vigia_tickets_open", map[string]string{"customer": "beta", "severity": "3", "status": "new"}, 1},
		// a is breached and d acknowledged: only b is at risk.
		{"acme at risk", "vigia_sla_at_risk_tickets", map[string]string{"customer": "acme"}, 1},
		{"gamma reported as zero", "vigia_sla_at_risk_tickets", map[string]string{"customer": "gamma"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ticketstest.SumMetric(t, reg, tc.metric, tc.labels); got != tc.want {
				t.Fatalf("%s%v = %v, want %v", tc.metric, tc.labels, got, tc.want)
			}
		})
	}
	if n := countSeries(t, reg, "vigia_sla_at_risk_tickets"); n != 3 {
		t.Errorf("%d at-risk series, want one per customer (3)", n)
	}
}

func countSeries(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() == name {
			return len(fam.GetMetric())
		}
	}
	return 0
}
