package maintenance

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The reads below serve dispatch, which lists its visits, parts, cases and
// waits with their tickets' numbers and never names the ticket tables.

// TicketNumbers names the tickets of ids, read through q: the caller's
// transaction when a ticket may have been opened in it (a rescheduled
// visit's), its database otherwise.
func TicketNumbers(ctx context.Context, q sqlx.QueryerContext, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, number FROM tickets WHERE id = ANY ($1)`, pq.Int64Array(ids))
	if err != nil {
		return nil, fmt.Errorf("maintenance: ticket numbers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var n string
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("maintenance: ticket numbers: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}

// OpenTicketsAmong lists the tickets neither solved nor closed that name
// one of deviceIDs or are one of ids, leaving out those in except: the
// most severe first, then the oldest, at most limit.
func (s *Store) OpenTicketsAmong(ctx context.Context, deviceIDs []string, ids, except []int64, limit int) ([]Ticket, error) {
	// Empty, never NULL: "NOT (id = ANY (NULL))" would leave out every ticket.
	if deviceIDs == nil {
		deviceIDs = []string{}
	}
	if ids == nil {
		ids = []int64{}
	}
	if except == nil {
		except = []int64{}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE status NOT IN ('solved', 'closed') AND (device_ids && $1 OR id = ANY ($2)) AND NOT (id = ANY ($3))
		ORDER BY severity, opened_at LIMIT $4`, pq.StringArray(deviceIDs), pq.Int64Array(ids), pq.Int64Array(except), limit)
	if err != nil {
		return nil, fmt.Errorf("maintenance: open tickets: %w", err)
	}
	defer rows.Close()
	out := []Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("maintenance: open tickets: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
