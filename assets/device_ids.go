package assets

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// The reads below answer other stages' questions about many devices at
// once with their ids only (no endpoints, no secrets): the dispatch board's
// "which tickets concern field equipment", a collector's devices and the
// sites of the devices it reports on. Through InTx they read in the
// caller's transaction.

// DeviceIDsOfKinds lists the ids of the devices of the given kinds,
// retired ones included (a ticket may still name them).
func (s *Store) DeviceIDsOfKinds(ctx context.Context, kinds ...string) ([]string, error) {
	out := []string{}
	if err := s.q.SelectContext(ctx, &out, `SELECT id FROM devices WHERE kind = ANY ($1) ORDER BY id`, pq.StringArray(kinds)); err != nil {
		return nil, fmt.Errorf("assets: devices of kinds %v: %w", kinds, err)
	}
	return out, nil
}

// ActiveDeviceIDsAt lists the ids of the active devices of sites, in order.
func (s *Store) ActiveDeviceIDsAt(ctx context.Context, sites []string) ([]string, error) {
	out := []string{}
	if err := s.q.SelectContext(ctx, &out, `SELECT id FROM devices WHERE site_id = ANY ($1) AND retired_at IS NULL ORDER BY id`,
		pq.StringArray(sites)); err != nil {
		return nil, fmt.Errorf("assets: devices of sites: %w", err)
	}
	return out, nil
}

// ActiveDeviceSites maps the active devices among ids to their sites.
func (s *Store) ActiveDeviceSites(ctx context.Context, ids []string) (map[string]string, error) {
	return s.idPairs(ctx, "sites of devices", `SELECT id, site_id FROM devices WHERE id = ANY ($1) AND retired_at IS NULL`, ids)
}

// HeartbeatTokenHashes maps the active devices of sites that have a
// heartbeat token to the token's SHA-256 in hex (what a collector checks
// a heartbeat against; the token itself is never stored).
func (s *Store) HeartbeatTokenHashes(ctx context.Context, sites []string) (map[string]string, error) {
	return s.idPairs(ctx, "heartbeat tokens", `SELECT id, encode(heartbeat_token_sha256, 'hex') FROM devices
		WHERE site_id = ANY ($1) AND heartbeat_token_sha256 IS NOT NULL AND retired_at IS NULL`, sites)
}

// idPairs runs query, which selects a device id and one text per row for
// the text array arg, into a map.
func (s *Store) idPairs(ctx context.Context, what, query string, arg []string) (map[string]string, error) {
	rows, err := s.q.QueryContext(ctx, query, pq.StringArray(arg))
	if err != nil {
		return nil, fmt.Errorf("assets: %s: %w", what, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, fmt.Errorf("assets: %s: %w", what, err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("assets: %s: %w", what, err)
	}
	return out, nil
}
