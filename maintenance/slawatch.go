package maintenance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// SLA mark kinds, as recorded in sla_marks.
const (
	MarkWarning    = "warning"
	MarkEscalation = "escalation"
	MarkBreach     = "breach"
)

// Clock names.
const (
	ClockResponse   = "response"
	ClockResolution = "resolution"
)

// Mark is one SLA instant a ticket passed.
type Mark struct {
	Clock   string    `json:"clock"`
	Kind    string    `json:"kind"`
	Level   int       `json:"level,omitempty"`
	Instant time.Time `json:"instant"`
	// Restart is the instant a clock restarted by a severity change (grace)
	// counts from; zero for the clock that started with the ticket. A
	// restarted clock is a clock of its own: its breach is recorded again.
	Restart time.Time `json:"restart,omitzero"`
}

// restartValue is the restart_at column value of a clock.
func restartValue(t time.Time) any {
	if t.IsZero() {
		return "-infinity"
	}
	return t
}

// dueMarks lists the marks of schedule sc passed at now by a ticket whose
// response stopped at responded and resolution at resolved (nil: still
// running). An instant is passed when the clock was still running after it:
// meeting a target at its due instant is on time, as in sla.Clock.Breached.
// Paused clocks have no due instant and so never breach.
func dueMarks(sc sla.Schedule, responded, resolved *time.Time, now time.Time) []Mark {
	var out []Mark
	for _, c := range []struct {
		name string
		c    sla.Clock
		stop *time.Time
	}{{ClockResponse, sc.Response, responded}, {ClockResolution, sc.Resolution, resolved}} {
		if !c.c.Defined {
			continue
		}
		var restart time.Time
		if c.c.Grace {
			restart = c.c.From
		}
		until := now
		if c.stop != nil && c.stop.Before(now) {
			until = *c.stop
		}
		passed := func(at time.Time) bool { return !at.IsZero() && until.After(at) }
		if passed(c.c.Warning) {
			out = append(out, Mark{Clock: c.name, Kind: MarkWarning, Instant: c.c.Warning, Restart: restart})
		}
		for _, e := range c.c.Escalations {
			if passed(e.At) {
				out = append(out, Mark{Clock: c.name, Kind: MarkEscalation, Level: e.Level, Instant: e.At, Restart: restart})
			}
		}
		if !c.c.Paused && passed(c.c.Due) {
			out = append(out, Mark{Clock: c.name, Kind: MarkBreach, Instant: c.c.Due, Restart: restart})
		}
	}
	return out
}

// stops returns when each clock of t stopped, nil while it runs. The
// response stops at the first human acknowledgement, or when the ticket is
// solved or closed without one (a restored service or a duplicate needs no
// more answer); the resolution at the solution, or at a closing without one.
// A reopened ticket's resolution runs again.
func stops(t *Ticket) (responded, resolved *time.Time) {
	done := t.Status == StatusSolved || t.Status == StatusClosed
	switch {
	case done && t.SolvedAt != nil:
		resolved = t.SolvedAt
	case done:
		resolved = t.ClosedAt
	}
	responded = t.AcknowledgedAt
	if responded == nil && done {
		responded = resolved
	}
	return responded, resolved
}

