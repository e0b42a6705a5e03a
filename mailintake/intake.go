package mailintake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Tickets is what intake needs of the service desk (maintenance.Store).
type Tickets interface {
	OpenFromEmailTx(ctx context.Context, tx *sqlx.Tx, in maintenance.EmailInput, previous *int64) (maintenance.Ticket, error)
	FindTicketTx(ctx context.Context, tx *sqlx.Tx, customerID, number string) (maintenance.Ticket, error)
	ReplyTx(ctx context.Context, tx *sqlx.Tx, ticketID int64, in maintenance.EmailInput) (maintenance.ReplyResult, error)
	TicketOfMessageIDsTx(ctx context.Context, tx *sqlx.Tx, ids []string) (int64, bool, error)
	MarkBouncedTx(ctx context.Context, tx *sqlx.Tx, messageID, recipient, reason string, at time.Time) (bool, error)
	AcknowledgeEmailTx(ctx context.Context, tx *sqlx.Tx, t maintenance.Ticket, to, language string, at time.Time) error
	RefTx(ctx context.Context, tx *sqlx.Tx, id int64) (maintenance.Ref, error)
}

// Senders finds whose an address is (assets.Store).
type Senders interface {
	MatchSender(ctx context.Context, address string) (assets.Sender, error)
}

// Intake acts on messages read from mailboxes.
type Intake struct {
	db      *sqlx.DB
	tickets Tickets
	senders Senders
	now     func() time.Time
	log     *slog.Logger
	read    *prometheus.CounterVec // nil until RegisterMetrics
}

// RegisterMetrics counts the messages read on reg, by what became of them:
// vigia_mail_messages_total{status} (a duplicate counts as "duplicate").
func (in *Intake) RegisterMetrics(reg prometheus.Registerer) {
	in.read = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_mail_messages_total",
		Help: "E-mail messages read from the intake mailboxes, by outcome (ticket, comment, unmatched, noise, bounce, unparseable, duplicate)."},
		[]string{"status"})
	reg.MustRegister(in.read)
}

// New returns an intake over db.
func New(db *sqlx.DB, tickets Tickets, senders Senders, now func() time.Time, log *slog.Logger) *Intake {
	return &Intake{db: db, tickets: tickets, senders: senders, now: now, log: log}
}

// Envelope is one message as the mailbox holds it.
type Envelope struct {
	Mailbox     string // imap://user@host:port/MAILBOX, no secret
	UIDValidity uint32
	UID         uint32
	Received    time.Time // INTERNALDATE
	Raw         []byte
}

// Message statuses (inbound_mail.status).
const (
	StatusTicket      = "ticket"
	StatusComment     = "comment"
	StatusUnmatched   = "unmatched"
	StatusNoise       = "noise"
	StatusBounce      = "bounce"
	StatusUnparseable = "unparseable"
	StatusAssigned    = "assigned"
	StatusDiscarded   = "discarded"
)

// Outcome is what became of a message.
type Outcome struct {
	Status    string
	Duplicate bool // already stored: read before, nothing done again
	TicketID  int64
	Ticket    string // number
	Reason    string
}

func (in *Intake) inTx(ctx context.Context, what string, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.InTx(ctx, in.db, func(tx *sqlx.Tx) error { return fn(ctx, tx) }); err != nil {
		return fmt.Errorf("mailintake: %s: %w", what, err)
	}
	return nil
}

// Process stores one message and acts on it in one transaction. A message
// stored before (same Message-ID, or same mailbox UID) is a Duplicate and
// nothing is done again: the caller may then flag and archive it.
func (in *Intake) Process(ctx context.Context, env Envelope) (Outcome, error) {
	var out Outcome
	raw := env.Raw
	if len(raw) > maxRawBytes {
		raw = raw[:maxRawBytes]
	}
	msg, perr := Parse(raw)
	if perr == nil && len(env.Raw) > maxRawBytes {
		perr = fmt.Errorf("%w: larger than %d MiB", errUnparseable, maxRawBytes>>20)
	}
	now := in.now()
	err := in.store(ctx, env, raw, msg, perr, now, &out)
	if err != nil && ctx.Err() == nil {
		// A message the ticket rules cannot take (a poison message) must
		// not block the mailbox: keep it raw for the NOC. If the database
		// itself is the trouble, this fails too and the message is read
		// again later.
		in.log.Error("e-mail could not be processed; kept for the NOC", "mailbox", env.Mailbox, "uid", env.UID, "err", err)
		out = Outcome{}
		err = in.store(ctx, env, raw, msg, errProcessing, now, &out)
	}
	if err != nil {
		return out, err
	}
	if in.read != nil {
		status := out.Status
		if out.Duplicate {
			status = "duplicate"
		}
		in.read.WithLabelValues(status).Inc()
	}
	if !out.Duplicate {
		in.log.Info("e-mail read", "mailbox", env.Mailbox, "uid", env.UID, "status", out.Status, "ticket", out.Ticket, "reason", out.Reason)
	}
	return out, nil
}

