package maintenance

import (
	"context"
	"testing"
	"time"
)

// TestRecomputeOpen: a ticket whose cached due instants an older version
// wrote (wall clock waiting for Tuesday after the Monday holiday) is
// recomputed once, with a timeline entry saying why; a second run, and a
// closed ticket, move nothing.
func TestRecomputeOpen(t *testing.T) {
	f := newFixture(t)
	f.usePolicy(t, "imaging-8x5")
	ctx := context.Background()
	friday22 := time.Date(2026, 11, 13, 22, 0, 0, 0, bogota)
	open := f.open(t, "acme-pacs", 1, friday22)
	closed := f.open(t, "acme-ct", 1, friday22)
	f.act(t, closed, "close", ActionInput{Reason: CloseDuplicate}, friday22.Add(time.Hour))
	if got := f.ticket(t, open.Number).ResponseDueAt; got == nil || !got.Equal(time.Date(2026, 11, 14, 7, 0, 0, 0, bogota)) {
		t.Fatalf("new ticket's response due %v, want Saturday 07:00", got)
	}
	// What the previous rule cached: Tuesday 17:00 and 13:00.
	oldDue, oldWarn := time.Date(2026, 11, 17, 17, 0, 0, 0, bogota), time.Date(2026, 11, 17, 13, 0, 0, 0, bogota)
	f.db.MustExec(`UPDATE tickets SET response_due_at = $1, response_warn_at = $2`, oldDue, oldWarn)
	now := friday22.Add(2 * time.Hour)
	for run, want := range []int{1, 0} {
		n, err := f.store.RecomputeOpen(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("run %d moved %d tickets, want %d", run+1, n, want)
		}
	}
	d := f.ticket(t, open.Number)
	if d.ResponseDueAt == nil || !d.ResponseDueAt.Equal(time.Date(2026, 11, 14, 7, 0, 0, 0, bogota)) ||
		d.ResponseWarnAt == nil || !d.ResponseWarnAt.Equal(time.Date(2026, 11, 14, 3, 0, 0, 0, bogota)) {
		t.Errorf("recomputed due %v warn %v, want Saturday 07:00 and 03:00", d.ResponseDueAt, d.ResponseWarnAt)
	}
	var text string
	if err := f.db.Get(&text, `SELECT text FROM ticket_events WHERE ticket_id = $1 AND kind = 'sla_recomputed'`, open.ID); err != nil {
		t.Fatalf("timeline entry: %v", err)
	}
	if text != RecomputeReason {
		t.Errorf("timeline text %q", text)
	}
	if n := f.count(t, `SELECT count(*) FROM ticket_events WHERE kind = 'sla_recomputed'`); n != 1 {
		t.Errorf("%d recompute entries, want 1 (the closed ticket is left alone)", n)
	}
	var closedDue time.Time
	if err := f.db.Get(&closedDue, `SELECT response_due_at FROM tickets WHERE id = $1`, closed.ID); err != nil || !closedDue.Equal(oldDue) {
		t.Errorf("closed ticket's due %v (%v), want it untouched", closedDue, err)
	}
}
