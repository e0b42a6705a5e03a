package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/auth"
)

// The reads below serve the contract reports (package reports), which sit
// at the end of the flow and never touch dispatch's tables themselves.

// VisitsBetween lists customerID's visits that took place in [from, to)
// (arrival on site, or the agreed window when nobody arrived yet),
// cancelled ones left out, oldest first. Engineers' costs are not shown: a
// report goes to the customer.
func (s *Store) VisitsBetween(ctx context.Context, customerID string, from, to time.Time) ([]Visit, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A report goes to the customer: engineers are listed as the customer sees them.
	reader := auth.Actor{Name: "report", Role: auth.RoleCustomer, CustomerID: customerID}
	out, err := s.listVisits(ctx, reader, `SELECT `+visitColumns+` FROM visits v
		WHERE v.customer_id = $1 AND v.state <> 'cancelled' AND COALESCE(v.arrived_at, v.window_start) >= $2
		AND COALESCE(v.arrived_at, v.window_start) < $3 ORDER BY COALESCE(v.arrived_at, v.window_start), v.id`, customerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("dispatch: visits of %s: %w", customerID, err)
	}
	return nonNil(out), nil
}

// CustomerCaused returns, for those of ticketIDs flagged as caused by the
// customer (a fault of theirs or misuse), the flag's cause.
func (s *Store) CustomerCaused(ctx context.Context, ticketIDs []int64) (map[int64]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT ticket_id, cause FROM billing_flags WHERE ticket_id = ANY ($1)`, pq.Int64Array(ticketIDs))
	if err != nil {
		return nil, fmt.Errorf("dispatch: billing flags: %w", err)
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var cause string
		if err := rows.Scan(&id, &cause); err != nil {
			return nil, fmt.Errorf("dispatch: billing flags: %w", err)
		}
		out[id] = cause
	}
	return out, rows.Err()
}

// FirstDoneVisits returns, for those of ticketIDs with a visit done, when
// the first one ended (the biomedical service reads a work order as done
// by it).
func (s *Store) FirstDoneVisits(ctx context.Context, ticketIDs []int64) (map[int64]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT ticket_id, min(left_at) FROM visits WHERE ticket_id = ANY ($1) AND state = 'done'
		AND left_at IS NOT NULL GROUP BY ticket_id`, pq.Int64Array(ticketIDs))
	if err != nil {
		return nil, fmt.Errorf("dispatch: done visits: %w", err)
	}
	defer rows.Close()
	out := map[int64]time.Time{}
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("dispatch: done visits: %w", err)
		}
		out[id] = at
	}
	return out, rows.Err()
}
