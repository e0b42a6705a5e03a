package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// System is Vigía acting on its own (probes, Alertmanager, the protocol).
var System = auth.Actor{Name: "vigia", Role: auth.RoleSystem}

// staff is anyone but a hospital's user: the provider's people and Vigía.
func staff(a auth.Actor) bool { return !a.IsCustomer() }

func scopeOf(a auth.Actor) Scope { return Scope{CustomerID: a.CustomerID} }

// CreateInput is a ticket raised by a person (portal or API).
type CreateInput struct {
	CustomerID       string   `json:"customer" max:"100"`
	SiteID           string   `json:"site" max:"100"`
	DeviceIDs        []string `json:"devices" max:"100"`
	Severity         int      `json:"severity" max:"4"`
	Title            string   `json:"title" max:"200"`
	Description      string   `json:"description"`
	Category         string   `json:"category" max:"200"`
	Requester        string   `json:"requester" max:"200"` // staff raising on behalf of someone; customers are their own requester
	Source           string   `json:"source" max:"200"`    // staff only: api (default), portal, preventive
	PreviousTicketID *int64   `json:"previous_ticket"`
}

func invalid(format string, a ...any) error {
	return ErrInvalid.Errorf(format, a...)
}

// Create opens a ticket for a person at now.
func (s *Store) Create(ctx context.Context, a auth.Actor, in CreateInput, now time.Time) (Ticket, error) {
	in.Title = strings.TrimSpace(in.Title)
	in.Category = strings.ToLower(strings.TrimSpace(in.Category))
	switch {
	case in.Title == "" || len(in.Title) > 200:
		return Ticket{}, invalid("title is required (at most 200 characters)")
	case in.Severity < 1 || in.Severity > 4:
		return Ticket{}, invalid("severity must be 1 to 4")
	case len(in.DeviceIDs) > 50:
		return Ticket{}, invalid("at most 50 devices")
	}
	source := SourceAPI
	if !staff(a) {
		if in.CustomerID != "" && in.CustomerID != a.CustomerID {
			// Naming another customer reads as naming none that exists.
			return Ticket{}, invalid("unknown customer %q", in.CustomerID)
		}
		if in.Source != "" || in.Requester != "" {
			return Ticket{}, invalid("source and requester are set by Vigía for customers")
		}
		in.CustomerID, in.Requester, source = a.CustomerID, a.Name, SourcePortal
	} else {
		switch in.Source {
		case "":
		case SourceAPI, SourcePortal, SourcePreventive:
			source = in.Source
		default:
			return Ticket{}, invalid("source must be api, portal or preventive")
		}
	}
	if in.CustomerID == "" {
		return Ticket{}, invalid("customer is required")
	}
	// Only a missing row is the caller's mistake; a database that does not
	// answer is not an unknown customer.
	unknown := func(err error, format string, a ...any) error {
		if errors.Is(err, assets.ErrNotFound) {
			return invalid(format, a...)
		}
		return fmt.Errorf("maintenance: create ticket: %w", err)
	}
	if _, err := s.inv.Customer(ctx, assets.Scope{}, in.CustomerID); err != nil {
		return Ticket{}, unknown(err, "unknown customer %q", in.CustomerID)
	}
	for _, id := range in.DeviceIDs {
		d, err := s.inv.Device(ctx, assets.Scope{CustomerID: in.CustomerID}, id)
		if err != nil {
			return Ticket{}, unknown(err, "unknown device %q", id)
		}
		if in.SiteID == "" {
			in.SiteID = d.SiteID
		}
	}
	if in.SiteID != "" {
		if _, err := s.inv.Site(ctx, assets.Scope{CustomerID: in.CustomerID}, in.SiteID); err != nil {
			return Ticket{}, unknown(err, "unknown site %q", in.SiteID)
		}
	}
	var t Ticket
	err := s.inTx(ctx, "create ticket", func(tx *sqlx.Tx) error {
		if in.Requester != "" && in.Category != "" {
			var misuseTicket string
			var kb pq.StringArray
			err := tx.QueryRowContext(ctx, `SELECT t.number, t.kb_links FROM misuse_blocks m JOIN tickets t ON t.id = m.ticket_id
				WHERE m.customer_id = $1 AND m.requester = $2 AND m.category = $3`, in.CustomerID, in.Requester, in.Category).Scan(&misuseTicket, &kb)
			if err == nil {
				return ErrRefused.Errorf("%s already had a %q case closed as misuse (ticket %s); see %s",
					in.Requester, in.Category, misuseTicket, strings.Join(kb, ", "))
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("misuse check: %w", err)
			}
		}
		if in.PreviousTicketID != nil {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tickets WHERE id = $1 AND customer_id = $2`,
				*in.PreviousTicketID, in.CustomerID).Scan(&n); err != nil {
				return fmt.Errorf("previous ticket: %w", err)
			}
			if n == 0 {
				return invalid("unknown previous ticket %d", *in.PreviousTicketID)
			}
		}
		var ok bool
		var err error
		t, ok, err = s.open(ctx, tx, openInput{CustomerID: in.CustomerID, SiteID: in.SiteID, DeviceIDs: in.DeviceIDs,
			Title: in.Title, Description: in.Description, Category: in.Category, Requester: in.Requester,
			Severity: in.Severity, Source: source, PreviousTicketID: in.PreviousTicketID, OpenedAt: now, Author: a.String()})
		if err == nil && !ok {
			err = errors.New("ticket not inserted")
		}
		return err
	})
	return t, err
}

// ActionInput is the body of every ticket action; each action reads the
// fields it needs and rejects the rest as absent.
type ActionInput struct {
	Text     string   `json:"text"`                // comment, resolution, reason…
	Reason   string   `json:"reason" max:"200"`    // pause reason, close reason
	Assignee string   `json:"assignee" max:"200"`  // assign
	Severity int      `json:"severity" max:"4"`    // severity
	KBLinks  []string `json:"kb_links" max:"2000"` // close as misuse
	Cause    string   `json:"cause" max:"200"`     // solve or close: "customer_caused" makes the work billable
}

// Act performs action on the ticket ref at now and returns the ticket.
func (s *Store) Act(ctx context.Context, a auth.Actor, ref, action string, in ActionInput, now time.Time) (Ticket, error) {
	rule, known := actionRules[Action(action)]
	if !known {
		return Ticket{}, invalid("unknown action %q", action)
	}
	var t Ticket
	err := s.inTx(ctx, action+" ticket "+ref, func(tx *sqlx.Tx) error {
		var err error
		if t, err = lockTicket(ctx, tx, scopeOf(a), ref); err != nil {
			return err
		}
		if rule.staffOnly && !staff(a) {
			return ErrForbidden.Errorf("only the NOC can %s a ticket", action)
		}
		if !canDo(Action(action), t.Status) {
			return ErrConflict.Errorf("cannot %s a %s ticket", action, t.Status)
		}
		if err := s.apply(ctx, tx, a, &t, action, in, now); err != nil {
			return err
		}
		if err := s.applyCause(ctx, tx, a, &t, action, in.Cause, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET updated_at = $2 WHERE id = $1`, t.ID, now); err != nil {
			return err
		}
		if err := s.recompute(ctx, tx, &t); err != nil {
			return err
		}
		t, err = lockTicket(ctx, tx, Scope{}, fmt.Sprint(t.ID))
		return err
	})
	return t, err
}

