package notify

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// Outbox queues messages that belong to no other stage's transaction
// (the monthly report's e-mail).
type Outbox struct{ db *sqlx.DB }

// NewOutbox returns the outbox of db.
func NewOutbox(db *sqlx.DB) *Outbox { return &Outbox{db: db} }

// EnqueueCustomerEmail puts one e-mail per contact address of customerID
// into the outbox under key, unless rows of key are there already; build
// writes the message only then (a report is costly to build). The unique
// (event_key, channel, recipient) makes a concurrent or repeated call a
// no-op. It returns how many rows it added (0 also when the customer has no
// address).
func (o *Outbox) EnqueueCustomerEmail(ctx context.Context, key, customerID string, build func() (subject, body string, err error), at time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // build reads a whole month
	defer cancel()
	added := 0
	err := db.InTx(ctx, o.db, func(tx *sqlx.Tx) error {
		a, err := assets.AddresseeTx(ctx, tx, customerID)
		if err != nil {
			return err
		}
		addrs := a.NotifyEmail
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
			ok, err := Put(ctx, tx, Row{Key: key, Channel: "email", Recipient: a.Address, Subject: subject, Body: body, At: at})
			if err != nil {
				return err
			}
			if ok {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return added, fmt.Errorf("notify: enqueue %s: %w", key, err)
	}
	return added, nil
}
