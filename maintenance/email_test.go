package maintenance

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/auth"
)

// inTestTx runs fn in a committed transaction, as e-mail intake does.
func inTestTx(t *testing.T, f *fixture, fn func(tx *sqlx.Tx) error) {
	t.Helper()
	tx, err := f.db.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A contact's replies on a seed 003 ticket (hosting-mx: auto-close after
// 48 h awaiting confirmation, reopen within 5 business days): the pause
// waiting on the customer ends at the reply's receipt; a reply to a
// solution stops the pre-closure protocol; past the reopen window a reply
// opens a new ticket linked to the old one.
func TestReplyByEmail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	mexico, _ := time.LoadLocation("America/Mexico_City")
	t0 := time.Date(2026, 6, 1, 10, 0, 0, 0, mexico)
	in := func(at time.Time, text string) EmailInput {
		return EmailInput{CustomerID: "beta", From: "it@beta.example", Title: "RIS slow", Text: text, ReceivedAt: at, MessageID: "m@beta.example"}
	}
	var tk Ticket
	inTestTx(t, f, func(tx *sqlx.Tx) (err error) {
		tk, err = f.store.OpenFromEmailTx(ctx, tx, in(t0, "The RIS takes a minute per study."), nil)
		return err
	})
	if tk.Source != SourceEmail || tk.Severity != EmailSeverity || !tk.OpenedAt.Equal(t0) || tk.Requester != "it@beta.example" || tk.SLAPolicy != "hosting-mx" {
		t.Fatalf("ticket from e-mail: %+v", tk)
	}
	reply := func(at time.Time, text string) ReplyResult {
		t.Helper()
		var r ReplyResult
		inTestTx(t, f, func(tx *sqlx.Tx) (err error) {
			r, err = f.store.ReplyTx(ctx, tx, tk.ID, in(at, text))
			return err
		})
		return r
	}
	staff := auth.Actor{Name: "marta", Role: "noc"}
	act := func(action string, ai ActionInput, at time.Time) {
		t.Helper()
		if _, err := f.store.Act(ctx, staff, tk.Number, action, ai, at); err != nil {
			t.Fatalf("%s: %v", action, err)
		}
	}

	t.Run("a reply ends the pause waiting on the customer at its receipt", func(t *testing.T) {
		act("pause", ActionInput{Reason: "customer", Text: "¿Qué estación?"}, t0.Add(time.Hour))
		received := t0.Add(3 * time.Hour)
		r := reply(received, "Station 4.")
		if !r.Resumed || r.Ticket.Status != StatusInProgress {
			t.Fatalf("after the reply: %+v", r)
		}
		if n := f.count(t, `SELECT count(*) FROM ticket_pauses WHERE ticket_id = $1 AND ended_at = $2`, tk.ID, received); n != 1 {
			t.Fatal("the pause did not end at the reply's receipt instant")
		}
	})

	t.Run("a reply to a solution stops the auto-close and the contacts", func(t *testing.T) {
		solved := t0.Add(5 * time.Hour)
		act("solve", ActionInput{Text: "Index rebuilt."}, solved)
		r := reply(solved.Add(2*time.Hour), "Still slow on station 4.")
		if !r.ClosureStopped || r.Ticket.Status != StatusSolved {
			t.Fatalf("after the reply: %+v", r)
		}
		if n := f.count(t, `SELECT count(*) FROM closure_tasks WHERE ticket_id = $1 AND cancelled_at IS NULL AND done_at IS NULL`, tk.ID); n != 0 {
			t.Fatalf("%d pre-closure tasks still pending", n)
		}
		sweepClosures(t, f.store, solved.Add(72*time.Hour))
		if got := f.ticket(t, tk.Number); got.Status != StatusSolved {
			t.Fatalf("auto-closed after the customer replied: %s", got.Status)
		}
	})

	t.Run("within the reopen window a reply is a comment; past it, a linked ticket", func(t *testing.T) {
		closed := t0.Add(6 * time.Hour)
		act("close", ActionInput{Reason: CloseResolved}, closed)
		if r := reply(closed.Add(24*time.Hour), "Thanks, works now."); r.Linked != nil {
			t.Fatalf("a reply within the window opened %s", r.Linked.Number)
		}
		r := reply(closed.Add(14*24*time.Hour), "It is slow again.")
		if r.Linked == nil || r.Linked.PreviousTicketID == nil || *r.Linked.PreviousTicketID != tk.ID || r.Linked.Source != SourceEmail {
			t.Fatalf("past the window: %+v", r)
		}
		if got := f.ticket(t, tk.Number); got.Status != StatusClosed {
			t.Fatalf("the old ticket is %s, want closed", got.Status)
		}
	})
}

// A message without a subject opens a ticket titled in its customer's
// language: the ticket core asks notify for the words.
func TestUntitledEmailTicket(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ customer, want string }{
		{"acme", "(sin asunto)"},
		{"beta", "(no subject)"},
	}
	for _, tc := range tests {
		t.Run(tc.customer, func(t *testing.T) {
			var tk Ticket
			inTestTx(t, f, func(tx *sqlx.Tx) (err error) {
				tk, err = f.store.OpenFromEmailTx(context.Background(), tx, EmailInput{CustomerID: tc.customer, From: "it@" + tc.customer + ".example",
					Title: "  ", Text: "help", ReceivedAt: monday15, MessageID: tc.customer + "@untitled.example"}, nil)
				return err
			})
			if tk.Title != tc.want {
				t.Fatalf("title %q, want %q", tk.Title, tc.want)
			}
		})
	}
}