func (s *Store) apply(ctx context.Context, tx *sqlx.Tx, a auth.Actor, t *Ticket, action string, in ActionInput, now time.Time) error {
	text := strings.TrimSpace(in.Text)
	who := a.String()
	exec := func(q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	switch Action(action) {
	case ActionAcknowledge:
		if err := exec(`UPDATE tickets SET status = 'acknowledged', acknowledged_at = COALESCE(acknowledged_at, $2) WHERE id = $1`, t.ID, now); err != nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, now, who, "acknowledged", text, nil)

	case ActionAssign:
		assignee := strings.TrimSpace(in.Assignee)
		if assignee == "" {
			return invalid("assignee is required")
		}
		if err := exec(`UPDATE tickets SET status = 'in_progress', assignee = $2, acknowledged_at = COALESCE(acknowledged_at, $3) WHERE id = $1`,
			t.ID, assignee, now); err != nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, now, who, "assigned", text, map[string]any{"assignee": assignee})

	case ActionComment:
		if text == "" || len(text) > 10000 {
			return invalid("text is required (at most 10000 characters)")
		}
		return addEvent(ctx, tx, t.ID, now, who, "comment", text, nil)

	case ActionPause:
		if !slices.Contains(PauseReasons, in.Reason) {
			return invalid("reason must be one of %s", strings.Join(PauseReasons, ", "))
		}
		if err := exec(`INSERT INTO ticket_pauses (ticket_id, reason, note, started_at, started_by) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, in.Reason, text, now, who); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		if err := exec(`UPDATE tickets SET status = 'pending', pending_reason = $2 WHERE id = $1`, t.ID, in.Reason); err != nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, now, who, "paused", text, map[string]any{"reason": in.Reason})

	case ActionResume:
		if err := endPause(ctx, tx, t.ID, now, who); err != nil {
			return err
		}
		if err := exec(`UPDATE tickets SET status = 'in_progress', pending_reason = NULL WHERE id = $1`, t.ID); err != nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, now, who, "resumed", text, nil)

	case ActionSeverity:
		if in.Severity < 1 || in.Severity > 4 {
			return invalid("severity must be 1 to 4")
		}
		if in.Severity == t.Severity {
			return invalid("the ticket already has severity %d", in.Severity)
		}
		if err := exec(`INSERT INTO ticket_severity_changes (ticket_id, at, from_severity, to_severity, reason, author) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, now, t.Severity, in.Severity, text, who); err != nil {
			return fmt.Errorf("severity change: %w", err)
		}
		if err := exec(`UPDATE tickets SET severity = $2 WHERE id = $1`, t.ID, in.Severity); err != nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, now, who, "severity_changed", text, map[string]any{"from": t.Severity, "to": in.Severity})

	case ActionSolve:
		if text == "" {
			return invalid("text (the solution) is required")
		}
		return s.solve(ctx, tx, t, now, who, "solved", text, true)

	case ActionConfirm:
		if err := s.closeTicket(ctx, tx, t, now, who, CloseConfirmed, text, nil); err != nil {
			return err
		}
		return nil

	case ActionReopen:
		return s.reopen(ctx, tx, a, t, now, text)

	case ActionClose:
		if t.Status == StatusClosed {
			return ErrConflict.Errorf("the ticket is already closed")
		}
		if !slices.Contains(StaffCloseReasons, in.Reason) {
			return invalid("reason must be one of %s", strings.Join(StaffCloseReasons, ", "))
		}
		if in.Reason == CloseMisuse {
			if len(in.KBLinks) == 0 {
				return invalid("a misuse closure links knowledge-base material (kb_links)")
			}
			if t.Category == "" || t.Requester == "" {
				return invalid("a misuse closure needs the ticket's category and requester")
			}
			if err := exec(`INSERT INTO misuse_blocks (customer_id, requester, category, ticket_id, created_at) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT DO NOTHING`, t.CustomerID, t.Requester, t.Category, t.ID, now); err != nil {
				return fmt.Errorf("misuse block: %w", err)
			}
		}
		return s.closeTicket(ctx, tx, t, now, who, in.Reason, text, in.KBLinks)
	}
	return invalid("unknown action %q", action)
}

