package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Ref names a ticket: its id, its number and its customer.
type Ref struct {
	ID         int64
	Number     string
	CustomerID string
}

// RefTx reads the number and customer of ticket id in the caller's
// transaction, without locking it (intake names the ticket an alert or a
// message belongs to); ErrNotFound when there is none.
func (s *Store) RefTx(ctx context.Context, tx *sqlx.Tx, id int64) (Ref, error) {
	r := Ref{ID: id}
	err := tx.QueryRowContext(ctx, `SELECT number, customer_id FROM tickets WHERE id = $1`, id).Scan(&r.Number, &r.CustomerID)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("maintenance: ticket %d: %w", id, err)
	}
	return r, nil
}
