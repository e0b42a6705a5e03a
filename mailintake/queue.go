package mailintake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// Errors the API answers with their status (httpx.Problem); an invalid
// request is told as "invalid request: <why>".
var (
	ErrNotFound = httpx.Kind(http.StatusNotFound, "not_found", "mailintake: message not found in the queue", "")
	ErrInvalid  = httpx.Kind(http.StatusBadRequest, "invalid_request", "mailintake: invalid request", "invalid request")
)

// Queued is a message waiting for the NOC: a sender nobody knows, or a
// message that could not be parsed (its raw text is kept).
type Queued struct {
	ID         int64     `json:"id"`
	Mailbox    string    `json:"mailbox"`
	Status     string    `json:"status"` // unmatched or unparseable
	Sender     string    `json:"sender"`
	Subject    string    `json:"subject"`
	Reason     string    `json:"reason,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Size       int       `json:"size_bytes"`
	Excerpt    string    `json:"excerpt,omitempty"` // the text, or the start of the raw message
}

// Queue lists the messages waiting for the NOC, oldest first (at most limit).
func (in *Intake) Queue(ctx context.Context, limit int) ([]Queued, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Only the start of each message is read for its excerpt.
	rows, err := in.db.QueryContext(ctx, `SELECT id, mailbox, status, sender, subject, reason, received_at, length(raw), substring(raw from 1 for 1048576)
		FROM inbound_mail WHERE status IN ('unmatched', 'unparseable') ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("mailintake: queue: %w", err)
	}
	defer rows.Close()
	out := []Queued{}
	for rows.Next() {
		var q Queued
		var raw []byte
		if err := rows.Scan(&q.ID, &q.Mailbox, &q.Status, &q.Sender, &q.Subject, &q.Reason, &q.ReceivedAt, &q.Size, &raw); err != nil {
			return nil, fmt.Errorf("mailintake: queue: %w", err)
		}
		if m, err := Parse(raw); err == nil {
			q.Excerpt = truncate(m.Text, 2000)
		} else {
			q.Excerpt = truncate(clean(string(raw)), 2000)
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// lockQueued locks a waiting message.
func lockQueued(ctx context.Context, tx *sqlx.Tx, id int64) (status string, raw []byte, received time.Time, err error) {
	err = tx.QueryRowContext(ctx, `SELECT status, raw, received_at FROM inbound_mail WHERE id = $1 AND status IN ('unmatched', 'unparseable')
		FOR UPDATE`, id).Scan(&status, &raw, &received)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return status, raw, received, err
}

// Assign makes a waiting message a ticket of customerID, opened at its
// receipt instant, and acknowledges it to the sender now that the NOC
// vouched for them. An unparseable message cannot be assigned.
func (in *Intake) Assign(ctx context.Context, id int64, customerID, by string) (Outcome, error) {
	var out Outcome
	now := in.now()
	err := in.inTx(ctx, "assign message", func(ctx context.Context, tx *sqlx.Tx) error {
		status, raw, received, err := lockQueued(ctx, tx, id)
		if err != nil {
			return err
		}
		if status == StatusUnparseable {
			return ErrInvalid.Errorf("an unparseable message cannot become a ticket; discard it")
		}
		m, err := Parse(raw)
		if err != nil {
			return ErrInvalid.Errorf("%v", err)
		}
		lang, err := assets.LanguageTx(ctx, tx, customerID)
		if errors.Is(err, assets.ErrNotFound) {
			return ErrInvalid.Errorf("unknown customer %q", customerID)
		}
		if err != nil {
			return err
		}
		ein, refused := emailInput(m, customerID, received)
		t, err := in.tickets.OpenFromEmailTx(ctx, tx, ein, nil)
		if err != nil {
			return err
		}
		if err := in.tickets.AcknowledgeEmailTx(ctx, tx, t, m.From, lang, now); err != nil {
			return err
		}
		out = Outcome{Status: StatusAssigned, TicketID: t.ID, Ticket: t.Number, Reason: joinReasons("assigned by "+by, refused)}
		_, err = tx.ExecContext(ctx, `UPDATE inbound_mail SET status = 'assigned', customer_id = $2, ticket_id = $3, handled_by = $4, handled_at = $5,
			reason = $6 WHERE id = $1`, id, customerID, t.ID, truncate(by, 200), now, truncate(out.Reason, 1000))
		return err
	})
	return out, err
}

// Discard takes a waiting message out of the queue; its row stays.
func (in *Intake) Discard(ctx context.Context, id int64, by string) error {
	now := in.now()
	return in.inTx(ctx, "discard message", func(ctx context.Context, tx *sqlx.Tx) error {
		if _, _, _, err := lockQueued(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE inbound_mail SET status = 'discarded', handled_by = $2, handled_at = $3 WHERE id = $1`,
			id, truncate(by, 200), now)
		return err
	})
}
