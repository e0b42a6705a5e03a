package dispatch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/auth"
)

// Wait reasons: what holds a ticket (seed 000: engineer availability,
// manufacturers' answers, parts and import times; seeds 000 and 003: the
// customer and third parties).
const (
	WaitCustomer     = "customer"
	WaitManufacturer = "manufacturer"
	WaitSpareParts   = "spare_parts"
	WaitImport       = "import"
	WaitThirdParty   = "third_party"
)

// Wait sources.
const (
	SourcePartRequest      = "part_request"
	SourceManufacturerCase = "manufacturer_case"
	SourceManual           = "manual"
)

// Wait is one thing a ticket waits for.
type Wait struct {
	ID        int64      `json:"id"`
	TicketID  int64      `json:"ticket_id"`
	Reason    string     `json:"reason"`
	Source    string     `json:"source"`
	SourceID  *int64     `json:"source_id,omitempty"`
	Note      string     `json:"note,omitempty"`
	StartedAt time.Time  `json:"since"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	StartedBy string     `json:"started_by"`
	EndedBy   string     `json:"ended_by,omitempty"`
}

const waitColumns = `id, ticket_id, reason, source, source_id, note, started_at, ended_at, started_by, COALESCE(ended_by, '')`

func scanWait(r interface{ Scan(...any) error }) (Wait, error) {
	var w Wait
	err := r.Scan(&w.ID, &w.TicketID, &w.Reason, &w.Source, &w.SourceID, &w.Note, &w.StartedAt, &w.EndedAt, &w.StartedBy, &w.EndedBy)
	return w, err
}

func openWaits(ctx context.Context, tx *sqlx.Tx, ticketID int64) ([]Wait, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+waitColumns+` FROM waits WHERE ticket_id = $1 AND ended_at IS NULL ORDER BY started_at, id`, ticketID)
	if err != nil {
		return nil, fmt.Errorf("open waits: %w", err)
	}
	defer rows.Close()
	var out []Wait
	for rows.Next() {
		w, err := scanWait(rows)
		if err != nil {
			return nil, fmt.Errorf("open waits: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// syncPause makes the ticket's SLA pause follow its open waits: one pause
// for as long as anything holds the ticket, carrying every reason.
func (s *Store) syncPause(ctx context.Context, tx *sqlx.Tx, ticketID int64, note string, now time.Time) error {
	open, err := openWaits(ctx, tx, ticketID)
	if err != nil {
		return err
	}
	var reasons []string
	for _, w := range open {
		if !slices.Contains(reasons, w.Reason) {
			reasons = append(reasons, w.Reason)
		}
	}
	if err := s.tickets.HoldTx(ctx, tx, system, ticketID, reasons, note, now); err != nil {
		return fmt.Errorf("hold ticket %d: %w", ticketID, err)
	}
	return nil
}

// setSourceWait makes the open wait of a part request or manufacturer
// case be reason ("" for none), then re-derives the ticket's pause. The
// unique open wait per source makes a repeated call a no-op.
func (s *Store) setSourceWait(ctx context.Context, tx *sqlx.Tx, t ticketRef, source string, sourceID int64, reason, note, who string, now time.Time) error {
	var current string
	var waitID int64
	err := tx.QueryRowContext(ctx, `SELECT id, reason FROM waits WHERE source = $1 AND source_id = $2 AND ended_at IS NULL`,
		source, sourceID).Scan(&waitID, &current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("wait of %s %d: %w", source, sourceID, err)
	}
	if current == reason {
		return nil
	}
	if waitID != 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE waits SET ended_at = $2, ended_by = $3 WHERE id = $1`, waitID, now, who); err != nil {
			return fmt.Errorf("end wait %d: %w", waitID, err)
		}
	}
	if reason != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO waits (ticket_id, customer_id, reason, source, source_id, note, started_at, started_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, t.ID, t.CustomerID, reason, source, sourceID, note, now, who); err != nil {
			return fmt.Errorf("start wait: %w", err)
		}
	}
	return s.syncPause(ctx, tx, t.ID, note, now)
}

// WaitInput starts a manual wait: the customer (information, access,
// confirmation) or a third party (a vendor's bug).
type WaitInput struct {
	TicketID int64  `json:"ticket"`
	Reason   string `json:"reason" max:"200"`
	Note     string `json:"note"`
}

// StartWait records a manual wait (staff only) and pauses the ticket.
func (s *Store) StartWait(ctx context.Context, a auth.Actor, in WaitInput, now time.Time) (Wait, error) {
	if !a.IsProvider() {
		return Wait{}, ErrForbidden.Errorf("the provider records waits")
	}
	if in.Reason != WaitCustomer && in.Reason != WaitThirdParty {
		return Wait{}, invalid("reason must be customer or third_party (parts, imports and manufacturers wait through their requests and cases)")
	}
	var w Wait
	err := s.inTx(ctx, "start wait", func(tx *sqlx.Tx) error {
		t, err := s.lockOpenTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		w, err = scanWait(tx.QueryRowContext(ctx, `INSERT INTO waits (ticket_id, customer_id, reason, source, note, started_at, started_by)
			VALUES ($1, $2, $3, 'manual', $4, $5, $6) RETURNING `+waitColumns, t.ID, t.CustomerID, in.Reason, in.Note, now, a.String()))
		if err != nil {
			return fmt.Errorf("insert wait: %w", err)
		}
		return s.syncPause(ctx, tx, t.ID, in.Note, now)
	})
	return w, err
}

