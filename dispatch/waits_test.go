package dispatch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

func desk(t *testing.T) sla.Policy {
	t.Helper()
	p, err := sla.Presets().Lookup("desk-standard")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A part imported through customs holds a Sev 3 ticket (desk-standard:
// 10 business hours to resolve, Mon–Fri 08–18 Bogotá) for five business
// days; when it is received the SLA resumes and the due instant has moved
// by exactly the paused working time.
func TestPartImportPausesTheSLAForFiveBusinessDays(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	opened := at(2026, 9, 7, 9, 0) // Monday
	tk := f.openTicket(t, "andes", []string{"andes-ct"}, 3, opened)
	if tk.SLAPolicy != "desk-standard" || tk.ResolutionDueAt == nil {
		t.Fatalf("ticket terms: policy %s, resolution due %v", tk.SLAPolicy, tk.ResolutionDueAt)
	}
	dueBefore := *tk.ResolutionDueAt
	if want := at(2026, 9, 8, 9, 0); !dueBefore.Equal(want) {
		t.Fatalf("resolution due before the import = %s, want %s", dueBefore, want)
	}

	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Siemens", PartNumber: "10843219", Description: "Tubo de rayos X",
		UnitCostCents: 30000000000, UnitPriceCents: 38000000000}, opened))
	pauseFrom := at(2026, 9, 7, 10, 0)
	req := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, pauseFrom))
	for _, to := range []string{PartApproved, PartOrdered, PartInCustoms} {
		must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: to, SupplierRef: "PO-1"}, pauseFrom))
	}

	// While in customs: pending, no due instant, and the waits API says why.
	during := f.ticket(t, tk.ID, at(2026, 9, 10, 12, 0))
	if during.Status != maintenance.StatusPending || during.ResolutionDueAt != nil || !during.Schedule.Resolution.Paused {
		t.Fatalf("during the import: status %s, due %v, paused %v", during.Status, during.ResolutionDueAt, during.Schedule.Resolution.Paused)
	}
	waits := must[[]TicketWaits](t)(f.store.OpenWaits(ctx, noc))
	if len(waits) != 1 || len(waits[0].Waits) != 1 || waits[0].Waits[0].Reason != WaitImport || !waits[0].Since.Equal(pauseFrom) {
		t.Fatalf("open waits = %+v, want one import wait since %s", waits, pauseFrom)
	}

	pauseTo := at(2026, 9, 14, 10, 0) // five business days later
	must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartReceived}, pauseTo))

	after := f.ticket(t, tk.ID, pauseTo)
	if after.Status != maintenance.StatusInProgress {
		t.Fatalf("after receipt: status %s, want in_progress", after.Status)
	}
	if len(after.Pauses) != 1 {
		t.Fatalf("pauses = %+v, want one interval", after.Pauses)
	}
	p := after.Pauses[0]
	if !p.StartedAt.Equal(pauseFrom) || p.EndedAt == nil || !p.EndedAt.Equal(pauseTo) ||
		!slices.Equal(p.Reasons, []string{WaitSpareParts, WaitImport}) {
		t.Fatalf("pause = %+v, want %s–%s for spare_parts then import", p, pauseFrom, pauseTo)
	}
	paused := desk(t).Calendar().Between(pauseFrom, pauseTo, nil)
	if paused != 50*time.Hour {
		t.Fatalf("paused working time = %s, want 50h (5 business days of 10h)", paused)
	}
	want, err := desk(t).Due(sla.Input{Opened: opened, Severity: 3, Pauses: []calendar.Interval{{From: pauseFrom, To: pauseTo}}})
	if err != nil {
		t.Fatal(err)
	}
	got := *after.ResolutionDueAt
	if !got.Equal(want.Resolution.Due) || !got.Equal(at(2026, 9, 15, 9, 0)) {
		t.Fatalf("resolution due = %s, want %s (sla) = 2026-09-15 09:00", got, want.Resolution.Due)
	}
	if moved := desk(t).Calendar().Between(dueBefore, got, nil); moved != paused {
		t.Fatalf("the due instant moved by %s of working time, want exactly the paused %s", moved, paused)
	}
	var kinds []string
	for _, e := range after.Timeline {
		if e.Author == "dispatch (system)" {
			kinds = append(kinds, e.Kind)
		}
	}
	if !slices.Equal(kinds, []string{"paused", "pause_reasons_added", "resumed"}) {
		t.Fatalf("dispatch's timeline entries = %v", kinds)
	}
	if n := len(must[[]TicketWaits](t)(f.store.OpenWaits(ctx, noc))); n != 0 {
		t.Fatalf("%d tickets still waiting after receipt", n)
	}
}

