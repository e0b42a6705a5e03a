package probes

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// RemoteCheck is one check of a device made by a collector: every
// applicable prober's result with its instant, numbered in the collector's
// sequence (1, 2, 3…; a gap means its queue dropped results).
//
// A check carries either the device's probe results or one trap the
// collector received from it (Trap): both travel in the same numbered
// stream, so a trap is applied once, in order, at its instant.
type RemoteCheck struct {
	Seq     int64    `json:"seq"`
	Device  string   `json:"device"`
	Results []Result `json:"results,omitempty"`
	Trap    *Trap    `json:"trap,omitempty"`
}

// at is the check's instant: its trap's, or its latest result's.
func (ch RemoteCheck) at(fallback time.Time) time.Time {
	if ch.Trap != nil {
		return ch.Trap.At
	}
	return observedAt(ch.Results, fallback)
}

// IngestSummary says what a batch did.
type IngestSummary struct {
	Applied    int   `json:"applied"`
	Duplicates int   `json:"duplicates"` // already applied: a batch pushed again
	Missing    int64 `json:"missing"`    // sequence numbers never received (dropped by the collector's queue)
	Skipped    int   `json:"skipped"`    // checks of devices retired since they were probed
	LastSeq    int64 `json:"last_seq"`   // the highest sequence applied so far
}

// Remote reports whether a collector probes the device.
func (e *Engine) Remote(d assets.Device) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.remote[d.SiteID] != 0
}

// RemoteDevice reports whether the device exists and is probed by the
// collector c.
func (e *Engine) remoteDevice(c Collector, id string) (assets.Device, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	d, ok := e.devices[id]
	return d, ok && slices.Contains(c.Sites, d.SiteID)
}

func (e *Engine) collectorLock(id int64) *sync.Mutex {
	l, _ := e.collectorMu.LoadOrStore(id, &sync.Mutex{})
	return l.(*sync.Mutex)
}

// applied is one check decided inside an ingest, for memory once committed.
type applied struct {
	device    assets.Device
	prev      Status
	dec       Decision
	results   []Result
	committed Committed
	written   bool
}

