package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// CauseCustomer is the cause given on solve or close when the fault was
// the customer's (misuse of the equipment, their network, their change):
// seed 000's limits make the diagnosis time billable. It is also the
// ticket's billable_reason from then on.
const CauseCustomer = "customer_caused"

// applyCause records the cause given with a solve or close. A covered
// ticket becomes billable with reason customer_caused from that instant;
// the timeline keeps what it was before.
func (s *Store) applyCause(ctx context.Context, tx *sqlx.Tx, a auth.Actor, t *Ticket, action, cause string, now time.Time) error {
	switch {
	case cause == "":
		return nil
	case Action(action) != ActionSolve && Action(action) != ActionClose:
		return invalid("cause is given on solve or close")
	case cause != CauseCustomer:
		return invalid("cause must be %s", CauseCustomer)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET billable = true, billable_reason = $2 WHERE id = $1`, t.ID, CauseCustomer); err != nil {
		return fmt.Errorf("mark billable: %w", err)
	}
	data := map[string]any{"cause": cause, "billable": true, "billable_reason": CauseCustomer,
		"previous_billable": t.Billable, "previous_billable_reason": t.BillableReason}
	t.Billable, t.BillableReason = true, CauseCustomer
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return fmt.Errorf("cause of %s: %w", t.Number, err)
	}
	return addEvent(ctx, tx, t.ID, now, a.String(), "billable", notify.CustomerCausedText(lang), data)
}

// SeatsFor returns how many portal users the customer's plan allows at
// at (seed 004: desk-standard 2, desk-premium 5): the largest
// portal_seats among the SLA policies of its contracts in force that day
// in its time zone. limited is false when none sets a number. It is the
// auth.SeatPlan: internal/auth counts the seats and the database enforces
// them.
func (s *Store) SeatsFor(ctx context.Context, customerID string, at time.Time) (seats int, limited bool, err error) {
	c, err := s.inv.Customer(ctx, assets.Scope{}, customerID)
	if err != nil {
		return 0, false, fmt.Errorf("maintenance: seats of %s: %w", customerID, err)
	}
	ks, err := s.inv.Contracts(ctx, assets.Scope{CustomerID: customerID}, false)
	if err != nil {
		return 0, false, fmt.Errorf("maintenance: seats of %s: %w", customerID, err)
	}
	y, m, d := at.In(c.Location()).Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	for _, k := range ks {
		if today.Before(k.StartsOn) || today.After(k.EndsOn) {
			continue
		}
		p, err := s.policies.Lookup(k.SLAPolicy)
		if err != nil || p.PortalSeats == 0 {
			continue
		}
		seats, limited = max(seats, p.PortalSeats), true
	}
	return seats, limited, nil
}
