package dispatch

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Seed 000 §8: the equipment is not available at the agreed time ⇒ the
// ticket closes with that reason, a new linked ticket reschedules the
// visit, what the old ticket waited for moves to the new one, and the
// customer is told through the outbox.
func TestEquipmentUnavailableClosesAndReschedules(t *testing.T) {
	cases := []struct {
		name       string
		before     []string // states the visit goes through before the rule
		wantTravel bool     // the engineer left for the site: the trip is billed
	}{
		{"announced before leaving", nil, false},
		{"found on arrival", []string{VisitEnRoute, VisitOnSite}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 9, 0))
			part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Siemens", PartNumber: "S-1"}, at(2026, 9, 7, 9, 0)))
			req := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 2}, at(2026, 9, 7, 9, 30)))
			v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"},
				TravelPriceCents: 120000000}, at(2026, 9, 7, 9, 40)))
			if !v.Travel || v.TravelFrom != "Bogotá" || v.ChecklistTemplate != "modality-corrective" || len(v.Checklist) == 0 {
				t.Fatalf("visit = travel %v from %q, template %q, %d items", v.Travel, v.TravelFrom, v.ChecklistTemplate, len(v.Checklist))
			}
			must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
				WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, at(2026, 9, 7, 10, 0)))
			engineer := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bog"}
			now := at(2026, 9, 8, 9, 0)
			for _, st := range c.before {
				now = now.Add(30 * time.Minute)
				must[TransitionResult](t)(f.store.Transition(ctx, engineer, v.ID, TransitionInput{To: st}, now))
			}
			now = at(2026, 9, 8, 10, 30)
			res := must[TransitionResult](t)(f.store.Transition(ctx, engineer, v.ID, TransitionInput{To: VisitEquipmentUnavailable,
				Note: "el tomógrafo estaba en uso con pacientes"}, now))

			old := f.ticket(t, tk.ID, now)
			if old.Status != maintenance.StatusClosed || old.CloseReason != maintenance.CloseEquipmentUnavailable {
				t.Fatalf("old ticket: %s / %s", old.Status, old.CloseReason)
			}
			next := f.ticket(t, res.NewTicketID, now)
			if next.PreviousTicketID == nil || *next.PreviousTicketID != tk.ID || next.Status == maintenance.StatusClosed ||
				next.Number != res.NewTicket || res.ClosedTicket != tk.Number {
				t.Fatalf("new ticket %s (prev %v, %s), result %+v", next.Number, next.PreviousTicketID, next.Status, res)
			}
			// The part is still coming: the new ticket waits for it.
			if next.Status != maintenance.StatusPending || next.PendingReason != WaitSpareParts {
				t.Fatalf("new ticket status %s (%s), want pending on spare_parts", next.Status, next.PendingReason)
			}
			if got := must[PartRequest](t)(f.store.partRequest(ctx, noc, req.ID)); got.TicketID != next.ID {
				t.Fatalf("part request on ticket %d, want %d", got.TicketID, next.ID)
			}
			if len(old.Pauses) != 1 || old.Pauses[0].EndedAt == nil {
				t.Fatalf("old ticket pauses %+v: the pause ends with the ticket", old.Pauses)
			}
			// The customer is told why, and where the visit continues.
			var body string
			if err := f.db.Get(&body, `SELECT body FROM outbox WHERE event_key = $1 AND recipient = 'biomedica@andes.example'`,
				"visit:"+itoa(v.ID)+":equipment_unavailable"); err != nil {
				t.Fatalf("customer notification: %v", err)
			}
			if !strings.Contains(body, next.Number) || !strings.Contains(body, tk.Number) {
				t.Fatalf("notification body does not name both tickets: %s", body)
			}
			if n := f.count(t, `SELECT count(*) FROM outbox WHERE ticket_id = $1 AND event_key LIKE '%:closed:%'`, tk.ID); n != 1 {
				t.Fatalf("closed notifications = %d", n)
			}
			// A proposed visit on the new ticket, the engineer freed.
			nv := must[Visit](t)(f.store.Visit(ctx, noc, res.RescheduledVisit))
			if nv.State != VisitProposed || nv.TicketID != next.ID || nv.RescheduledFrom == nil || *nv.RescheduledFrom != v.ID {
				t.Fatalf("rescheduled visit = %+v", nv)
			}
			if n := f.count(t, `SELECT count(*) FROM visit_engineers WHERE booked IS NOT NULL`); n != 0 {
				t.Fatalf("%d bookings still held", n)
			}
			travel := f.count(t, `SELECT count(*) FROM billable_lines WHERE source = 'travel' AND source_id = $1`, v.ID)
			if (travel == 1) != c.wantTravel {
				t.Fatalf("travel lines = %d, want travel billed: %v", travel, c.wantTravel)
			}
			// The rule runs once: the visit is final now.
			_, err := f.store.Transition(ctx, engineer, v.ID, TransitionInput{To: VisitEquipmentUnavailable}, now.Add(time.Minute))
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("second unavailable: %v, want conflict", err)
			}
			if n := f.count(t, `SELECT count(*) FROM tickets`); n != 2 {
				t.Fatalf("%d tickets, want 2", n)
			}
		})
	}
}

