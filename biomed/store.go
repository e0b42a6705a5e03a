package biomed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// Errors the API answers with their status (httpx.Problem): a refusal
// derived from one (ErrInvalid.Errorf…) is told to people by its own text.
var (
	ErrNotFound  = httpx.Kind(http.StatusNotFound, "not_found", "biomed: not found", "")
	ErrForbidden = httpx.Kind(http.StatusForbidden, "forbidden", "biomed: not allowed for this role", "")
	ErrInvalid   = httpx.Kind(http.StatusBadRequest, "invalid_request", "biomed: invalid request", "")
	ErrConflict  = httpx.Kind(http.StatusConflict, "conflict", "biomed: conflict", "")
)

func invalid(format string, a ...any) error {
	return ErrInvalid.Errorf(format, a...)
}

// Tickets is what the biomedical service needs of the service desk.
type Tickets interface {
	OpenSystemTx(ctx context.Context, tx *sqlx.Tx, in maintenance.SystemInput) (maintenance.Ticket, bool, error)
	OpenWorkOrderTx(ctx context.Context, tx *sqlx.Tx, in maintenance.WorkOrderInput) (maintenance.Ticket, int64, error)
	TicketsByID(ctx context.Context, ids []int64) (map[int64]maintenance.Ticket, error)
}

// Visits is what it needs of dispatch.
type Visits interface {
	Visit(ctx context.Context, a auth.Actor, id int64) (dispatch.Visit, error)
	FirstDoneVisits(ctx context.Context, ticketIDs []int64) (map[int64]time.Time, error)
}

// Store keeps the biomedical service's records in PostgreSQL.
type Store struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets Tickets
	visits  Visits
	limits  *Limits
}

// NewStore returns the store; the electrical safety limits are the
// embedded IEC 62353 ones.
func NewStore(db *sqlx.DB, inv *assets.Store, tickets Tickets, visits Visits) *Store {
	return &Store{db: db, inv: inv, tickets: tickets, visits: visits, limits: DefaultLimits}
}

// System is Vigía acting by itself (the sweeper, the command line).
var System = auth.Actor{Name: "vigia", Role: auth.RoleNOC}

// scope is the customer a's reads are confined to ("" for staff).
func scope(a auth.Actor, customerID string) (string, error) {
	if a.Role == auth.RoleCustomer {
		if customerID != "" && customerID != a.CustomerID {
			return "", ErrNotFound.Errorf("customer %s", customerID)
		}
		return a.CustomerID, nil
	}
	return customerID, nil
}

// dbTimeout bounds every transaction and read.
const dbTimeout = 30 * time.Second

