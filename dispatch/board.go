package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/auth"
)

// Board is the NOC's dispatch board: the visits of a period, the tickets
// that need a visit and have none, the parts on their way and the
// manufacturer cases waiting too long.
type Board struct {
	Visits     []Visit            `json:"visits"`
	NeedVisit  []TicketSummary    `json:"need_visit"`
	Parts      []PartRequest      `json:"parts"` // ordered, in transit or in customs, by ETA
	StaleCases []ManufacturerCase `json:"stale_cases"`
	// Tickets names the tickets of the parts and cases, by id.
	Tickets map[int64]string `json:"tickets"`
}

// TicketSummary names an open ticket.
type TicketSummary struct {
	ID         int64     `json:"id"`
	Number     string    `json:"number"`
	CustomerID string    `json:"customer_id"`
	SiteID     string    `json:"site_id"`
	Severity   int       `json:"severity"`
	Title      string    `json:"title"`
	Status     string    `json:"status"`
	OpenedAt   time.Time `json:"opened_at"`
}

// DispatchBoard reads the board (NOC only): visits whose window meets
// [from, to), and manufacturer cases open or waiting for longer than
// caseAge at now.
func (s *Store) DispatchBoard(ctx context.Context, a auth.Actor, from, to time.Time, caseAge time.Duration, now time.Time) (Board, error) {
	if !a.IsNOC() {
		return Board{}, ErrForbidden.Errorf("the dispatch board is the NOC's")
	}
	if !to.After(from) {
		return Board{}, invalid("the board's period must end after it starts")
	}
	var b Board
	rows, err := s.db.QueryContext(ctx, `SELECT `+visitColumns+` FROM visits v JOIN tickets t ON t.id = v.ticket_id
		WHERE v.window_start < $2 AND v.window_end > $1 AND v.state <> 'cancelled' ORDER BY v.window_start, v.id LIMIT 1000`, from, to)
	if err != nil {
		return b, fmt.Errorf("dispatch: board visits: %w", err)
	}
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			rows.Close()
			return b, fmt.Errorf("dispatch: board visits: %w", err)
		}
		b.Visits = append(b.Visits, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return b, fmt.Errorf("dispatch: board visits: %w", err)
	}
	for i := range b.Visits {
		if b.Visits[i].Engineers, err = visitEngineers(ctx, s.db, a, b.Visits[i].ID); err != nil {
			return b, fmt.Errorf("dispatch: %w", err)
		}
	}
	// Field equipment, or a part received and waiting to be installed,
	// needs someone on site; a visit proposed or under way answers it.
	trows, err := s.db.QueryContext(ctx, `SELECT t.id, t.number, t.customer_id, COALESCE(t.site_id, ''), t.severity, t.title, t.status, t.opened_at
		FROM tickets t WHERE t.status NOT IN ('solved', 'closed')
		AND (EXISTS (SELECT 1 FROM devices d WHERE d.id = ANY (t.device_ids) AND d.kind IN ('modality', 'biomedical'))
			OR EXISTS (SELECT 1 FROM part_requests r WHERE r.ticket_id = t.id AND r.state = 'received'))
		AND NOT EXISTS (SELECT 1 FROM visits v WHERE v.ticket_id = t.id AND v.state IN ('proposed', 'scheduled', 'en_route', 'on_site'))
		ORDER BY t.severity, t.opened_at LIMIT 500`)
	if err != nil {
		return b, fmt.Errorf("dispatch: tickets needing a visit: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var t TicketSummary
		if err := trows.Scan(&t.ID, &t.Number, &t.CustomerID, &t.SiteID, &t.Severity, &t.Title, &t.Status, &t.OpenedAt); err != nil {
			return b, fmt.Errorf("dispatch: tickets needing a visit: %w", err)
		}
		b.NeedVisit = append(b.NeedVisit, t)
	}
	if err := trows.Err(); err != nil {
		return b, fmt.Errorf("dispatch: tickets needing a visit: %w", err)
	}
	prows, err := s.db.QueryContext(ctx, `SELECT `+partRequestColumns+` FROM part_requests r JOIN parts p ON p.id = r.part_id
		JOIN tickets t ON t.id = r.ticket_id WHERE r.state IN ('ordered', 'in_transit', 'in_customs')
		ORDER BY r.eta NULLS LAST, r.id LIMIT 500`)
	if err != nil {
		return b, fmt.Errorf("dispatch: parts on their way: %w", err)
	}
	defer prows.Close()
	for prows.Next() {
		r, err := scanPartRequest(prows, a)
		if err != nil {
			return b, fmt.Errorf("dispatch: parts on their way: %w", err)
		}
		b.Parts = append(b.Parts, r)
	}
	if err := prows.Err(); err != nil {
		return b, fmt.Errorf("dispatch: parts on their way: %w", err)
	}
	crows, err := s.db.QueryContext(ctx, `SELECT `+caseColumns+` FROM manufacturer_cases c
		WHERE c.state IN ('opened', 'waiting') AND c.updated_at <= $1 ORDER BY c.updated_at, c.id LIMIT 500`, now.Add(-caseAge))
	if err != nil {
		return b, fmt.Errorf("dispatch: waiting cases: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		c, err := scanCase(crows)
		if err != nil {
			return b, fmt.Errorf("dispatch: waiting cases: %w", err)
		}
		b.StaleCases = append(b.StaleCases, c)
	}
	if err := crows.Err(); err != nil {
		return b, fmt.Errorf("dispatch: waiting cases: %w", err)
	}
	var ids []int64
	for _, p := range b.Parts {
		ids = append(ids, p.TicketID)
	}
	for _, c := range b.StaleCases {
		ids = append(ids, c.TicketID)
	}
	b.Tickets, err = s.ticketNumbers(ctx, ids)
	return b, err
}

// ticketNumbers names tickets by id.
func (s *Store) ticketNumbers(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	rows, err := s.db.QueryContext(ctx, `SELECT id, number FROM tickets WHERE id = ANY ($1)`, pq.Int64Array(ids))
	if err != nil {
		return nil, fmt.Errorf("dispatch: ticket numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n string
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("dispatch: ticket numbers: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
