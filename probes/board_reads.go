package probes

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// LiveState is a device's live state as the board and the API read it.
type LiveState struct {
	State     string
	Since     time.Time
	Flapping  bool
	Detail    string
	LastProbe *time.Time
	// Failures counts the probes failed in a row: above zero while the
	// state still says up, the probes have not confirmed an outage yet.
	Failures int
}

// LiveStates reads the live states of the devices ids in one query (a
// board of ten thousand devices is one round trip, not ten thousand). A
// device never probed has no entry. The caller passes the ids its scoped
// inventory read returned, so the scope is the inventory's.
func (s *Store) LiveStates(ctx context.Context, ids []string) (map[string]LiveState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, state, since, flapping, last_detail, last_probe_at, consecutive_failures
		FROM device_states WHERE device_id = ANY ($1)`, pq.StringArray(ids))
	if err != nil {
		return nil, fmt.Errorf("probes: device states: %w", err)
	}
	defer rows.Close()
	out := make(map[string]LiveState, len(ids))
	for rows.Next() {
		var id string
		var st LiveState
		if err := rows.Scan(&id, &st.State, &st.Since, &st.Flapping, &st.Detail, &st.LastProbe, &st.Failures); err != nil {
			return nil, fmt.Errorf("probes: device states: %w", err)
		}
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("probes: device states: %w", err)
	}
	return out, nil
}

// OutageFilter narrows a listing of outages; at most 500 are listed.
type OutageFilter struct {
	CustomerID string // "" for every customer
	SiteID     string // "" for every site
	// Open: nil lists every outage, true the open ones, false the ended.
	Open *bool
	// OldestFirst orders by start, oldest first (the board's queue);
	// otherwise the newest come first.
	OldestFirst bool
}

// Outages lists the outages matching f.
func (s *Store) Outages(ctx context.Context, f OutageFilter) ([]Outage, error) {
	order := "started_at DESC"
	if f.OldestFirst {
		order = "started_at"
	}
	var out []Outage
	err := s.db.SelectContext(ctx, &out, `SELECT id, kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at, ended_at
		FROM outages WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR site_id = $2) AND ($3::boolean IS NULL OR (ended_at IS NULL) = $3)
		ORDER BY `+order+` LIMIT 500`, f.CustomerID, f.SiteID, f.Open)
	if err != nil {
		return nil, fmt.Errorf("probes: outages: %w", err)
	}
	return out, nil
}
