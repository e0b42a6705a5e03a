package sweeps

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance"
)

func TestAddMonths(t *testing.T) {
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2026-01-15", 3, "2026-04-15"},
		{"2026-01-31", 1, "2026-02-28"},
		{"2028-01-31", 1, "2028-02-29"},
		{"2026-11-30", 3, "2027-02-28"},
		{"2026-08-31", 6, "2027-02-28"},
		{"2026-05-31", 12, "2027-05-31"},
		{"2026-12-01", 0, "2026-12-01"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s+%d", tc.from, tc.n), func(t *testing.T) {
			d, _ := time.Parse(dateLayout, tc.from)
			if got := addMonths(d, tc.n).Format(dateLayout); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

type visit struct {
	Seq    int
	DueOn  string
	Ticket int64
	Start  time.Time
	End    time.Time
}

func (f *fixture) visits(t *testing.T) []visit {
	t.Helper()
	rows, err := f.db.Query(`SELECT v.seq, v.due_on, v.ticket_id, w.starts_at, w.ends_at FROM preventive_visits v
		JOIN maintenance_windows w ON w.id = v.window_id ORDER BY v.plan_id, v.seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []visit
	for rows.Next() {
		var v visit
		var due time.Time
		if err := rows.Scan(&v.Seq, &due, &v.Ticket, &v.Start, &v.End); err != nil {
			t.Fatal(err)
		}
		v.DueOn = due.Format(dateLayout)
		out = append(out, v)
	}
	return out
}

func TestPreventiveSweep(t *testing.T) {
	mexico, _ := time.LoadLocation("America/Mexico_City")
	at := func(day string, hour int, loc *time.Location) time.Time {
		d, _ := time.Parse(dateLayout, day)
		return time.Date(d.Year(), d.Month(), d.Day(), hour, 0, 0, 0, loc)
	}
	type want struct {
		seq   int
		dueOn string
	}
	tests := []struct {
		name   string
		device string
		loc    *time.Location
		sweeps []time.Time
		want   []want
		next   string
	}{
		// Quarterly CT from 15 June 2026, 14 days ahead: opens on 1 June in
		// Bogotá, although it is already 1 June in UTC at 19:00 on 31 May.
		{name: "not before the lead time in the customer's calendar", device: "acme-ct", loc: bogota,
			sweeps: []time.Time{at("2026-05-31", 23, bogota)}, want: nil, next: "2026-06-15"},
		{name: "opened once at the lead time, repeats are no-ops", device: "acme-ct", loc: bogota,
			sweeps: []time.Time{at("2026-06-01", 0, bogota), at("2026-06-01", 8, bogota), at("2026-06-14", 8, bogota)},
			want:   []want{{0, "2026-06-15"}}, next: "2026-09-15"},
		{name: "each quarter its own work order", device: "acme-ct", loc: bogota,
			sweeps: []time.Time{at("2026-06-02", 9, bogota), at("2026-08-31", 9, bogota), at("2026-09-01", 9, bogota)},
			want:   []want{{0, "2026-06-15"}, {1, "2026-09-15"}}, next: "2026-12-15"},
		{name: "occurrences missed while nothing swept collapse into the latest", device: "acme-ct", loc: bogota,
			sweeps: []time.Time{at("2026-06-02", 9, bogota), at("2027-06-10", 9, bogota)},
			want:   []want{{0, "2026-06-15"}, {4, "2027-06-15"}}, next: "2027-09-15"},
		{name: "late but still ahead of the next: the overdue visit is opened", device: "acme-ct", loc: bogota,
			sweeps: []time.Time{at("2026-07-20", 9, bogota)},
			want:   []want{{0, "2026-06-15"}}, next: "2026-09-15"},
		{name: "window in the customer's zone", device: "beta-ris", loc: mexico,
			sweeps: []time.Time{at("2026-06-01", 0, mexico)},
			want:   []want{{0, "2026-06-15"}}, next: "2026-09-15"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			lead := 14
			p, err := f.plans.CreatePlan(ctx, noc, PlanInput{DeviceID: tc.device, Title: "Mantenimiento trimestral", Checklist: "- limpieza\n- calibración",
				EveryMonths: 3, LeadDays: &lead, FirstDue: "2026-06-15"}, monday15)
			if err != nil {
				t.Fatal(err)
			}
			w := NewPreventiveSweeper(f.plans, quiet)
			opened := 0
			for _, now := range tc.sweeps {
				n, err := w.RunDue(ctx, now)
				if err != nil {
					t.Fatal(err)
				}
				opened += n
			}
			got := f.visits(t)
			if len(got) != len(tc.want) || opened != len(tc.want) {
				t.Fatalf("visits %+v (sweeps opened %d), want %v", got, opened, tc.want)
			}
			for i, v := range got {
				if v.Seq != tc.want[i].seq || v.DueOn != tc.want[i].dueOn {
					t.Errorf("visit %d: %d %s, want %v", i, v.Seq, v.DueOn, tc.want[i])
				}
				day, _ := time.Parse(dateLayout, v.DueOn)
				start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, tc.loc)
				if !v.Start.Equal(start) || !v.End.Equal(start.AddDate(0, 0, 1)) {
					t.Errorf("window %s – %s, want the whole of %s in %s", v.Start, v.End, v.DueOn, tc.loc)
				}
				d := f.ticket(t, fmt.Sprint(v.Ticket))
				if d.Source != maintenance.SourcePreventive || d.Severity != maintenance.PreventiveSeverity || !slices.Equal(d.DeviceIDs, []string{tc.device}) ||
					d.Description == "" || !slices.Contains(kinds(d.Timeline), "preventive_visit") {
					t.Errorf("work order %+v", d.Ticket)
				}
			}
			ps, err := f.plans.Plans(ctx, maintenance.Scope{}, tc.device)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 || ps[0].ID != p.ID || ps[0].NextDue != tc.next {
				t.Errorf("plans %+v, want next visit %s", ps, tc.next)
			}
			if n := f.count(t, `SELECT count(*) FROM maintenance_windows WHERE scope = 'device' AND scope_id = $1`, tc.device); n != len(tc.want) {
				t.Errorf("%d maintenance windows, want %d", n, len(tc.want))
			}
		})
	}
}

// TestPreventiveSweepConcurrent: sweepers racing over the same plans open
// each occurrence once.
func TestPreventiveSweepConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, dev := range []string{"acme-ct", "acme-north-mr", "acme-north-us", "gamma-xr"} {
		if _, err := f.plans.CreatePlan(ctx, noc, PlanInput{DeviceID: dev, Title: "semestral", EveryMonths: 6, FirstDue: "2026-06-10"}, monday15); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := NewPreventiveSweeper(f.plans, quiet).RunDue(ctx, monday15); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for q, want := range map[string]int{
		`SELECT count(*) FROM preventive_visits`:                   4,
		`SELECT count(*) FROM tickets WHERE source = 'preventive'`: 4,
		`SELECT count(*) FROM maintenance_windows`:                 4,
		`SELECT count(*) FROM preventive_plans WHERE next_seq = 1`: 4,
	} {
		if got := f.count(t, q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
}

func TestPreventiveAPI(t *testing.T) {
	a := newAPIFixture(t)
	tests := []struct {
		who, method, path, body string
		status                  int
		plans                   int // for listings
	}{
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "Trimestral CT", "every_months": 3, "first_due_on": "2026-07-01"}`, 201, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "beta-ris", "title": "Anual", "every_months": 12, "lead_days": 30, "first_due_on": "2026-12-01"}`, 201, 0},
		{"eng", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every_months": 3, "first_due_on": "2026-07-01"}`, 403, 0},
		{"acme", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every_months": 3, "first_due_on": "2026-07-01"}`, 403, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every_months": 0, "first_due_on": "2026-07-01"}`, 400, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every_months": 3, "first_due_on": "1 July"}`, 400, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "nope", "title": "x", "every_months": 3, "first_due_on": "2026-07-01"}`, 400, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every_months": 3, "lead_days": 400, "first_due_on": "2026-07-01"}`, 400, 0},
		{"noc", "POST", "/api/v1/preventive-plans", `{"device": "acme-ct", "title": "x", "every": 3}`, 400, 0},
		{"noc", "GET", "/api/v1/preventive-plans", "", 200, 2},
		{"noc", "GET", "/api/v1/preventive-plans?device=beta-ris", "", 200, 1},
		{"acme", "GET", "/api/v1/preventive-plans", "", 200, 1},
		{"beta", "GET", "/api/v1/preventive-plans?device=acme-ct", "", 200, 0},
		{"gamma", "GET", "/api/v1/preventive-plans", "", 200, 0},
		{"acme", "GET", "/api/v1/preventive-plans?customer=beta", "", 400, 0},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d %s %s %s", i, tc.who, tc.method, tc.path), func(t *testing.T) {
			code, body := a.Do(t, tc.who, tc.method, tc.path, tc.body)
			if code != tc.status {
				t.Fatalf("%d %v, want %d", code, body, tc.status)
			}
			if tc.method == "GET" && code == http.StatusOK {
				if ps := body["preventive_plans"].([]any); len(ps) != tc.plans {
					t.Fatalf("%d plans, want %d: %v", len(ps), tc.plans, ps)
				}
			}
		})
	}
	if n := a.count(t, `SELECT count(*) FROM preventive_plans WHERE customer_id = 'beta' AND lead_days = 30 AND next_due_on = '2026-12-01'`); n != 1 {
		t.Errorf("beta's plan not stored as sent (%d)", n)
	}
}
