package probes

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Span is a half-open interval of time [From, To).
type Span struct {
	From, To time.Time
}

// StateSpan is a device's state during [From, To).
type StateSpan struct {
	State    string
	From, To time.Time
}

// StateHistory returns, per device, the states the recorded transitions
// give it over [from, to), contiguous and in order. Before a device's first
// transition in the range it is in the state that transition left (or the
// last one before from); a device without any transition is in its current
// state, "unknown" when it was never probed. Reports read availability from
// here; transitions stay the probes' table.
func (s *Store) StateHistory(ctx context.Context, deviceIDs []string, from, to time.Time) (map[string][]StateSpan, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// The state at from: the last transition at or before it, else the
	// first transition after it said where it came from, else the device's
	// current state.
	initial := map[string]string{}
	rows, err := s.db.QueryContext(ctx, `SELECT d.id, COALESCE(
			(SELECT t.to_state FROM device_transitions t WHERE t.device_id = d.id AND t.at <= $2 ORDER BY t.at DESC, t.id DESC LIMIT 1),
			(SELECT t.from_state FROM device_transitions t WHERE t.device_id = d.id AND t.at > $2 ORDER BY t.at, t.id LIMIT 1),
			(SELECT st.state FROM device_states st WHERE st.device_id = d.id), 'unknown')
		FROM unnest($1::text[]) AS d(id)`, pq.StringArray(deviceIDs), from)
	if err != nil {
		return nil, fmt.Errorf("probes: state history: %w", err)
	}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("probes: state history: %w", err)
		}
		initial[id] = state
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("probes: state history: %w", err)
	}
	out := make(map[string][]StateSpan, len(deviceIDs))
	for _, id := range deviceIDs {
		out[id] = []StateSpan{{State: initial[id], From: from, To: to}}
	}
	rows, err = s.db.QueryContext(ctx, `SELECT device_id, to_state, at FROM device_transitions
		WHERE device_id = ANY ($1) AND at > $2 AND at < $3 ORDER BY device_id, at, id`, pq.StringArray(deviceIDs), from, to)
	if err != nil {
		return nil, fmt.Errorf("probes: state history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state string
		var at time.Time
		if err := rows.Scan(&id, &state, &at); err != nil {
			return nil, fmt.Errorf("probes: state history: %w", err)
		}
		spans := out[id]
		last := &spans[len(spans)-1]
		if last.State == state {
			continue
		}
		last.To = at
		out[id] = append(spans, StateSpan{State: state, From: at, To: to})
	}
	return out, rows.Err()
}

// WindowsBetween loads the maintenance windows that overlap [from, to).
func (s *Store) WindowsBetween(ctx context.Context, from, to time.Time) ([]*Window, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return s.loadWindows(ctx, `ends_at > $1 AND starts_at < $2`, from, to)
}

// Spans returns when the window is open within [from, to), in order: its
// whole range for a one-off window, each occurrence for a recurring one.
func (w *Window) Spans(from, to time.Time) []Span {
	clip := func(a, b time.Time) (Span, bool) {
		for _, lo := range []time.Time{from, w.StartsAt} {
			if a.Before(lo) {
				a = lo
			}
		}
		for _, hi := range []time.Time{to, w.EndsAt} {
			if b.After(hi) {
				b = hi
			}
		}
		return Span{a, b}, a.Before(b)
	}
	var out []Span
	if w.schedule == nil {
		if sp, ok := clip(w.StartsAt, w.EndsAt); ok {
			out = append(out, sp)
		}
		return out
	}
	// Occurrences starting up to Duration before from still reach into it.
	start := from.Add(-w.Duration)
	if start.Before(w.StartsAt.Add(-w.Duration)) {
		start = w.StartsAt.Add(-w.Duration)
	}
	for at := w.schedule.Next(start.Add(-time.Nanosecond).In(w.loc)); at.Before(to) && at.Before(w.EndsAt); at = w.schedule.Next(at) {
		if sp, ok := clip(at, at.Add(w.Duration)); ok {
			out = append(out, sp)
		}
	}
	return out
}

// OutagesBetween lists customerID's outages that overlap [from, to), open
// ones included (their EndedAt nil).
func (s *Store) OutagesBetween(ctx context.Context, customerID string, from, to time.Time) ([]Outage, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []Outage
	if err := s.db.SelectContext(ctx, &out, `SELECT id, kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at, ended_at
		FROM outages WHERE customer_id = $1 AND started_at < $3 AND (ended_at IS NULL OR ended_at > $2) ORDER BY started_at, id`,
		customerID, from, to); err != nil {
		return nil, fmt.Errorf("probes: outages of %s: %w", customerID, err)
	}
	return out, nil
}
