package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// Engineer is a field engineer.
type Engineer struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Email         string   `json:"email"` // where dispatches are sent
	Phone         string   `json:"phone,omitempty"`
	HomeCity      string   `json:"home_city"`
	IT            bool     `json:"it"`         // PACS/RIS servers, network
	Biomedical    bool     `json:"biomedical"` // modalities and biomedical equipment
	Modalities    []string `json:"modalities"`
	Manufacturers []string `json:"manufacturers"`
	// Calendar is the engineer's working time: a preset (co-8x5, pe-split…)
	// or zone + hours of their own.
	Calendar CalendarSpec `json:"calendar"`
	// HourlyCostCents is an internal cost: only NOC staff see it.
	HourlyCostCents *int64 `json:"hourly_cost_cents,omitempty"`
	Active          bool   `json:"active"`
	// Language of the dispatch e-mails sent to the engineer (es or en).
	Language string `json:"language"`
	// WarehouseID is the stock the engineer carries (their van), if any.
	WarehouseID string `json:"warehouse,omitempty"`
}

// CalendarSpec names a preset calendar or carries one.
type CalendarSpec struct {
	Preset string           `json:"preset,omitempty" max:"100"`
	Config *calendar.Config `json:"config,omitempty"`
}

type calendars map[string]*calendar.Calendar

// presetCalendars are the calendars of the SLA presets, by name: the same
// working weeks the contracts use.
func presetCalendars(set *sla.Set) calendars {
	out := calendars{}
	for _, p := range set.Policies() {
		out[p.CalendarName] = p.Calendar()
	}
	return out
}

