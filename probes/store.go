package probes

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// Store persists device state, transitions, outages and the events the
// ticketing stage consumes. Each decision is one transaction, and open
// outages are unique in the database, so a crash or a repeated decision
// never duplicates an outage or its events.
type Store struct{ db *sqlx.DB }

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db} }

// Snapshot is what the engine recovers on start.
type Snapshot struct {
	Statuses      map[string]Status
	DeviceOutages map[string]int64 // device id -> open device outage
	SiteOutages   map[string]int64 // site id -> open site incident
}

// Load reads every device's status and the open outages.
func (s *Store) Load(ctx context.Context) (Snapshot, error) { return s.load(ctx, nil) }

// LoadDevices reads the status of the given devices and every open outage.
func (s *Store) LoadDevices(ctx context.Context, ids []string) (Snapshot, error) {
	if ids == nil {
		ids = []string{}
	}
	return s.load(ctx, ids)
}

func (s *Store) load(ctx context.Context, ids []string) (Snapshot, error) {
	snap := Snapshot{Statuses: map[string]Status{}, DeviceOutages: map[string]int64{}, SiteOutages: map[string]int64{}}
	var filter any
	if ids != nil {
		filter = pq.Array(ids)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT device_id, state, since, consecutive_failures, consecutive_successes, flapping,
		array_to_json(recent_transitions)::text, COALESCE(last_uptime_seconds, 0), last_detail, COALESCE(last_probe_at, since),
		worklist_failing
		FROM device_states WHERE $1::text[] IS NULL OR device_id = ANY($1)`, filter)
	if err != nil {
		return snap, fmt.Errorf("probes: load states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var st Status
		var uptime int64
		var recent string
		if err := rows.Scan(&id, &st.State, &st.Since, &st.Failures, &st.Successes, &st.Flapping,
			&recent, &uptime, &st.LastDetail, &st.LastProbeAt, &st.WorklistFailing); err != nil {
			return snap, fmt.Errorf("probes: load states: %w", err)
		}
		// lib/pq cannot scan timestamptz[] into []time.Time; JSON can.
		if err := json.Unmarshal([]byte(recent), &st.RecentTransitions); err != nil {
			return snap, fmt.Errorf("probes: load states of %s: %w", id, err)
		}
		st.LastUptime = time.Duration(uptime) * time.Second
		snap.Statuses[id] = st
	}
	if err := rows.Err(); err != nil {
		return snap, fmt.Errorf("probes: load states: %w", err)
	}
	orows, err := s.db.QueryContext(ctx, `SELECT id, kind, site_id, COALESCE(device_id, '') FROM outages WHERE ended_at IS NULL`)
	if err != nil {
		return snap, fmt.Errorf("probes: load outages: %w", err)
	}
	defer orows.Close()
	for orows.Next() {
		var id int64
		var kind, site, device string
		if err := orows.Scan(&id, &kind, &site, &device); err != nil {
			return snap, fmt.Errorf("probes: load outages: %w", err)
		}
		if kind == "site" {
			snap.SiteOutages[site] = id
		} else {
			snap.DeviceOutages[device] = id
		}
	}
	return snap, orows.Err()
}

// Change is one decision to persist for a device.
type Change struct {
	Device   assets.Device
	Status   Status
	Decision Decision
	Evidence []Result
	// Via is set for results a collector pushed: the evidence says who
	// observed them and when they reached the NOC.
	Via *Via
}

// Via is the collector a result came through.
type Via struct {
	Collector  string    `json:"collector"`
	ReceivedAt time.Time `json:"received_at"`
}

// Outcome of Commit: the outage opened or ended, if any.
type Committed struct {
	OpenedOutage int64
	EndedOutage  int64
}

// Commit writes a device's decision in one transaction: its status, its
// transition, its outage opened or ended with the matching event, and its
// other events.
func (s *Store) Commit(ctx context.Context, c Change) (Committed, error) {
	var out Committed
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		var err error
		out, err = commitChange(ctx, tx, c)
		return err
	})
	return out, err
}

// commitChange writes a device's decision inside tx.
func commitChange(ctx context.Context, tx *sqlx.Tx, c Change) (Committed, error) {
	var out Committed
	err := func() error {
		if err := putStatus(ctx, tx, c.Device.ID, c.Status); err != nil {
			return err
		}
		evidence := evidenceJSON(c.Evidence)
		if c.Via != nil {
			evidence = viaEvidence(c.Evidence, c.Via)
		}
		if t := c.Decision.Transition; t != nil {
			if err := insertTransition(ctx, tx, c.Device.ID, t, evidence); err != nil {
				return err
			}
		}
		at := c.Status.LastProbeAt
		if c.Decision.OpenOutage {
			id, err := openOutage(ctx, tx, "device", c.Device, nil, c.Status.LastDetail, at)
			if err != nil {
				return err
			}
			if id != 0 {
				out.OpenedOutage = id
				if err := insertEvent(ctx, tx, EventDeviceDown, c.Device, id, evidence, at); err != nil {
					return err
				}
			}
		}
		if c.Decision.CloseOutage {
			id, err := endOutage(ctx, tx, `kind = 'device' AND device_id = $1`, c.Device.ID, at)
			if err != nil {
				return err
			}
			if id != 0 {
				out.EndedOutage = id
				if err := insertEvent(ctx, tx, EventDeviceUp, c.Device, id, evidence, at); err != nil {
					return err
				}
			}
		}
		for _, kind := range c.Decision.Events {
			if err := insertEvent(ctx, tx, kind, c.Device, 0, evidence, at); err != nil {
				return err
			}
		}
		return nil
	}()
	return out, err
}

// SiteIncident opens (or finds) the site's incident caused by its gateway,
// marks the affected devices unreachable, and publishes site_down once.
func (s *Store) OpenSiteIncident(ctx context.Context, gateway assets.Device, gwStatus Status, gwDecision Decision,
	affected map[string]Status, transitions map[string]*Transition, cause string, at time.Time, evidence []Result) (int64, error) {
	var id int64
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		ev := evidenceJSON(evidence)
		if err := putStatus(ctx, tx, gateway.ID, gwStatus); err != nil {
			return err
		}
		if t := gwDecision.Transition; t != nil {
			if err := insertTransition(ctx, tx, gateway.ID, t, ev); err != nil {
				return err
			}
		}
		ids := make([]string, 0, len(affected))
		for devID := range affected {
			ids = append(ids, devID)
		}
		var err error
		id, err = openOutage(ctx, tx, "site", gateway, ids, cause, at)
		if err != nil {
			return err
		}
		if id == 0 {
			// Already open (another instance, or a restart): nothing more.
			return tx.GetContext(ctx, &id, `SELECT id FROM outages WHERE kind = 'site' AND site_id = $1 AND ended_at IS NULL`, gateway.SiteID)
		}
		if err := insertEvent(ctx, tx, EventSiteDown, gateway, id, ev, at); err != nil {
			return err
		}
		for devID, st := range affected {
			if err := putStatus(ctx, tx, devID, st); err != nil {
				return err
			}
			if t := transitions[devID]; t != nil {
				if err := insertTransition(ctx, tx, devID, t, json.RawMessage(`{"cause":"site gateway down"}`)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return id, err
}

// EndSiteIncident ends the site's incident and publishes site_up once.
func (s *Store) EndSiteIncident(ctx context.Context, gateway assets.Device, gwStatus Status, gwDecision Decision, at time.Time, evidence []Result) (int64, error) {
	var id int64
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		ev := evidenceJSON(evidence)
		if err := putStatus(ctx, tx, gateway.ID, gwStatus); err != nil {
			return err
		}
		if t := gwDecision.Transition; t != nil {
			if err := insertTransition(ctx, tx, gateway.ID, t, ev); err != nil {
				return err
			}
		}
		var err error
		id, err = endOutage(ctx, tx, `kind = 'site' AND site_id = $1`, gateway.SiteID, at)
		if err != nil || id == 0 {
			return err
		}
		return insertEvent(ctx, tx, EventSiteUp, gateway, id, ev, at)
	})
	return id, err
}

// PutStatus writes a device's status alone (counters, last probe).
func (s *Store) PutStatus(ctx context.Context, deviceID string, st Status) error {
	return putStatus(ctx, s.db, deviceID, st)
}

// Refresh writes, in one statement, the bookkeeping of statuses that did
// not change: last probe instant, uptime and detail. A row whose last probe
// is as recent or newer is left alone, so a late refresh cannot undo a
// change committed after it was queued.
func (s *Store) Refresh(ctx context.Context, statuses map[string]Status) error {
	ids := make([]string, 0, len(statuses))
	at := make([]time.Time, 0, len(statuses))
	uptime := make([]int64, 0, len(statuses))
	detail := make([]string, 0, len(statuses))
	for id, st := range statuses {
		ids = append(ids, id)
		at = append(at, st.LastProbeAt)
		uptime = append(uptime, int64(st.LastUptime/time.Second))
		detail = append(detail, storableText(st.LastDetail))
	}
	_, err := s.db.ExecContext(ctx, `UPDATE device_states d SET last_probe_at = v.at,
			last_uptime_seconds = NULLIF(v.uptime, 0), last_detail = v.detail, updated_at = v.at
		FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[]) AS v(device_id, at, uptime, detail)
		WHERE d.device_id = v.device_id AND (d.last_probe_at IS NULL OR d.last_probe_at < v.at)`,
		pq.Array(ids), pq.Array(at), pq.Array(uptime), pq.Array(detail))
	if err != nil {
		return fmt.Errorf("probes: refresh %d device states: %w", len(ids), err)
	}
	return nil
}

// storableText makes text a device sent (an SNMP string, a peer's error)
// acceptable to a PostgreSQL text column: valid UTF-8 and no NUL bytes.
// Otherwise one odd interface name would fail its device's every write,
// and a whole batch of refreshes with it.
func storableText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}

func putStatus(ctx context.Context, db sqlx.ExecerContext, deviceID string, st Status) error {
	_, err := db.ExecContext(ctx, `INSERT INTO device_states (device_id, state, since, consecutive_failures, consecutive_successes,
			flapping, recent_transitions, last_probe_at, last_uptime_seconds, last_detail, updated_at, worklist_failing)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, '{}'::timestamptz[]), $8, NULLIF($9, 0), $10, $8, $11)
		ON CONFLICT (device_id) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since,
			consecutive_failures = EXCLUDED.consecutive_failures, consecutive_successes = EXCLUDED.consecutive_successes,
			flapping = EXCLUDED.flapping, recent_transitions = EXCLUDED.recent_transitions, last_probe_at = EXCLUDED.last_probe_at,
			last_uptime_seconds = EXCLUDED.last_uptime_seconds, last_detail = EXCLUDED.last_detail, updated_at = EXCLUDED.updated_at,
			worklist_failing = EXCLUDED.worklist_failing`,
		deviceID, st.State, st.Since, st.Failures, st.Successes, st.Flapping, pq.Array(st.RecentTransitions),
		st.LastProbeAt, int64(st.LastUptime/time.Second), storableText(st.LastDetail), st.WorklistFailing)
	if err != nil {
		return fmt.Errorf("probes: save state of %s: %w", deviceID, err)
	}
	return nil
}

func insertTransition(ctx context.Context, tx *sqlx.Tx, deviceID string, t *Transition, evidence json.RawMessage) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO device_transitions (device_id, from_state, to_state, evidence, at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`,
		deviceID, t.From, t.To, evidence, t.At)
	if err != nil {
		return fmt.Errorf("probes: record transition of %s: %w", deviceID, err)
	}
	return nil
}