func TestSchedulingChecksAvailabilityAndQuotes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-mr"}, 2, at(2026, 9, 7, 9, 0))
	first := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"}}, at(2026, 9, 7, 9, 0)))
	second := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"}}, at(2026, 9, 7, 9, 0)))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, first.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, at(2026, 9, 7, 10, 0)))
	// Billable: the ventilator is in no contract (seed 000 §5).
	vent := f.openTicket(t, "andes", []string{"andes-vent"}, 3, at(2026, 9, 7, 9, 0))
	third := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: vent.ID, Engineers: []string{"eng-med"}}, at(2026, 9, 7, 9, 0)))

	cases := []struct {
		name     string
		visit    int64
		from, to time.Time
		without  bool
		want     error
	}{
		{"overlaps the engineer's other visit", second.ID, at(2026, 9, 8, 11, 0), at(2026, 9, 8, 13, 0), false, ErrConflict},
		{"outside working hours, not on call", second.ID, at(2026, 9, 8, 19, 0), at(2026, 9, 8, 21, 0), false, ErrConflict},
		{"saturday", second.ID, at(2026, 9, 12, 9, 0), at(2026, 9, 12, 11, 0), false, ErrConflict},
		{"billable without an approved quote", third.ID, at(2026, 9, 9, 9, 0), at(2026, 9, 9, 11, 0), false, ErrRefused},
		{"billable, flagged without quote", third.ID, at(2026, 9, 9, 9, 0), at(2026, 9, 9, 11, 0), true, nil},
		{"back to back is fine", second.ID, at(2026, 9, 8, 12, 0), at(2026, 9, 8, 14, 0), false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.store.Transition(ctx, noc, c.visit, TransitionInput{To: VisitScheduled, WindowStart: &c.from, WindowEnd: &c.to,
				WithoutQuote: c.without}, at(2026, 9, 7, 11, 0))
			if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("schedule: %v, want %v", err, c.want)
			}
		})
	}
	// On call makes the evening possible.
	if _, err := f.store.AddOnCall(ctx, noc, "eng-med", at(2026, 9, 10, 18, 0), at(2026, 9, 11, 8, 0)); err != nil {
		t.Fatal(err)
	}
	av := must[Availability](t)(f.store.Availability(ctx, noc, "eng-med", at(2026, 9, 10, 19, 0), at(2026, 9, 10, 21, 0)))
	if !av.Available || !av.OnCall {
		t.Fatalf("on-call availability = %+v", av)
	}
	// The engineer got the dispatch by e-mail, with what they need.
	var body string
	if err := f.db.Get(&body, `SELECT body FROM outbox WHERE recipient = 'laura@vigia.example' AND event_key LIKE $1`,
		"visit:"+itoa(first.ID)+":dispatched:%"); err != nil {
		t.Fatalf("dispatch e-mail: %v", err)
	}
	for _, want := range []string{"Resonador", "Philips", "Clínica Bogotá", "Calle 100", "Ing. Pérez", tk.Number, "Lista de chequeo", "Repuestos a llevar", "Historia del ticket"} {
		if !strings.Contains(body, want) {
			t.Errorf("dispatch e-mail lacks %q:\n%s", want, body)
		}
	}
}