// EndWait ends a manual wait (staff only); the ticket resumes when nothing
// else holds it.
func (s *Store) EndWait(ctx context.Context, a auth.Actor, id int64, note string, now time.Time) (Wait, error) {
	if !a.IsProvider() {
		return Wait{}, ErrForbidden.Errorf("the provider records waits")
	}
	var w Wait
	err := s.inTx(ctx, fmt.Sprintf("end wait %d", id), func(tx *sqlx.Tx) error {
		var err error
		w, err = scanWait(tx.QueryRowContext(ctx, `SELECT `+waitColumns+` FROM waits WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound.Errorf("wait %d", id)
		}
		if err != nil {
			return err
		}
		if w.Source != SourceManual {
			return conflict("wait %d follows its %s; move that instead", id, strings.ReplaceAll(w.Source, "_", " "))
		}
		if w.EndedAt != nil {
			return conflict("wait %d already ended", id)
		}
		if _, err := s.lockTicket(ctx, tx, a, w.TicketID); err != nil {
			return err
		}
		w.EndedAt, w.EndedBy = &now, a.String()
		if _, err := tx.ExecContext(ctx, `UPDATE waits SET ended_at = $2, ended_by = $3 WHERE id = $1`, id, now, w.EndedBy); err != nil {
			return fmt.Errorf("end wait: %w", err)
		}
		return s.syncPause(ctx, tx, w.TicketID, note, now)
	})
	return w, err
}

// TicketWaits is what one open ticket is waiting for, and since when.
type TicketWaits struct {
	TicketID   int64      `json:"ticket_id"`
	Ticket     string     `json:"ticket"`
	CustomerID string     `json:"customer_id"`
	Title      string     `json:"title"`
	Status     string     `json:"status"`
	Since      time.Time  `json:"since"` // the earliest open wait
	Reasons    []string   `json:"reasons"`
	Waits      []WaitView `json:"waits"`
}

// WaitView is an open wait with what it is about.
type WaitView struct {
	Wait
	About string `json:"about,omitempty"` // the part number and request state, or the manufacturer case
}

// OpenWaits answers "what is each open ticket waiting for, since when",
// longest-waiting first, in a's scope.
func (s *Store) OpenWaits(ctx context.Context, a auth.Actor) ([]TicketWaits, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT w.id, w.ticket_id, w.reason, w.source, w.source_id, w.note, w.started_at, w.ended_at,
		w.started_by, COALESCE(w.ended_by, ''),
		COALESCE(CASE w.source
			WHEN 'part_request' THEN (SELECT p.manufacturer || ' ' || p.part_number || ' ×' || r.quantity || ' (' || r.state || ')'
				FROM part_requests r JOIN parts p ON p.id = r.part_id WHERE r.id = w.source_id)
			WHEN 'manufacturer_case' THEN (SELECT c.manufacturer || ' case ' || c.case_number || ' (' || c.state || ')'
				FROM manufacturer_cases c WHERE c.id = w.source_id)
		END, '')
		FROM waits w WHERE w.ended_at IS NULL AND ($1 = '' OR w.customer_id = $1)
		ORDER BY w.started_at, w.id`, a.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: open waits: %w", err)
	}
	defer rows.Close()
	var waits []WaitView
	var ids []int64
	for rows.Next() {
		var v WaitView
		if err := rows.Scan(&v.ID, &v.TicketID, &v.Reason, &v.Source, &v.SourceID, &v.Note, &v.StartedAt, &v.EndedAt, &v.StartedBy,
			&v.EndedBy, &v.About); err != nil {
			return nil, fmt.Errorf("dispatch: open waits: %w", err)
		}
		waits = append(waits, v)
		ids = append(ids, v.TicketID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dispatch: open waits: %w", err)
	}
	tickets, err := s.tickets.TicketsByID(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("dispatch: open waits: %w", err)
	}
	out := []TicketWaits{}
	index := map[int64]int{}
	for _, v := range waits {
		t, ok := tickets[v.TicketID]
		if !ok || t.ClosedAt != nil {
			continue // a closed ticket waits for nothing any more
		}
		i, ok := index[v.TicketID]
		if !ok {
			out = append(out, TicketWaits{TicketID: v.TicketID, Ticket: t.Number, CustomerID: t.CustomerID, Title: t.Title, Status: t.Status,
				Since: v.StartedAt, Reasons: []string{}, Waits: []WaitView{}})
			i = len(out) - 1
			index[v.TicketID] = i
		}
		if !slices.Contains(out[i].Reasons, v.Reason) {
			out[i].Reasons = append(out[i].Reasons, v.Reason)
		}
		out[i].Waits = append(out[i].Waits, v)
	}
	return out, nil
}