func (c calendars) build(spec CalendarSpec) (*calendar.Calendar, error) {
	switch {
	case spec.Preset != "" && spec.Config != nil:
		return nil, invalid("calendar: give a preset or a config, not both")
	case spec.Preset != "":
		cal, ok := c[spec.Preset]
		if !ok {
			names := make([]string, 0, len(c))
			for n := range c {
				names = append(names, n)
			}
			slices.Sort(names)
			return nil, invalid("calendar: unknown preset %q (one of %s)", spec.Preset, strings.Join(names, ", "))
		}
		return cal, nil
	case spec.Config != nil:
		cal, err := calendar.New(*spec.Config)
		if err != nil {
			return nil, invalid("calendar: %v", err)
		}
		return cal, nil
	}
	return nil, invalid("calendar is required: {\"preset\": \"co-8x5\"} or {\"config\": {\"zone\": …, \"hours\": …}}")
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// EngineerInput creates or replaces an engineer.
type EngineerInput struct {
	Name            string       `json:"name" max:"200"`
	Email           string       `json:"email" max:"200"`
	Phone           string       `json:"phone" max:"200"`
	HomeCity        string       `json:"home_city" max:"200"`
	IT              bool         `json:"it"`
	Biomedical      bool         `json:"biomedical"`
	Modalities      []string     `json:"modalities" max:"100"`
	Manufacturers   []string     `json:"manufacturers" max:"100"`
	Calendar        CalendarSpec `json:"calendar"`
	HourlyCostCents int64        `json:"hourly_cost_cents" max:"10000000000000"`
	Active          *bool        `json:"active"`    // default true
	Language        string       `json:"language"`  // es (default) or en
	WarehouseID     string       `json:"warehouse"` // the stock the engineer carries
}

// PutEngineer creates or replaces engineer id (NOC only).
func (s *Store) PutEngineer(ctx context.Context, a auth.Actor, id string, in EngineerInput, now time.Time) (Engineer, error) {
	if !a.IsNOC() {
		return Engineer{}, ErrForbidden.Errorf("only the NOC manages engineers")
	}
	in.Name, in.HomeCity, in.Email = strings.TrimSpace(in.Name), strings.TrimSpace(in.HomeCity), strings.TrimSpace(in.Email)
	switch {
	case !idPattern.MatchString(id):
		return Engineer{}, invalid("engineer id %q: lowercase letters, digits, '.', '_' and '-'", id)
	case in.Name == "":
		return Engineer{}, invalid("name is required")
	case in.HomeCity == "":
		return Engineer{}, invalid("home_city is required")
	case !in.IT && !in.Biomedical:
		return Engineer{}, invalid("an engineer is it, biomedical or both")
	case in.HourlyCostCents < 0:
		return Engineer{}, invalid("hourly_cost_cents cannot be negative")
	}
	if in.Language == "" {
		in.Language = "es"
	}
	if in.Language != "es" && in.Language != "en" {
		return Engineer{}, invalid("language must be es or en")
	}
	if in.Email == "" {
		return Engineer{}, invalid("email is required: dispatches are sent there")
	}
	if addr, err := mail.ParseAddress(in.Email); err != nil || addr.Address != in.Email {
		return Engineer{}, invalid("email %q is not a plain address", in.Email)
	}
	if _, err := s.cals.build(in.Calendar); err != nil {
		return Engineer{}, err
	}
	var preset, config any
	if in.Calendar.Preset != "" {
		preset = in.Calendar.Preset
	} else {
		raw, err := json.Marshal(in.Calendar.Config)
		if err != nil {
			return Engineer{}, fmt.Errorf("dispatch: engineer %s: calendar: %w", id, err)
		}
		config = raw
	}
	active := in.Active == nil || *in.Active
	mods := make([]string, 0, len(in.Modalities))
	for _, m := range in.Modalities {
		mods = append(mods, strings.ToUpper(strings.TrimSpace(m)))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO engineers (id, name, email, phone, home_city, it, biomedical, modalities, manufacturers,
		calendar_preset, calendar_config, hourly_cost_cents, active, created_at, updated_at, language, warehouse_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, NULLIF($16, ''))
		ON CONFLICT (id) DO UPDATE SET name = $2, email = $3, phone = $4, home_city = $5, it = $6, biomedical = $7, modalities = $8,
		manufacturers = $9, calendar_preset = $10, calendar_config = $11, hourly_cost_cents = $12, active = $13, updated_at = $14,
		language = $15, warehouse_id = NULLIF($16, '')`,
		id, in.Name, in.Email, in.Phone, in.HomeCity, in.IT, in.Biomedical, strs(mods), strs(in.Manufacturers), preset, config,
		in.HourlyCostCents, active, now, in.Language, strings.TrimSpace(in.WarehouseID))
	if err != nil {
		return Engineer{}, fmt.Errorf("dispatch: put engineer %s: %w", id, translate(err))
	}
	return s.Engineer(ctx, a, id)
}

const engineerColumns = `id, name, email, phone, home_city, it, biomedical, modalities, manufacturers, calendar_preset,
	calendar_config, hourly_cost_cents, active, language, COALESCE(warehouse_id, '')`

func scanEngineer(r interface{ Scan(...any) error }) (Engineer, error) {
	var e Engineer
	var mods, mans pq.StringArray
	var preset sql.NullString
	var config []byte
	var cost int64
	if err := r.Scan(&e.ID, &e.Name, &e.Email, &e.Phone, &e.HomeCity, &e.IT, &e.Biomedical, &mods, &mans, &preset, &config,
		&cost, &e.Active, &e.Language, &e.WarehouseID); err != nil {
		return e, err
	}
	e.Modalities, e.Manufacturers = nonNil(mods), nonNil(mans)
	e.Calendar.Preset = preset.String
	if config != nil {
		e.Calendar.Config = &calendar.Config{}
		if err := json.Unmarshal(config, e.Calendar.Config); err != nil {
			return e, fmt.Errorf("calendar of %s: %w", e.ID, err)
		}
	}
	e.HourlyCostCents = &cost
	return e, nil
}

// Engineer returns one engineer; engineers may read only themselves,
// customers none.
func (s *Store) Engineer(ctx context.Context, a auth.Actor, id string) (Engineer, error) {
	if a.IsCustomer() || (a.IsEngineer() && a.EngineerID != id) {
		return Engineer{}, ErrNotFound.Errorf("engineer %q", id)
	}
	e, err := scanEngineer(s.db.QueryRowContext(ctx, `SELECT `+engineerColumns+` FROM engineers WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, ErrNotFound.Errorf("engineer %q", id)
	}
	if err != nil {
		return e, fmt.Errorf("dispatch: engineer %s: %w", id, err)
	}
	return redactEngineer(a, e), nil
}

// Engineers lists engineers (NOC only).
func (s *Store) Engineers(ctx context.Context, a auth.Actor) ([]Engineer, error) {
	if !a.IsNOC() {
		return nil, ErrForbidden.Errorf("only the NOC lists engineers")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+engineerColumns+` FROM engineers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("dispatch: list engineers: %w", err)
	}
	defer rows.Close()
	out := []Engineer{}
	for rows.Next() {
		e, err := scanEngineer(rows)
		if err != nil {
			return nil, fmt.Errorf("dispatch: list engineers: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func redactEngineer(a auth.Actor, e Engineer) Engineer {
	if !a.IsNOC() {
		e.HourlyCostCents = nil
	}
	return e
}

// AddOnCall records an on-call shift (NOC only); shifts of one engineer
// never overlap.
func (s *Store) AddOnCall(ctx context.Context, a auth.Actor, engineerID string, from, to time.Time) (int64, error) {
	if !a.IsNOC() {
		return 0, ErrForbidden.Errorf("only the NOC keeps the on-call roster")
	}
	if from.IsZero() || !to.After(from) {
		return 0, invalid("an on-call shift needs from < to")
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO engineer_oncall (engineer_id, shift) SELECT id, tstzrange($2, $3) FROM engineers
		WHERE id = $1 RETURNING id`, engineerID, from, to).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound.Errorf("engineer %q", engineerID)
	}
	if err != nil {
		return 0, fmt.Errorf("dispatch: on-call for %s: %w", engineerID, translate(err))
	}
	return id, nil
}

