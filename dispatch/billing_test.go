package dispatch

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

func mx(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, mexico)
}

// A póliza of 10 hours valid a year (seed 003): every intervention takes
// whole hours, rounded up; the customer is warned once at 80 %; what the
// bank cannot cover is billed by the hour; hours left when the year ends
// are lost, and the next year starts a full bank.
func TestHourBankConsumption(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "impera", []string{"impera-ris"}, 3, mx(2026, 2, 16, 10, 0))
	cases := []struct {
		name      string
		start     time.Time
		dur       time.Duration
		wantBank  int // minutes taken from the bank
		wantLeft  int // minutes left in the period
		wantWarn  bool
		wantLine  int // billed overage hours
		wantErr   error
		wantFlags bool
	}{
		{"90 minutes take 2 hours", mx(2026, 2, 16, 10, 0), 90 * time.Minute, 120, 480, false, 0, nil, false},
		{"30 minutes take 1 hour", mx(2026, 2, 17, 10, 0), 30 * time.Minute, 60, 420, false, 0, nil, false},
		{"61 minutes take 2 hours", mx(2026, 2, 18, 10, 0), 61 * time.Minute, 120, 300, false, 0, nil, false},
		{"3 hours reach 80 %", mx(2026, 2, 19, 10, 0), 3 * time.Hour, 180, 120, true, 0, nil, false},
		{"2h30 with 2 hours left: 1 hour billed", mx(2026, 2, 20, 10, 0), 150 * time.Minute, 120, 0, true, 1, nil, true},
		{"a new year, a full bank: the 2026 period starts 1 March", mx(2026, 3, 2, 10, 0), 45 * time.Minute, 60, 540, false, 0, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := f.store.RecordWork(ctx, noc, WorkInput{TicketID: tk.ID, Kind: "remote", Activity: "support",
				StartedAt: c.start, EndedAt: c.start.Add(c.dur), WithoutQuote: c.wantFlags}, c.start.Add(c.dur))
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode != modeHourBank || e.BankMinutes != c.wantBank || e.BankLeftMins == nil || *e.BankLeftMins != c.wantLeft ||
				e.BankWarning != c.wantWarn || e.BilledHours != c.wantLine {
				t.Fatalf("entry = mode %s bank %d left %v warn %v billed %d; want bank %d left %d warn %v billed %d", e.Mode, e.BankMinutes,
					e.BankLeftMins, e.BankWarning, e.BilledHours, c.wantBank, c.wantLeft, c.wantWarn, c.wantLine)
			}
		})
	}
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE event_key LIKE 'hour_bank:impera-poliza:2025-03-01:warn80' AND recipient = 'ti@impera.example'`); n != 1 {
		t.Fatalf("80%% warnings = %d, want exactly 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM billable_lines WHERE reason = 'hour_bank_exhausted' AND quantity = 1 AND unquoted`); n != 1 {
		t.Fatalf("overage lines = %d", n)
	}
}

// A one-year póliza that has ended: the ticket opened while it was in
// force, but work after the year is per-event and needs an approved quote
// (seed 003); the per-event minimum is data (seed 001: 3 h for an update).
func TestHourBankExpiresAfterOneYear(t *testing.T) {
	lima := func(m time.Month, d, hh int) time.Time {
		loc, _ := time.LoadLocation("America/Lima")
		return time.Date(2026, m, d, hh, 0, 0, 0, loc)
	}
	f := newFixture(t)
	ctx := context.Background()
	tk := f.openTicket(t, "lima", []string{"lima-us"}, 3, lima(5, 25, 9))
	in := func(start time.Time, d time.Duration, activity string, without bool) WorkInput {
		return WorkInput{TicketID: tk.ID, Kind: "remote", Activity: activity, StartedAt: start, EndedAt: start.Add(d), WithoutQuote: without}
	}
	cases := []struct {
		name       string
		in         WorkInput
		quote      bool // approve a quote before
		wantErr    error
		wantMode   string
		wantBilled int
		wantFlag   bool
	}{
		{"last day of the year: from the bank", in(lima(5, 29, 10), 40*time.Minute, "support", false), false, nil, modeHourBank, 0, false},
		{"after the year, no quote: refused", in(lima(6, 2, 10), time.Hour, "support", false), false, ErrRefused, "", 0, false},
		{"after the year, flagged: the 1 h event minimum", in(lima(6, 2, 10), 20*time.Minute, "support", true), false, nil, modeBillable, 1, true},
		{"an update bills at least 3 h", in(lima(6, 3, 10), 70*time.Minute, "update", true), false, nil, modeBillable, 3, true},
		{"with an approved quote: billed, not flagged", in(lima(6, 4, 10), 4*time.Hour+time.Minute, "update", false), true, nil, modeBillable, 5, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.quote {
				q := must[Quote](t)(f.store.ProposeQuote(ctx, noc, QuoteInput{TicketID: tk.ID, Hours: 5, HourPriceCents: 25000}, c.in.StartedAt))
				must[Quote](t)(f.store.DecideQuote(ctx, auth.Actor{Name: "jefe", Role: "customer", CustomerID: "lima"}, q.ID, true, c.in.StartedAt))
			}
			e, err := f.store.RecordWork(ctx, noc, c.in, c.in.EndedAt)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Mode != c.wantMode || e.BilledHours != c.wantBilled || e.Unquoted != c.wantFlag {
				t.Fatalf("entry mode %s billed %d unquoted %v (%s)", e.Mode, e.BilledHours, e.Unquoted, e.Reason)
			}
			if e.Mode == modeBillable && e.Reason != ReasonHourBankExpired {
				t.Fatalf("reason %s, want %s", e.Reason, ReasonHourBankExpired)
			}
		})
	}
	var price int64
	if err := f.db.Get(&price, `SELECT unit_price_cents FROM billable_lines ORDER BY id DESC LIMIT 1`); err != nil || price != 25000 {
		t.Fatalf("quoted line price = %d (%v), want the quote's 25000", price, err)
	}
}

