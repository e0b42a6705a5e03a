package intake

import (
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance"
)

// deviceAlert writes an event without an outage with its detail, as the
// probes' trap listener and storage forecast do.
func (f *fixture) deviceAlert(t *testing.T, kind, customer, site, device, detail string, at time.Time) {
	t.Helper()
	f.db.MustExec(`INSERT INTO device_events (kind, customer_id, site_id, device_id, detail, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		kind, customer, site, device, detail, at)
}

// A UPS's low-battery trap opens one ticket of the rule's severity in the
// customer's language, a repeat only adds to its timeline, and the clearing
// trap solves it; its device's outage ticket stays apart.
func TestTrapAlarmTicket(t *testing.T) {
	f := newFixture(t)
	alarm := `{"condition":"ups_low_battery","severity":2,"text_en":"UPS battery low","text_es":"SAI con batería baja","trap_oid":".1.3.6.1.2.1.33.2.3"}`
	steps := []struct {
		name           string
		kind, customer string
		site, device   string
		detail         string
		tickets        int
		severity       int
		status, title  string
		key            string
	}{
		{"alarm (es)", "trap_alarm", "acme", "acme-main", "acme-pacs", alarm, 1, 2, maintenance.StatusNew, "SAI con batería baja: ", "trap:acme-pacs:ups_low_battery"},
		{"the same alarm again", "trap_alarm", "acme", "acme-main", "acme-pacs", alarm, 1, 2, maintenance.StatusNew, "SAI con batería baja: ", "trap:acme-pacs:ups_low_battery"},
		{"alarm (en)", "trap_alarm", "beta", "beta-main", "beta-ris", alarm, 2, 2, maintenance.StatusNew, "UPS battery low: ", "trap:beta-ris:ups_low_battery"},
		{"cleared", "trap_cleared", "acme", "acme-main", "acme-pacs", alarm, 2, 2, maintenance.StatusSolved, "SAI con batería baja: ", "trap:acme-pacs:ups_low_battery"},
	}
	at := monday15
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			at = at.Add(time.Minute)
			f.deviceAlert(t, s.kind, s.customer, s.site, s.device, s.detail, at)
			if n := f.consume(t); n != 1 {
				t.Fatalf("consumed %d events", n)
			}
			if n := f.count(t, `SELECT count(*) FROM tickets WHERE auto_key LIKE 'trap:%'`); n != s.tickets {
				t.Errorf("%d trap tickets, want %d", n, s.tickets)
			}
			var tk struct {
				Severity int    `db:"severity"`
				Status   string `db:"status"`
				Title    string `db:"title"`
			}
			if err := f.db.Get(&tk, `SELECT severity, status, title FROM tickets WHERE auto_key = $1`, s.key); err != nil {
				t.Fatal(err)
			}
			if tk.Severity != s.severity || tk.Status != s.status || len(tk.Title) < len(s.title) || tk.Title[:len(s.title)] != s.title {
				t.Errorf("ticket %+v, want severity %d, %s, title %q…", tk, s.severity, s.status, s.title)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
		WHERE t.auto_key = 'trap:acme-pacs:ups_low_battery' AND e.kind = 'trap_repeated'`); n != 1 {
		t.Errorf("%d repeats on the timeline, want 1", n)
	}
	// The device's outage is another subject: its own ticket.
	f.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, at.Add(time.Minute))
	f.consume(t)
	if n := f.count(t, `SELECT count(*) FROM tickets WHERE device_ids @> '{acme-pacs}' AND closed_at IS NULL`); n != 2 {
		t.Errorf("%d open tickets on acme-pacs, want the alarm's and the outage's", n)
	}
}
