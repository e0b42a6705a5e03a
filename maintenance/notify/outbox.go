package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Row is one outbox row: one message on one channel to one recipient.
// TicketID 0 is a message about no ticket (a monthly report); Payload nil
// is an empty JSON object.
type Row struct {
	Key, Channel, Recipient string
	TicketID                int64
	Subject, Body           string
	Payload                 []byte
	At                      time.Time
}

// Put writes r into the outbox in the caller's transaction; the unique
// (event_key, channel, recipient) makes a repeated event a no-op, and
// added says whether this call wrote the row.
func Put(ctx context.Context, tx *sqlx.Tx, r Row) (added bool, err error) {
	var ticket any
	if r.TicketID != 0 {
		ticket = r.TicketID
	}
	if r.Payload == nil {
		r.Payload = []byte("{}")
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (event_key, channel, recipient, ticket_id, subject, body, payload, created_at, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (event_key, channel, recipient) DO NOTHING`,
		r.Key, r.Channel, r.Recipient, ticket, r.Subject, r.Body, r.Payload, r.At)
	if err != nil {
		return false, fmt.Errorf("notify %s to %s: %w", r.Key, r.Recipient, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// EnqueueTicket writes the notifications of an event of ticket t into the
// outbox, in the caller's transaction: one e-mail per customer contact
// address and one webhook per URL of webhooks.
func EnqueueTicket(ctx context.Context, tx *sqlx.Tx, key string, webhooks []string, t Ticket, n Notice, at time.Time) error {
	c, err := loadContext(ctx, tx, &t)
	if err != nil {
		return fmt.Errorf("notify %s: %w", key, err)
	}
	if n.At.IsZero() {
		n.At = at
	}
	m := render(n, &t, c)
	payload, err := json.Marshal(map[string]any{"event": key, "kind": n.Kind, "ticket": t.Number, "ticket_id": t.ID,
		"customer": t.CustomerID, "site": t.SiteID, "devices": t.DeviceIDs, "severity": t.Severity, "status": t.Status,
		"response_due_at": t.ResponseDueAt, "subject": m.Subject, "text": m.Body, "at": at})
	if err != nil {
		return fmt.Errorf("notify %s: %w", key, err)
	}
	insert := func(channel, recipient string) error {
		_, err := Put(ctx, tx, Row{Key: key, Channel: channel, Recipient: recipient, TicketID: t.ID,
			Subject: m.Subject, Body: m.Body, Payload: payload, At: at})
		return err
	}
	// The NOC's own incidents reach its webhooks only, never the hospital.
	if strings.TrimSpace(c.NotifyEmail) != "" && !t.NOCOnly {
		addrs, err := mail.ParseAddressList(c.NotifyEmail)
		if err != nil {
			return fmt.Errorf("notify %s: customer %s notify_email: %w", key, t.CustomerID, err)
		}
		for _, a := range addrs {
			if err := insert("email", a.Address); err != nil {
				return err
			}
		}
	}
	for _, u := range webhooks {
		if err := insert("webhook", u); err != nil {
			return err
		}
	}
	return nil
}

// Mailer sends one e-mail (SMTP is the real one).
type Mailer interface {
	Send(ctx context.Context, to string, msg Email) error
}

// Email is one outgoing message.
type Email struct {
	Subject, Body string
	// ID is the outbox row's Message-ID, stable per (event, recipient):
	// receivers can drop a duplicate from the at-least-once window by it,
	// and their replies name it in In-Reply-To/References.
	ID   string
	Date time.Time

	// Calendar is an iCalendar object sent with the text (a dispatch's
	// invitation), CalendarMethod its iTIP method (REQUEST, CANCEL). Both
	// come from the row's payload fields "calendar" and "calendar_method".
	Calendar, CalendarMethod string
}

// Poster delivers one webhook (Webhooks is the real one).
type Poster interface {
	Post(ctx context.Context, url, eventKey string, payload []byte, at time.Time) error
}

// Sender delivers the outbox. Each row is claimed with FOR UPDATE SKIP
// LOCKED, sent while its lock is held, and marked sent in the same
// transaction: several senders never send a row twice, and a crash before
// the commit leaves the row unsent, to be sent again. That re-send after a
// delivery whose commit was lost is the only at-least-once window: between
// the peer accepting the message and the COMMIT of one UPDATE, a few
// milliseconds. Failures are retried with exponential backoff; nothing is
// ever dropped.
type Sender struct {
	db    *sqlx.DB
	mail  Mailer
	hooks Poster
	log   *slog.Logger
	// Backoff is the first retry delay, doubled per attempt up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
}

// NewSender returns an outbox sender; mail or hooks may be nil when that
// channel is not configured (its rows then wait, with last_error saying so).
func NewSender(db *sqlx.DB, mail Mailer, hooks Poster, log *slog.Logger) *Sender {
	return &Sender{db: db, mail: mail, hooks: hooks, log: log, Backoff: 30 * time.Second, MaxBackoff: time.Hour}
}

// ErrChannelOff means a row's channel has no configured transport.
var ErrChannelOff = errors.New("notify: notification channel not configured")

func (s *Sender) backoff(attempts int) time.Duration {
	d := s.Backoff
	for i := 1; i < attempts && d < s.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.MaxBackoff)
}

// SendDue sends every row due at now and returns how many were sent.
func (s *Sender) SendDue(ctx context.Context, now time.Time) (int, error) {
	sent := 0
	var skip []int64
	for {
		id, ok, err := s.one(ctx, now, skip)
		if err != nil {
			return sent, err
		}
		if id == 0 {
			return sent, nil
		}
		if ok {
			sent++
		} else {
			skip = append(skip, id) // failed: retried on a later call, after its backoff
		}
	}
}

func (s *Sender) one(ctx context.Context, now time.Time, skip []int64) (int64, bool, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("notify: outbox: begin: %w", err)
	}
	defer tx.Rollback()
	var id int64
	var key, channel, recipient, subject, body, msgID string
	var payload []byte
	var attempts int
	err = tx.QueryRowContext(ctx, `SELECT id, event_key, channel, recipient, subject, body, payload, attempts, message_id FROM outbox
		WHERE sent_at IS NULL AND next_attempt_at <= $1 AND NOT (id = ANY ($2))
		ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`, now, int64s(skip)).
		Scan(&id, &key, &channel, &recipient, &subject, &body, &payload, &attempts, &msgID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("notify: outbox: claim: %w", err)
	}
	var sendErr error
	switch {
	case channel == "email" && s.mail != nil:
		e := Email{Subject: subject, Body: body, ID: msgID, Date: now}
		var cal struct {
			Calendar string `json:"calendar"`
			Method   string `json:"calendar_method"`
		}
		if json.Unmarshal(payload, &cal) == nil {
			e.Calendar, e.CalendarMethod = cal.Calendar, cal.Method
		}
		sendErr = s.mail.Send(ctx, recipient, e)
	case channel == "webhook" && s.hooks != nil:
		sendErr = s.hooks.Post(ctx, recipient, key, payload, now)
	default:
		sendErr = fmt.Errorf("%w: %s", ErrChannelOff, channel)
	}
	if sendErr != nil {
		attempts++
		next := now.Add(s.backoff(attempts))
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $1`,
			id, attempts, truncate(sendErr.Error(), 1000), next); err != nil {
			return id, false, fmt.Errorf("notify: outbox: record failure of %d: %w", id, err)
		}
		if err := tx.Commit(); err != nil {
			return id, false, fmt.Errorf("notify: outbox: record failure of %d: %w", id, err)
		}
		// One row per recipient: the row's id tells apart the lines of one
		// event without logging addresses (a webhook URL may hold a secret).
		s.log.Warn("notification failed, will retry", "event", key, "channel", channel, "outbox_id", id, "attempts", attempts, "next", next, "err", sendErr)
		return id, false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET sent_at = $2, attempts = attempts + 1, last_error = '' WHERE id = $1`, id, now); err != nil {
		return id, false, fmt.Errorf("notify: outbox: mark %d sent: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return id, false, fmt.Errorf("notify: outbox: mark %d sent: %w", id, err)
	}
	return id, true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func int64s(v []int64) pq.Int64Array {
	if v == nil {
		return pq.Int64Array{}
	}
	return pq.Int64Array(v)
}
