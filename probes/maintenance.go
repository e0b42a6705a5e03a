package probes

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/robfig/cron/v3"

	"github.com/vigia-noc/vigia/assets"
)

// Window is a maintenance window: devices inside are probed (and shown) but
// raise no outage. A one-off window spans StartsAt..EndsAt; a recurring one
// opens at every Cron instant (in Location) between them, for Duration.
type Window struct {
	ID       int64         `json:"id"`
	Scope    string        `json:"scope"` // device, site or customer
	ScopeID  string        `json:"scope_id"`
	Reason   string        `json:"reason"`
	StartsAt time.Time     `json:"starts_at"`
	EndsAt   time.Time     `json:"ends_at"`
	Cron     string        `json:"cron,omitempty"`
	TimeZone string        `json:"time_zone,omitempty"`
	Duration time.Duration `json:"-"`
	schedule cron.Schedule
	loc      *time.Location
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// compile validates the window and prepares its schedule.
func (w *Window) compile() error {
	if !w.EndsAt.After(w.StartsAt) {
		return fmt.Errorf("window ends (%s) before it starts (%s)", w.EndsAt.Format(time.RFC3339), w.StartsAt.Format(time.RFC3339))
	}
	switch w.Scope {
	case "device", "site", "customer":
	default:
		return fmt.Errorf("window scope %q: want device, site or customer", w.Scope)
	}
	if w.Cron == "" {
		return nil
	}
	sched, err := cronParser.Parse(w.Cron)
	if err != nil {
		return fmt.Errorf("window cron %q: %w", w.Cron, err)
	}
	loc := time.UTC
	if w.TimeZone != "" {
		if loc, err = time.LoadLocation(w.TimeZone); err != nil {
			return fmt.Errorf("window time zone %q: %w", w.TimeZone, err)
		}
	}
	if w.Duration <= 0 {
		return fmt.Errorf("a recurring window needs a positive duration")
	}
	w.schedule, w.loc = sched, loc
	return nil
}

// Active reports whether the window is open at at.
func (w *Window) Active(at time.Time) bool {
	if at.Before(w.StartsAt) || !at.Before(w.EndsAt) {
		return false
	}
	if w.schedule == nil {
		return true
	}
	// Open when some start fell in (at-Duration, at]. cron's Next is strictly
	// after its argument, hence the nanosecond.
	start := w.schedule.Next(at.Add(-w.Duration).In(w.loc))
	return !start.After(at)
}

// Covers reports whether the window applies to the device.
func (w *Window) Covers(d assets.Device) bool {
	switch w.Scope {
	case "device":
		return d.ID == w.ScopeID
	case "site":
		return d.SiteID == w.ScopeID
	default:
		return d.CustomerID == w.ScopeID
	}
}

// Windows loads the windows that have not ended by now.
func (s *Store) Windows(ctx context.Context, now time.Time) ([]*Window, error) {
	return s.loadWindows(ctx, `ends_at > $1`, now)
}

// loadWindows loads and compiles the windows matching where.
func (s *Store) loadWindows(ctx context.Context, where string, args ...any) ([]*Window, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, scope, scope_id, reason, starts_at, ends_at, COALESCE(cron, ''),
		COALESCE(time_zone, ''), COALESCE(duration_seconds, 0) FROM maintenance_windows WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("probes: load maintenance windows: %w", err)
	}
	defer rows.Close()
	var out []*Window
	for rows.Next() {
		w := &Window{}
		var secs int
		if err := rows.Scan(&w.ID, &w.Scope, &w.ScopeID, &w.Reason, &w.StartsAt, &w.EndsAt, &w.Cron, &w.TimeZone, &secs); err != nil {
			return nil, fmt.Errorf("probes: load maintenance windows: %w", err)
		}
		w.Duration = time.Duration(secs) * time.Second
		if err := w.compile(); err != nil {
			return nil, fmt.Errorf("probes: maintenance window %d: %w", w.ID, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// AddWindow validates and stores a window.
func (s *Store) AddWindow(ctx context.Context, w *Window, author string) error {
	return addWindow(ctx, s.db, w, author, nil)
}

// addWindow inserts w; at is when it was recorded (nil: the database's now).
func addWindow(ctx context.Context, q sqlx.QueryerContext, w *Window, author string, at *time.Time) error {
	if err := w.compile(); err != nil {
		return err
	}
	var cronExpr, tz, secs any
	if w.Cron != "" {
		cronExpr, tz, secs = w.Cron, w.TimeZone, int(w.Duration/time.Second)
	}
	err := sqlx.GetContext(ctx, q, &w.ID, `INSERT INTO maintenance_windows (scope, scope_id, reason, starts_at, ends_at, cron, time_zone,
		duration_seconds, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10::timestamptz, now())) RETURNING id`,
		w.Scope, w.ScopeID, w.Reason, w.StartsAt, w.EndsAt, cronExpr, tz, secs, author, at)
	if err != nil {
		return fmt.Errorf("probes: add maintenance window: %w", err)
	}
	return nil
}