var errProcessing = errors.New("could not be processed (see the log); kept as received")

// store writes the raw message and, unless perr says it cannot be read,
// acts on it, in one transaction.
func (in *Intake) store(ctx context.Context, env Envelope, raw []byte, msg *Message, perr error, now time.Time, out *Outcome) error {
	return in.inTx(ctx, "process message", func(ctx context.Context, tx *sqlx.Tx) error {
		var msgID any
		sender, subject := "", ""
		if msg != nil {
			sender, subject = truncate(msg.From, 254), truncate(msg.Subject, 500)
			if msg.MessageID != "" {
				msgID = truncate(msg.MessageID, 500)
			}
		}
		var rowID int64
		err := tx.QueryRowContext(ctx, `INSERT INTO inbound_mail (mailbox, uid_validity, uid, message_id, received_at, sender, subject, raw,
			status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'noise', $9) ON CONFLICT DO NOTHING RETURNING id`,
			env.Mailbox, int64(env.UIDValidity), int64(env.UID), msgID, env.Received, sender, subject, raw, now).Scan(&rowID)
		if errors.Is(err, sql.ErrNoRows) {
			out.Duplicate = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("store raw message: %w", err)
		}
		if perr != nil {
			out.Status, out.Reason = StatusUnparseable, perr.Error()
		} else if *out, err = in.act(ctx, tx, msg, env.Received, now); err != nil {
			return err
		}
		var customer any
		if out.TicketID != 0 {
			ref, err := in.tickets.RefTx(ctx, tx, out.TicketID)
			if err != nil {
				return err
			}
			customer = ref.CustomerID
		}
		_, err = tx.ExecContext(ctx, `UPDATE inbound_mail SET status = $2, reason = $3, ticket_id = NULLIF($4, 0), customer_id = $5 WHERE id = $1`,
			rowID, out.Status, truncate(out.Reason, 1000), out.TicketID, customer)
		return err
	})
}

