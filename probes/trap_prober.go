package probes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
)

// TrapCondition is a condition a trap raised and no trap has cleared yet.
type TrapCondition struct {
	DeviceID  string    `db:"device_id" json:"-"`
	Condition string    `db:"condition" json:"condition"`
	Since     time.Time `db:"since" json:"since"`
	Detail    string    `db:"detail" json:"detail"`
	Degrade   bool      `db:"degrade" json:"degrade"`
	Severity  int       `db:"severity" json:"severity,omitempty"`
}

// TrapConditions is the prober that brings standing trap conditions into
// the state machine: it applies to a device only while one of its
// conditions degrades it, and then answers Degraded with the conditions as
// evidence. Other probers still decide whether the device answers at all.
//
// It reads device_trap_conditions at Load (and every Run period, for
// conditions another instance's listener raised) and learns at once of
// those this instance's listener raises or clears.
type TrapConditions struct {
	db *sqlx.DB

	mu       sync.RWMutex
	byDevice map[string][]TrapCondition
}

// NewTrapConditions returns an empty set; call Load.
func NewTrapConditions(db *sqlx.DB) *TrapConditions {
	return &TrapConditions{db: db, byDevice: map[string][]TrapCondition{}}
}

// Load reads every standing condition.
func (c *TrapConditions) Load(ctx context.Context) error {
	var rows []TrapCondition
	if err := c.db.SelectContext(ctx, &rows, `SELECT device_id, condition, since, detail, degrade, COALESCE(severity, 0) AS severity
		FROM device_trap_conditions ORDER BY device_id, since, condition`); err != nil {
		return fmt.Errorf("probes: load trap conditions: %w", err)
	}
	m := map[string][]TrapCondition{}
	for _, r := range rows {
		m[r.DeviceID] = append(m[r.DeviceID], r)
	}
	c.mu.Lock()
	c.byDevice = m
	c.mu.Unlock()
	return nil
}

// Run reloads the conditions every period until ctx ends.
func (c *TrapConditions) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c.Load(lctx) // a failed reload keeps the last known set
		cancel()
	}
}

func (c *TrapConditions) put(tc TrapCondition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(c.byDevice[tc.DeviceID]), func(x TrapCondition) bool { return x.Condition == tc.Condition })
	c.byDevice[tc.DeviceID] = append(list, tc)
}

func (c *TrapConditions) drop(deviceID, condition string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := slices.DeleteFunc(slices.Clone(c.byDevice[deviceID]), func(x TrapCondition) bool { return x.Condition == condition })
	if len(list) == 0 {
		delete(c.byDevice, deviceID)
		return
	}
	c.byDevice[deviceID] = list
}

// Standing returns the device's conditions.
func (c *TrapConditions) Standing(deviceID string) []TrapCondition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.byDevice[deviceID])
}

func (c *TrapConditions) degrading(deviceID string) []TrapCondition {
	return degradingOf(c.Standing(deviceID))
}

// Applies reports whether a trap condition degrades the device now.
func (c *TrapConditions) Applies(d assets.Device) bool { return len(c.degrading(d.ID)) > 0 }

// Probe answers Degraded with the standing conditions.
func (c *TrapConditions) Probe(_ context.Context, d assets.Device) Result {
	return conditionsResult(c.degrading(d.ID))
}

// conditionsResult is the trap prober's answer for a device's degrading
// conditions (the NOC's ingest adds it to a collector's check, as Probe
// adds it to a local one).
func conditionsResult(conds []TrapCondition) Result {
	if len(conds) == 0 {
		return Result{Prober: "trap", Outcome: OK, Detail: "no trap condition standing"}
	}
	parts := make([]string, len(conds))
	facts := map[string]string{}
	for i, tc := range conds {
		parts[i] = fmt.Sprintf("%s since %s", tc.Detail, tc.Since.UTC().Format(time.RFC3339))
		facts["trap:"+tc.Condition] = tc.Detail
	}
	return Result{Prober: "trap", Outcome: Degraded, Detail: "trap: " + strings.Join(parts, "; "), Facts: facts}
}
