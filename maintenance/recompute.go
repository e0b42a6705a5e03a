package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/maintenance/notify"
)

// RecomputeReason is the timeline text of a ticket whose cached due instants
// moved when they were recomputed on upgrade.
const RecomputeReason = notify.SLARecomputedText

// RecomputeOpen recomputes the cached due instants of every open ticket
// from its rows and, for each ticket whose instants moved, records a
// timeline entry (kind sla_recomputed) with the old and new instants. It is
// idempotent: a second run finds nothing to move. It returns how many
// tickets moved.
func (s *Store) RecomputeOpen(ctx context.Context, now time.Time) (int, error) {
	var ids []int64
	listCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.db.SelectContext(listCtx, &ids, `SELECT id FROM tickets WHERE closed_at IS NULL ORDER BY id`); err != nil {
		return 0, fmt.Errorf("maintenance: recompute: list open tickets: %w", err)
	}
	moved := 0
	var errs []error
	for _, id := range ids {
		err := s.inTxWithin(ctx, 10*time.Second, fmt.Sprintf("recompute ticket %d", id), func(ctx context.Context, tx *sqlx.Tx) error {
			t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = $1 AND closed_at IS NULL FOR UPDATE`, id))
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			before := [4]*time.Time{t.ResponseDueAt, t.ResponseWarnAt, t.ResolutionDueAt, t.ReportDueAt}
			if err := s.recompute(ctx, tx, &t); err != nil {
				return err
			}
			after := [4]*time.Time{t.ResponseDueAt, t.ResponseWarnAt, t.ResolutionDueAt, t.ReportDueAt}
			if sameInstants(before, after) {
				return nil
			}
			moved++
			names := [4]string{"response_due_at", "response_warn_at", "resolution_due_at", "report_due_at"}
			data := map[string]any{"reason": "wall_clock_from_opening"}
			for i := range names {
				data[names[i]] = map[string]any{"from": before[i], "to": after[i]}
			}
			return addEvent(ctx, tx, t.ID, now, author("vigia", "sla"), "sla_recomputed", RecomputeReason, data)
		})
		if err != nil {
			if ctx.Err() != nil {
				return moved, err
			}
			errs = append(errs, err)
		}
	}
	return moved, errors.Join(errs...)
}

func sameInstants(a, b [4]*time.Time) bool {
	for i := range a {
		switch {
		case a[i] == nil && b[i] == nil:
		case a[i] == nil || b[i] == nil || !a[i].Equal(*b[i]):
			return false
		}
	}
	return true
}

// inTxWithin is inTx bounded by a deadline of d.
func (s *Store) inTxWithin(ctx context.Context, d time.Duration, what string, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return s.inTx(ctx, what, func(tx *sqlx.Tx) error { return fn(ctx, tx) })
}
