package maintenance

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/auth"
)

// seriesOf returns every series of the family name as "k=v,k=v" → value.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(ls, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestOutboxMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := monday15
	noc := auth.Actor{Name: "ana", Role: "noc"}

	// Pauses: acme has one ticket waiting on the customer and one on a
	// pause with two reasons; beta's pause ended; gamma's paused ticket
	// is closed. Only running pauses of open tickets count.
	open := func(customer string) int64 {
		tk, err := f.store.Create(ctx, noc, CreateInput{CustomerID: customer, Severity: 3, Title: "Prueba"}, now.Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	a1, a2, b1, g1 := open("acme"), open("acme"), open("beta"), open("gamma")
	if _, err := f.store.Act(ctx, noc, strconv.FormatInt(a1, 10), "pause", ActionInput{Reason: "customer"}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.db.MustExec(`INSERT INTO ticket_pauses (ticket_id, reason, reasons, started_at, started_by)
		VALUES ($1, 'spare_parts', '{spare_parts,manufacturer}', $2, 'dispatch')`, a2, now.Add(-time.Hour))
	f.db.MustExec(`INSERT INTO ticket_pauses (ticket_id, reason, started_at, ended_at, started_by)
		VALUES ($1, 'customer', $2, $3, 'ana')`, b1, now.Add(-time.Hour), now.Add(-time.Minute))
	f.db.MustExec(`INSERT INTO ticket_pauses (ticket_id, reason, started_at, started_by) VALUES ($1, 'third_party', $2, 'ana')`, g1, now.Add(-time.Hour))
	f.db.MustExec(`UPDATE tickets SET status = 'closed', closed_at = $2, close_reason = 'cancelled' WHERE id = $1`, g1, now)

	// Outbox: the tickets' own notifications sent; two e-mails waiting
	// (10 and 3 minutes), one sent long ago, no webhook.
	f.db.MustExec(`UPDATE outbox SET sent_at = created_at`)
	for i, r := range []struct {
		created time.Time
		sent    any
	}{{now.Add(-10 * time.Minute), nil}, {now.Add(-3 * time.Minute), nil}, {now.Add(-time.Hour), now.Add(-59 * time.Minute)}} {
		f.db.MustExec(`INSERT INTO outbox (event_key, channel, recipient, created_at, next_attempt_at, sent_at)
			VALUES ($1, 'email', 'noc@acme.example', $2, $2, $3)`, "test:"+string(rune('a'+i)), r.created, r.sent)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(newOutboxCollector(f.db, func() time.Time { return now }))

	wantPaused := map[string]float64{}
	for _, c := range []string{"acme", "beta", "gamma"} {
		for _, r := range PauseReasons {
			wantPaused["customer="+c+",reason="+r] = 0
		}
	}
	wantPaused["customer=acme,reason=customer"] = 1
	wantPaused["customer=acme,reason=spare_parts"] = 1
	wantPaused["customer=acme,reason=manufacturer"] = 1

	for _, tc := range []struct {
		name string
		want map[string]float64
	}{
		{"vigia_outbox_pending", map[string]float64{"channel=email": 2, "channel=webhook": 0}},
		{"vigia_outbox_oldest_pending_age_seconds", map[string]float64{"channel=email": 600, "channel=webhook": 0}},
		{"vigia_sla_paused_tickets", wantPaused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seriesOf(t, reg, tc.name); !maps.Equal(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}

	// The exported registration exposes the same families.
	t.Run("RegisterOutboxMetrics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		RegisterOutboxMetrics(reg, f.db)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fam := range fams {
			names = append(names, fam.GetName())
		}
		want := []string{"vigia_outbox_oldest_pending_age_seconds", "vigia_outbox_pending", "vigia_sla_paused_tickets"}
		if !slices.Equal(names, want) {
			t.Errorf("families %v, want %v", names, want)
		}
		// Real time is after monday15 plus however long ago this ran.
		if age := seriesOf(t, reg, "vigia_outbox_oldest_pending_age_seconds")["channel=email"]; age < 600 {
			t.Errorf("email age with the real clock = %v, want ≥ 600", age)
		}
	})
}

// A database that does not answer reports nothing, and says why, instead
// of zeros that would look like an empty outbox.
func TestOutboxMetricsDatabaseDown(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	RegisterOutboxMetrics(reg, f.db)
	f.db.Close()
	fams, err := reg.Gather()
	if err == nil {
		t.Error("Gather with the database closed: no error")
	}
	for _, fam := range fams {
		t.Errorf("family %s reported with the database closed: %v", fam.GetName(), fam.GetMetric())
	}
}
