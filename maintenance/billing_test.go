package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

func TestSeatsFor(t *testing.T) {
	tests := []struct {
		name        string
		policy      string
		extra       string // a second contract in force with this policy
		at          time.Time
		wantSeats   int
		wantLimited bool
	}{
		{name: "seed 000 sets no seats", policy: "imaging-8x5", at: monday15},
		{name: "desk-standard: 2", policy: "desk-standard", at: monday15, wantSeats: 2, wantLimited: true},
		{name: "desk-premium: 5", policy: "desk-premium", at: monday15, wantSeats: 5, wantLimited: true},
		{name: "the larger plan wins", policy: "desk-standard", extra: "desk-premium", at: monday15, wantSeats: 5, wantLimited: true},
		{name: "a plan without seats does not lift the limit", policy: "desk-standard", extra: "imaging-8x5", at: monday15, wantSeats: 2, wantLimited: true},
		// The contract ends 31 December 2026: still in force at 23:30 in
		// Bogotá, which is already 1 January in UTC.
		{name: "last day in the customer's zone", policy: "desk-standard", at: time.Date(2026, 12, 31, 23, 30, 0, 0, bogota), wantSeats: 2, wantLimited: true},
		{name: "expired contract: no limit from it", policy: "desk-standard", at: time.Date(2027, 1, 1, 8, 0, 0, 0, bogota)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.usePolicy(t, tc.policy)
			if tc.extra != "" {
				f.db.MustExec(`INSERT INTO contracts (id, customer_id, sla_policy, starts_on, ends_on, activated_on)
					VALUES ('acme-extra', 'acme', $1, '2026-01-01', '2026-12-31', '2026-01-01')`, tc.extra)
			}
			seats, limited, err := f.store.SeatsFor(context.Background(), "acme", tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if seats != tc.wantSeats || limited != tc.wantLimited {
				t.Fatalf("seats %d limited %v, want %d %v", seats, limited, tc.wantSeats, tc.wantLimited)
			}
		})
	}
	if _, _, err := newFixture(t).store.SeatsFor(context.Background(), "nobody", monday15); err == nil {
		t.Error("unknown customer: no error")
	}
}

func TestCheckSeat(t *testing.T) {
	f := newFixture(t)
	f.usePolicy(t, "desk-standard")
	ctx := context.Background()
	tokens := auth.NewTokens(f.db, func() time.Time { return monday15 }).WithSeats(f.store)
	create := func(role, customer string) (int64, error) {
		_, id, err := tokens.Create(ctx, "user", role, customer, "")
		if err != nil && !errors.Is(err, auth.ErrNoSeats) {
			t.Fatal(err)
		}
		return id, err
	}
	var first int64
	steps := []struct {
		name          string
		role, cust    string
		revokeFirst   bool
		wantNoSeats   bool
		rememberFirst bool
	}{
		{name: "first acme user", role: auth.RoleCustomer, cust: "acme", rememberFirst: true},
		{name: "second acme user", role: auth.RoleCustomer, cust: "acme"},
		{name: "third acme user refused", role: auth.RoleCustomer, cust: "acme", wantNoSeats: true},
		{name: "NOC tokens take no seat", role: auth.RoleNOC},
		{name: "another customer's plan is its own (hosting-mx: no limit)", role: auth.RoleCustomer, cust: "beta"},
		{name: "beta again", role: auth.RoleCustomer, cust: "beta"},
		{name: "beta a third time", role: auth.RoleCustomer, cust: "beta"},
		{name: "a revoked token frees its seat", role: auth.RoleCustomer, cust: "acme", revokeFirst: true},
		{name: "and only one", role: auth.RoleCustomer, cust: "acme", wantNoSeats: true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.revokeFirst {
				if err := tokens.Revoke(ctx, first); err != nil {
					t.Fatal(err)
				}
			}
			id, err := create(st.role, st.cust)
			switch {
			case st.wantNoSeats && !errors.Is(err, auth.ErrNoSeats):
				t.Fatalf("err %v, want ErrNoSeats", err)
			case !st.wantNoSeats && err != nil:
				t.Fatal(err)
			}
			if st.rememberFirst {
				first = id
			}
		})
	}
}