func endPause(ctx context.Context, tx *sqlx.Tx, ticketID int64, now time.Time, who string) error {
	_, err := tx.ExecContext(ctx, `UPDATE ticket_pauses SET ended_at = GREATEST($2, started_at), ended_by = $3 WHERE ticket_id = $1 AND ended_at IS NULL`,
		ticketID, now, who)
	if err != nil {
		return fmt.Errorf("end pause: %w", err)
	}
	return nil
}

// solve moves a ticket to solved (awaiting confirmation), ends any running
// pause, and schedules the policy's pre-closure protocol from at. human
// says whether a person solved it (which also counts as the response).
func (s *Store) solve(ctx context.Context, tx *sqlx.Tx, t *Ticket, at time.Time, who, kind, text string, human bool) error {
	if err := endPause(ctx, tx, t.ID, at, who); err != nil {
		return err
	}
	var round int
	err := tx.QueryRowContext(ctx, `UPDATE tickets SET status = 'solved', pending_reason = NULL, solved_at = $2, solve_round = solve_round + 1,
		acknowledged_at = CASE WHEN $3 THEN COALESCE(acknowledged_at, $2) ELSE acknowledged_at END, updated_at = $2
		WHERE id = $1 RETURNING solve_round`, t.ID, at, human).Scan(&round)
	if err != nil {
		return fmt.Errorf("solve: %w", err)
	}
	t.Status, t.SolvedAt, t.SolveRound = StatusSolved, &at, round
	if err := addEvent(ctx, tx, t.ID, at, who, kind, text, map[string]any{"round": round}); err != nil {
		return err
	}
	p, err := s.policies.Lookup(t.SLAPolicy)
	if err != nil {
		return err
	}
	plan := planClosure(p, at)
	contacts := 0
	for _, task := range plan {
		if isContact(task.Kind) {
			contacts++
		}
	}
	n := notify.Notice{Kind: notify.Solved, Round: round}
	for i, task := range plan {
		// A contact due at the solution is the solved notice itself (seed
		// 000's first contact, seed 003's contact at solution): done now,
		// in this e-mail, so the customer does not get the same one twice.
		var done *time.Time
		if isContact(task.Kind) && task.Due.Equal(at) && n.Seq == 0 {
			done, n.Seq, n.Total, n.Channel = &at, i+1, contacts, task.Kind
		}
		if task.Kind == "close" {
			n.Deadline = task.Due
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO closure_tasks (ticket_id, round, seq, kind, due_at, done_at) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT DO NOTHING`, t.ID, round, i+1, task.Kind, task.Due, done); err != nil {
			return fmt.Errorf("schedule pre-closure: %w", err)
		}
	}
	if n.Seq != 0 {
		if err := addContactEvent(ctx, tx, t, at, n, at); err != nil {
			return err
		}
	}
	return s.enqueue(ctx, tx, fmt.Sprintf("ticket:%s:solved:%d", t.Number, round), t, n, at)
}

func cancelTasks(ctx context.Context, tx *sqlx.Tx, ticketID int64, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE closure_tasks SET cancelled_at = $2 WHERE ticket_id = $1 AND done_at IS NULL AND cancelled_at IS NULL`,
		ticketID, now); err != nil {
		return fmt.Errorf("cancel pre-closure tasks: %w", err)
	}
	return nil
}

func (s *Store) closeTicket(ctx context.Context, tx *sqlx.Tx, t *Ticket, at time.Time, who, reason, text string, kb []string) error {
	if err := endPause(ctx, tx, t.ID, at, who); err != nil {
		return err
	}
	if err := cancelTasks(ctx, tx, t.ID, at); err != nil {
		return err
	}
	if kb == nil {
		kb = []string{}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'closed', pending_reason = NULL, closed_at = $2, close_reason = $3,
		kb_links = $4, updated_at = $2 WHERE id = $1`, t.ID, at, reason, pq.StringArray(kb)); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	t.Status, t.ClosedAt, t.CloseReason, t.KBLinks = StatusClosed, &at, reason, kb
	data := map[string]any{"reason": reason}
	if len(kb) > 0 {
		data["kb_links"] = kb
	}
	if err := addEvent(ctx, tx, t.ID, at, who, "closed", text, data); err != nil {
		return err
	}
	return s.enqueue(ctx, tx, fmt.Sprintf("ticket:%s:closed:%d", t.Number, t.SolveRound), t, notify.Notice{Kind: notify.Closed}, at)
}

// reopen rejects a solution (always allowed while awaiting confirmation) or
// reopens a closed ticket: customers only within the policy's window
// (seed 003: 5 business days after the solution; seed 000: never); staff
// always, as a correction.
func (s *Store) reopen(ctx context.Context, tx *sqlx.Tx, a auth.Actor, t *Ticket, now time.Time, text string) error {
	switch t.Status {
	case StatusSolved:
	case StatusClosed:
		if t.CloseReason == CloseMisuse && !staff(a) {
			return ErrRefused.Errorf("a ticket closed as misuse cannot be reopened")
		}
		if !staff(a) {
			p, err := s.policies.Lookup(t.SLAPolicy)
			if err != nil {
				return err
			}
			if !p.Closure.Reopen {
				return ErrRefused.Errorf("policy %s does not allow reopening a closed ticket; open a new one with previous_ticket %d", p.Name, t.ID)
			}
			if limit, ok := reopenLimit(p, t); ok && now.After(limit) {
				return ErrRefused.Errorf("reopening was allowed until %s (%d business days after the solution); open a new one with previous_ticket %d",
					limit.Format(time.RFC3339), p.Closure.ReopenWithinBusinessDays, t.ID)
			}
		}
	default:
		return ErrConflict.Errorf("only a solved or closed ticket can be reopened")
	}
	if err := cancelTasks(ctx, tx, t.ID, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'reopened', closed_at = NULL, close_reason = NULL WHERE id = $1`, t.ID); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	t.Status = StatusReopened
	return addEvent(ctx, tx, t.ID, now, a.String(), "reopened", text, nil)
}
