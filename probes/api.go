package probes

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves what the probes know under /api/v1: device states, outages and
// maintenance windows, confined to the caller's customer.
type API struct {
	db    *sqlx.DB
	store *Store
	now   func() time.Time
}

// NewAPI returns the probes API.
func NewAPI(db *sqlx.DB, store *Store, now func() time.Time) *API {
	return &API{db: db, store: store, now: now}
}

// Register adds the routes.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/device-states", a.states)
	mux.HandleFunc("GET /api/v1/outages", a.outages)
	mux.HandleFunc("GET /api/v1/devices/{id}/events", a.deviceHistory)
	mux.HandleFunc("GET /api/v1/maintenance-windows", a.listWindows)
	mux.HandleFunc("POST /api/v1/maintenance-windows", a.addWindow)
}

// errInvalidWindow is a maintenance window that cannot be planned as
// asked, told by its reason.
var errInvalidWindow = httpx.Kind(http.StatusBadRequest, "invalid_window", "probes: invalid maintenance window", "")

// failed answers err (see httpx.Errors.Fail); internal is what a 500 says.
func failed(w http.ResponseWriter, err error, internal string) {
	httpx.Errors{API: "probes API", Internal: internal}.Fail(w, err, "", "")
}

func customerScope(r *http.Request) (auth.Principal, string) {
	p, _ := auth.FromContext(r.Context())
	return p, p.CustomerScope()
}

// DeviceState is a device's state as the API shows it.
type DeviceState struct {
	DeviceID   string     `db:"device_id" json:"device_id"`
	CustomerID string     `db:"customer_id" json:"customer_id"`
	SiteID     string     `db:"site_id" json:"site_id"`
	State      string     `db:"state" json:"state"`
	Since      time.Time  `db:"since" json:"since"`
	Flapping   bool       `db:"flapping" json:"flapping"`
	Detail     string     `db:"last_detail" json:"detail"`
	LastProbe  *time.Time `db:"last_probe_at" json:"last_probe_at,omitempty"`
}

func (a *API) states(w http.ResponseWriter, r *http.Request) {
	if _, err := httpx.ParseQuery(r); err != nil {
		httpx.Refuse(w, err)
		return
	}
	_, customer := customerScope(r)
	var out []DeviceState
	err := a.db.SelectContext(r.Context(), &out, `SELECT d.id AS device_id, d.customer_id, d.site_id,
		COALESCE(s.state, 'unknown') AS state, COALESCE(s.since, d.created_at) AS since, COALESCE(s.flapping, false) AS flapping,
		COALESCE(s.last_detail, '') AS last_detail, s.last_probe_at
		FROM devices d LEFT JOIN device_states s ON s.device_id = d.id
		WHERE d.retired_at IS NULL AND ($1 = '' OR d.customer_id = $1) ORDER BY d.customer_id, d.site_id, d.id`, customer)
	if err != nil {
		failed(w, err, "could not read device states")
		return
	}
	if out == nil {
		out = []DeviceState{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"device_states": out})
}

// Outage is an outage as the API shows it.
type Outage struct {
	ID         int64          `db:"id" json:"id"`
	Kind       string         `db:"kind" json:"kind"`
	CustomerID string         `db:"customer_id" json:"customer_id"`
	SiteID     string         `db:"site_id" json:"site_id"`
	DeviceID   *string        `db:"device_id" json:"device_id,omitempty"`
	Affected   pq.StringArray `db:"affected_device_ids" json:"affected_device_ids"`
	Cause      string         `db:"cause" json:"cause"`
	StartedAt  time.Time      `db:"started_at" json:"started_at"`
	EndedAt    *time.Time     `db:"ended_at" json:"ended_at,omitempty"`
}

func (a *API) outages(w http.ResponseWriter, r *http.Request) {
	_, customer := customerScope(r)
	q, err := httpx.ParseQuery(r, "open")
	if err != nil {
		httpx.Refuse(w, err)
		return
	}
	open := q["open"]
	if open != "" && open != "true" && open != "false" {
		httpx.Refuse(w, httpx.Invalid("open", "must be true or false"))
		return
	}
	var out []Outage
	err = a.db.SelectContext(r.Context(), &out, `SELECT id, kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at, ended_at
		FROM outages WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR (ended_at IS NULL) = ($2 = 'true'))
		ORDER BY started_at DESC LIMIT 500`, customer, open)
	if err != nil {
		failed(w, err, "could not read outages")
		return
	}
	if out == nil {
		out = []Outage{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"outages": out})
}