// openOutage inserts an open outage unless one is open already (the partial
// unique indexes decide); it returns 0 in that case.
func openOutage(ctx context.Context, tx *sqlx.Tx, kind string, d assets.Device, affected []string, cause string, at time.Time) (int64, error) {
	if affected == nil {
		affected = []string{}
	}
	var id int64
	err := tx.GetContext(ctx, &id, `INSERT INTO outages (kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id`,
		kind, d.CustomerID, d.SiteID, d.ID, pq.Array(affected), cause, at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("probes: open %s outage for %s: %w", kind, d.ID, err)
	}
	return id, nil
}

func endOutage(ctx context.Context, tx *sqlx.Tx, where, arg string, at time.Time) (int64, error) {
	var id int64
	err := tx.GetContext(ctx, &id, `UPDATE outages SET ended_at = $2 WHERE ended_at IS NULL AND `+where+` RETURNING id`, arg, at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("probes: end outage of %s: %w", arg, err)
	}
	return id, nil
}

func insertEvent(ctx context.Context, tx *sqlx.Tx, kind string, d assets.Device, outageID int64, detail json.RawMessage, at time.Time) error {
	var outage any
	if outageID != 0 {
		outage = outageID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO device_events (kind, customer_id, site_id, device_id, outage_id, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, kind, d.CustomerID, d.SiteID, d.ID, outage, detail, at)
	if err != nil {
		return fmt.Errorf("probes: publish %s for %s: %w", kind, d.ID, err)
	}
	return nil
}

func evidenceJSON(results []Result) json.RawMessage {
	if len(results) == 0 {
		return json.RawMessage(`{}`)
	}
	b, err := json.Marshal(map[string]any{"probes": results})
	if err != nil {
		return json.RawMessage(`{}`)
	}
	return b
}

// RecordHeartbeat stores that a device spoke at at.
func (s *Store) RecordHeartbeat(ctx context.Context, deviceID string, at time.Time, remote string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO heartbeats (device_id, last_seen_at, remote_addr) VALUES ($1, $2, $3)
		ON CONFLICT (device_id) DO UPDATE SET last_seen_at = GREATEST(heartbeats.last_seen_at, EXCLUDED.last_seen_at), remote_addr = EXCLUDED.remote_addr`,
		deviceID, at, remote)
	if err != nil {
		return fmt.Errorf("probes: record heartbeat of %s: %w", deviceID, err)
	}
	return nil
}

// LastHeartbeat returns when a device last spoke.
func (s *Store) LastHeartbeat(ctx context.Context, deviceID string) (time.Time, bool, error) {
	var t time.Time
	err := s.db.GetContext(ctx, &t, `SELECT last_seen_at FROM heartbeats WHERE device_id = $1`, deviceID)
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("probes: last heartbeat of %s: %w", deviceID, err)
	}
	return t, true, nil
}

// viaEvidence is the evidence of a collector's results: the probes, the
// collector, and when they arrived (later than they were observed when the
// uplink was down).
func viaEvidence(results []Result, via *Via) json.RawMessage {
	b, err := json.Marshal(map[string]any{"probes": results, "collector": via.Collector, "received_at": via.ReceivedAt})
	if err != nil {
		return evidenceJSON(results)
	}
	return b
}
