package sweeps

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

func (f *fixture) act(t *testing.T, tk maintenance.Ticket, action string, in maintenance.ActionInput, at time.Time) {
	t.Helper()
	if _, err := f.store.Act(context.Background(), noc, fmt.Sprint(tk.ID), action, in, at); err != nil {
		t.Fatalf("%s: %v", action, err)
	}
}

func markStrings(ms []maintenance.Mark) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s %s %d %s", m.Clock, m.Kind, m.Level, m.Instant.In(bogota).Format("Mon 15:04"))
	}
	sort.Strings(out)
	return out
}

func TestSLAWatcher(t *testing.T) {
	h := func(d float64) time.Time { return monday15.Add(time.Duration(d * float64(time.Hour))) }
	type action struct {
		at   time.Time
		name string
		in   maintenance.ActionInput
	}
	tests := []struct {
		name     string
		policy   string
		severity int
		actions  []action
		sweeps   []time.Time
		want     []string
		outcomes []string // "CLOCK OUTCOME MARGIN"
	}{
		{name: "before the warning nothing", policy: "imaging-8x5", severity: 1,
			sweeps: []time.Time{h(4.99)}, want: []string{}},
		// Sev 1 on imaging-8x5: 9 h wall, warning at 5 h; opened Monday 15:00.
		{name: "warning, then due instant itself is on time, then breach", policy: "imaging-8x5", severity: 1,
			sweeps: []time.Time{h(5.01), h(9), h(9.01)},
			want:   []string{"response breach 0 Tue 00:00", "response warning 0 Mon 20:00"}},
		{name: "meeting the due instant itself is on time", policy: "imaging-8x5", severity: 1,
			sweeps: []time.Time{h(9)}, want: []string{"response warning 0 Mon 20:00"}},
		{name: "closed without acknowledgement: the clocks stopped at closing", policy: "imaging-8x5", severity: 1,
			actions: []action{{h(1), "close", maintenance.ActionInput{Reason: maintenance.CloseDuplicate}}},
			sweeps:  []time.Time{h(20)}, want: []string{}, outcomes: []string{"response met 8h0m0s"}},
		{name: "acknowledgement between warning and due stops the response clock", policy: "imaging-8x5", severity: 1,
			actions: []action{{h(6), "acknowledge", maintenance.ActionInput{}}},
			sweeps:  []time.Time{h(5.5), h(11)},
			want:    []string{"response warning 0 Mon 20:00"}, outcomes: []string{"response met 3h0m0s"}},
		{name: "a late acknowledgement still breached, seen by a later sweep", policy: "imaging-8x5", severity: 1,
			actions:  []action{{h(10), "acknowledge", maintenance.ActionInput{}}},
			sweeps:   []time.Time{h(11)},
			want:     []string{"response breach 0 Tue 00:00", "response warning 0 Mon 20:00"},
			outcomes: []string{"response breached -1h0m0s"}},
		// Sev 2: 12 h wall, due Tue 03:00. Raised to Sev 1 at Tue 04:00, whose
		// 9 h were used up at Tue 00:00: the Sev 2 clock ends there 1 h late,
		// a new clock runs from Tue 04:00 (wall), warning Tue 09:00, due Tue
		// 13:00, breached again; acknowledged Tue 15:00, 2 h late.
		{name: "a restarted clock breached again records a second breach", policy: "imaging-8x5", severity: 2,
			actions: []action{{h(13), "severity", maintenance.ActionInput{Severity: 1, Text: "PACS caído"}}, {h(24), "acknowledge", maintenance.ActionInput{}}},
			sweeps:  []time.Time{h(12.5), h(25)},
			want: []string{"response breach 0 Tue 03:00", "response breach 0 Tue 13:00",
				"response warning 0 Tue 00:00", "response warning 0 Tue 09:00"},
			outcomes: []string{"response breached -1h0m0s", "response breached -2h0m0s"}},
		{name: "a paused clock never breaches", policy: "imaging-8x5", severity: 1,
			actions: []action{{h(2), "pause", maintenance.ActionInput{Reason: "customer"}}},
			sweeps:  []time.Time{h(72)},
			want:    []string{}},
		{name: "resumed, the paused time is added", policy: "imaging-8x5", severity: 1,
			actions: []action{{h(2), "pause", maintenance.ActionInput{Reason: "customer"}}, {h(4), "resume", maintenance.ActionInput{}}},
			sweeps:  []time.Time{h(9.5), h(11.01)},
			want:    []string{"response breach 0 Tue 02:00", "response warning 0 Mon 22:00"}},
		{name: "no target, no marks", policy: "imaging-8x5", severity: 4,
			sweeps: []time.Time{h(500)}, want: []string{}},
		// desk-standard P1: response 1 business hour; resolution levels
		// 30m/30m/1h: level 2 at 15:30, level 3 at 16:00, breach at 17:00.
		{name: "desk-standard escalations and breaches", policy: "desk-standard", severity: 1,
			sweeps: []time.Time{h(0.75), h(2.5)},
			want: []string{"resolution breach 0 Mon 17:00", "resolution escalation 2 Mon 15:30",
				"resolution escalation 3 Mon 16:00", "response breach 0 Mon 16:00"}},
		{name: "desk-standard solved at level 2 stops both clocks", policy: "desk-standard", severity: 1,
			actions:  []action{{h(0.75), "solve", maintenance.ActionInput{Text: "reiniciado"}}},
			sweeps:   []time.Time{h(48)},
			want:     []string{"resolution escalation 2 Mon 15:30"},
			outcomes: []string{"resolution met 1h15m0s", "response met 15m0s"}},
		{name: "desk-standard reopened: the resolution clock runs again", policy: "desk-standard", severity: 1,
			actions:  []action{{h(0.75), "solve", maintenance.ActionInput{Text: "reiniciado"}}, {h(0.9), "reopen", maintenance.ActionInput{Text: "sigue"}}},
			sweeps:   []time.Time{h(2.5)},
			want:     []string{"resolution breach 0 Mon 17:00", "resolution escalation 2 Mon 15:30", "resolution escalation 3 Mon 16:00"},
			outcomes: []string{"response met 15m0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "http://noc.example/hook")
			f.usePolicy(t, tc.policy)
			reg := prometheus.NewRegistry()
			w := NewSLAWatcher(f.store, maintenance.NewMetrics(reg, f.db), quiet)
			tk := f.open(t, "acme-pacs", tc.severity, monday15)
			// Actions and sweeps happen in time order (an action first when
			// both fall on the same instant).
			total := 0
			actions := tc.actions
			for _, at := range tc.sweeps {
				for len(actions) > 0 && !actions[0].at.After(at) {
					f.act(t, tk, actions[0].name, actions[0].in, actions[0].at)
					actions = actions[1:]
				}
				n, err := w.RunDue(context.Background(), at)
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			for _, a := range actions {
				f.act(t, tk, a.name, a.in, a.at)
			}
			marks, err := f.store.Marks(context.Background(), tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := markStrings(marks); !slices.Equal(got, tc.want) {
				t.Fatalf("marks %q, want %q", got, tc.want)
			}
			if total != len(tc.want)+len(tc.outcomes) {
				t.Errorf("sweeps reported %d marks and outcomes, want %d", total, len(tc.want)+len(tc.outcomes))
			}
			if n := f.count(t, `SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND kind IN ('sla_warning', 'sla_escalation', 'sla_breach')`, tk.ID); n != len(tc.want) {
				t.Errorf("%d timeline entries, want %d", n, len(tc.want))
			}
			var got []string
			if err := f.db.Select(&got, `SELECT clock || ' ' || outcome || ' ' || (margin_seconds * interval '1 second')::text
				FROM sla_outcomes WHERE ticket_id = $1 ORDER BY 1`, tk.ID); err != nil {
				t.Fatal(err)
			}
			if want := formatOutcomes(tc.outcomes); !slices.Equal(got, want) {
				t.Errorf("outcomes %q, want %q", got, want)
			}
			if n := f.count(t, `SELECT count(*) FROM ticket_events WHERE ticket_id = $1 AND kind IN ('sla_met', 'sla_breached')`, tk.ID); n != len(tc.outcomes) {
				t.Errorf("%d outcome timeline entries, want %d", n, len(tc.outcomes))
			}
			if got := ticketstest.SumMetric(t, reg, "vigia_sla_outcomes_total", nil); got != float64(len(tc.outcomes)) {
				t.Errorf("vigia_sla_outcomes_total %v, want %d", got, len(tc.outcomes))
			}
			if n := f.count(t, `SELECT count(*) FROM outbox WHERE ticket_id = $1 AND event_key LIKE '%:sla:%' AND channel = 'webhook'`, tk.ID); n != len(tc.want) {
				t.Errorf("%d NOC notifications, want %d", n, len(tc.want))
			}
			if n := f.count(t, `SELECT count(*) FROM outbox WHERE event_key LIKE '%:sla:%' AND channel = 'email'`); n != 0 {
				t.Errorf("%d SLA e-mails to the customer, want none", n)
			}
			breaches := 0
			for _, m := range tc.want {
				if strings.Contains(m, " breach ") {
					breaches++
				}
			}
			if got := ticketstest.SumMetric(t, reg, "vigia_sla_breaches_total", nil); got != float64(breaches) {
				t.Errorf("vigia_sla_breaches_total %v, want %d", got, breaches)
			}
		})
	}
}

// formatOutcomes writes "response met 3h0m0s" the way PostgreSQL prints
// the margin as an interval ("03:00:00", "-01:00:00"), sorted.
func formatOutcomes(in []string) []string {
	out := []string{}
	for _, o := range in {
		f := strings.Fields(o)
		d, err := time.ParseDuration(f[2])
		if err != nil {
			panic(err)
		}
		sign := ""
		if d < 0 {
			sign, d = "-", -d
		}
		out = append(out, fmt.Sprintf("%s %s %s%02d:%02d:%02d", f[0], f[1], sign, int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60))
	}
	sort.Strings(out)
	return out
}

// TestSLAWatcherConcurrent: watchers sweeping together record each mark,
// its timeline entry, its notification and its count once.
func TestSLAWatcherConcurrent(t *testing.T) {
	f := newFixture(t, "http://noc.example/hook")
	f.usePolicy(t, "desk-standard")
	var tickets []maintenance.Ticket
	for _, dev := range []string{"acme-pacs", "acme-ct", "acme-north-us", "acme-north-mr"} {
		tickets = append(tickets, f.open(t, dev, 1, monday15))
	}
	reg := prometheus.NewRegistry()
	m := maintenance.NewMetrics(reg, f.db)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 6 {
		wg.Go(func() {
			w := NewSLAWatcher(f.store, m, quiet)
			for _, at := range []time.Time{monday15.Add(40 * time.Minute), monday15.Add(3 * time.Hour)} {
				n, err := w.RunDue(context.Background(), at)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Per ticket: response breach, resolution levels 2 and 3, resolution breach.
	want := 4 * len(tickets)
	for q, n := range map[string]int{
		`SELECT count(*) FROM sla_marks`:                                                want,
		`SELECT count(*) FROM ticket_events WHERE kind LIKE 'sla_%'`:                    want,
		`SELECT count(*) FROM outbox WHERE event_key LIKE '%:sla:%'`:                    want,
		`SELECT count(DISTINCT (ticket_id, clock, kind, level)) FROM sla_marks`:         want,
		`SELECT count(*) FROM sla_marks WHERE kind = 'breach' AND customer_id = 'acme'`: 2 * len(tickets),
	} {
		if got := f.count(t, q); got != n {
			t.Errorf("%s: %d, want %d", q, got, n)
		}
	}
	if total != want {
		t.Errorf("watchers reported %d marks, want %d", total, want)
	}
	for _, clock := range []string{"response", "resolution"} {
		labels := map[string]string{"customer": "acme", "policy": "desk-standard", "clock": clock}
		if got := ticketstest.SumMetric(t, reg, "vigia_sla_breaches_total", labels); got != float64(len(tickets)) {
			t.Errorf("breaches %v: %v, want %d", labels, got, len(tickets))
		}
	}
}