func TestSuggestionsRankSkillAvailabilityAndCity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 9, 0))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"}}, at(2026, 9, 7, 9, 0)))
	cases := []struct {
		name     string
		from, to time.Time
		first    string
	}{
		{"CT in Medellín: the Siemens CT engineer of Medellín", at(2026, 9, 8, 9, 0), at(2026, 9, 8, 11, 0), "eng-med"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ss := must[[]Suggestion](t)(f.store.Suggest(ctx, noc, v.ID, &c.from, &c.to, c.from))
			if len(ss) != 2 || ss[0].Engineer != c.first || ss[0].Score <= ss[1].Score || !ss[0].SameCity || !ss[1].TravelNeeded {
				t.Fatalf("suggestions = %+v", ss)
			}
		})
	}
	// Booked elsewhere, the best match drops below an available one.
	other := f.openTicket(t, "andes", []string{"andes-pacs"}, 2, at(2026, 9, 7, 9, 0))
	ov := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: other.ID, Engineers: []string{"eng-med"}}, at(2026, 9, 7, 9, 0)))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, ov.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 8, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, at(2026, 9, 7, 10, 0)))
	ss := must[[]Suggestion](t)(f.store.Suggest(ctx, noc, v.ID, ptr(at(2026, 9, 8, 9, 0)), ptr(at(2026, 9, 8, 11, 0)), at(2026, 9, 8, 9, 0)))
	if ss[0].Engineer != "eng-bog" || *ss[1].Available || !strings.Contains(ss[1].Unavailable, "booked") {
		t.Fatalf("suggestions with eng-med booked = %+v", ss)
	}
}

func TestOutcomeNeedsSignatureAndBillsTheVisit(t *testing.T) {
	png := "data:image/png;base64," + base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...))
	huge := "data:image/png;base64," + base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, MaxSignatureBytes)...))
	jpeg := "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("\xff\xd8\xff\xe0 not a png"))
	cases := []struct {
		name string
		sig  SignatureInput
		want error
	}{
		{"no signer", SignatureInput{Kind: "typed", Value: "x"}, ErrInvalid},
		{"unknown kind", SignatureInput{Name: "Dra. Gómez", Kind: "stamp", Value: "x"}, ErrInvalid},
		{"drawn, too large", SignatureInput{Name: "Dra. Gómez", Kind: "drawn", Value: huge}, ErrInvalid},
		{"drawn, not a PNG", SignatureInput{Name: "Dra. Gómez", Kind: "drawn", Value: jpeg}, ErrInvalid},
		{"drawn PNG", SignatureInput{Name: "Dra. Gómez", Kind: "drawn", Value: png}, nil},
	}
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 9, 0))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog", "eng-med"},
		TravelPriceCents: 90000000}, at(2026, 9, 7, 9, 0)))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 14, 0))}, at(2026, 9, 7, 10, 0)))
	eng := auth.Actor{Name: "mateo", Role: "engineer", EngineerID: "eng-med"}
	must[TransitionResult](t)(f.store.Transition(ctx, eng, v.ID, TransitionInput{To: VisitOnSite}, at(2026, 9, 8, 10, 5)))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.store.Outcome(ctx, eng, v.ID, OutcomeInput{WorkPerformed: "Cambio de la tarjeta del detector", Activity: "repair",
				Checklist: []ChecklistCheck{{ID: 1, Done: true}}, PartsUsed: []PartUsed{{Manufacturer: "Siemens", PartNumber: "DET-9", Quantity: 1}},
				Signature: c.sig}, at(2026, 9, 8, 12, 35))
			if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("outcome: %v, want %v", err, c.want)
			}
		})
	}
	done := must[Visit](t)(f.store.Visit(ctx, noc, v.ID))
	if done.State != VisitDone || done.Signature == nil || done.Signature.Name != "Dra. Gómez" || done.TimeOnSiteMin == nil ||
		*done.TimeOnSiteMin != 150 || !done.Checklist[0].Done || len(done.PartsUsed) != 1 {
		t.Fatalf("visit after outcome = %+v", done)
	}
	// Both engineers' time on site is recorded; the contract covers the
	// work, the customer pays the trip from Bogotá (seed 004).
	if n := f.count(t, `SELECT count(*) FROM work_entries WHERE visit_id = $1 AND mode = 'covered'`, v.ID); n != 2 {
		t.Fatalf("work entries = %d, want 2", n)
	}
	if n := f.count(t, `SELECT count(*) FROM billable_lines WHERE source = 'travel' AND amount_cents = 90000000`); n != 1 {
		t.Fatalf("travel lines = %d", n)
	}
}
