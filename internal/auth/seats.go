package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ErrNoSeats means the customer's plan has no portal seat left: its
// active customer tokens and console users fill the plan's seats.
var ErrNoSeats = errors.New("no portal seat left")

// SeatPlan tells how many portal seats a customer's plan allows at an
// instant (limited false: the plan sets no number). The ticket stage's
// contracts and SLA presets answer it.
type SeatPlan interface {
	SeatsFor(ctx context.Context, customerID string, at time.Time) (seats int, limited bool, err error)
}

// seatsFull is the SQLSTATE the portal_seat_check trigger raises
// (migration 00018).
const seatsFull = "VG001"

// ReserveSeatTx is called in the transaction that adds an active customer
// token or console user, just before the INSERT: it writes the plan's
// number of seats for customerID at at into portal_seat_limits, which
// locks the customer's row until tx ends, and refuses (ErrNoSeats) when
// the seats are taken. Staff roles take no seat. The database's trigger
// enforces the same limit on the INSERT itself, so nothing overshoots,
// even a writer that forgot to call this.
func ReserveSeatTx(ctx context.Context, tx *sqlx.Tx, plan SeatPlan, role, customerID string, at time.Time) error {
	if role != RoleCustomer || plan == nil {
		return nil
	}
	seats, limited, err := plan.SeatsFor(ctx, customerID, at)
	if err != nil {
		return err
	}
	var limit any
	if limited {
		limit = seats
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO portal_seat_limits (customer_id, seats, set_at) VALUES ($1, $2, $3)
		ON CONFLICT (customer_id) DO UPDATE SET seats = EXCLUDED.seats, set_at = EXCLUDED.set_at`, customerID, limit, at); err != nil {
		return fmt.Errorf("seats of %s: %w", customerID, err)
	}
	if !limited {
		return nil
	}
	var used int
	// API tokens and console users share the plan's seats.
	if err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM api_tokens WHERE role = 'customer' AND customer_id = $1 AND revoked_at IS NULL) +
		(SELECT count(*) FROM console_users WHERE role = 'customer' AND customer_id = $1 AND disabled_at IS NULL)`,
		customerID).Scan(&used); err != nil {
		return fmt.Errorf("seats of %s: %w", customerID, err)
	}
	if used >= seats {
		return fmt.Errorf("%w: customer %s's plan allows %d portal users and %d tokens or console users are active (revoke or disable one first)",
			ErrNoSeats, customerID, seats, used)
	}
	return nil
}

// SeatRefusal is ErrNoSeats when err is the database refusing a seat
// (its wording never reaches a user), and err otherwise.
func SeatRefusal(err error, customerID string) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == seatsFull {
		return fmt.Errorf("%w: customer %s's plan has every portal seat taken (revoke or disable one first)", ErrNoSeats, customerID)
	}
	return err
}