// Ingest applies a collector's checks in sequence order, in one
// transaction with their sequence numbers: a check already applied (its
// row exists, or its number is not above the collector's last) changes
// nothing, so a batch pushed again after a lost answer or a crash on
// either side is applied once. Each check runs through the same state
// machine as a local probe, at the instant the collector observed it: an
// outage that began while the uplink was down starts when it began.
//
// The states are read inside the transaction, under the collector's row
// lock, so instances sharing the database agree, and the engine's memory
// follows only what was committed.
func (e *Engine) Ingest(ctx context.Context, c Collector, checks []RemoteCheck) (IngestSummary, error) {
	lock := e.collectorLock(c.ID)
	lock.Lock()
	defer lock.Unlock()
	checks = slices.Clone(checks)
	slices.SortFunc(checks, func(a, b RemoteCheck) int { return cmp.Compare(a.Seq, b.Seq) })
	now := e.cfg.Clock.Now()
	e.judgeRemote(ctx, c, checks)
	var sum IngestSummary
	var done []*applied
	var traps []trapDone
	err := db.InTx(ctx, e.store.db, func(tx *sqlx.Tx) error {
		sum, done, traps = IngestSummary{}, nil, nil
		var last int64
		var lastResult sql.NullTime
		if err := tx.QueryRowContext(ctx, `SELECT last_seq, last_result_at FROM collectors WHERE id = $1 FOR UPDATE`, c.ID).
			Scan(&last, &lastResult); err != nil {
			return fmt.Errorf("probes: lock collector %d: %w", c.ID, err)
		}
		ids := make([]string, 0, len(checks))
		for _, ch := range checks {
			ids = append(ids, ch.Device)
		}
		statuses, outages, err := loadForIngest(ctx, tx, ids)
		if err != nil {
			return err
		}
		conditions, err := standingConditions(ctx, tx, ids)
		if err != nil {
			return err
		}
		newest := lastResult.Time
		// The checks to apply, in order: new numbers of known devices.
		var fresh []RemoteCheck
		var devices []assets.Device
		for _, ch := range checks {
			if ch.Seq <= last {
				sum.Duplicates++
				continue
			}
			sum.Missing += ch.Seq - last - 1
			last = ch.Seq
			d, ok := e.remoteDevice(c, ch.Device)
			if !ok {
				// Retired (or moved, checked at the edge): skipped, its
				// number consumed.
				sum.Skipped++
				continue
			}
			fresh = append(fresh, ch)
			devices = append(devices, d)
		}
		recorded, err := recordResults(ctx, tx, c.ID, fresh, now)
		if err != nil {
			return err
		}
		for i, ch := range fresh {
			d := devices[i]
			if !recorded[ch.Seq] {
				sum.Duplicates++
				continue
			}
			at := ch.at(now)
			if at.After(newest) {
				newest = at
			}
			sum.Applied++
			if ch.Trap != nil {
				// As serve's listener records it, at the instant the
				// collector heard it; the conditions it changes weigh on
				// the device's next checks in this same stream.
				a, err := recordTrap(ctx, tx, e.cfg.TrapRules, d, *ch.Trap)
				if err != nil {
					return fmt.Errorf("probes: trap of %s from collector %d: %w", d.ID, c.ID, err)
				}
				conditions[d.ID] = a.applyTo(conditions[d.ID])
				traps = append(traps, trapDone{device: d.ID, applied: a})
				continue
			}
			results := ch.Results
			if degrading := degradingOf(conditions[d.ID]); len(degrading) > 0 {
				// The trap prober's answer, as serve's engine adds it.
				tr := conditionsResult(degrading)
				tr.Prober, tr.At = "trap", at
				results = append(slices.Clone(results), tr)
			}
			prev, ok := statuses[d.ID]
			if !ok {
				prev = Status{State: StateUnknown, Since: at}
			}
			obs := e.remoteObservation(d, outages[d.ID], results, at)
			dec := Step(prev, obs, e.policy(d))
			a := &applied{device: d, prev: prev, dec: dec, results: results}
			if dec.changes(prev) {
				a.written = true
				if a.committed, err = commitChange(ctx, tx, Change{Device: d, Status: dec.Next, Decision: dec, Evidence: results,
					Via: &Via{Collector: c.Name, ReceivedAt: now}}); err != nil {
					return err
				}
			}
			switch {
			case dec.OpenOutage:
				outages[d.ID] = true
			case dec.CloseOutage:
				delete(outages, d.ID)
			}
			statuses[d.ID] = dec.Next
			done = append(done, a)
		}
		sum.LastSeq = last
		var newestArg any
		if !newest.IsZero() {
			newestArg = newest
		}
		if _, err := tx.ExecContext(ctx, `UPDATE collectors SET last_seq = $2, last_result_at = $3, results_applied = results_applied + $4,
				results_missing = results_missing + $5, last_contact_at = GREATEST(last_contact_at, $6) WHERE id = $1`,
			c.ID, last, newestArg, sum.Applied, sum.Missing, now); err != nil {
			return fmt.Errorf("probes: advance collector %d: %w", c.ID, err)
		}
		return nil
	})
	if err != nil {
		return IngestSummary{}, err
	}
	if sum.Missing > 0 {
		e.cfg.Log.Warn("collector results missing: its queue dropped them", "collector", c.Name, "missing", sum.Missing)
	}
	for _, a := range done {
		e.applyCommitted(a)
	}
	for _, t := range traps {
		e.cfg.TrapConditions.learn(t.device, t.applied)
	}
	e.updateOutageGauges()
	return sum, nil
}

