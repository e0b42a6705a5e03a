package maintenance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// What e-mail intake (a package of its own, upstream of tickets) does to
// tickets, each in the caller's transaction so that the raw message it
// stores commits with the ticket or comment it caused, or not at all.

// SourceEmail marks a ticket opened from an e-mail.
const SourceEmail = "email"

// EmailSeverity is the severity of a ticket opened from an e-mail, for the
// NOC to triage: no policy sets another default.
const EmailSeverity = 3

// EmailInput is a message from a customer's contact, as a ticket needs it.
type EmailInput struct {
	CustomerID  string
	From        string // the sender's address: the requester
	Title       string // the subject
	Text        string // the text part (HTML already converted)
	ReceivedAt  time.Time
	MessageID   string
	Attachments []Attachment
}

func emailAuthor(from string) string { return author(from, "email") }

// cut trims s to at most n bytes of valid UTF-8.
func cut(s string, n int) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// OpenFromEmailTx opens a ticket from a message, at the server's receipt
// instant, with its attachments. previous links it to an earlier ticket
// (a reply after the reopen window).
func (s *Store) OpenFromEmailTx(ctx context.Context, tx *sqlx.Tx, in EmailInput, previous *int64) (Ticket, error) {
	title := cut(in.Title, 200)
	if title == "" {
		lang, err := assets.LanguageTx(ctx, tx, in.CustomerID)
		if err != nil {
			return Ticket{}, fmt.Errorf("open ticket from e-mail: %w", err)
		}
		title = notify.UntitledTitle(lang)
	}
	data := map[string]any{"message_id": in.MessageID, "from": in.From}
	if previous != nil {
		data["previous_ticket_id"] = *previous
	}
	who := emailAuthor(in.From)
	t, ok, err := s.open(ctx, tx, openInput{CustomerID: in.CustomerID, Title: title, Description: cut(in.Text, 100000),
		Requester: cut(in.From, 254), Severity: EmailSeverity, Source: SourceEmail, PreviousTicketID: previous,
		OpenedAt: in.ReceivedAt, Author: who, Data: data})
	if err == nil && !ok {
		err = errors.New("ticket not inserted")
	}
	if err != nil {
		return t, fmt.Errorf("open ticket from e-mail: %w", err)
	}
	if err := AddAttachmentsTx(ctx, tx, t.ID, t.CustomerID, who, in.Attachments, in.ReceivedAt); err != nil {
		return t, err
	}
	return t, nil
}

// FindTicketTx locks a ticket by number within one customer: another
// customer's number is ErrNotFound, as if it did not exist.
func (s *Store) FindTicketTx(ctx context.Context, tx *sqlx.Tx, customerID, number string) (Ticket, error) {
	if customerID == "" {
		return Ticket{}, ErrNotFound
	}
	return lockTicket(ctx, tx, Scope{CustomerID: customerID}, number)
}

// ReplyResult says what a contact's reply did to its ticket.
type ReplyResult struct {
	Ticket         Ticket
	Resumed        bool    // the customer pause ended at the reply
	ClosureStopped bool    // awaiting confirmation: auto-close and contacts stopped
	Linked         *Ticket // closed past the reopen window: the new ticket
}