// TestSeatsRace: portal seats are the database's to enforce. Creations
// racing for the last seats never overshoot (the plan's number is written
// under the customer's row lock and the trigger counts under it), and a
// writer that skips the check is refused by the trigger itself.
func TestSeatsRace(t *testing.T) {
	f := newFixture(t)
	f.usePolicy(t, "desk-standard") // 2 seats
	ctx := context.Background()
	tokens := auth.NewTokens(f.db, func() time.Time { return monday15 }).WithSeats(f.store)
	const racers = 8
	errs := make(chan error, racers)
	var start sync.WaitGroup
	start.Add(1)
	for i := range racers {
		go func() {
			start.Wait()
			_, _, err := tokens.Create(ctx, fmt.Sprint("racer ", i), auth.RoleCustomer, "acme", "")
			errs <- err
		}()
	}
	start.Done()
	created := 0
	for range racers {
		switch err := <-errs; {
		case err == nil:
			created++
		case !errors.Is(err, auth.ErrNoSeats):
			t.Fatalf("racer: %v, want success or ErrNoSeats", err)
		}
	}
	if created != 2 {
		t.Fatalf("%d tokens created on a 2-seat plan", created)
	}
	if n := f.count(t, `SELECT count(*) FROM api_tokens WHERE customer_id = 'acme' AND revoked_at IS NULL`); n != 2 {
		t.Fatalf("%d active acme tokens, want 2", n)
	}

	// Around the Go check: the trigger refuses the third seat, a new row
	// or a revoked one brought back, and lets staff and revocations pass.
	tests := []struct {
		name, sql string
		refused   bool
	}{
		{"insert a third customer token", `INSERT INTO api_tokens (name, role, customer_id, token_sha256, created_at)
			VALUES ('direct', 'customer', 'acme', '\x01', now())`, true},
		{"insert a third console user", `INSERT INTO console_users (username, password_hash, role, customer_id, language, created_at)
			VALUES ('direct', 'x', 'customer', 'acme', 'es', now())`, true},
		{"staff take no seat", `INSERT INTO api_tokens (name, role, token_sha256, created_at) VALUES ('noc', 'noc', '\x02', now())`, false},
		{"revoke one", `UPDATE api_tokens SET revoked_at = now() WHERE id = (SELECT min(id) FROM api_tokens WHERE customer_id = 'acme')`, false},
		{"a new one takes the freed seat", `INSERT INTO api_tokens (name, role, customer_id, token_sha256, created_at)
			VALUES ('direct', 'customer', 'acme', '\x03', now())`, false},
		{"the revoked one cannot come back", `UPDATE api_tokens SET revoked_at = NULL WHERE id = (SELECT min(id) FROM api_tokens WHERE customer_id = 'acme')`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.db.Exec(tc.sql)
			if got := errors.Is(auth.SeatRefusal(err, "acme"), auth.ErrNoSeats); got != tc.refused {
				t.Fatalf("refused %v (%v), want %v", got, err, tc.refused)
			}
			if !tc.refused && err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCustomerCaused(t *testing.T) {
	tests := []struct {
		name       string
		who        auth.Actor
		action     string
		in         ActionInput
		wantErr    error
		wantReason string // billable reason after; "" when the ticket must be unchanged
	}{
		{name: "solve with the customer's cause", who: noc, action: "solve", in: ActionInput{Text: "cable desconectado por el cliente", Cause: CauseCustomer}, wantReason: CauseCustomer},
		{name: "close with the customer's cause", who: noc, action: "close", in: ActionInput{Reason: CloseResolved, Cause: CauseCustomer}, wantReason: CauseCustomer},
		{name: "solve without a cause stays covered", who: noc, action: "solve", in: ActionInput{Text: "reiniciado"}},
		{name: "unknown cause", who: noc, action: "solve", in: ActionInput{Text: "x", Cause: "weather"}, wantErr: ErrInvalid},
		{name: "a cause on a comment", who: noc, action: "comment", in: ActionInput{Text: "x", Cause: CauseCustomer}, wantErr: ErrInvalid},
		{name: "customers do not solve", who: auth.Actor{Name: "acme user", Role: auth.RoleCustomer, CustomerID: "acme"}, action: "solve",
			in: ActionInput{Text: "x", Cause: CauseCustomer}, wantErr: ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			tk := f.open(t, "acme-pacs", 2, monday15)
			if tk.Billable {
				t.Fatalf("fixture ticket is billable (%s)", tk.BillableReason)
			}
			_, err := f.store.Act(ctx, tc.who, fmt.Sprint(tk.ID), tc.action, tc.in, monday15.Add(time.Hour))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			d := f.ticket(t, fmt.Sprint(tk.ID))
			gotEvent := slices.Contains(kinds(d.Timeline), "billable")
			if tc.wantReason == "" {
				if d.Billable != tk.Billable || d.BillableReason != tk.BillableReason || gotEvent {
					t.Fatalf("billable %v %s (event %v), want unchanged %v %s", d.Billable, d.BillableReason, gotEvent, tk.Billable, tk.BillableReason)
				}
				return
			}
			if !d.Billable || d.BillableReason != tc.wantReason || !gotEvent {
				t.Fatalf("billable %v %s (event %v), want true %s with a timeline entry", d.Billable, d.BillableReason, gotEvent, tc.wantReason)
			}
			for _, e := range d.Timeline {
				if e.Kind == "billable" && (e.Data["previous_billable_reason"] != tk.BillableReason || e.Author != noc.String()) {
					t.Errorf("timeline entry %+v does not keep what it was before and who", e)
				}
			}
		})
	}
}

// The customer-caused entry is written in the customer's language.
func TestCustomerCausedInTheCustomerLanguage(t *testing.T) {
	tests := []struct{ customer, device, want string }{
		{"acme", "acme-pacs", "la causa fue del cliente: el tiempo de diagnóstico es facturable"},
		{"beta", "beta-ris", "the cause was the customer's: the diagnosis time is billable"},
	}
	for _, tc := range tests {
		t.Run(tc.customer, func(t *testing.T) {
			f := newFixture(t)
			tk, err := f.store.Create(context.Background(), noc, CreateInput{CustomerID: tc.customer, DeviceIDs: []string{tc.device},
				Severity: 2, Title: "falla"}, monday15)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Act(context.Background(), noc, fmt.Sprint(tk.ID), "solve",
				ActionInput{Text: "cable", Cause: CauseCustomer}, monday15.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, e := range f.ticket(t, fmt.Sprint(tk.ID)).Timeline {
				if e.Kind == "billable" {
					texts = append(texts, e.Text)
				}
			}
			if len(texts) != 1 || texts[0] != tc.want {
				t.Fatalf("billable entries %q, want [%q]", texts, tc.want)
			}
		})
	}
}

// The pre-closure protocol's first contact attempt, recorded when the
// ticket is solved, is written in the customer's language too.
func TestContactAttemptInTheCustomerLanguage(t *testing.T) {
	tests := []struct{ customer, device, prefix string }{
		{"acme", "acme-pacs", "intento de contacto 1 de "},
		{"beta", "beta-ris", "contact attempt 1 of "},
	}
	for _, tc := range tests {
		t.Run(tc.customer, func(t *testing.T) {
			f := newFixture(t)
			tk, err := f.store.Create(context.Background(), noc, CreateInput{CustomerID: tc.customer, DeviceIDs: []string{tc.device},
				Severity: 2, Title: "falla"}, monday15)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.Act(context.Background(), noc, fmt.Sprint(tk.ID), "solve",
				ActionInput{Text: "reiniciado"}, monday15.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, e := range f.ticket(t, fmt.Sprint(tk.ID)).Timeline {
				if e.Kind == "contact_attempt" {
					texts = append(texts, e.Text)
				}
			}
			if len(texts) != 1 || !strings.HasPrefix(texts[0], tc.prefix) {
				t.Fatalf("contact attempts %q, want one starting %q", texts, tc.prefix)
			}
		})
	}
}