// recordResults inserts the checks' rows in one statement and returns the
// sequence numbers it inserted: one already there (a repeat) is not.
func recordResults(ctx context.Context, tx *sqlx.Tx, collectorID int64, checks []RemoteCheck, now time.Time) (map[int64]bool, error) {
	out := make(map[int64]bool, len(checks))
	if len(checks) == 0 {
		return out, nil
	}
	seqs := make([]int64, len(checks))
	devices := make([]string, len(checks))
	outcomes := make([]string, len(checks))
	ats := make([]time.Time, len(checks))
	for i, ch := range checks {
		seqs[i], devices[i], outcomes[i], ats[i] = ch.Seq, ch.Device, string(outcomeOf(ch.Results)), ch.at(now)
		if ch.Trap != nil {
			outcomes[i] = "trap"
		}
	}
	var inserted []int64
	if err := tx.SelectContext(ctx, &inserted, `INSERT INTO collector_results (collector_id, seq, device_id, outcome, at, applied_at)
		SELECT $1, v.seq, v.device, v.outcome, v.at, $6 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::timestamptz[]) AS v(seq, device, outcome, at)
		ON CONFLICT DO NOTHING RETURNING seq`, collectorID, pq.Array(seqs), pq.Array(devices), pq.Array(outcomes), pq.Array(ats), now); err != nil {
		return nil, fmt.Errorf("probes: record %d results of collector %d: %w", len(checks), collectorID, err)
	}
	for _, s := range inserted {
		out[s] = true
	}
	return out, nil
}

// applyCommitted brings memory and metrics up to a committed remote check.
func (e *Engine) applyCommitted(a *applied) {
	d, next := a.device, a.dec.Next
	e.mu.Lock()
	switch {
	case a.dec.OpenOutage && a.committed.OpenedOutage != 0:
		e.deviceOutage[d.ID] = a.committed.OpenedOutage
	case a.dec.CloseOutage:
		delete(e.deviceOutage, d.ID)
	}
	if a.written {
		e.lastWrite[d.ID] = next.LastProbeAt
		delete(e.refreshes, d.ID)
	} else if next.LastProbeAt.Sub(e.lastWrite[d.ID]) >= e.cfg.StatusWriteEvery {
		e.refreshes[d.ID] = next
		e.lastWrite[d.ID] = next.LastProbeAt
	}
	e.mu.Unlock()
	if e.cfg.Metrics != nil {
		for _, r := range a.results {
			e.cfg.Metrics.observeResult(r)
		}
	}
	e.remember(d, a.prev, next, a.results)
	if a.committed.OpenedOutage != 0 {
		e.cfg.Log.Info("device down (collector)", "device", d.ID, "outage", a.committed.OpenedOutage, "at", next.LastProbeAt)
	}
	if a.committed.EndedOutage != 0 {
		e.cfg.Log.Info("device back up (collector)", "device", d.ID, "outage", a.committed.EndedOutage, "at", next.LastProbeAt)
	}
}

// observedAt is a check's instant: its latest result's.
func observedAt(results []Result, fallback time.Time) time.Time {
	var at time.Time
	for _, r := range results {
		if r.At.After(at) {
			at = r.At
		}
	}
	if at.IsZero() {
		return fallback
	}
	return at
}

func outcomeOf(results []Result) Outcome {
	o, _, _ := combine(results)
	if o == "" {
		return Unknown
	}
	return o
}

// remoteObservation is observe for a device behind a collector: no site
// gateway is asked (the collector is inside the site; a lost uplink is the
// collector's loss, its own incident).
func (e *Engine) remoteObservation(d assets.Device, outageOpen bool, results []Result, at time.Time) Observation {
	outcome, detail, uptime := combine(results)
	obs := Observation{At: at, Outcome: outcome, Detail: detail, Uptime: uptime, OutageOpen: outageOpen, Worklist: worklistOf(results)}
	e.mu.RLock()
	for _, w := range e.windows {
		if w.Covers(d) && w.Active(at) {
			obs.InMaintenance = true
			break
		}
	}
	e.mu.RUnlock()
	return obs
}

