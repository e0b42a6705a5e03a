package probes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves what the probes know under /api/v1: device states, outages and
// maintenance windows, confined to the caller's customer.
type API struct {
	store *Store
	inv   DeviceSummaries
	now   func() time.Time
}

// DeviceSummaries is what the API reads of the inventory (the assets
// store): the devices whose states it shows, and the device, site or
// customer a maintenance window names.
type DeviceSummaries interface {
	DeviceSummaries(ctx context.Context, f assets.DeviceFilter) ([]assets.Device, error)
	Device(ctx context.Context, sc assets.Scope, id string) (assets.Device, error)
	Site(ctx context.Context, sc assets.Scope, id string) (assets.Site, error)
	Customer(ctx context.Context, sc assets.Scope, id string) (assets.Customer, error)
}

// NewAPI returns the probes API over the probes' store and the inventory.
func NewAPI(store *Store, inv DeviceSummaries, now func() time.Time) *API {
	return &API{store: store, inv: inv, now: now}
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
	DeviceID   string     `json:"device_id"`
	CustomerID string     `json:"customer_id"`
	SiteID     string     `json:"site_id"`
	State      string     `json:"state"`
	Since      time.Time  `json:"since"`
	Flapping   bool       `json:"flapping"`
	Detail     string     `json:"detail"`
	LastProbe  *time.Time `json:"last_probe_at,omitempty"`
}

func (a *API) states(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	_, customer := customerScope(r)
	devices, err := a.inv.DeviceSummaries(r.Context(), assets.DeviceFilter{Scope: assets.Scope{CustomerID: customer}})
	if err != nil {
		failed(w, err, "could not read device states")
		return
	}
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	live, err := a.store.LiveStates(r.Context(), ids)
	if err != nil {
		failed(w, err, "could not read device states")
		return
	}
	out := make([]DeviceState, len(devices))
	for i, d := range devices {
		// A device never probed is unknown since it entered the inventory.
		out[i] = DeviceState{DeviceID: d.ID, CustomerID: d.CustomerID, SiteID: d.SiteID, State: "unknown", Since: d.CreatedAt}
		if st, ok := live[d.ID]; ok {
			out[i].State, out[i].Since, out[i].Flapping, out[i].Detail, out[i].LastProbe = st.State, st.Since, st.Flapping, st.Detail, st.LastProbe
		}
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
	q, ok := httpx.ReadQuery(w, r, "open")
	if !ok {
		return
	}
	open := q["open"]
	if open != "" && open != "true" && open != "false" {
		httpx.Refuse(w, httpx.Invalid("open", "must be true or false"))
		return
	}
	f := OutageFilter{CustomerID: customer}
	if open != "" {
		isOpen := open == "true"
		f.Open = &isOpen
	}
	out, err := a.store.Outages(r.Context(), f)
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
	if _, ok := httpx.ReadQuery(w, r); !ok {
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
	var err error
	switch scope {
	case "device":
		_, err = a.inv.Device(ctx, assets.Scope{}, id)
	case "site":
		_, err = a.inv.Site(ctx, assets.Scope{}, id)
	case "customer":
		_, err = a.inv.Customer(ctx, assets.Scope{}, id)
	default:
		return errInvalidWindow.Errorf("scope %q: want device, site or customer", scope)
	}
	if errors.Is(err, assets.ErrNotFound) {
		return errInvalidWindow.Errorf("no %s %q", scope, id)
	}
	if err != nil {
		return fmt.Errorf("probes: window scope %s %q: %w", scope, id, err)
	}
	return nil
}