// Overlapping waits with different reasons are one pause interval with
// both reasons: the overlap is not counted twice.
func TestOverlappingWaitsAreOnePause(t *testing.T) {
	t1, t2, t3, t4 := at(2026, 9, 7, 10, 0), at(2026, 9, 8, 10, 0), at(2026, 9, 9, 10, 0), at(2026, 9, 10, 10, 0)
	cases := []struct {
		name string
		// manufacturer case and customer wait, each [start, end)
		caseFrom, caseTo, custFrom, custTo time.Time
		wantFrom, wantTo                   time.Time
		wantReasons                        []string
	}{
		{"customer wait inside the manufacturer's, ends after", t1, t3, t2, t4, t1, t4, []string{WaitManufacturer, WaitCustomer}},
		{"manufacturer case inside the customer wait", t2, t3, t1, t4, t1, t4, []string{WaitCustomer, WaitManufacturer}},
		{"both start together", t1, t4, t1, t2, t1, t4, []string{WaitManufacturer, WaitCustomer}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			opened := at(2026, 9, 7, 9, 0)
			tk := f.openTicket(t, "andes", []string{"andes-mr"}, 3, opened)
			var caseID, waitID int64
			type step struct {
				at time.Time
				do func(time.Time)
			}
			steps := []step{
				{c.caseFrom, func(now time.Time) {
					caseID = must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: tk.ID, Manufacturer: "Philips",
						CaseNumber: "PH-2026-5531", Summary: "bobina de gradiente"}, now)).ID
				}},
				{c.custFrom, func(now time.Time) {
					waitID = must[Wait](t)(f.store.StartWait(ctx, noc, WaitInput{TicketID: tk.ID, Reason: WaitCustomer, Note: "acceso a la sala"}, now)).ID
				}},
				{c.caseTo, func(now time.Time) {
					must[ManufacturerCase](t)(f.store.MoveCase(ctx, noc, caseID, CaseMoveInput{To: CaseAnswered, Answer: "reemplazar bobina"}, now))
				}},
				{c.custTo, func(now time.Time) { must[Wait](t)(f.store.EndWait(ctx, noc, waitID, "acceso concedido", now)) }},
			}
			// Starts before ends at the same instant, otherwise in time order.
			slices.SortStableFunc(steps, func(a, b step) int { return a.at.Compare(b.at) })
			for _, s := range steps {
				s.do(s.at)
			}
			d := f.ticket(t, tk.ID, t4)
			if len(d.Pauses) != 1 {
				t.Fatalf("pauses = %+v, want one", d.Pauses)
			}
			p := d.Pauses[0]
			if !p.StartedAt.Equal(c.wantFrom) || p.EndedAt == nil || !p.EndedAt.Equal(c.wantTo) || !slices.Equal(p.Reasons, c.wantReasons) {
				t.Fatalf("pause = %s–%v %v, want %s–%s %v", p.StartedAt, p.EndedAt, p.Reasons, c.wantFrom, c.wantTo, c.wantReasons)
			}
			cal := desk(t).Calendar()
			union := cal.Between(c.wantFrom, c.wantTo, nil)
			double := cal.Between(c.caseFrom, c.caseTo, nil) + cal.Between(c.custFrom, c.custTo, nil)
			if union == double {
				t.Fatalf("case does not overlap: union %s = sum %s", union, double)
			}
			noPause, err := desk(t).Due(sla.Input{Opened: opened, Severity: 3})
			if err != nil {
				t.Fatal(err)
			}
			if moved := cal.Between(noPause.Resolution.Due, *d.ResolutionDueAt, nil); moved != union {
				t.Fatalf("due moved by %s, want the union %s (not the sum %s)", moved, union, double)
			}
			if d.Status != maintenance.StatusInProgress {
				t.Fatalf("status after both waits = %s", d.Status)
			}
		})
	}
}

// A person's pause is theirs: dispatch adds its reasons to it but does
// not end it when its own waits end.
func TestManualPauseIsNotEndedByDispatch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "andes", []string{"andes-mr"}, 3, at(2026, 9, 7, 9, 0))
	if _, err := f.tickets.Act(ctx, auth.Actor{Name: "ana", Role: "noc"}, itoa(tk.ID), "pause",
		maintenance.ActionInput{Reason: "third_party", Text: "bug del proveedor del RIS"}, at(2026, 9, 7, 9, 30)); err != nil {
		t.Fatal(err)
	}
	c := must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: tk.ID, Manufacturer: "Philips", CaseNumber: "PH-1"}, at(2026, 9, 7, 10, 0)))
	must[ManufacturerCase](t)(f.store.MoveCase(ctx, noc, c.ID, CaseMoveInput{To: CaseClosed}, at(2026, 9, 8, 10, 0)))
	d := f.ticket(t, tk.ID, at(2026, 9, 8, 10, 0))
	if d.Status != maintenance.StatusPending || len(d.Pauses) != 1 || d.Pauses[0].EndedAt != nil ||
		!slices.Equal(d.Pauses[0].Reasons, []string{"third_party", WaitManufacturer}) {
		t.Fatalf("status %s, pauses %+v: want the person's pause still running with both reasons", d.Status, d.Pauses)
	}
}
