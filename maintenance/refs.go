package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
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

// languageOf is the language customerID reads its tickets in: the words of
// the core's own timeline entries are written in it.
func languageOf(ctx context.Context, tx *sqlx.Tx, customerID string) (string, error) {
	c, err := assets.AddresseeTx(ctx, tx, customerID)
	if err != nil {
		return "", fmt.Errorf("language of %s: %w", customerID, err)
	}
	return c.Language, nil
}
