package intake

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sweeps"
)

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
			n, err := sweeps.NewPreClosureSweeper(f.store, quiet).RunDue(context.Background(), monday15.Add(100*time.Hour))
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
		{"firing", "noc", firing, 200, "[opened ignored]", maintenance.StatusNew},
		{"repeat", "noc", firing, 200, "[repeat ignored]", maintenance.StatusNew},
		{"resolved", "noc", resolved, 200, "[restored]", maintenance.StatusSolved},
		{"resolved again", "noc", resolved, 200, "[repeat]", maintenance.StatusSolved},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, body := a.Do(t, st.who, "POST", "/api/v1/alertmanager", st.body)
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
			if d.Status != st.status || d.Source != maintenance.SourceAlertmanager || d.Severity != 1 {
				t.Fatalf("status %s source %s sev %d", d.Status, d.Source, d.Severity)
			}
		})
	}
	// A probe outage of the same device while the alert's ticket is open
	// joins it instead of opening a second one.
	a.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, monday15.Add(3*time.Hour))
	a.consume(t)
	if n := a.count(t, `SELECT count(*) FROM tickets`); n != 1 || a.ticket(t, "1").Status != maintenance.StatusReopened {
		t.Fatalf("%d tickets, status %s", n, a.ticket(t, "1").Status)
	}
}
