package probes

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// What the NOC's ingest applies of a collector's stream beyond the state
// machine, so that a device behind a collector ends up as it would in
// front of serve: the traps it forwards, the trap conditions they leave
// standing, and the worklists it reports empty.

// trapDone is a forwarded trap committed, for the conditions in memory.
type trapDone struct {
	device  string
	applied trapApplied
}

// applyTo returns a device's standing conditions after the trap.
func (a trapApplied) applyTo(conds []TrapCondition) []TrapCondition {
	if a.raised == nil && a.cleared == "" {
		return conds
	}
	out := slices.DeleteFunc(slices.Clone(conds), func(c TrapCondition) bool {
		return c.Condition == a.cleared || (a.raised != nil && c.Condition == a.raised.Condition)
	})
	if a.raised != nil {
		out = append(out, *a.raised)
	}
	return out
}

func degradingOf(conds []TrapCondition) []TrapCondition {
	var out []TrapCondition
	for _, c := range conds {
		if c.Degrade {
			out = append(out, c)
		}
	}
	return out
}

// standingConditions reads the trap conditions of devices inside the
// ingest's transaction (another instance's listener may have raised them).
func standingConditions(ctx context.Context, tx *sqlx.Tx, ids []string) (map[string][]TrapCondition, error) {
	var rows []TrapCondition
	if err := tx.SelectContext(ctx, &rows, `SELECT device_id, condition, since, detail, degrade, COALESCE(severity, 0) AS severity
		FROM device_trap_conditions WHERE device_id = ANY ($1) ORDER BY device_id, since, condition`, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("probes: trap conditions for ingest: %w", err)
	}
	out := map[string][]TrapCondition{}
	for _, r := range rows {
		out[r.DeviceID] = append(out[r.DeviceID], r)
	}
	return out, nil
}

// judgeRemote judges, before the ingest's transaction (the calendar may
// read the database), the empty worklists a collector reported raw.
func (e *Engine) judgeRemote(ctx context.Context, c Collector, checks []RemoteCheck) {
	for i, ch := range checks {
		d, ok := e.remoteDevice(c, ch.Device)
		if !ok || d.DICOM == nil || d.DICOM.Worklist == nil || len(ch.Results) == 0 {
			continue
		}
		results := make([]Result, len(ch.Results))
		for j, r := range ch.Results {
			results[j] = judgeRemoteWorklist(ctx, e.cfg.WorkingHours, d, r)
		}
		checks[i].Results = results
	}
}
