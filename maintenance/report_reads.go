package maintenance

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// The reads below serve the contract reports (package reports), which sit
// at the end of the flow and never touch the ticket tables themselves.

// OutageTicket is the ticket an outage opened or joined.
type OutageTicket struct {
	OutageID    int64  `json:"outage_id"`
	TicketID    int64  `json:"ticket_id"`
	Number      string `json:"ticket"`
	Closed      bool   `json:"closed"`
	CloseReason string `json:"close_reason,omitempty"`
}

// OutageTickets returns the ticket of each outage that has one.
func (s *Store) OutageTickets(ctx context.Context, outageIDs []int64) (map[int64]OutageTicket, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT o.outage_id, t.id, t.number, t.closed_at IS NOT NULL, COALESCE(t.close_reason, '')
		FROM ticket_outages o JOIN tickets t ON t.id = o.ticket_id WHERE o.outage_id = ANY ($1)`, pq.Int64Array(outageIDs))
	if err != nil {
		return nil, fmt.Errorf("maintenance: tickets of outages: %w", err)
	}
	defer rows.Close()
	out := map[int64]OutageTicket{}
	for rows.Next() {
		var o OutageTicket
		if err := rows.Scan(&o.OutageID, &o.TicketID, &o.Number, &o.Closed, &o.CloseReason); err != nil {
			return nil, fmt.Errorf("maintenance: tickets of outages: %w", err)
		}
		out[o.OutageID] = o
	}
	return out, rows.Err()
}

// TicketsOpened lists customerID's tickets opened in [from, to), oldest
// first.
func (s *Store) TicketsOpened(ctx context.Context, customerID string, from, to time.Time) ([]Ticket, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE customer_id = $1 AND opened_at >= $2 AND opened_at < $3 ORDER BY opened_at, id`, customerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("maintenance: tickets opened by %s: %w", customerID, err)
	}
	defer rows.Close()
	out := []Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("maintenance: tickets opened by %s: %w", customerID, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// PauseSpan is the part of one SLA pause that fell in a period.
type PauseSpan struct {
	TicketID int64     `json:"ticket_id"`
	Number   string    `json:"ticket"`
	Reasons  []string  `json:"reasons"` // every reason that held the clock
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
}

// PausesBetween lists the SLA pauses of customerID's tickets clipped to
// [from, to) (a running pause runs to). A pause held by several reasons
// at once names them all.
func (s *Store) PausesBetween(ctx context.Context, customerID string, from, to time.Time) ([]PauseSpan, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT p.ticket_id, t.number,
		CASE WHEN cardinality(p.reasons) = 0 THEN ARRAY[p.reason] ELSE p.reasons END,
		greatest(p.started_at, $2), least(COALESCE(p.ended_at, $3), $3)
		FROM ticket_pauses p JOIN tickets t ON t.id = p.ticket_id
		WHERE t.customer_id = $1 AND p.started_at < $3 AND (p.ended_at IS NULL OR p.ended_at > $2)
		ORDER BY p.started_at, p.id`, customerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("maintenance: pauses of %s: %w", customerID, err)
	}
	defer rows.Close()
	out := []PauseSpan{}
	for rows.Next() {
		var p PauseSpan
		var reasons pq.StringArray
		if err := rows.Scan(&p.TicketID, &p.Number, &reasons, &p.From, &p.To); err != nil {
			return nil, fmt.Errorf("maintenance: pauses of %s: %w", customerID, err)
		}
		p.Reasons = []string(reasons)
		out = append(out, p)
	}
	return out, rows.Err()
}
