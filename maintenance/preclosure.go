package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// plannedTask is one step of a pre-closure protocol.
type plannedTask struct {
	Kind string // call, email, contact, close, end
	Due  time.Time
}

// planClosure turns a policy's pre-closure protocol into dated steps,
// counted from the solution instant solved:
//
//   - seed 000 (call every 3 h for 9 h, then e-mail every 12 h for 24 h,
//     then close as accepted): "every X for Y" is Y/X contacts at the start
//     of each X, so calls at +0 h (the contact at solution), +3 h, +6 h,
//     e-mails at +9 h and +21 h, and the closing at +33 h, when the e-mail
//     window ends. Wall-clock time, as the seed words it.
//   - seed 001 (three attempts on business days): one contact on each of
//     three working days at the solution's local time, the first at the
//     first working instant at or after the solution; then "end": the
//     protocol is over and the NOC closes (the seed names no timeout).
//   - seed 003 (auto-close after 48 h awaiting confirmation): the contact
//     at solution and the closing at +48 h.
//   - a policy with only first_contact at_solution: that contact.
func planClosure(p sla.Policy, solved time.Time) []plannedTask {
	c := p.Closure
	var out []plannedTask
	if c.CallEvery > 0 && c.CallFor > 0 {
		for k := time.Duration(0); k*c.CallEvery < c.CallFor; k++ {
			out = append(out, plannedTask{"call", solved.Add(k * c.CallEvery)})
		}
	}
	if c.EmailEvery > 0 && c.EmailFor > 0 {
		base := solved.Add(c.CallFor)
		for k := time.Duration(0); k*c.EmailEvery < c.EmailFor; k++ {
			out = append(out, plannedTask{"email", base.Add(k * c.EmailEvery)})
		}
	}
	cal := p.Calendar()
	var attemptsEnd time.Time
	if c.ContactAttempts > 0 {
		first := solved
		if c.AttemptsOn == "business_days" {
			first = cal.Next(solved)
		}
		for k := 0; k < c.ContactAttempts; k++ {
			due := first.Add(time.Duration(k) * 24 * time.Hour)
			if c.AttemptsOn == "business_days" {
				due = cal.AddDays(first, k)
			}
			out = append(out, plannedTask{"contact", due})
		}
		attemptsEnd = first.Add(time.Duration(c.ContactAttempts) * 24 * time.Hour)
		if c.AttemptsOn == "business_days" {
			attemptsEnd = cal.AddDays(first, c.ContactAttempts)
		}
	}
	if len(out) == 0 && c.FirstContact == "at_solution" {
		out = append(out, plannedTask{"contact", solved})
	}
	switch {
	case c.OnTimeout == "close_accepted" && c.AutoCloseAfter > 0:
		out = append(out, plannedTask{"close", solved.Add(c.AutoCloseAfter)})
	case c.OnTimeout == "close_accepted":
		end := solved.Add(c.CallFor + c.EmailFor)
		if attemptsEnd.After(end) {
			end = attemptsEnd
		}
		out = append(out, plannedTask{"close", end})
	case !attemptsEnd.IsZero():
		out = append(out, plannedTask{"end", attemptsEnd})
	}
	return out
}

func isContact(kind string) bool { return kind == "call" || kind == "email" || kind == "contact" }

// addContactEvent records contact attempt n on the ticket's timeline.
func addContactEvent(ctx context.Context, tx *sqlx.Tx, t *Ticket, at time.Time, n notify.Notice, due time.Time) error {
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	text := notify.ContactAttemptText(lang, n.Seq, n.Total, n.Channel)
	return addEvent(ctx, tx, t.ID, at, author("vigia", "pre-closure"), "contact_attempt", text,
		map[string]any{"round": n.Round, "seq": n.Seq, "channel": n.Channel, "due_at": due})
}

// PerformDueClosureTask claims one pre-closure task due at or before now,
// whose id is not in skip, and performs it: a contact attempt (timeline
// entry and notification), the closing as accepted, or the end of the
// attempts. Tasks are rows, so a restart loses none; the task is claimed
// under its ticket's lock, skipping tickets another transaction holds, so
// sweepers on several instances never perform one twice. taskID is 0 when
// no task is due; done is false when the claimed task was taken meanwhile
// (the caller skips it next time). The sweeps decide when to call it.
func (s *Store) PerformDueClosureTask(ctx context.Context, now time.Time, skip []int64) (taskID int64, done bool, err error) {
	err = s.inTx(ctx, "pre-closure task", func(tx *sqlx.Tx) error {
		// Lock order is ticket, then task, as for every ticket change.
		var ticketID int64
		err := tx.QueryRowxContext(ctx, `SELECT c.id, t.id FROM closure_tasks c JOIN tickets t ON t.id = c.ticket_id
			WHERE c.done_at IS NULL AND c.cancelled_at IS NULL AND c.due_at <= $1 AND NOT (c.id = ANY ($2))
			ORDER BY c.due_at, c.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED`, now, int64s(skip)).Scan(&taskID, &ticketID)
		if errors.Is(err, sql.ErrNoRows) {
			taskID = 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		var kind string
		var round, seq int
		var due time.Time
		// Re-read under the ticket lock: another sweeper may have done it.
		err = tx.QueryRowContext(ctx, `UPDATE closure_tasks SET done_at = $2 WHERE id = $1 AND done_at IS NULL AND cancelled_at IS NULL
			RETURNING kind, round, seq, due_at`, taskID, now).Scan(&kind, &round, &seq, &due)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mark task done: %w", err)
		}
		t, err := lockTicket(ctx, tx, Scope{}, fmt.Sprint(ticketID))
		if err != nil {
			return err
		}
		if t.Status != StatusSolved || t.SolveRound != round {
			// The solution was confirmed, rejected or superseded without
			// cancelling this task; nothing to do.
			done = true
			return nil
		}
		var total int
		var deadline sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE kind IN ('call', 'email', 'contact')), max(due_at) FILTER (WHERE kind = 'close')
			FROM closure_tasks WHERE ticket_id = $1 AND round = $2`, t.ID, round).Scan(&total, &deadline); err != nil {
			return fmt.Errorf("pre-closure plan: %w", err)
		}
		who := author("vigia", "pre-closure")
		switch kind {
		case "call", "email", "contact":
			n := notify.Notice{Kind: notify.Contact, At: now, Round: round, Seq: seq, Total: total, Channel: kind, Deadline: deadline.Time}
			if err := addContactEvent(ctx, tx, &t, now, n, due); err != nil {
				return err
			}
			if err := s.enqueue(ctx, tx, fmt.Sprintf("ticket:%s:contact:%d:%d", t.Number, round, seq), &t, n, now); err != nil {
				return err
			}
		case "close":
			reason := CloseAcceptedNoAnswer
			p, err := s.policies.Lookup(t.SLAPolicy)
			if err == nil && p.Closure.AutoCloseAfter > 0 {
				reason = CloseAutoClosed
			}
			// The closing instant is the protocol's, not the sweeper's
			// wake-up: a late sweep must not shift the record.
			lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
			if err != nil {
				return err
			}
			if err := s.closeTicket(ctx, tx, &t, due, who, reason, notify.AcceptedWithoutAnswerText(lang), nil); err != nil {
				return err
			}
		case "end":
			lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
			if err != nil {
				return err
			}
			if err := addEvent(ctx, tx, t.ID, now, who, "contact_attempts_exhausted",
				notify.AttemptsExhaustedText(lang), map[string]any{"round": round}); err != nil {
				return err
			}
		}
		done = true
		return nil
	})
	return taskID, done, err
}
