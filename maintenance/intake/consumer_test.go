package intake

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/sweeps"
)

// TestCorePACSOutageLifecycle drives one core PACS outage end to end: one
// Sev 1 ticket and one e-mail however often the consumer runs, solved on
// recovery, reopened by a relapse, closed by the seed 000 protocol on a
// driven clock, and a new linked ticket for the next outage.
func TestCorePACSOutageLifecycle(t *testing.T) {
	f := newFixture(t)
	smtpd := smtptest.Start(t, smtptest.Options{})
	sender := notify.NewSender(f.db, &notify.SMTP{Addr: smtpd.Addr, From: "noc@vigia.example", Timeout: 10 * time.Second}, nil, quiet)
	ctx := context.Background()

	o1 := f.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, monday15)
	if n := f.consume(t); n != 1 {
		t.Fatalf("first run handled %d events, want 1", n)
	}
	if n := f.consume(t); n != 0 {
		t.Fatalf("second run handled %d events, want 0", n)
	}
	// Two consumers at once over a re-delivered copy of the event (as if
	// handled_at had been lost): still one ticket.
	f.db.MustExec(`UPDATE device_events SET handled_at = NULL`)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := NewOutageConsumer(f.store, f.inv, time.Now, quiet).RunOnce(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.count(t, `SELECT count(*) FROM tickets`); n != 1 {
		t.Fatalf("%d tickets, want 1", n)
	}

	d := f.ticket(t, "1")
	want, err := policy(t, "imaging-8x5").Due(sla.Input{Opened: monday15, Severity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.Severity != 1 || d.Billable || d.BillableReason != "contract" || d.SLAPolicy != "imaging-8x5" || d.Source != maintenance.SourceProbe || d.Status != maintenance.StatusNew {
		t.Fatalf("ticket = sev %d billable %v (%s) policy %s source %s status %s", d.Severity, d.Billable, d.BillableReason, d.SLAPolicy, d.Source, d.Status)
	}
	if d.ResponseDueAt == nil || !d.ResponseDueAt.Equal(want.Response.Due) || !d.Schedule.Response.Due.Equal(want.Response.Due) {
		t.Fatalf("response due %v (schedule %v), want %v", d.ResponseDueAt, d.Schedule.Response.Due, want.Response.Due)
	}
	// 9 wall-clock hours from Monday 15:00 Bogotá.
	if got := want.Response.Due.In(bogota).Format("2006-01-02 15:04"); got != "2026-06-02 00:00" {
		t.Fatalf("policy due %s", got)
	}
	if d.Number != "VG-2026-000001" || !slices.Equal(d.DeviceIDs, []string{"acme-pacs"}) || !slices.Equal(d.OutageIDs, []int64{o1}) {
		t.Fatalf("number %s devices %v outages %v", d.Number, d.DeviceIDs, d.OutageIDs)
	}

	for range 2 {
		if _, err := sender.SendDue(ctx, monday15.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := smtpd.Wait(t, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	if msgs, _ = smtpd.Messages(); len(msgs) != 1 {
		t.Fatalf("%d e-mails, want 1", len(msgs))
	}
	wantText := "Detectamos una caída de PACS en la Sede principal, ticket VG-2026-000001, Severidad 1, respuesta antes de 2026-06-02 00:00 (America/Bogota)."
	if !strings.Contains(msgs[0].Body, wantText) || !slices.Equal(msgs[0].To, []string{"noc@acme.example"}) ||
		!strings.Contains(msgs[0].Subject, "Severidad 1") {
		t.Fatalf("e-mail to %v %q:\n%s\nwant %q", msgs[0].To, msgs[0].Subject, msgs[0].Body, wantText)
	}

	// Back up: solved, awaiting confirmation; the protocol is scheduled.
	up := monday15.Add(2 * time.Hour)
	f.end(t, o1, up)
	f.consume(t)
	d = f.ticket(t, "1")
	if d.Status != maintenance.StatusSolved || d.SolvedAt == nil || !d.SolvedAt.Equal(up) || d.ClosedAt != nil {
		t.Fatalf("after device_up: status %s solved %v closed %v", d.Status, d.SolvedAt, d.ClosedAt)
	}
	if !slices.Contains(kinds(d.Timeline), "service_restored") {
		t.Fatalf("timeline %v lacks service_restored", kinds(d.Timeline))
	}
	// In the customer's language (acme reads Spanish).
	for _, e := range d.Timeline {
		if e.Kind == "service_restored" && e.Text != "servicio restablecido" {
			t.Errorf("service_restored reads %q, want the Spanish words", e.Text)
		}
	}

	// Down again while awaiting confirmation: the same ticket, reopened.
	o2 := f.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, up.Add(30*time.Minute))
	f.consume(t)
	d = f.ticket(t, "1")
	if n := f.count(t, `SELECT count(*) FROM tickets`); n != 1 || d.Status != maintenance.StatusReopened || !slices.Equal(d.OutageIDs, []int64{o1, o2}) {
		t.Fatalf("relapse: %d tickets, status %s, outages %v", n, d.Status, d.OutageIDs)
	}
	if n := f.count(t, `SELECT count(*) FROM closure_tasks WHERE cancelled_at IS NULL AND done_at IS NULL`); n != 0 {
		t.Fatalf("%d pre-closure tasks still pending after the relapse", n)
	}
	solved := up.Add(time.Hour)
	f.end(t, o2, solved)
	f.consume(t)

	// Seed 000: calls at +0, +3, +6 h, e-mails at +9, +21 h, close at +33 h.
	d = f.ticket(t, "1")
	var dues []time.Duration
	var taskKinds []string
	for _, task := range d.ClosureTasks {
		if task.Round == 2 {
			dues = append(dues, task.DueAt.Sub(solved))
			taskKinds = append(taskKinds, task.Kind)
		}
	}
	h := time.Hour
	if !slices.Equal(dues, []time.Duration{0, 3 * h, 6 * h, 9 * h, 21 * h, 33 * h}) ||
		!slices.Equal(taskKinds, []string{"call", "call", "call", "email", "email", "close"}) {
		t.Fatalf("round 2 tasks %v %v", taskKinds, dues)
	}

	sweeper := sweeps.NewPreClosureSweeper(f.store, quiet)
	steps := []struct {
		at     time.Duration
		did    int
		status string
	}{
		{-time.Minute, 0, maintenance.StatusSolved},
		{time.Minute, 0, maintenance.StatusSolved}, // the first call was the solved notice
		{3*h + time.Minute, 1, maintenance.StatusSolved},
		{3*h + time.Minute, 0, maintenance.StatusSolved}, // idempotent
		{10 * h, 2, maintenance.StatusSolved},
		{33*h - time.Second, 1, maintenance.StatusSolved},
		{40 * h, 1, maintenance.StatusClosed},
		{50 * h, 0, maintenance.StatusClosed},
	}
	for _, st := range steps {
		n, err := sweeper.RunDue(ctx, solved.Add(st.at))
		if err != nil {
			t.Fatal(err)
		}
		d = f.ticket(t, "1")
		if n != st.did || d.Status != st.status {
			t.Fatalf("sweep at +%s: performed %d (want %d), status %s (want %s)", st.at, n, st.did, d.Status, st.status)
		}
	}
	if d.CloseReason != maintenance.CloseAcceptedNoAnswer || !d.ClosedAt.Equal(solved.Add(33*h)) {
		t.Fatalf("closed %v as %s", d.ClosedAt, d.CloseReason)
	}
	// Round 1's first call (its solved notice), then round 2's five.
	if n := f.count(t, `SELECT count(*) FROM ticket_events WHERE ticket_id = 1 AND kind = 'contact_attempt'`); n != 6 {
		t.Fatalf("%d contact attempts recorded, want 6", n)
	}
	// Seed 000: closed as accepted, no reopening by the customer.
	_, err = f.store.Act(ctx, auth.Actor{Name: "acme user", Role: "customer", CustomerID: "acme"}, "1", "reopen", maintenance.ActionInput{}, solved.Add(41*h))
	if err == nil || !strings.Contains(err.Error(), "does not allow reopening") {
		t.Fatalf("customer reopen after seed 000 closure: %v", err)
	}

	// Every notification went out once: opened, 2 solutions (each also the
	// first call), 4 more contacts, closed; no two alike.
	if _, err := sender.SendDue(ctx, solved.Add(60*h)); err != nil {
		t.Fatal(err)
	}
	msgs = smtpd.Wait(t, 8, 5*time.Second)
	if len(msgs) != 8 {
		t.Fatalf("%d e-mails, want 8", len(msgs))
	}
	bodies := map[string]bool{}
	for _, m := range msgs {
		if bodies[m.Body] {
			t.Errorf("the same e-mail twice: %q\n%s", m.Subject, m.Body)
		}
		bodies[m.Body] = true
	}

	// A new outage after closure opens a new ticket linked to the old one.
	f.outage(t, "device", "acme", "acme-main", "acme-pacs", nil, solved.Add(70*h))
	f.consume(t)
	d2 := f.ticket(t, "VG-2026-000002")
	if d2.PreviousTicketID == nil || *d2.PreviousTicketID != 1 || d2.Status != maintenance.StatusNew {
		t.Fatalf("new ticket previous=%v status %s", d2.PreviousTicketID, d2.Status)
	}
}

func TestOutageTickets(t *testing.T) {
	f := newFixture(t)
	f.outage(t, "device", "acme", "acme-main", "acme-ct", nil, monday15)
	f.outage(t, "device", "gamma", "gamma-main", "gamma-xr", nil, monday15)
	f.outage(t, "site", "acme", "acme-north", "acme-north-gw", []string{"acme-north-us", "acme-north-mr"}, monday15)
	f.outage(t, "site", "acme", "acme-main", "acme-gw", []string{"acme-pacs", "acme-ct"}, monday15)
	f.outage(t, "device", "beta", "beta-main", "beta-ris", nil, monday15)
	// Four consumers over five events: each event handled once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := NewOutageConsumer(f.store, f.inv, time.Now, quiet).RunOnce(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.count(t, `SELECT count(*) FROM device_events WHERE handled_at IS NULL`); n != 0 {
		t.Fatalf("%d events unhandled", n)
	}
	tests := []struct {
		key      string
		severity int
		billable bool
		reason   string
		policy   string
		devices  []string
	}{
		{"device:acme-ct", 2, true, "device_not_listed", "imaging-8x5", []string{"acme-ct"}},
		{"device:gamma-xr", 2, true, "no_contract", maintenance.DefaultPolicy, []string{"gamma-xr"}},
		{"site:acme-north", 2, false, "contract", "imaging-8x5", []string{"acme-north-gw", "acme-north-us", "acme-north-mr"}},
		{"site:acme-main", 1, false, "contract", "imaging-8x5", []string{"acme-gw", "acme-pacs", "acme-ct"}},
		{"device:beta-ris", 1, false, "contract", "hosting-mx", []string{"beta-ris"}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			var id int64
			if err := f.db.Get(&id, `SELECT id FROM tickets WHERE auto_key = $1`, tc.key); err != nil {
				t.Fatalf("one ticket for %s: %v", tc.key, err)
			}
			d := f.ticket(t, fmt.Sprint(id))
			if d.Severity != tc.severity || d.Billable != tc.billable || d.BillableReason != tc.reason || d.SLAPolicy != tc.policy ||
				!slices.Equal(d.DeviceIDs, tc.devices) {
				t.Fatalf("got sev %d billable %v (%s) policy %s devices %v", d.Severity, d.Billable, d.BillableReason, d.SLAPolicy, d.DeviceIDs)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM tickets`); n != len(tests) {
		t.Fatalf("%d tickets, want %d", n, len(tests))
	}
}

// A collector lost is one ticket for the NOC alone: the customer's scope
// does not see it, its e-mail address gets nothing (the NOC's webhook
// does), it is never billed; monitoring restored closes it as resolved.
func TestMonitoringLostTicketIsTheNOCs(t *testing.T) {
	f := newFixture(t, "https://noc.example/hook")
	ctx := context.Background()
	detail := `{"collector": "acme on site", "collector_id": 7, "sites": ["acme-main"]}`
	lost := func(kind string, at time.Time) {
		f.db.MustExec(`INSERT INTO device_events (kind, customer_id, site_id, detail, at) VALUES ($1, 'acme', 'acme-main', $2, $3)`, kind, detail, at)
	}
	lost("monitoring_lost", monday15)
	if n := f.consume(t); n != 1 {
		t.Fatalf("handled %d", n)
	}
	lost("monitoring_lost", monday15.Add(time.Minute)) // a repeat attaches, opens nothing
	f.consume(t)
	d := f.ticket(t, "1")
	if !d.NOCOnly || d.Billable || d.AutoKey != "collector:7" || len(d.DeviceIDs) != 0 || !strings.HasPrefix(d.Title, "Monitorización perdida en ") ||
		!d.OpenedAt.Equal(monday15) {
		t.Fatalf("ticket %+v", d.Ticket)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM tickets`:                          1,
		`SELECT count(*) FROM outbox WHERE channel = 'email'`:   0,
		`SELECT count(*) FROM outbox WHERE channel = 'webhook'`: 1,
	} {
		if n := f.count(t, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if _, err := f.store.Get(ctx, maintenance.Scope{CustomerID: "acme"}, "1", monday15); err == nil {
		t.Error("the customer reads the NOC's ticket")
	}
	if list, _, err := f.store.List(ctx, maintenance.ListFilter{Scope: maintenance.Scope{CustomerID: "acme"}, Limit: 10}); err != nil || len(list) != 0 {
		t.Errorf("the customer's list: %d tickets, %v", len(list), err)
	}
	if list, _, err := f.store.List(ctx, maintenance.ListFilter{Limit: 10}); err != nil || len(list) != 1 {
		t.Errorf("the NOC's list: %d tickets, %v", len(list), err)
	}
	lost("monitoring_restored", monday15.Add(20*time.Minute))
	f.consume(t)
	d = f.ticket(t, "1")
	if d.Status != maintenance.StatusClosed || d.CloseReason != "resolved" || !d.ClosedAt.Equal(monday15.Add(20*time.Minute)) {
		t.Errorf("after monitoring restored: %s %s %v", d.Status, d.CloseReason, d.ClosedAt)
	}
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE channel = 'email'`); n != 0 {
		t.Errorf("%d e-mails about the NOC's ticket", n)
	}
}
