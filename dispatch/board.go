package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
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
	var err error
	b.Visits, err = s.listVisits(ctx, a, `SELECT `+visitColumns+` FROM visits v
		WHERE v.window_start < $2 AND v.window_end > $1 AND v.state <> 'cancelled' ORDER BY v.window_start, v.id LIMIT 1000`, from, to)
	if err != nil {
		return b, fmt.Errorf("dispatch: board visits: %w", err)
	}
	// Field equipment, or a part received and waiting to be installed,
	// needs someone on site; a visit proposed or under way answers it.
	if b.NeedVisit, err = s.needVisit(ctx); err != nil {
		return b, fmt.Errorf("dispatch: tickets needing a visit: %w", err)
	}
	prows, err := s.db.QueryContext(ctx, `SELECT `+partRequestColumns+` FROM part_requests r JOIN parts p ON p.id = r.part_id
		WHERE r.state IN ('ordered', 'in_transit', 'in_customs')
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
	b.Tickets, err = maintenance.TicketNumbers(ctx, s.db, ids)
	return b, err
}

// needVisit lists the open tickets that need someone on site and have no
// visit proposed or under way: those naming field equipment (a modality,
// a biomedical device) and those with a part received and waiting to be
// installed. The most severe first, then the oldest.
func (s *Store) needVisit(ctx context.Context) ([]TicketSummary, error) {
	field, err := s.inv.DeviceIDsOfKinds(ctx, "modality", "biomedical")
	if err != nil {
		return nil, err
	}
	var received, visited []int64
	if err := s.db.SelectContext(ctx, &received, `SELECT DISTINCT ticket_id FROM part_requests WHERE state = 'received'`); err != nil {
		return nil, err
	}
	if err := s.db.SelectContext(ctx, &visited, `SELECT DISTINCT ticket_id FROM visits
		WHERE state IN ('proposed', 'scheduled', 'en_route', 'on_site')`); err != nil {
		return nil, err
	}
	open, err := s.tickets.OpenTicketsAmong(ctx, field, received, visited, 500)
	if err != nil {
		return nil, err
	}
	var out []TicketSummary
	for _, t := range open {
		out = append(out, TicketSummary{ID: t.ID, Number: t.Number, CustomerID: t.CustomerID, SiteID: t.SiteID, Severity: t.Severity,
			Title: t.Title, Status: t.Status, OpenedAt: t.OpenedAt})
	}
	return out, nil
}