func (a *API) listWindows(w http.ResponseWriter, r *http.Request) {
	p, _ := customerScope(r)
	if p.Role == auth.RoleCustomer {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "maintenance windows are managed by the NOC")
		return
	}
	if _, err := httpx.ParseQuery(r); err != nil {
		httpx.Refuse(w, err)
		return
	}
	ws, err := a.store.Windows(r.Context(), a.now())
	if err != nil {
		failed(w, err, "could not read maintenance windows")
		return
	}
	if ws == nil {
		ws = []*Window{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"maintenance_windows": ws})
}

type windowRequest struct {
	Scope           string    `json:"scope" max:"200"`
	ScopeID         string    `json:"scope_id" max:"100"`
	Reason          string    `json:"reason" max:"2000"`
	StartsAt        time.Time `json:"starts_at"`
	EndsAt          time.Time `json:"ends_at"`
	Cron            string    `json:"cron" max:"200"`
	TimeZone        string    `json:"time_zone" max:"100"`
	DurationSeconds int       `json:"duration_seconds" max:"31622400"`
}

func (a *API) addWindow(w http.ResponseWriter, r *http.Request) {
	p, _ := customerScope(r)
	if p.Role != auth.RoleNOC {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "only NOC staff plan maintenance windows")
		return
	}
	var req windowRequest
	if !httpx.Decode(w, r, &req) {
		return
	}
	if err := req.validate(); err != nil {
		httpx.Refuse(w, err)
		return
	}
	if err := a.scopeExists(r.Context(), req.Scope, req.ScopeID); err != nil {
		failed(w, err, "could not check the window's scope")
		return
	}
	win := &Window{Scope: req.Scope, ScopeID: req.ScopeID, Reason: req.Reason, StartsAt: req.StartsAt, EndsAt: req.EndsAt,
		Cron: req.Cron, TimeZone: req.TimeZone, Duration: time.Duration(req.DurationSeconds) * time.Second}
	if err := win.compile(); err != nil {
		failed(w, errInvalidWindow.Errorf("%v", err), "")
		return
	}
	if err := a.store.AddWindow(r.Context(), win, p.Name); err != nil {
		failed(w, err, "could not save the window")
		return
	}
	httpx.JSON(w, http.StatusCreated, win)
}

// Instants of a window must be in this range: the zero time (a missing
// starts_at) and years like 0001 or 9999 are mistakes, not plans.
var (
	windowEarliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	windowLatest   = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validate refuses what compile does not look at: missing or absurd
// instants and an unknown time zone, with or without a cron.
func (req windowRequest) validate() error {
	for _, f := range []struct {
		name string
		at   time.Time
	}{{"starts_at", req.StartsAt}, {"ends_at", req.EndsAt}} {
		if f.at.IsZero() {
			return httpx.Invalid(f.name, "required (an RFC 3339 instant)")
		}
		if f.at.Before(windowEarliest) || !f.at.Before(windowLatest) {
			return httpx.Invalid(f.name, "must be between the years 2000 and 2999")
		}
	}
	if req.TimeZone != "" {
		if _, err := time.LoadLocation(req.TimeZone); err != nil || req.TimeZone == "Local" {
			return httpx.Invalid("time_zone", "unknown time zone (an IANA name such as America/Bogota)")
		}
	}
	// duration_seconds is bounded (0 to 366 days) by its tag, with or
	// without a cron.
	if req.Cron != "" && req.DurationSeconds <= 0 {
		return httpx.Invalid("duration_seconds", "a recurring window needs a positive duration")
	}
	return nil
}

func (a *API) scopeExists(ctx context.Context, scope, id string) error {
	table := map[string]string{"device": "devices", "site": "sites", "customer": "customers"}[scope]
	if table == "" {
		return errInvalidWindow.Errorf("scope %q: want device, site or customer", scope)
	}
	var ok bool
	if err := a.db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE id = $1)`, id); err != nil {
		return fmt.Errorf("probes: window scope %s %q: %w", scope, id, err)
	}
	if !ok {
		return errInvalidWindow.Errorf("no %s %q", scope, id)
	}
	return nil
}