// act decides what a parsed message is and does it.
func (in *Intake) act(ctx context.Context, tx *sqlx.Tx, m *Message, received, now time.Time) (Outcome, error) {
	if m.MessageID != "" && notify.OwnMessageID("<"+m.MessageID+">") {
		return Outcome{Status: StatusNoise, Reason: "our own message came back"}, nil
	}
	if m.Report != nil {
		return in.bounce(ctx, tx, m, now)
	}
	if why := m.Noise(); why != "" {
		return Outcome{Status: StatusNoise, Reason: why}, nil
	}
	who, err := in.senders.MatchSender(ctx, m.From)
	if errors.Is(err, assets.ErrNotFound) {
		// Never answered: a reply to an unknown sender is backscatter.
		return Outcome{Status: StatusUnmatched, Reason: "the sender is no customer's contact or domain"}, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	ein, refused := emailInput(m, who.CustomerID, received)
	ticketID, found, err := in.thread(ctx, tx, m, who.CustomerID)
	if err != nil {
		return Outcome{}, err
	}
	if found {
		r, err := in.tickets.ReplyTx(ctx, tx, ticketID, ein)
		if err != nil {
			return Outcome{}, err
		}
		if r.Linked != nil {
			if err := in.tickets.AcknowledgeEmailTx(ctx, tx, *r.Linked, m.From, who.Contact.Language, now); err != nil {
				return Outcome{}, err
			}
			return Outcome{Status: StatusTicket, TicketID: r.Linked.ID, Ticket: r.Linked.Number,
				Reason: joinReasons("reply after the reopen window of "+r.Ticket.Number, refused)}, nil
		}
		return Outcome{Status: StatusComment, TicketID: r.Ticket.ID, Ticket: r.Ticket.Number, Reason: joinReasons("", refused)}, nil
	}
	t, err := in.tickets.OpenFromEmailTx(ctx, tx, ein, nil)
	if err != nil {
		return Outcome{}, err
	}
	if err := in.tickets.AcknowledgeEmailTx(ctx, tx, t, m.From, who.Contact.Language, now); err != nil {
		return Outcome{}, err
	}
	return Outcome{Status: StatusTicket, TicketID: t.ID, Ticket: t.Number, Reason: joinReasons("", refused)}, nil
}

// thread finds the sender's customer's ticket a message answers: by our
// Message-IDs or an earlier message of the thread in In-Reply-To/References,
// else by a ticket number in the subject. Another customer's ticket is no
// match.
func (in *Intake) thread(ctx context.Context, tx *sqlx.Tx, m *Message, customerID string) (int64, bool, error) {
	if len(m.References) > 0 {
		ours := make([]string, len(m.References))
		for i, id := range m.References {
			ours[i] = "<" + id + ">"
		}
		id, ok, err := in.tickets.TicketOfMessageIDsTx(ctx, tx, ours)
		if err != nil {
			return 0, false, err
		}
		if !ok {
			err := tx.QueryRowContext(ctx, `SELECT ticket_id FROM inbound_mail WHERE message_id = ANY ($1) AND ticket_id IS NOT NULL
				ORDER BY id DESC LIMIT 1`, pq.StringArray(m.References)).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, false, fmt.Errorf("thread by references: %w", err)
			}
			ok = err == nil
		}
		if ok {
			ref, err := in.tickets.RefTx(ctx, tx, id)
			if err != nil {
				return 0, false, fmt.Errorf("thread by references: %w", err)
			}
			if ref.CustomerID == customerID {
				return id, true, nil
			}
		}
	}
	for _, number := range ticketNumberRE.FindAllString(m.Subject, 3) {
		t, err := in.tickets.FindTicketTx(ctx, tx, customerID, number)
		if errors.Is(err, maintenance.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		return t.ID, true, nil
	}
	return 0, false, nil
}

// bounce marks the delivery failures a report names; a report about a
// message that is not ours is noise.
func (in *Intake) bounce(ctx context.Context, tx *sqlx.Tx, m *Message, now time.Time) (Outcome, error) {
	r := m.Report
	if r.OriginalMessageID == "" || !notify.OwnMessageID("<"+r.OriginalMessageID+">") {
		return Outcome{Status: StatusNoise, Reason: "delivery report about a message that is not ours"}, nil
	}
	failed := r.Failed
	if len(failed) == 0 {
		return Outcome{Status: StatusNoise, Reason: "delivery report without a failed recipient"}, nil
	}
	var marked []string
	for _, f := range failed {
		reason := strings.TrimSpace(f.Status + " " + f.Diagnostic)
		ok, err := in.tickets.MarkBouncedTx(ctx, tx, "<"+r.OriginalMessageID+">", f.Address, reason, now)
		if err != nil {
			return Outcome{}, err
		}
		if ok {
			marked = append(marked, f.Address)
		}
	}
	if len(marked) == 0 {
		return Outcome{Status: StatusNoise, Reason: "delivery report naming no recipient of ours"}, nil
	}
	out := Outcome{Status: StatusBounce, Reason: "delivery failed for " + strings.Join(marked, ", ")}
	id, ok, err := in.tickets.TicketOfMessageIDsTx(ctx, tx, []string{"<" + r.OriginalMessageID + ">"})
	if err != nil || !ok {
		return out, err
	}
	ref, err := in.tickets.RefTx(ctx, tx, id)
	if err != nil {
		return Outcome{}, err
	}
	out.TicketID, out.Ticket = ref.ID, ref.Number
	return out, nil
}

// emailInput checks the message's images like portal uploads and lists
// what was not kept (the raw message still holds it).
func emailInput(m *Message, customerID string, received time.Time) (maintenance.EmailInput, []string) {
	in := maintenance.EmailInput{CustomerID: customerID, From: m.From, Title: m.Subject, Text: m.Text, ReceivedAt: received,
		MessageID: m.MessageID}
	refused := append([]string(nil), m.Refused...)
	for _, p := range m.Images {
		a, err := maintenance.CheckAttachment(p.Name, p.Data)
		if err != nil || len(in.Attachments) == maintenance.MaxAttachments {
			refused = append(refused, a.Name)
			continue
		}
		in.Attachments = append(in.Attachments, a)
	}
	return in, refused
}

func joinReasons(reason string, refused []string) string {
	if len(refused) == 0 {
		return reason
	}
	note := "attachments not kept (only PNG or JPEG up to 5 MB, at most 5): " + strings.Join(refused, ", ")
	if reason == "" {
		return note
	}
	return reason + "; " + note
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
