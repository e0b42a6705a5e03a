package dispatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Hold is what holds a ticket: its open waits with what each is about,
// since when its SLA has been paused by them, the next visit, and the
// ticket that took over when the equipment was not available (seed 000
// §8). It carries no cost: customers read it too.
type Hold struct {
	TicketID int64      `json:"ticket_id"`
	Items    []HoldItem `json:"items"`
	// PausedSince is when the waits started to hold the SLA without a
	// break (nil when nothing waits).
	PausedSince *time.Time `json:"paused_since,omitempty"`
	// NextVisit is the start of the next scheduled visit; VisitProposed
	// says a visit is proposed and not yet agreed.
	NextVisit     *time.Time `json:"next_visit,omitempty"`
	VisitProposed bool       `json:"visit_proposed,omitempty"`
	// RescheduledAs is the ticket opened to reschedule a visit whose
	// equipment was unavailable; RescheduledFrom the ticket it came from.
	RescheduledAs   string `json:"rescheduled_as,omitempty"`
	RescheduledFrom string `json:"rescheduled_from,omitempty"`
}

// HoldItem is one open wait.
type HoldItem struct {
	Reason    string    `json:"reason"` // customer, manufacturer, spare_parts, import, third_party
	Since     time.Time `json:"since"`
	Source    string    `json:"source"`
	Part      string    `json:"part,omitempty"` // manufacturer and part number
	PartState string    `json:"part_state,omitempty"`
	ETA       string    `json:"eta,omitempty"`
	Case      string    `json:"case,omitempty"` // manufacturer and the manufacturer's case number
	// Note is the provider's note of a manual wait: staff only.
	Note string `json:"note,omitempty"`
}

// Empty reports whether nothing holds the ticket.
func (h Hold) Empty() bool {
	return len(h.Items) == 0 && h.NextVisit == nil && !h.VisitProposed && h.RescheduledAs == "" && h.RescheduledFrom == ""
}

// Holds answers "what holds these tickets" in a's scope (another
// customer's tickets are left out), by ticket id.
func (s *Store) Holds(ctx context.Context, a auth.Actor, ticketIDs []int64) (map[int64]Hold, error) {
	out := map[int64]Hold{}
	if len(ticketIDs) == 0 {
		return out, nil
	}
	ids := pq.Int64Array(ticketIDs)
	rows, err := s.db.QueryContext(ctx, `SELECT w.ticket_id, w.reason, w.source, w.note, w.started_at, w.ended_at,
		COALESCE(p.manufacturer || ' ' || p.part_number, ''), COALESCE(r.state, ''), COALESCE(to_char(r.eta, 'YYYY-MM-DD'), ''),
		COALESCE(c.manufacturer || ' ' || c.case_number, '')
		FROM waits w
		LEFT JOIN part_requests r ON w.source = 'part_request' AND r.id = w.source_id LEFT JOIN parts p ON p.id = r.part_id
		LEFT JOIN manufacturer_cases c ON w.source = 'manufacturer_case' AND c.id = w.source_id
		WHERE w.ticket_id = ANY ($1) AND ($2 = '' OR w.customer_id = $2) ORDER BY w.ticket_id, w.started_at, w.id`, ids, a.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: holds: %w", err)
	}
	type span struct{ from, to *time.Time }
	spans := map[int64][]span{}
	for rows.Next() {
		var id int64
		var it HoldItem
		var ended *time.Time
		if err := rows.Scan(&id, &it.Reason, &it.Source, &it.Note, &it.Since, &ended, &it.Part, &it.PartState, &it.ETA, &it.Case); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dispatch: holds: %w", err)
		}
		since := it.Since
		spans[id] = append(spans[id], span{&since, ended})
		if ended != nil {
			continue
		}
		if !a.IsProvider() {
			it.Note = ""
		}
		h := out[id]
		h.TicketID = id
		h.Items = append(h.Items, it)
		out[id] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dispatch: holds: %w", err)
	}
	// The pause began where the unbroken run of waits reaching now began:
	// a part moving from transit to customs ends one wait and starts the
	// next at the same instant, and the clock never ran in between.
	for id, ss := range spans {
		var start, end *time.Time
		open := false
		for _, sp := range ss { // by start
			switch {
			case start == nil || (end != nil && sp.from.After(*end)):
				start, end = sp.from, sp.to
			case sp.to == nil || end == nil:
				end = nil
			case sp.to.After(*end):
				end = sp.to
			}
			open = end == nil
		}
		if open {
			h := out[id]
			h.TicketID, h.PausedSince = id, start
			out[id] = h
		}
	}
	for id, h := range out {
		// Imports and parts first: they are the long waits of seed 000.
		order := []string{WaitImport, WaitSpareParts, WaitManufacturer, WaitThirdParty, WaitCustomer}
		slices.SortStableFunc(h.Items, func(x, y HoldItem) int { return slices.Index(order, x.Reason) - slices.Index(order, y.Reason) })
		out[id] = h
	}
	vrows, err := s.db.QueryContext(ctx, `SELECT v.ticket_id, min(v.window_start) FILTER (WHERE v.state IN ('scheduled', 'en_route', 'on_site')),
		bool_or(v.state = 'proposed'),
		(SELECT nv.ticket_id FROM visits nv WHERE nv.rescheduled_from = ANY (array_agg(v.id)) LIMIT 1),
		(SELECT ov.ticket_id FROM visits ov WHERE ov.id = ANY (array_agg(v.rescheduled_from)) LIMIT 1)
		FROM visits v
		WHERE v.ticket_id = ANY ($1) AND ($2 = '' OR v.customer_id = $2) GROUP BY v.ticket_id`, ids, a.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: holds of visits: %w", err)
	}
	defer vrows.Close()
	// The tickets that took over from, or handed over to, these are named
	// by the ticket core, all at once.
	as, from := map[int64]int64{}, map[int64]int64{}
	var others []int64
	for vrows.Next() {
		var id int64
		var next *time.Time
		var proposed bool
		var asID, fromID *int64
		if err := vrows.Scan(&id, &next, &proposed, &asID, &fromID); err != nil {
			return nil, fmt.Errorf("dispatch: holds of visits: %w", err)
		}
		h := out[id]
		h.TicketID, h.NextVisit, h.VisitProposed = id, next, proposed
		out[id] = h
		if asID != nil {
			as[id] = *asID
			others = append(others, *asID)
		}
		if fromID != nil {
			from[id] = *fromID
			others = append(others, *fromID)
		}
	}
	if err := vrows.Err(); err != nil {
		return nil, fmt.Errorf("dispatch: holds of visits: %w", err)
	}
	numbers, err := maintenance.TicketNumbers(ctx, s.db, others)
	if err != nil {
		return nil, fmt.Errorf("dispatch: holds of visits: %w", err)
	}
	for id, other := range as {
		h := out[id]
		h.RescheduledAs = numbers[other]
		out[id] = h
	}
	for id, other := range from {
		h := out[id]
		h.RescheduledFrom = numbers[other]
		out[id] = h
	}
	return out, nil
}
