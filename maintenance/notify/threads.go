package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// OwnMessageID reports whether a Message-ID is one Vigía gives its
// outgoing messages (a loop: our own message came back).
func OwnMessageID(id string) bool {
	return strings.HasPrefix(id, "<outbox.") && strings.HasSuffix(id, "@vigia>")
}

// TicketOfMessageIDsTx finds the ticket one of our outgoing Message-IDs
// belongs to (the In-Reply-To and References of a reply).
func TicketOfMessageIDsTx(ctx context.Context, tx *sqlx.Tx, ids []string) (int64, bool, error) {
	if len(ids) == 0 {
		return 0, false, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT ticket_id FROM outbox WHERE message_id = ANY ($1) AND ticket_id IS NOT NULL
		ORDER BY id DESC LIMIT 1`, pq.StringArray(ids)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("notify: ticket of message ids: %w", err)
	}
	return id, true, nil
}

// Bounce is a bounce recorded on our message: the ticket it was about (0
// for none) and the address that failed.
type Bounce struct {
	TicketID  int64
	Recipient string
}

// MarkBouncedTx records that the delivery of our message messageID to
// recipient ("" for any) failed for reason. found is false when the
// Message-ID is not ours.
func MarkBouncedTx(ctx context.Context, tx *sqlx.Tx, messageID, recipient, reason string, at time.Time) (b Bounce, found bool, err error) {
	var ticketID sql.NullInt64
	err = tx.QueryRowContext(ctx, `UPDATE outbox SET bounced_at = COALESCE(bounced_at, $3), bounce_reason = $4
		WHERE message_id = $1 AND channel = 'email' AND ($2 = '' OR lower(recipient) = lower($2)) RETURNING ticket_id, recipient`,
		messageID, recipient, at, reason).Scan(&ticketID, &b.Recipient)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, fmt.Errorf("notify: mark bounce: %w", err)
	}
	b.TicketID = ticketID.Int64
	return b, true, nil
}

// EnqueueEmailAck puts into the outbox the acknowledgement of a request
// received by e-mail, to its sender, in their language, with the ticket
// number in the subject so that a reply threads by subject too.
func EnqueueEmailAck(ctx context.Context, tx *sqlx.Tx, t Ticket, to, language string, at time.Time) error {
	c, err := loadContext(ctx, tx, &t)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", t.Number, err)
	}
	due := ""
	if t.ResponseDueAt != nil {
		due = FormatInstant(*t.ResponseDueAt, c.TimeZone)
	}
	var subject, body string
	if language == "en" {
		subject = fmt.Sprintf("[%s] We received your request: %s", t.Number, t.Title)
		body = fmt.Sprintf("We received your request and opened ticket %s (%s).", t.Number, t.Title)
		if due != "" {
			body += " We will answer before " + due + "."
		}
		body += "\n\nReply to this message to add to the ticket; write a new message for another matter."
	} else {
		subject = fmt.Sprintf("[%s] Recibimos su solicitud: %s", t.Number, t.Title)
		body = fmt.Sprintf("Recibimos su solicitud y abrimos el ticket %s (%s).", t.Number, t.Title)
		if due != "" {
			body += " Le responderemos antes de " + due + "."
		}
		body += "\n\nResponda a este mensaje para agregar información al ticket; escriba un mensaje nuevo para otro tema."
	}
	body += "\n\n— Vigía NOC\n"
	key := fmt.Sprintf("ticket:%s:email-ack", t.Number)
	payload, err := json.Marshal(map[string]any{"event": key, "kind": "email_ack", "ticket": t.Number, "ticket_id": t.ID, "at": at})
	if err != nil {
		return err
	}
	if _, err := Put(ctx, tx, Row{Key: key, Channel: "email", Recipient: to, TicketID: t.ID, Subject: subject, Body: body, Payload: payload, At: at}); err != nil {
		return fmt.Errorf("acknowledge %s: %w", t.Number, err)
	}
	return nil
}