// The monthly report: lines of the month only, their total, the work by
// mode and the bank's state, the same in JSON and CSV.
func TestBillingReportTotals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Billable: the ventilator is in no contract (seed 000 §5).
	vent := f.openTicket(t, "andes", []string{"andes-vent"}, 3, at(2026, 9, 1, 9, 0))
	q := must[Quote](t)(f.store.ProposeQuote(ctx, noc, QuoteInput{TicketID: vent.ID, Hours: 3, HourPriceCents: 20000000}, at(2026, 9, 1, 9, 0)))
	must[Quote](t)(f.store.DecideQuote(ctx, noc, q.ID, true, at(2026, 9, 1, 10, 0)))
	must[WorkEntry](t)(f.store.RecordWork(ctx, noc, WorkInput{TicketID: vent.ID, Kind: "remote", Activity: "update",
		StartedAt: at(2026, 9, 2, 9, 0), EndedAt: at(2026, 9, 2, 10, 0)}, at(2026, 9, 2, 10, 0))) // 1 h, minimum 3 h
	must[WorkEntry](t)(f.store.RecordWork(ctx, noc, WorkInput{TicketID: vent.ID, Kind: "remote", Activity: "diagnosis",
		StartedAt: at(2026, 9, 30, 16, 0), EndedAt: at(2026, 9, 30, 17, 30)}, at(2026, 9, 30, 17, 30))) // 2 h
	must[WorkEntry](t)(f.store.RecordWork(ctx, noc, WorkInput{TicketID: vent.ID, Kind: "remote", Activity: "diagnosis",
		StartedAt: at(2026, 10, 1, 9, 0), EndedAt: at(2026, 10, 1, 10, 0)}, at(2026, 10, 1, 10, 0))) // October: not in the report
	// A part the customer approved at its quoted price, installed.
	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Dräger", PartNumber: "MX-100", UnitCostCents: 5000000, UnitPriceCents: 9000000}, at(2026, 9, 1, 9, 0)))
	pr := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: vent.ID, PartID: part.ID, Quantity: 2}, at(2026, 9, 3, 9, 0)))
	must[Warehouse](t)(f.store.PutWarehouse(ctx, noc, Warehouse{ID: "bog-1", Name: "Bodega Bogotá", City: "Bogotá"}))
	if err := f.store.SetStock(ctx, noc, "bog-1", part.ID, 5); err != nil {
		t.Fatal(err)
	}
	for _, m := range []PartMoveInput{{To: PartQuoted, QuotePriceCents: ptr(int64(8500000))}, {To: PartApproved}, {To: PartReceived, WarehouseID: "bog-1"}, {To: PartInstalled}} {
		must[PartRequest](t)(f.store.MovePart(ctx, noc, pr.ID, m, at(2026, 9, 4, 9, 0)))
	}
	if n := f.count(t, `SELECT quantity FROM stock WHERE warehouse_id = 'bog-1'`); n != 3 {
		t.Fatalf("stock after taking 2 of 5 = %d", n)
	}
	// Covered work on a contract device: in the work summary, not billed.
	mr := f.openTicket(t, "andes", []string{"andes-mr"}, 3, at(2026, 9, 7, 9, 0))
	must[WorkEntry](t)(f.store.RecordWork(ctx, noc, WorkInput{TicketID: mr.ID, Kind: "remote", StartedAt: at(2026, 9, 7, 9, 0),
		EndedAt: at(2026, 9, 7, 9, 45)}, at(2026, 9, 7, 10, 0)))

	rep := must[Report](t)(f.store.Report(ctx, noc, "andes", "2026-09"))
	wantTotal := int64(3*20000000 + 2*20000000 + 2*8500000)
	if len(rep.Lines) != 3 || rep.TotalCents != wantTotal || rep.Currency != "COP" || rep.Unquoted != 0 {
		t.Fatalf("report: %d lines, total %d (want %d), %s, unquoted %d: %+v", len(rep.Lines), rep.TotalCents, wantTotal, rep.Currency, rep.Unquoted, rep.Lines)
	}
	if rep.Work.Entries != 3 || rep.Work.BillableMinutes != 150 || rep.Work.CoveredMinutes != 45 {
		t.Fatalf("work = %+v", rep.Work)
	}
	var buf bytes.Buffer
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "total,2026-09,,,\"3 lines, 0 unquoted\",,,1170000.00,COP") {
		t.Fatalf("csv:\n%s", buf.String())
	}
	// The customer reads its own report; another customer's is not found.
	if _, err := f.store.Report(ctx, auth.Actor{Role: "customer", CustomerID: "andes"}, "andes", "2026-09"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Report(ctx, auth.Actor{Role: "customer", CustomerID: "lima"}, "andes", "2026-09"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another customer's report: %v", err)
	}
}
