package dispatch

import (
	"context"
	"errors"
	"testing"

	"github.com/vigia-noc/vigia/internal/auth"
)

// What holds a ticket: a part moving from order to customs is one
// unbroken pause since it was requested, with its ETA; a manufacturer case
// adds its own line; the scheduled visit shows; another customer sees
// nothing of it.
func TestHolds(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 8, 0))
	idle := f.openTicket(t, "andes", []string{"andes-pacs"}, 3, at(2026, 9, 7, 8, 0))
	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Siemens", PartNumber: "10843219", UnitPriceCents: 1, UnitCostCents: 1}, at(2026, 9, 7, 8, 0)))
	requested := at(2026, 9, 7, 9, 0)
	req := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, requested))
	must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartApproved}, at(2026, 9, 7, 10, 0)))
	must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartOrdered, ETA: "2026-09-20", SupplierRef: "PO-1"}, at(2026, 9, 8, 10, 0)))
	must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartInCustoms, ETA: "2026-09-25"}, at(2026, 9, 15, 10, 0)))
	must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: tk.ID, Manufacturer: "Siemens", CaseNumber: "S-42"}, at(2026, 9, 16, 10, 0)))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-med"}}, at(2026, 9, 16, 10, 0)))
	from, to := at(2026, 9, 28, 9, 0), at(2026, 9, 28, 11, 0)
	must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled, WindowStart: &from, WindowEnd: &to}, at(2026, 9, 16, 11, 0)))

	hs := must[map[int64]Hold](t)(f.store.Holds(ctx, auth.Actor{Role: "customer", CustomerID: "andes"}, []int64{tk.ID, idle.ID}))
	h := hs[tk.ID]
	if h.PausedSince == nil || !h.PausedSince.Equal(requested) {
		t.Errorf("paused since %v; want %v, when the part was requested", h.PausedSince, requested)
	}
	if len(h.Items) != 2 || h.Items[0].Reason != WaitImport || h.Items[0].ETA != "2026-09-25" || h.Items[0].Part != "Siemens 10843219" ||
		h.Items[1].Reason != WaitManufacturer || h.Items[1].Case != "Siemens S-42" {
		t.Errorf("items %+v", h.Items)
	}
	if h.NextVisit == nil || !h.NextVisit.Equal(from) {
		t.Errorf("next visit %v; want %v", h.NextVisit, from)
	}
	if !hs[idle.ID].Empty() {
		t.Errorf("a ticket nothing holds: %+v", hs[idle.ID])
	}
	if other := must[map[int64]Hold](t)(f.store.Holds(ctx, auth.Actor{Role: "customer", CustomerID: "other"}, []int64{tk.ID})); len(other) != 0 {
		t.Errorf("another customer reads %+v", other)
	}
	// An ETA is a date, and goes with a part on its way.
	for _, in := range []PartMoveInput{{To: PartInTransit, ETA: "25/09/2026"}, {To: PartReceived, ETA: "2026-09-25"}} {
		if _, err := f.store.MovePart(ctx, noc, req.ID, in, at(2026, 9, 17, 10, 0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("move %+v: %v, want invalid", in, err)
		}
	}
}