func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	if err := db.InTx(ctx, s.db, fn); err != nil {
		return fmt.Errorf("biomed: %s: %w", what, err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "23505"
}

// ImportSummary says what an import changed.
type ImportSummary struct {
	Programmes  int        `json:"programmes"`  // inserted or changed
	Unchanged   int        `json:"unchanged"`   // programmes and calibration flags as they were
	Calibration int        `json:"calibration"` // calibration flags inserted or changed
	Plan        PlanResult `json:"plan"`
}

// Import stores a programme file (programmes and calibration flags, by
// id: a re-import updates, never duplicates) and plans at now.
func (s *Store) Import(ctx context.Context, f *File, now time.Time) (ImportSummary, error) {
	var sum ImportSummary
	err := s.inTx(ctx, "import programmes", func(tx *sqlx.Tx) error {
		for _, p := range f.Programmes {
			var manufacturer, model string
			if p.Device != "" {
				if _, err := s.inv.Device(ctx, assets.Scope{}, p.Device); err != nil {
					return invalid("programme %s: unknown device %q", p.ID, p.Device)
				}
			} else {
				manufacturer, model = strings.Join(strings.Fields(p.Manufacturer), " "), strings.Join(strings.Fields(p.Model), " ")
			}
			tasks, err := jsonOf(p.Tasks)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO biomed_programmes (id, manufacturer, model, device_id, starts_on, tasks, source, updated_at)
				VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8)
				ON CONFLICT (id) DO UPDATE SET manufacturer = excluded.manufacturer, model = excluded.model, device_id = excluded.device_id,
					starts_on = excluded.starts_on, tasks = excluded.tasks, source = excluded.source, updated_at = excluded.updated_at
				WHERE (biomed_programmes.manufacturer, biomed_programmes.model, biomed_programmes.device_id, biomed_programmes.starts_on,
					biomed_programmes.tasks, biomed_programmes.source) IS DISTINCT FROM
					(excluded.manufacturer, excluded.model, excluded.device_id, excluded.starts_on, excluded.tasks, excluded.source)`,
				p.ID, manufacturer, model, p.Device, p.Starts, tasks, p.Source, now)
			if isUniqueViolation(err) {
				return invalid("programme %s: another programme already covers its model or device", p.ID)
			}
			if err != nil {
				return fmt.Errorf("programme %s: %w", p.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				sum.Programmes++
			} else {
				sum.Unchanged++
			}
		}
		for _, c := range f.Calibration {
			d, err := s.inv.Device(ctx, assets.Scope{}, c.Device)
			if err != nil {
				return invalid("calibration: unknown device %q", c.Device)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO biomed_calibration_plans (device_id, customer_id, every_months, first_due_on, updated_at)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (device_id) DO UPDATE SET every_months = excluded.every_months, first_due_on = excluded.first_due_on,
					updated_at = excluded.updated_at
				WHERE (biomed_calibration_plans.every_months, biomed_calibration_plans.first_due_on) IS DISTINCT FROM
					(excluded.every_months, excluded.first_due_on)`, d.ID, d.CustomerID, c.EveryMonths, c.FirstDue, now)
			if err != nil {
				return fmt.Errorf("calibration of %s: %w", c.Device, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				sum.Calibration++
			} else {
				sum.Unchanged++
			}
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	sum.Plan, err = s.Plan(ctx, now)
	return sum, err
}

// customers caches customers and their calendars during one pass.
type customers struct {
	s    *Store
	byID map[string]*customerCal
}

type customerCal struct {
	assets.Customer
	loc   *time.Location
	today time.Time
	cal   *calendar.Calendar
}

func (s *Store) customers() *customers { return &customers{s: s, byID: map[string]*customerCal{}} }

func (c *customers) get(ctx context.Context, id string, now time.Time) (*customerCal, error) {
	if cc, ok := c.byID[id]; ok {
		return cc, nil
	}
	cu, err := c.s.inv.Customer(ctx, assets.Scope{}, id)
	if err != nil {
		return nil, fmt.Errorf("customer %s: %w", id, err)
	}
	loc := cu.Location()
	y, m, d := now.In(loc).Date()
	cal, err := CustomerCalendar(loc.String(), cu.Country)
	if err != nil {
		return nil, fmt.Errorf("customer %s calendar: %w", id, err)
	}
	cc := &customerCal{Customer: cu, loc: loc, today: date(y, m, d), cal: cal}
	c.byID[id] = cc
	return cc, nil
}

// customerDays lists the customers in scope ("" for all) with their
// calendar day at now in their own zone, as the parallel arrays a query
// joins with unnest($n::text[], $m::date[]) AS c (id, today): what is due
// is decided by the day it is where the customer is.
func (s *Store) customerDays(ctx context.Context, customerID string, now time.Time) (ids, days pq.StringArray, err error) {
	cs, err := s.inv.Customers(ctx, assets.Scope{CustomerID: customerID})
	if err != nil {
		return nil, nil, fmt.Errorf("biomed: customers: %w", err)
	}
	ids, days = pq.StringArray{}, pq.StringArray{}
	for _, c := range cs {
		ids = append(ids, c.ID)
		days = append(days, now.In(c.Location()).Format(dateLayout))
	}
	return ids, days, nil
}

func jsonOf(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// lang is a customer's language for what Vigía writes to it.
func lang(l string) string {
	if l == "en" {
		return "en"
	}
	return "es"
}
