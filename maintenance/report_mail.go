package maintenance

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// EnqueueCustomerEmail puts one e-mail per contact address of customerID
// into the outbox under key, unless rows of key are there already; build
// writes the message only then (a report is costly to build). The unique
// (event_key, channel, recipient) makes a concurrent or repeated call a
// no-op. It returns how many rows it added (0 also when the customer has no
// address).
func (s *Store) EnqueueCustomerEmail(ctx context.Context, key, customerID string, build func() (subject, body string, err error), at time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // build reads a whole month
	defer cancel()
	added := 0
	err := s.inTx(ctx, "enqueue "+key, func(tx *sqlx.Tx) error {
		var addrs string
		if err := tx.GetContext(ctx, &addrs, `SELECT notify_email FROM customers WHERE id = $1`, customerID); err != nil {
			return fmt.Errorf("customer %s: %w", customerID, err)
		}
		if strings.TrimSpace(addrs) == "" {
			return nil
		}
		list, err := mail.ParseAddressList(addrs)
		if err != nil {
			return fmt.Errorf("customer %s notify_email: %w", customerID, err)
		}
		var exists bool
		if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM outbox WHERE event_key = $1)`, key); err != nil {
			return fmt.Errorf("look up: %w", err)
		}
		if exists {
			return nil
		}
		subject, body, err := build()
		if err != nil {
			return err
		}
		for _, a := range list {
			res, err := tx.ExecContext(ctx, `INSERT INTO outbox (event_key, channel, recipient, subject, body, payload, created_at, next_attempt_at)
				VALUES ($1, 'email', $2, $3, $4, '{}', $5, $5) ON CONFLICT (event_key, channel, recipient) DO NOTHING`, key, a.Address, subject, body, at)
			if err != nil {
				return fmt.Errorf("to %s: %w", a.Address, err)
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	return added, err
}