// WatchedTickets lists the tickets whose SLA marks are still to be
// recorded: every open ticket, and those closed after closedSince (a breach
// that happened while no watcher ran, a restart or a deploy, is still
// recorded).
func (s *Store) WatchedTickets(ctx context.Context, closedSince time.Time) ([]int64, error) {
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT id FROM tickets
		WHERE closed_at IS NULL OR closed_at > $1 ORDER BY id`, closedSince); err != nil {
		return nil, fmt.Errorf("maintenance: sla watch: list tickets: %w", err)
	}
	return ids, nil
}

// RecordedMark is an SLA mark RecordSLAMarks inserted, with what the
// breach counter is labelled by.
type RecordedMark struct {
	Mark
	CustomerID, Policy string
}

// RecordSLAMarks records the SLA warnings, escalations and breaches ticket
// id passed at now, each once (sla_marks is unique per ticket, clock, kind,
// level and restart), with a timeline entry and a notification to the
// NOC's webhooks, and the outcomes of its clocks that ended. Marks go to
// the NOC only: they are the provider's internal alarms; the customer hears
// about the ticket through its own notifications. The ticket is examined
// under its row lock and skipped (nothing recorded) if another transaction
// holds it, so several watchers may run at once. It returns the marks it
// inserted and how many outcomes.
func (s *Store) RecordSLAMarks(ctx context.Context, id int64, now time.Time) ([]RecordedMark, int, error) {
	var done []RecordedMark
	outcomes := 0
	err := s.inTx(ctx, fmt.Sprintf("sla watch ticket %d", id), func(tx *sqlx.Tx) error {
		t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = $1 FOR UPDATE SKIP LOCKED`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil // another watcher or an action holds it: next sweep
		}
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		sc, _, err := s.schedule(ctx, tx, &t)
		if err != nil {
			return err
		}
		responded, resolved := stops(&t)
		for _, m := range dueMarks(sc, responded, resolved, now) {
			var markID int64
			err := tx.QueryRowContext(ctx, `INSERT INTO sla_marks (ticket_id, clock, kind, level, instant, customer_id, sla_policy, severity, recorded_at, restart_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (ticket_id, clock, kind, level, restart_at) DO NOTHING RETURNING id`,
				t.ID, m.Clock, m.Kind, m.Level, m.Instant, t.CustomerID, t.SLAPolicy, t.Severity, now, restartValue(m.Restart)).Scan(&markID)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("record %s %s: %w", m.Clock, m.Kind, err)
			}
			if err := addEvent(ctx, tx, t.ID, m.Instant, author("vigia", "sla"), "sla_"+m.Kind, markText(m, &t),
				map[string]any{"clock": m.Clock, "kind": m.Kind, "level": m.Level, "instant": m.Instant, "recorded_at": now}); err != nil {
				return err
			}
			if err := s.notifyNOC(ctx, tx, &t, m, now); err != nil {
				return err
			}
			done = append(done, RecordedMark{Mark: m, CustomerID: t.CustomerID, Policy: t.SLAPolicy})
		}
		ended := clockOutcomes(sc, responded, resolved)
		if sc.Response.Grace || sc.Resolution.Grace {
			p, err := s.policies.Lookup(t.SLAPolicy)
			if err != nil {
				return fmt.Errorf("ticket %s: %w", t.Number, err)
			}
			in, err := clockInput(ctx, tx, &t)
			if err != nil {
				return err
			}
			ended = append(ended, supersededOutcomes(p, in, sc)...)
		}
		for _, o := range ended {
			ok, err := s.recordOutcome(ctx, tx, &t, o, now)
			if err != nil {
				return err
			}
			if ok {
				outcomes++
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return done, outcomes, nil
}

func markText(m Mark, t *Ticket) string {
	what := map[string]string{ClockResponse: "response", ClockResolution: "resolution"}[m.Clock]
	switch m.Kind {
	case MarkWarning:
		return fmt.Sprintf("SLA warning: %s of %s (Sev %d, %s) is due soon", what, t.Number, t.Severity, t.SLAPolicy)
	case MarkEscalation:
		return fmt.Sprintf("SLA escalation: %s of %s moves to level %d", what, t.Number, m.Level)
	}
	return fmt.Sprintf("SLA breached: %s of %s (Sev %d, %s) was due %s", what, t.Number, t.Severity, t.SLAPolicy, m.Instant.UTC().Format(time.RFC3339))
}

// notifyNOC enqueues mark m to every NOC webhook, once per (ticket, mark).
func (s *Store) notifyNOC(ctx context.Context, tx *sqlx.Tx, t *Ticket, m Mark, at time.Time) error {
	if len(s.webhooks) == 0 {
		return nil
	}
	key := fmt.Sprintf("ticket:%s:sla:%s:%s:%d", t.Number, m.Clock, m.Kind, m.Level)
	if !m.Restart.IsZero() {
		key += ":restart:" + m.Restart.UTC().Format(time.RFC3339)
	}
	text := markText(m, t)
	payload, err := json.Marshal(map[string]any{"event": key, "kind": "sla_" + m.Kind, "ticket": t.Number, "ticket_id": t.ID,
		"customer": t.CustomerID, "site": t.SiteID, "devices": t.DeviceIDs, "severity": t.Severity, "status": t.Status,
		"sla_policy": t.SLAPolicy, "clock": m.Clock, "level": m.Level, "instant": m.Instant, "text": text, "at": at})
	if err != nil {
		return fmt.Errorf("notify %s: %w", key, err)
	}
	for _, u := range s.webhooks {
		if _, err := notify.Put(ctx, tx, notify.Row{Key: key, Channel: "webhook", Recipient: u, TicketID: t.ID,
			Subject: "[" + t.Number + "] " + text, Body: text, Payload: payload, At: at}); err != nil {
			return err
		}
	}
	return nil
}

// Marks returns the SLA marks of a ticket, in the order they were recorded.
func (s *Store) Marks(ctx context.Context, ticketID int64) ([]Mark, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT clock, kind, level, instant,
		CASE WHEN restart_at = '-infinity' THEN NULL ELSE restart_at END FROM sla_marks WHERE ticket_id = $1 ORDER BY id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("maintenance: sla marks of %d: %w", ticketID, err)
	}
	defer rows.Close()
	out := []Mark{}
	for rows.Next() {
		var m Mark
		var restart pq.NullTime
		if err := rows.Scan(&m.Clock, &m.Kind, &m.Level, &m.Instant, &restart); err != nil {
			return nil, fmt.Errorf("maintenance: sla marks of %d: %w", ticketID, err)
		}
		m.Restart = restart.Time
		out = append(out, m)
	}
	return out, rows.Err()
}
