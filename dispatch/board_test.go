package dispatch

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// The board's "needs a visit": open tickets on field equipment (a
// modality, a biomedical device) or with a part received and waiting to be
// installed, without a visit proposed or under way; most severe first.
// Visits, parts and cases on it carry their tickets' numbers.
func TestBoardListsTicketsNeedingAVisit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	opened := at(2026, 9, 7, 8, 0)
	ct := f.openTicket(t, "andes", []string{"andes-ct"}, 3, opened)                          // modality
	vent := f.openTicket(t, "andes", []string{"andes-vent"}, 2, opened)                      // biomedical
	f.openTicket(t, "andes", []string{"andes-pacs"}, 2, opened)                              // no field equipment
	parted := f.openTicket(t, "impera", []string{"impera-ris"}, 4, opened)                   // no field equipment, a part received
	visited := f.openTicket(t, "andes", []string{"andes-mr"}, 1, opened)                     // a visit proposed
	solved := f.openTicket(t, "lima", []string{"lima-us"}, 1, opened)                        // solved: nothing to do
	installed := f.openTicket(t, "impera", []string{"impera-ris"}, 4, opened.Add(time.Hour)) // a part installed: done

	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Sectra", PartNumber: "R-1"}, opened))
	for _, tk := range []maintenance.Ticket{parted, installed} {
		req := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, opened))
		must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartApproved}, opened))
		must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartOrdered, ETA: "2026-09-20"}, opened))
		must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartReceived}, opened.Add(time.Hour)))
		if tk.ID == installed.ID {
			must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartInstalled}, opened.Add(2*time.Hour)))
		}
	}
	coming := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: ct.ID, PartID: part.ID, Quantity: 1}, opened))
	must[PartRequest](t)(f.store.MovePart(ctx, noc, coming.ID, PartMoveInput{To: PartApproved}, opened))
	must[PartRequest](t)(f.store.MovePart(ctx, noc, coming.ID, PartMoveInput{To: PartOrdered, ETA: "2026-09-20"}, opened))
	must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: vent.ID, Manufacturer: "Dräger", CaseNumber: "D-7"}, opened))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: visited.ID, Engineers: []string{"eng-bog"}}, opened))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, opened))
	if _, err := f.tickets.Act(ctx, auth.Actor{Name: "ana", Role: "noc"}, itoa(solved.ID), "solve",
		maintenance.ActionInput{Text: "reiniciado"}, opened.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	b := must[Board](t)(f.store.DispatchBoard(ctx, noc, at(2026, 9, 8, 0, 0), at(2026, 9, 9, 0, 0), 0, at(2026, 9, 8, 9, 0)))
	var got []string
	for _, s := range b.NeedVisit {
		got = append(got, s.Number)
	}
	if want := []string{vent.Number, ct.Number, parted.Number}; !slices.Equal(got, want) {
		t.Errorf("need a visit %v, want %v (vent, CT, the received part), most severe first", got, want)
	}
	if len(b.NeedVisit) > 0 {
		now := f.ticket(t, vent.ID, at(2026, 9, 8, 9, 0)) // pending on the manufacturer
		if s := b.NeedVisit[0]; s.CustomerID != "andes" || s.SiteID != "andes-med" || s.Severity != 2 || s.Title != vent.Title || s.Status != now.Status ||
			!s.OpenedAt.Equal(opened) {
			t.Errorf("summary %+v", s)
		}
	}
	if len(b.Visits) != 1 || b.Visits[0].TicketNumber != visited.Number || len(b.Visits[0].Engineers) != 1 {
		t.Errorf("board visits %+v, want the scheduled one on %s", b.Visits, visited.Number)
	}
	if len(b.Parts) != 1 || b.Tickets[b.Parts[0].TicketID] != ct.Number {
		t.Errorf("parts on their way %+v, tickets %v", b.Parts, b.Tickets)
	}
	if len(b.StaleCases) != 1 || b.Tickets[b.StaleCases[0].TicketID] != vent.Number {
		t.Errorf("stale cases %+v, tickets %v", b.StaleCases, b.Tickets)
	}
}

