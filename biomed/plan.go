package biomed

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Horizon is how far ahead work orders are planned.
const Horizon = 90 * 24 * time.Hour

// PlanResult says what one planning pass did.
type PlanResult struct {
	Planned      int `json:"planned"`      // work orders added to the plan
	Withdrawn    int `json:"withdrawn"`    // unopened ones no longer in a programme
	Opened       int `json:"opened"`       // tickets opened (lead time begun)
	Calibrations int `json:"calibrations"` // overdue calibration tickets opened
}

// programmeRow is a stored programme.
type programmeRow struct {
	ID, Manufacturer, Model string
	DeviceID                sql.NullString
	Starts                  time.Time
	Source                  string
	Tasks                   []Task
}

func (s *Store) programmes(ctx context.Context) (byDevice, byModel map[string]*programmeRow, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, manufacturer, model, device_id, starts_on, source, tasks FROM biomed_programmes ORDER BY id`)
	if err != nil {
		return nil, nil, fmt.Errorf("biomed: programmes: %w", err)
	}
	defer rows.Close()
	byDevice, byModel = map[string]*programmeRow{}, map[string]*programmeRow{}
	for rows.Next() {
		p := &programmeRow{}
		var tasks []byte
		if err := rows.Scan(&p.ID, &p.Manufacturer, &p.Model, &p.DeviceID, &p.Starts, &p.Source, &tasks); err != nil {
			return nil, nil, fmt.Errorf("biomed: programmes: %w", err)
		}
		if err := json.Unmarshal(tasks, &p.Tasks); err != nil {
			return nil, nil, fmt.Errorf("biomed: programme %s: %w", p.ID, err)
		}
		for i := range p.Tasks {
			if err := p.Tasks[i].compile(); err != nil {
				return nil, nil, fmt.Errorf("biomed: programme %s task %s: %w", p.ID, p.Tasks[i].ID, err)
			}
		}
		if p.DeviceID.Valid {
			byDevice[p.DeviceID.String] = p
		} else {
			byModel[modelKey(p.Manufacturer, p.Model)] = p
		}
	}
	return byDevice, byModel, rows.Err()
}

func modelKey(manufacturer, model string) string {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	return norm(manufacturer) + "\x00" + norm(model)
}

// planned is one work order a programme calls for.
type planned struct {
	task  *Task
	due   time.Time
	usage *float64
}

// Plan adds to the plan every work order due within the horizon for each
// device with a programme (its own, else its model's), withdraws unopened
// ones no programme calls for any more, opens the tickets of those whose
// lead time has begun (with their maintenance window), and opens a ticket
// for every calibration that fell overdue. Safe to run concurrently and
// again: each work order is unique per device, task and due day.
func (s *Store) Plan(ctx context.Context, now time.Time) (PlanResult, error) {
	var res PlanResult
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	byDevice, byModel, err := s.programmes(ctx)
	if err != nil {
		return res, err
	}
	devices, err := s.inv.Devices(ctx, assets.DeviceFilter{})
	if err != nil {
		return res, err
	}
	cs := s.customers()
	for _, d := range devices {
		p := byDevice[d.ID]
		if p == nil && d.Manufacturer != "" && d.Model != "" {
			p = byModel[modelKey(d.Manufacturer, d.Model)]
		}
		c, err := cs.get(ctx, d.CustomerID, now)
		if err != nil {
			return res, err
		}
		var want []planned
		if p != nil {
			if want, err = s.due(ctx, d, p, c); err != nil {
				return res, err
			}
		}
		added, withdrawn, err := s.store(ctx, d, p, c, want, now)
		if err != nil {
			return res, err
		}
		res.Planned += added
		res.Withdrawn += withdrawn
	}
	if res.Opened, err = s.openDue(ctx, cs, now); err != nil {
		return res, err
	}
	res.Calibrations, err = s.calibrationAlerts(ctx, cs, now)
	return res, err
}

// due lists the work orders p calls for on d within the horizon.
func (s *Store) due(ctx context.Context, d assets.Device, p *programmeRow, c *customerCal) ([]planned, error) {
	horizon := c.today.Add(Horizon)
	from := c.today
	if p.Starts.After(from) {
		from = p.Starts // a programme plans nothing before it starts
	}
	var out []planned
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if t.EveryUsage == nil {
			for _, day := range t.rule.Days(c.cal, p.Starts, from, horizon) {
				out = append(out, planned{task: t, due: day})
			}
			continue
		}
		// Usage: due when the counter has run Amount past the reading the
		// last work order of the task was opened at (or past zero).
		var latest, last sql.NullFloat64
		if err := s.db.QueryRowContext(ctx, `SELECT (SELECT value FROM biomed_usage WHERE device_id = $1 AND counter = $2
				ORDER BY read_at DESC LIMIT 1),
			(SELECT usage_value FROM biomed_work_orders WHERE device_id = $1 AND programme_id = $3 AND task_id = $4
				AND usage_value IS NOT NULL ORDER BY due_on DESC LIMIT 1)`,
			d.ID, t.EveryUsage.Counter, p.ID, t.ID).Scan(&latest, &last); err != nil {
			return nil, fmt.Errorf("biomed: usage of %s: %w", d.ID, err)
		}
		if latest.Valid && latest.Float64-last.Float64 >= t.EveryUsage.Amount {
			v := latest.Float64
			out = append(out, planned{task: t, due: NextWorkingDay(c.cal, c.today), usage: &v})
		}
	}
	return out, nil
}

// store writes the device's plan: new work orders in, unopened calendar
// ones that are no longer called for (programme changed or replaced) out.
func (s *Store) store(ctx context.Context, d assets.Device, p *programmeRow, c *customerCal, want []planned, now time.Time) (int, int, error) {
	added, withdrawn := 0, 0
	err := s.inTx(ctx, "plan "+d.ID, func(tx *sqlx.Tx) error {
		keys := []string{}
		for _, w := range want {
			keys = append(keys, p.ID+"/"+w.task.ID+"/"+w.due.Format(dateLayout))
			lead := w.task.leadDays()
			res, err := tx.ExecContext(ctx, `INSERT INTO biomed_work_orders (customer_id, device_id, programme_id, task_id, title_es, title_en,
				due_on, lead_days, duration_minutes, skills, checklist, usage_counter, usage_value, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING`,
				d.CustomerID, d.ID, p.ID, w.task.ID, w.task.Title.ES, w.task.Title.EN, w.due, lead, w.task.minutes,
				pq.StringArray(nonNil(w.task.Skills)), pq.StringArray(nonNil(w.task.Checklist)), usageCounter(w.task), w.usage, now)
			if err != nil {
				return fmt.Errorf("work order %s/%s %s: %w", p.ID, w.task.ID, w.due.Format(dateLayout), err)
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM biomed_work_orders WHERE device_id = $1 AND ticket_id IS NULL AND usage_counter = ''
			AND due_on >= $2 AND NOT (programme_id || '/' || task_id || '/' || to_char(due_on, 'YYYY-MM-DD') = ANY ($3))`,
			d.ID, c.today, pq.StringArray(keys))
		if err != nil {
			return fmt.Errorf("withdraw work orders: %w", err)
		}
		n, _ := res.RowsAffected()
		withdrawn = int(n)
		return nil
	})
	return added, withdrawn, err
}

