package assets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// NotifyEmail returns the customer's notification addresses as the
// inventory holds them (an RFC 5322 address list, "" for none): who is told
// of the customer's tickets and visits.
func (s *Store) NotifyEmail(ctx context.Context, customerID string) (string, error) {
	var addrs string
	err := s.q.GetContext(ctx, &addrs, `SELECT notify_email FROM customers WHERE id = $1`, customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("assets: notify_email of %s: %w", customerID, err)
	}
	return addrs, nil
}
