package sweeps

import (
	"context"
	"database/sql"
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

// Preventive keeps the preventive maintenance plans (preventive_plans,
// preventive_visits) and opens their work orders through the ticket core's
// OpenWorkOrderTx, as the biomedical service does for its programmes.
type Preventive struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets *maintenance.Store
}

// NewPreventive returns the plans of db, for the devices of inv, opening
// work orders in tickets.
func NewPreventive(db *sqlx.DB, inv *assets.Store, tickets *maintenance.Store) *Preventive {
	return &Preventive{db: db, inv: inv, tickets: tickets}
}

func invalid(format string, a ...any) error {
	return maintenance.ErrInvalid.Errorf(format, a...)
}

// Plan is a preventive maintenance plan for one device: a visit every
// EveryMonths months from FirstDue, its work order opened LeadDays before.
type Plan struct {
	ID          int64      `json:"id"`
	CustomerID  string     `json:"customer_id"`
	DeviceID    string     `json:"device_id"`
	Title       string     `json:"title"`
	Checklist   string     `json:"checklist,omitempty"`
	EveryMonths int        `json:"every_months"`
	LeadDays    int        `json:"lead_days"`
	FirstDue    string     `json:"first_due_on"` // YYYY-MM-DD, the customer's calendar
	NextDue     string     `json:"next_due_on"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
}

// PlanInput creates a plan.
type PlanInput struct {
	DeviceID    string `json:"device" max:"100"`
	Title       string `json:"title" max:"200"`
	Checklist   string `json:"checklist" max:"40000"` // 10 000 characters, checked below
	EveryMonths int    `json:"every_months" max:"120"`
	LeadDays    *int   `json:"lead_days" max:"365"` // default 14
	FirstDue    string `json:"first_due_on" max:"10"`
}

const dateLayout = "2006-01-02"

// addMonths is day d n months later, clamped to the end of a shorter month
// (31 January + 1 month is 28 February, not 3 March): a quarterly plan
// anchored on the 31st stays at each quarter's end.
func addMonths(d time.Time, n int) time.Time {
	y, m, day := d.Date()
	first := time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(day, last), 0, 0, 0, 0, time.UTC)
}

// CreatePlan records a plan; only NOC staff plan visits.
func (s *Preventive) CreatePlan(ctx context.Context, a auth.Actor, in PlanInput, now time.Time) (Plan, error) {
	if a.Role != auth.RoleNOC {
		return Plan{}, maintenance.ErrForbidden.Errorf("only the NOC creates preventive plans")
	}
	in.Title = strings.TrimSpace(in.Title)
	lead := 14
	if in.LeadDays != nil {
		lead = *in.LeadDays
	}
	first, err := time.Parse(dateLayout, in.FirstDue)
	switch {
	case in.DeviceID == "":
		return Plan{}, invalid("device is required")
	case in.Title == "" || len(in.Title) > 200:
		return Plan{}, invalid("title is required (at most 200 characters)")
	case len(in.Checklist) > 10000:
		return Plan{}, invalid("checklist has at most 10000 characters")
	case in.EveryMonths < 1 || in.EveryMonths > 60:
		return Plan{}, invalid("every_months must be 1 to 60")
	case lead < 0 || lead > 180:
		return Plan{}, invalid("lead_days must be 0 to 180")
	case err != nil:
		return Plan{}, invalid("first_due_on must be a date YYYY-MM-DD")
	}
	d, err := s.inv.Device(ctx, assets.Scope{}, in.DeviceID)
	if errors.Is(err, assets.ErrNotFound) {
		return Plan{}, invalid("unknown device %q", in.DeviceID)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("maintenance: create plan: %w", err)
	}
	var p Plan
	err = s.tickets.InTx(ctx, "create preventive plan", func(tx *sqlx.Tx) error {
		var err error
		p, err = scanPlan(tx.QueryRowContext(ctx, `INSERT INTO preventive_plans (customer_id, device_id, title, checklist, every_months,
			lead_days, anchor_on, next_due_on, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) RETURNING `+planColumns,
			d.CustomerID, d.ID, in.Title, in.Checklist, in.EveryMonths, lead, first, a.String(), now))
		return err
	})
	return p, err
}

const planColumns = `id, customer_id, device_id, title, checklist, every_months, lead_days, anchor_on, next_due_on, created_by, created_at, retired_at`

func scanPlan(r interface{ Scan(dest ...any) error }) (Plan, error) {
	var p Plan
	var first, next time.Time
	err := r.Scan(&p.ID, &p.CustomerID, &p.DeviceID, &p.Title, &p.Checklist, &p.EveryMonths, &p.LeadDays, &first, &next,
		&p.CreatedBy, &p.CreatedAt, &p.RetiredAt)
	p.FirstDue, p.NextDue = first.Format(dateLayout), next.Format(dateLayout)
	return p, err
}

// Plans lists the plans in scope, optionally of one device.
func (s *Preventive) Plans(ctx context.Context, sc maintenance.Scope, deviceID string) ([]Plan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+planColumns+` FROM preventive_plans
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR device_id = $2) ORDER BY id`, sc.CustomerID, deviceID)
	if err != nil {
		return nil, fmt.Errorf("maintenance: list preventive plans: %w", err)
	}
	defer rows.Close()
	out := []Plan{}
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, fmt.Errorf("maintenance: list preventive plans: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PreventiveSweeper opens the work orders of plans whose visit is within
// its lead time, each occurrence once (preventive_visits is keyed by plan
// and occurrence, and the plan row is locked while it advances), and opens
// a maintenance window on the device for the whole visit day in the
// customer's time zone, so probes raise no outage during the visit.
type PreventiveSweeper struct {
	plans *Preventive
	log   *slog.Logger
}

// NewPreventiveSweeper returns the sweeper over plans.
func NewPreventiveSweeper(plans *Preventive, log *slog.Logger) *PreventiveSweeper {
	return &PreventiveSweeper{plans: plans, log: log}
}

// dueCondition: the next visit's lead time has begun in the customer's
// calendar, d.today being the customer's date.
const dueCondition = `p.retired_at IS NULL AND p.next_due_on - p.lead_days <= d.today`

// RunDue opens every work order due at now and returns how many it opened.
func (w *PreventiveSweeper) RunDue(ctx context.Context, now time.Time) (int, error) {
	customers, err := w.plans.inv.Customers(ctx, assets.Scope{})
	if err != nil {
		return 0, fmt.Errorf("maintenance: preventive sweep: %w", err)
	}
	// Each customer's date at now, for the due condition in one query.
	var ids, days pq.StringArray
	for _, c := range customers {
		ids, days = append(ids, c.ID), append(days, now.In(c.Location()).Format(dateLayout))
	}
	var due []struct {
		ID       int64  `db:"id"`
		Customer string `db:"customer_id"`
	}
	if err := w.plans.db.SelectContext(ctx, &due, `SELECT p.id, p.customer_id FROM preventive_plans p
		JOIN unnest($1::text[], $2::date[]) d (customer_id, today) ON d.customer_id = p.customer_id
		WHERE `+dueCondition+` ORDER BY p.next_due_on, p.id`, ids, days); err != nil {
		return 0, fmt.Errorf("maintenance: preventive sweep: %w", err)
	}
	n := 0
	for _, p := range due {
		opened, err := w.one(ctx, p.ID, p.Customer, now)
		if err != nil {
			return n, err
		}
		if opened {
			n++
		}
	}
	return n, nil
}

func (w *PreventiveSweeper) one(ctx context.Context, planID int64, customerID string, now time.Time) (bool, error) {
	s := w.plans
	opened := false
	err := s.tickets.InTx(ctx, fmt.Sprintf("preventive plan %d", planID), func(tx *sqlx.Tx) error {
		customer, err := s.inv.InTx(tx).Customer(ctx, assets.Scope{}, customerID)
		if err != nil {
			return fmt.Errorf("customer %s: %w", customerID, err)
		}
		loc, err := time.LoadLocation(customer.TimeZone)
		if err != nil {
			return fmt.Errorf("customer %s time zone: %w", customerID, err)
		}
		var deviceID, title, checklist string
		var every, lead, seq int
		var anchor time.Time
		err = tx.QueryRowContext(ctx, `SELECT p.device_id, p.title, p.checklist, p.every_months, p.lead_days, p.anchor_on, p.next_seq
			FROM preventive_plans p, (SELECT $1::date AS today) d
			WHERE p.id = $2 AND p.customer_id = $3 AND `+dueCondition+` FOR UPDATE OF p SKIP LOCKED`,
			now.In(loc).Format(dateLayout), planID, customerID).
			Scan(&deviceID, &title, &checklist, &every, &lead, &anchor, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // done by another sweeper, or locked by one
		}
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		y, m, d := now.In(loc).Date()
		today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		opens := func(k int) time.Time { return addMonths(anchor, k*every).AddDate(0, 0, -lead) }
		// Occurrences missed while nothing swept (a long outage of Vigía)
		// collapse into the latest one: one visit to do, not a backlog.
		skipped := 0
		for !opens(seq + 1).After(today) {
			seq++
			skipped++
		}
		due := addMonths(anchor, seq*every)
		dev, err := s.inv.InTx(tx).Device(ctx, assets.Scope{}, deviceID)
		if err != nil {
			return fmt.Errorf("device %s: %w", deviceID, err)
		}
		t, windowID, err := s.tickets.OpenWorkOrderTx(ctx, tx, maintenance.WorkOrderInput{CustomerID: customerID, SiteID: dev.SiteID,
			DeviceID: deviceID, Title: notify.PreventiveTitle(customer.Language, due.Format(dateLayout), title, dev.Name), Description: checklist,
			Due: due, Location: loc, OpenedAt: now,
			Data:       map[string]any{"plan_id": planID, "occurrence": seq, "due_on": due.Format(dateLayout), "skipped": skipped},
			WindowData: map[string]any{"plan_id": planID}})
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO preventive_visits (plan_id, seq, due_on, ticket_id, window_id, opened_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, planID, seq, due, t.ID, windowID, now); err != nil {
			return fmt.Errorf("visit %d of plan %d: %w", seq, planID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE preventive_plans SET next_seq = $2, next_due_on = $3 WHERE id = $1`,
			planID, seq+1, addMonths(anchor, (seq+1)*every)); err != nil {
			return fmt.Errorf("advance plan: %w", err)
		}
		opened = true
		return nil
	})
	return opened, err
}