// The ticket that took over from a visit the equipment was not available
// for, and the one it came from, are named on both; the open waits leave
// the closed ticket out and follow the new one.
func TestRescheduledTicketsAreNamed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 9, 0))
	must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: tk.ID, Manufacturer: "Siemens", CaseNumber: "S-9"}, at(2026, 9, 7, 9, 10)))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-med"}}, at(2026, 9, 7, 9, 20)))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, at(2026, 9, 7, 10, 0)))
	res := must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitEquipmentUnavailable}, at(2026, 9, 8, 10, 30)))

	customer := auth.Actor{Role: "customer", CustomerID: "andes"}
	hs := must[map[int64]Hold](t)(f.store.Holds(ctx, customer, []int64{tk.ID, res.NewTicketID}))
	if hs[tk.ID].RescheduledAs != res.NewTicket || hs[res.NewTicketID].RescheduledFrom != tk.Number {
		t.Errorf("old ticket rescheduled as %q, new from %q; want %s and %s", hs[tk.ID].RescheduledAs,
			hs[res.NewTicketID].RescheduledFrom, res.NewTicket, tk.Number)
	}
	nv := must[Visit](t)(f.store.Visit(ctx, customer, res.RescheduledVisit))
	if nv.TicketNumber != res.NewTicket {
		t.Errorf("rescheduled visit on %q, want %s", nv.TicketNumber, res.NewTicket)
	}
	next := f.ticket(t, res.NewTicketID, at(2026, 9, 8, 10, 30))
	ws := must[[]TicketWaits](t)(f.store.OpenWaits(ctx, customer))
	if len(ws) != 1 || ws[0].TicketID != res.NewTicketID || ws[0].Ticket != res.NewTicket || ws[0].CustomerID != "andes" ||
		ws[0].Title != next.Title || ws[0].Status != next.Status || len(ws[0].Waits) != 1 || ws[0].Waits[0].About != "Siemens case S-9 (opened)" {
		t.Errorf("open waits %+v, want the case's wait on %s only", ws, res.NewTicket)
	}
	if other := must[[]TicketWaits](t)(f.store.OpenWaits(ctx, auth.Actor{Role: "customer", CustomerID: "lima"})); len(other) != 0 {
		t.Errorf("another customer reads waits %+v", other)
	}
	if cs := must[[]ManufacturerCase](t)(f.store.Cases(ctx, customer, 0)); len(cs) != 1 || cs[0].TicketID != res.NewTicketID {
		t.Errorf("cases %+v, want the case moved to the new ticket", cs)
	}
	if cs := must[[]ManufacturerCase](t)(f.store.Cases(ctx, auth.Actor{Role: "customer", CustomerID: "lima"}, 0)); len(cs) != 0 {
		t.Errorf("another customer reads cases %+v", cs)
	}
}

// Billing lines name their tickets; work entries and part requests are
// confined to their customer.
func TestBillingAndPartsKeepTheirCustomer(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	vent := f.openTicket(t, "andes", []string{"andes-vent"}, 3, at(2026, 9, 1, 9, 0)) // in no contract: billable
	q := must[Quote](t)(f.store.ProposeQuote(ctx, noc, QuoteInput{TicketID: vent.ID, Hours: 3, HourPriceCents: 20000000}, at(2026, 9, 1, 9, 0)))
	must[Quote](t)(f.store.DecideQuote(ctx, noc, q.ID, true, at(2026, 9, 1, 10, 0)))
	must[WorkEntry](t)(f.store.RecordWork(ctx, noc, WorkInput{TicketID: vent.ID, Kind: "remote", Activity: "update",
		StartedAt: at(2026, 9, 2, 9, 0), EndedAt: at(2026, 9, 2, 10, 0)}, at(2026, 9, 2, 10, 0)))
	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Dräger", PartNumber: "MX-1"}, at(2026, 9, 1, 9, 0)))
	pr := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: vent.ID, PartID: part.ID, Quantity: 1}, at(2026, 9, 3, 9, 0)))

	rep := must[Report](t)(f.store.Report(ctx, noc, "andes", "2026-09"))
	if len(rep.Lines) != 1 || rep.Lines[0].Ticket != vent.Number {
		t.Errorf("report lines %+v, want one on %s", rep.Lines, vent.Number)
	}
	andes, lima := auth.Actor{Role: "customer", CustomerID: "andes"}, auth.Actor{Role: "customer", CustomerID: "lima"}
	if ws := must[[]WorkEntry](t)(f.store.WorkEntries(ctx, andes, 0)); len(ws) != 1 || ws[0].TicketID != vent.ID {
		t.Errorf("the customer's work entries %+v", ws)
	}
	if ws := must[[]WorkEntry](t)(f.store.WorkEntries(ctx, lima, 0)); len(ws) != 0 {
		t.Errorf("another customer reads work entries %+v", ws)
	}
	if ps := must[[]PartRequest](t)(f.store.PartRequests(ctx, andes, 0)); len(ps) != 1 || ps[0].TicketID != vent.ID {
		t.Errorf("the customer's part requests %+v", ps)
	}
	if ps := must[[]PartRequest](t)(f.store.PartRequests(ctx, lima, 0)); len(ps) != 0 {
		t.Errorf("another customer reads part requests %+v", ps)
	}
	if _, err := f.store.MovePart(ctx, lima, pr.ID, PartMoveInput{To: PartCancelled}, at(2026, 9, 4, 9, 0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("another customer moves a part request: %v, want not found", err)
	}
}