func usageCounter(t *Task) string {
	if t.EveryUsage != nil {
		return t.EveryUsage.Counter
	}
	return ""
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// openDue opens the ticket and the maintenance window of every work order
// whose lead time has begun in its customer's calendar.
func (s *Store) openDue(ctx context.Context, cs *customers, now time.Time) (int, error) {
	customerIDs, days, err := s.customerDays(ctx, "", now)
	if err != nil {
		return 0, err
	}
	var ids []int64
	if err := s.db.SelectContext(ctx, &ids, `SELECT w.id FROM biomed_work_orders w JOIN unnest($1::text[], $2::date[]) AS c (id, today) ON c.id = w.customer_id
		WHERE w.ticket_id IS NULL AND w.due_on - w.lead_days <= c.today ORDER BY w.due_on, w.id`, customerIDs, days); err != nil {
		return 0, fmt.Errorf("biomed: work orders to open: %w", err)
	}
	n := 0
	for _, id := range ids {
		err := s.inTx(ctx, fmt.Sprintf("open work order %d", id), func(tx *sqlx.Tx) error {
			var w struct {
				CustomerID, DeviceID, ProgrammeID, TaskID, TitleES, TitleEN string
				Due                                                         time.Time
				Minutes                                                     int
				Skills, Checklist                                           pq.StringArray
			}
			err := tx.QueryRowContext(ctx, `SELECT customer_id, device_id, programme_id, task_id, title_es, title_en, due_on, duration_minutes,
				skills, checklist FROM biomed_work_orders WHERE id = $1 AND ticket_id IS NULL FOR UPDATE SKIP LOCKED`, id).
				Scan(&w.CustomerID, &w.DeviceID, &w.ProgrammeID, &w.TaskID, &w.TitleES, &w.TitleEN, &w.Due, &w.Minutes, &w.Skills, &w.Checklist)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // opened by another sweeper
			}
			if err != nil {
				return err
			}
			c, err := cs.get(ctx, w.CustomerID, now)
			if err != nil {
				return err
			}
			d, err := s.inv.Device(ctx, assets.Scope{}, w.DeviceID)
			if err != nil {
				return fmt.Errorf("device %s: %w", w.DeviceID, err)
			}
			l := lang(c.Language)
			title := Text{ES: w.TitleES, EN: w.TitleEN}.In(l)
			t, window, err := s.tickets.OpenWorkOrderTx(ctx, tx, maintenance.WorkOrderInput{CustomerID: w.CustomerID, SiteID: d.SiteID,
				DeviceID: d.ID, Title: cut(notify.PreventiveTitle(l, w.Due.Format(dateLayout), title, d.Name), 200),
				Description: notify.PreventiveText(l, w.ProgrammeID, w.Minutes, w.Skills, w.Checklist), Due: w.Due,
				Location: c.loc, OpenedAt: now, Author: System.Name + " (biomed)",
				Data: map[string]any{"work_order": id, "programme": w.ProgrammeID, "task": w.TaskID, "due_on": w.Due.Format(dateLayout)}})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE biomed_work_orders SET ticket_id = $2, window_id = $3, opened_at = $4 WHERE id = $1`,
				id, t.ID, window, now); err != nil {
				return fmt.Errorf("link work order: %w", err)
			}
			n++
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// cut trims s to at most n bytes of valid UTF-8.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// RecordUsage records a usage counter reading (tube hours, exam count) of
// a device; staff only. Counters only grow.
func (s *Store) RecordUsage(ctx context.Context, a auth.Actor, deviceID, counter string, value float64, at time.Time) error {
	if !a.IsProvider() {
		return ErrForbidden.Errorf("usage is recorded by the provider's staff")
	}
	if !counterRE.MatchString(counter) || !(value >= 0 && value < 1e12) {
		return invalid("counter (e.g. tube_hours) and a value from 0 are required")
	}
	if _, err := s.inv.Device(ctx, assets.Scope{}, deviceID); err != nil {
		return invalid("unknown device %q", deviceID)
	}
	return s.inTx(ctx, "record usage", func(tx *sqlx.Tx) error {
		var last sql.NullFloat64
		if err := tx.QueryRowContext(ctx, `SELECT max(value) FROM biomed_usage WHERE device_id = $1 AND counter = $2`, deviceID, counter).
			Scan(&last); err != nil {
			return err
		}
		if last.Valid && value < last.Float64 {
			return invalid("%s of %s was already %g: counters only grow", counter, deviceID, last.Float64)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO biomed_usage (device_id, counter, value, read_at, recorded_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, deviceID, counter, value, at, a.String())
		return err
	})
}

// Sweeper plans and opens work orders and calibration alerts periodically.
type Sweeper struct {
	Store *Store
	Log   *slog.Logger
}

// Run plans every interval until ctx ends, reading the clock now.
func (w *Sweeper) Run(ctx context.Context, now func() time.Time, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if res, err := w.Store.Plan(ctx, now()); err != nil {
			w.Log.Warn("biomedical planning failed", "err", err)
		} else if res != (PlanResult{}) {
			w.Log.Info("biomedical plan", "planned", res.Planned, "withdrawn", res.Withdrawn, "opened", res.Opened,
				"calibration_alerts", res.Calibrations)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
