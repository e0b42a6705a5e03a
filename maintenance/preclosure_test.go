package maintenance

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestPlanClosure(t *testing.T) {
	lima, _ := time.LoadLocation("America/Lima")
	mx, _ := time.LoadLocation("America/Mexico_City")
	type step struct {
		kind string
		due  time.Time
	}
	fri := time.Date(2026, 6, 5, 17, 0, 0, 0, bogota)
	tests := []struct {
		policy string
		solved time.Time
		want   []step
	}{
		{"imaging-8x5", fri, []step{
			{"call", fri}, {"call", fri.Add(3 * time.Hour)}, {"call", fri.Add(6 * time.Hour)},
			{"email", fri.Add(9 * time.Hour)}, {"email", fri.Add(21 * time.Hour)}, {"close", fri.Add(33 * time.Hour)}}},
		// Seed 001: business days of the Lima calendar; Monday 29 June 2026
		// is a Peruvian holiday (San Pedro y San Pablo).
		{"it-support-pe", time.Date(2026, 6, 26, 16, 0, 0, 0, lima), []step{
			{"contact", time.Date(2026, 6, 26, 16, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 30, 16, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 7, 1, 16, 0, 0, 0, lima)},
			{"end", time.Date(2026, 7, 2, 16, 0, 0, 0, lima)}}},
		// Solved on a Saturday: the first attempt waits for Monday's opening.
		{"it-support-pe", time.Date(2026, 6, 6, 11, 0, 0, 0, lima), []step{
			{"contact", time.Date(2026, 6, 8, 8, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 9, 8, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 10, 8, 0, 0, 0, lima)},
			{"end", time.Date(2026, 6, 11, 8, 0, 0, 0, lima)}}},
		{"hosting-mx", time.Date(2026, 6, 5, 12, 0, 0, 0, mx), []step{
			{"contact", time.Date(2026, 6, 5, 12, 0, 0, 0, mx)}, {"close", time.Date(2026, 6, 7, 12, 0, 0, 0, mx)}}},
		{"helpdesk-co", fri, []step{{"contact", fri}}},
	}
	for _, tc := range tests {
		t.Run(tc.policy+" "+tc.solved.Format(time.RFC3339), func(t *testing.T) {
			got := planClosure(policy(t, tc.policy), tc.solved)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Kind != tc.want[i].kind || !got[i].Due.Equal(tc.want[i].due) {
					t.Fatalf("step %d: %s %s, want %s %s", i, got[i].Kind, got[i].Due, tc.want[i].kind, tc.want[i].due)
				}
			}
		})
	}
}

// TestSweeperConcurrent: several sweepers over the same due tasks perform
// each once.
func TestSweeperConcurrent(t *testing.T) {
	f := newFixture(t)
	for _, dev := range []string{"acme-pacs", "acme-ct", "acme-north-us"} {
		site := "acme-main"
		if dev == "acme-north-us" {
			site = "acme-north"
		}
		o := f.outage(t, "device", "acme", site, dev, nil, monday15)
		f.end(t, o, monday15.Add(time.Hour))
	}
	f.consume(t)
	if n := f.count(t, `SELECT count(*) FROM closure_tasks`); n != 18 {
		t.Fatalf("%d tasks, want 3×6", n)
	}
	done := make(chan int, 4)
	for range 4 {
		go func() {
			n, err := NewSweeper(f.store, quiet).RunDue(context.Background(), monday15.Add(100*time.Hour))
			if err != nil {
				t.Error(err)
			}
			done <- n
		}()
	}
	total := 0
	for range 4 {
		total += <-done
	}
	// The three first calls were done with the solved notices.
	if total != 15 || f.count(t, `SELECT count(*) FROM tickets WHERE status = 'closed'`) != 3 ||
		f.count(t, `SELECT count(*) FROM ticket_events WHERE kind = 'contact_attempt'`) != 15 ||
		f.count(t, `SELECT count(*) FROM ticket_events WHERE kind = 'closed'`) != 3 {
		t.Fatalf("performed %d tasks", total)
	}
}

func TestAlertmanager(t *testing.T) {
	a := newAPIFixture(t)
	firing := `{"version": "4", "groupKey": "{}:{alertname=\"PACSDown\"}", "status": "firing", "receiver": "vigia",
		"groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
		"alerts": [
		 {"status": "firing", "labels": {"alertname": "PACSDown", "device": "acme-pacs"}, "annotations": {"summary": "PACS down"},
		  "startsAt": "2026-06-01T20:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom", "fingerprint": "aa11"},
		 {"status": "firing", "labels": {"alertname": "Unknown", "device": "nope"}, "annotations": {},
		  "startsAt": "2026-06-01T20:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "bb22"}]}`
	resolved := `{"version": "4", "groupKey": "g", "status": "resolved", "receiver": "vigia", "groupLabels": {}, "commonLabels": {},
		"commonAnnotations": {}, "externalURL": "", "alerts": [
		 {"status": "resolved", "labels": {"alertname": "PACSDown", "device": "acme-pacs"}, "annotations": {},
		  "startsAt": "2026-06-01T20:00:00Z", "endsAt": "2026-06-01T21:00:00Z", "generatorURL": "", "fingerprint": "aa11"}]}`
	steps := []struct {
		name, who, body string
		code            int
		outcomes        string
		status          string
	}{
		{"customer token", "acme", firing, http.StatusForbidden, "", ""},
		{"malformed", "noc", `{"version": "4", "alerts": [`, http.StatusBadRequest, "", ""},
		{"wrong version", "noc", `{"version": "3", "alerts": []}`, http.StatusBadRequest, "", ""},
		{"firing", "noc", firing, 200, "[opened ignored]", StatusNew},
		{"repeat", "noc", firing, 200, "[repeat ignored]", StatusNew},
		{"resolved", "noc", resolved, 200, "[restored]", StatusSolved},
		{"resolved again", "noc", resolved, 200, "[repeat]", StatusSolved},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, body := a.do(t, st.who, "POST", "/api/v1/alertmanager", st.body)
			if code != st.code {
				t.Fatalf("%d %v", code, body)
			}
			if st.outcomes == "" {
				if n := a.count(t, `SELECT count(*) FROM tickets`); n != 0 {
					t.Fatalf("%d tickets after a refused webhook", n)
				}
				return
			}
			var outcomes []string
			for _, r := range body["alerts"].([]any) {
				outcomes = append(outcomes, r.(map[string]any)["outcome"].(string))
			}
			if fmt.Sprint(outcomes) != st.outcomes {
				t.Fatalf("outcomes %v, want %s", outcomes, st.outcomes)
			}
			if n := a.count(t, `SELECT count(*) FROM tickets`); n != 1 {
				t.Fatalf("%d tickets", n)
			}
			d := a.ticket(t, "1")
			if d.Status != st.status || d.Source != SourceAlertmanager || d.Severity != 1 {
				t.Fatalf("status %s source %s sev %d", d.Status, d.Source, d.Severity)
			}
		})
	}
	// A probe outage of the same device while the alert's ticket is open
	// joins it instead of opening a second one.
	a.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, monday15.Add(3*time.Hour))
	a.consume(t)
	if n := a.count(t, `SELECT count(*) FROM tickets`); n != 1 || a.ticket(t, "1").Status != StatusReopened {
		t.Fatalf("%d tickets, status %s", n, a.ticket(t, "1").Status)
	}
}