// loadForIngest reads, inside tx, the statuses and open outages of devices.
func loadForIngest(ctx context.Context, tx *sqlx.Tx, ids []string) (map[string]Status, map[string]bool, error) {
	statuses := map[string]Status{}
	rows, err := tx.QueryContext(ctx, `SELECT device_id, state, since, consecutive_failures, consecutive_successes, flapping,
		array_to_json(recent_transitions)::text, COALESCE(last_uptime_seconds, 0), last_detail, COALESCE(last_probe_at, since), worklist_failing
		FROM device_states WHERE device_id = ANY ($1)`, pq.Array(ids))
	if err != nil {
		return nil, nil, fmt.Errorf("probes: load states for ingest: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, recent string
		var st Status
		var uptime int64
		if err := rows.Scan(&id, &st.State, &st.Since, &st.Failures, &st.Successes, &st.Flapping,
			&recent, &uptime, &st.LastDetail, &st.LastProbeAt, &st.WorklistFailing); err != nil {
			return nil, nil, fmt.Errorf("probes: load states for ingest: %w", err)
		}
		if err := json.Unmarshal([]byte(recent), &st.RecentTransitions); err != nil {
			return nil, nil, fmt.Errorf("probes: load state of %s: %w", id, err)
		}
		st.LastUptime = time.Duration(uptime) * time.Second
		statuses[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("probes: load states for ingest: %w", err)
	}
	var open []string
	if err := tx.SelectContext(ctx, &open, `SELECT device_id FROM outages WHERE kind = 'device' AND ended_at IS NULL AND device_id = ANY ($1)`,
		pq.Array(ids)); err != nil {
		return nil, nil, fmt.Errorf("probes: open outages for ingest: %w", err)
	}
	outages := map[string]bool{}
	for _, id := range open {
		outages[id] = true
	}
	return statuses, outages, nil
}

// insertCollectorEvent publishes monitoring_lost or monitoring_restored of
// a collector, at its first site (the event names them all).
func insertCollectorEvent(ctx context.Context, tx *sqlx.Tx, kind string, c Collector, at time.Time, detail map[string]any) error {
	if len(c.Sites) == 0 {
		return nil
	}
	detail["collector_id"] = c.ID
	detail["sites"] = c.Sites
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("probes: %s event: %w", kind, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_events (kind, customer_id, site_id, detail, at) VALUES ($1, $2, $3, $4, $5)`,
		kind, c.CustomerID, c.Sites[0], b, at); err != nil {
		return fmt.Errorf("probes: publish %s of collector %d: %w", kind, c.ID, err)
	}
	return nil
}

// MarkLostCollectors declares lost every active collector silent for
// longer than grace (counted from this engine's start at the earliest: a
// NOC that was down itself heard nobody, and its collectors are backing
// off, not lost): one monitoring_lost event each, and its devices
// unknown (never down: nobody knows), their counters kept so the results
// replayed when it returns decide what happened. The flip of lost_at is
// the once-only guard, so instances racing here publish one event.
func (e *Engine) MarkLostCollectors(ctx context.Context, grace time.Duration) (int, error) {
	now := e.cfg.Clock.Now()
	var silent []Collector
	rows, err := e.store.db.QueryContext(ctx, `SELECT c.id, c.name, c.customer_id,
			COALESCE((SELECT array_agg(site_id ORDER BY site_id) FROM collector_sites WHERE collector_id = c.id), '{}')
		FROM collectors c WHERE c.revoked_at IS NULL AND c.lost_at IS NULL
			AND GREATEST(COALESCE(c.last_contact_at, c.created_at), $2) < $1`,
		now.Add(-grace), e.started)
	if err != nil {
		return 0, fmt.Errorf("probes: silent collectors: %w", err)
	}
	for rows.Next() {
		var c Collector
		var sites pq.StringArray
		if err := rows.Scan(&c.ID, &c.Name, &c.CustomerID, &sites); err != nil {
			rows.Close()
			return 0, fmt.Errorf("probes: silent collectors: %w", err)
		}
		c.Sites = sites
		silent = append(silent, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("probes: silent collectors: %w", err)
	}
	n := 0
	for _, c := range silent {
		lost, err := e.markLost(ctx, c, grace, now)
		if err != nil {
			return n, err
		}
		if lost {
			n++
		}
	}
	return n, nil
}

func (e *Engine) markLost(ctx context.Context, c Collector, grace time.Duration, now time.Time) (bool, error) {
	lock := e.collectorLock(c.ID)
	lock.Lock()
	defer lock.Unlock()
	changed := map[string]Status{}
	var lastContact sql.NullTime
	flipped := false
	err := db.InTx(ctx, e.store.db, func(tx *sqlx.Tx) error {
		changed, flipped = map[string]Status{}, false
		err := tx.QueryRowContext(ctx, `UPDATE collectors SET lost_at = $2 WHERE id = $1 AND lost_at IS NULL AND revoked_at IS NULL
			AND GREATEST(COALESCE(last_contact_at, created_at), $4) < $3 RETURNING last_contact_at`, c.ID, now, now.Add(-grace), e.started).Scan(&lastContact)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // it spoke meanwhile, or another instance was first
		}
		if err != nil {
			return fmt.Errorf("probes: mark collector %d lost: %w", c.ID, err)
		}
		flipped = true
		ids, err := assets.NewStore(e.store.db).InTx(tx).ActiveDeviceIDsAt(ctx, c.Sites)
		if err != nil {
			return fmt.Errorf("probes: devices of collector %d: %w", c.ID, err)
		}
		statuses, _, err := loadForIngest(ctx, tx, ids)
		if err != nil {
			return err
		}
		cause, _ := json.Marshal(map[string]any{"cause": "monitoring lost: collector " + c.Name + " silent"})
		for _, id := range ids {
			st, ok := statuses[id]
			if ok && st.State == StateUnknown {
				continue
			}
			from := StateUnknown
			if ok {
				from = st.State
			}
			st.State, st.Since = StateUnknown, now
			if st.LastProbeAt.IsZero() {
				st.LastProbeAt = now
			}
			if err := putStatus(ctx, tx, id, st); err != nil {
				return err
			}
			if ok {
				if err := insertTransition(ctx, tx, id, &Transition{From: from, To: StateUnknown, At: now}, cause); err != nil {
					return err
				}
			}
			changed[id] = st
		}
		detail := map[string]any{"collector": c.Name, "devices": len(ids)}
		if lastContact.Valid {
			detail["last_contact_at"] = lastContact.Time
		}
		return insertCollectorEvent(ctx, tx, "monitoring_lost", c, now, detail)
	})
	if err != nil || !flipped {
		return false, err
	}
	e.cfg.Log.Warn("monitoring lost: collector silent past its grace", "collector", c.Name, "sites", c.Sites,
		"last_contact", lastContact.Time, "devices", len(changed))
	e.mu.Lock()
	for id, st := range changed {
		prev := e.statuses[id]
		e.statuses[id] = st
		if d, ok := e.devices[id]; ok && e.cfg.Metrics != nil {
			e.cfg.Metrics.setState(d, prev.State, st.State, false, st.Flapping)
		}
	}
	e.mu.Unlock()
	return true, nil
}

// RunCollectorWatch checks every interval for collectors silent past grace.
func (e *Engine) RunCollectorWatch(ctx context.Context, grace, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.cfg.Clock.After(every):
		}
		pass, cancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := e.MarkLostCollectors(pass, grace); err != nil && ctx.Err() == nil {
			e.cfg.Log.Warn("collector watch", "err", err)
		}
		cancel()
	}
}