// ReplyTx applies a contact's reply to ticket (locked by FindTicketTx or
// found by its Message-ID):
//   - a comment by the contact, with the attachments;
//   - waiting on the customer: the pause ends at the reply's receipt;
//   - solved, awaiting confirmation: the pre-closure contacts and the
//     auto-close (seed 003) stop, and the engineer sees why;
//   - closed and past the policy's reopen window (or the policy never
//     reopens): a new ticket, linked to the old one (seed 003 "deberá
//     levantar un nuevo ticket"); within the window, a comment.
func (s *Store) ReplyTx(ctx context.Context, tx *sqlx.Tx, ticketID int64, in EmailInput) (ReplyResult, error) {
	var r ReplyResult
	t, err := s.LockTx(ctx, tx, ticketID)
	if err != nil {
		return r, err
	}
	if t.CustomerID != in.CustomerID {
		return r, ErrNotFound.Errorf("ticket %s is not of customer %s", t.Number, in.CustomerID)
	}
	at := in.ReceivedAt
	if t.Status == StatusClosed && !s.reopenable(t, at) {
		linked, err := s.OpenFromEmailTx(ctx, tx, in, &t.ID)
		if err != nil {
			return r, err
		}
		if err := addEvent(ctx, tx, t.ID, at, emailAuthor(in.From), "linked_ticket",
			"reply after the reopen window: new ticket "+linked.Number, map[string]any{"next_ticket": linked.Number, "next_ticket_id": linked.ID}); err != nil {
			return r, err
		}
		r.Ticket, r.Linked = t, &linked
		return r, nil
	}
	who := emailAuthor(in.From)
	text := cut(in.Text, 10000)
	if text == "" {
		text = cut(in.Title, 200)
	}
	if err := addEvent(ctx, tx, t.ID, at, who, "comment", text, map[string]any{"message_id": in.MessageID, "source": SourceEmail}); err != nil {
		return r, err
	}
	if err := AddAttachmentsTx(ctx, tx, t.ID, t.CustomerID, who, in.Attachments, at); err != nil {
		return r, err
	}
	switch {
	case t.Status == StatusPending && t.PendingReason == "customer":
		if err := s.endCustomerPause(ctx, tx, &t, who, at); err != nil {
			return r, err
		}
		r.Resumed = true
	case t.Status == StatusSolved:
		if err := s.stopClosureOnReply(ctx, tx, &t, who, at); err != nil {
			return r, err
		}
		r.ClosureStopped = true
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET updated_at = GREATEST(updated_at, $2) WHERE id = $1`, t.ID, at); err != nil {
		return r, err
	}
	if err := s.recompute(ctx, tx, &t); err != nil {
		return r, err
	}
	r.Ticket, err = s.LockTx(ctx, tx, t.ID)
	return r, err
}

// reopenable reports whether the customer may still reopen a closed
// ticket at at, the same rule as the reopen action.
func (s *Store) reopenable(t Ticket, at time.Time) bool {
	p, err := s.policies.Lookup(t.SLAPolicy)
	if err != nil || !p.Closure.Reopen || t.CloseReason == CloseMisuse {
		return false
	}
	limit, ok := reopenLimit(p, &t)
	return !ok || !at.After(limit)
}

// reopenLimit is the last instant a customer may reopen a closed ticket
// (seed 003: 5 business days after the solution); ok is false when the
// policy sets no such limit.
func reopenLimit(p sla.Policy, t *Ticket) (time.Time, bool) {
	n := p.Closure.ReopenWithinBusinessDays
	if n <= 0 || t.SolvedAt == nil {
		return time.Time{}, false
	}
	return p.Calendar().AddDays(*t.SolvedAt, n), true
}

// endCustomerPause ends a pause waiting on the customer at the instant
// their answer arrived: the clock resumes then, not when it was read.
func (s *Store) endCustomerPause(ctx context.Context, tx *sqlx.Tx, t *Ticket, who string, at time.Time) error {
	if err := endPause(ctx, tx, t.ID, at, who); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'in_progress', pending_reason = NULL WHERE id = $1`, t.ID); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	t.Status, t.PendingReason = StatusInProgress, ""
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	return addEvent(ctx, tx, t.ID, at, who, "resumed", notify.EmailAnsweredText(lang), map[string]any{"reason": "customer"})
}

// stopClosureOnReply cancels the pre-closure contacts and the auto-close
// of a solution the customer answered: the answer may say the problem
// persists, and only the engineer can tell.
func (s *Store) stopClosureOnReply(ctx context.Context, tx *sqlx.Tx, t *Ticket, who string, at time.Time) error {
	if err := cancelTasks(ctx, tx, t.ID, at); err != nil {
		return err
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	return addEvent(ctx, tx, t.ID, at, who, "customer_replied", notify.ReplyStopsClosureText(lang), map[string]any{"round": t.SolveRound})
}

// TicketOfMessageIDsTx finds the ticket one of our outgoing Message-IDs
// belongs to (the In-Reply-To and References of a reply).
func (s *Store) TicketOfMessageIDsTx(ctx context.Context, tx *sqlx.Tx, ids []string) (int64, bool, error) {
	return notify.TicketOfMessageIDsTx(ctx, tx, ids)
}

// MarkBouncedTx records that the delivery of our message messageID to
// recipient failed (a bounce named it) and shows it on the ticket. found is
// false when the Message-ID is not ours.
func (s *Store) MarkBouncedTx(ctx context.Context, tx *sqlx.Tx, messageID, recipient, reason string, at time.Time) (bool, error) {
	b, found, err := notify.MarkBouncedTx(ctx, tx, messageID, recipient, cut(reason, 1000), at)
	if err != nil || !found {
		return found, err
	}
	if b.TicketID != 0 {
		ref, err := s.RefTx(ctx, tx, b.TicketID)
		if err != nil {
			return true, err
		}
		lang, err := assets.LanguageTx(ctx, tx, ref.CustomerID)
		if err != nil {
			return true, err
		}
		if err := addEvent(ctx, tx, b.TicketID, at, author("vigia", "mail"), "delivery_failed",
			notify.DeliveryFailedText(lang, b.Recipient, cut(reason, 500)), map[string]any{"recipient": b.Recipient, "message_id": messageID}); err != nil {
			return true, err
		}
	}
	return true, nil
}

// AcknowledgeEmailTx has notify acknowledge a request received by e-mail
// to its sender, in their language.
func (s *Store) AcknowledgeEmailTx(ctx context.Context, tx *sqlx.Tx, t Ticket, to, language string, at time.Time) error {
	return notify.EnqueueEmailAck(ctx, tx, t.notice(), to, language, at)
}