// Availability says whether an engineer can take a window, and why not.
type Availability struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// OnCall is set when the window is outside working hours but inside an
	// on-call shift.
	OnCall bool `json:"on_call,omitempty"`
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// availability checks an engineer for [from, to): active, inside their
// working calendar or an on-call shift, and not booked on another visit
// (exceptVisit is the visit being scheduled, whose own booking is moving).
func (s *Store) availability(ctx context.Context, q querier, e Engineer, from, to time.Time, exceptVisit int64) (Availability, error) {
	if !e.Active {
		return Availability{Reason: "inactive"}, nil
	}
	var clash int64
	err := q.QueryRowContext(ctx, `SELECT visit_id FROM visit_engineers WHERE engineer_id = $1 AND booked && tstzrange($2, $3)
		AND visit_id <> $4 LIMIT 1`, e.ID, from, to, exceptVisit).Scan(&clash)
	if err == nil {
		return Availability{Reason: fmt.Sprintf("booked on visit %d", clash)}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Availability{}, fmt.Errorf("bookings of %s: %w", e.ID, err)
	}
	cal, err := s.cals.build(e.Calendar)
	if err != nil {
		return Availability{}, fmt.Errorf("engineer %s: %w", e.ID, err)
	}
	if cal.Between(from, to, nil) == to.Sub(from) {
		return Availability{Available: true}, nil
	}
	var onCall bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM engineer_oncall WHERE engineer_id = $1 AND shift @> tstzrange($2, $3))`,
		e.ID, from, to).Scan(&onCall); err != nil {
		return Availability{}, fmt.Errorf("on-call of %s: %w", e.ID, err)
	}
	if onCall {
		return Availability{Available: true, OnCall: true}, nil
	}
	return Availability{Reason: "outside working hours (" + cal.String() + ") and not on call"}, nil
}

// Availability answers for one engineer and window (NOC, or the engineer).
func (s *Store) Availability(ctx context.Context, a auth.Actor, id string, from, to time.Time) (Availability, error) {
	if !to.After(from) {
		return Availability{}, invalid("from must be before to")
	}
	e, err := s.Engineer(ctx, a, id)
	if err != nil {
		return Availability{}, err
	}
	return s.availability(ctx, s.db, e, from, to, 0)
}

func lockEngineer(ctx context.Context, tx *sqlx.Tx, id string) (Engineer, error) {
	e, err := scanEngineer(tx.QueryRowContext(ctx, `SELECT `+engineerColumns+` FROM engineers WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, invalid("unknown engineer %q", id)
	}
	if err != nil {
		return e, fmt.Errorf("engineer %s: %w", id, err)
	}
	return e, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
