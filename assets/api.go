package assets

import (
	"net/http"
	"slices"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves the inventory under /api/v1. A customer's token sees only its
// own customer: scoping is part of every query, and another customer's id
// answers 404 exactly like an id that does not exist.
type API struct {
	store *Store
	now   func() time.Time
}

// NewAPI returns the inventory API; now is the clock used for coverage.
func NewAPI(store *Store, now func() time.Time) *API { return &API{store: store, now: now} }

// Register adds the inventory routes to mux. The caller wraps mux with
// authentication; handlers read the principal from the context.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/customers", a.listCustomers)
	mux.HandleFunc("GET /api/v1/customers/{id}", a.getCustomer)
	mux.HandleFunc("GET /api/v1/sites", a.listSites)
	mux.HandleFunc("GET /api/v1/sites/{id}", a.getSite)
	mux.HandleFunc("GET /api/v1/devices", a.listDevices)
	mux.HandleFunc("GET /api/v1/devices/{id}", a.getDevice)
	mux.HandleFunc("GET /api/v1/contracts", a.listContracts)
	mux.HandleFunc("GET /api/v1/contracts/{id}", a.getContract)
}

func scope(r *http.Request) Scope {
	p, _ := auth.FromContext(r.Context())
	return Scope{CustomerID: p.CustomerScope()}
}

// errs answers a failed read of what (see httpx.Errors.Fail): not found,
// or out of scope, is 404.
func errs(what string) httpx.Errors {
	return httpx.Errors{API: "inventory API", Internal: "could not read the " + what}
}

// listQuery reads a list's query: unknown parameters are refused, the
// same way on every list; include_retired is read when allowed.
func listQuery(w http.ResponseWriter, r *http.Request, allowed ...string) (httpx.Query, bool, bool) {
	q, ok := httpx.ReadQuery(w, r, allowed...)
	if !ok {
		return nil, false, false
	}
	retired, err := q.Bool("include_retired")
	if err != nil {
		httpx.Refuse(w, err)
		return nil, false, false
	}
	return q, retired, true
}

func (a *API) listCustomers(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := listQuery(w, r); !ok {
		return
	}
	cs, err := a.store.Customers(r.Context(), scope(r))
	if err != nil {
		errs("customers").Fail(w, err, "customers", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"customers": nonNil(cs)})
}

func (a *API) getCustomer(w http.ResponseWriter, r *http.Request) {
	c, err := a.store.Customer(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		errs("customer").Fail(w, err, "customer", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, c)
}

func (a *API) listSites(w http.ResponseWriter, r *http.Request) {
	_, retired, ok := listQuery(w, r, "include_retired")
	if !ok {
		return
	}
	ss, err := a.store.Sites(r.Context(), scope(r), retired)
	if err != nil {
		errs("sites").Fail(w, err, "sites", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"sites": nonNil(ss)})
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) {
	s, err := a.store.Site(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		errs("site").Fail(w, err, "site", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, s)
}

// DeviceView is a device with its live coverage, as the API shows it.
type DeviceView struct {
	Device
	Coverage Coverage `json:"coverage"`
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	q, retired, ok := listQuery(w, r, "include_retired", "kind", "site", "customer")
	if !ok {
		return
	}
	kind := q["kind"]
	if kind != "" && !slices.Contains(DeviceKinds, kind) {
		httpx.Refuse(w, httpx.Invalid("kind", "unknown device kind %q", kind))
		return
	}
	f := DeviceFilter{Scope: scope(r), SiteID: q["site"], Kind: kind, IncludeRetired: retired}
	if c := q["customer"]; c != "" {
		if f.CustomerID != "" && f.CustomerID != c {
			// Asking for another customer's devices yields none, not an error
			// that would confirm the customer exists.
			httpx.JSON(w, http.StatusOK, map[string]any{"devices": []DeviceView{}})
			return
		}
		f.CustomerID = c
	}
	ds, err := a.store.Devices(r.Context(), f)
	if err != nil {
		errs("devices").Fail(w, err, "devices", "")
		return
	}
	cov, err := a.store.CoverageOf(r.Context(), ds, a.now())
	if err != nil {
		errs("devices").Fail(w, err, "devices", "")
		return
	}
	out := make([]DeviceView, len(ds))
	for i, d := range ds {
		out[i] = DeviceView{Device: d, Coverage: cov[d.ID]}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.store.Device(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		errs("device").Fail(w, err, "device", r.PathValue("id"))
		return
	}
	cov, err := a.store.CoverageOf(r.Context(), []Device{d}, a.now())
	if err != nil {
		errs("device").Fail(w, err, "device", d.ID)
		return
	}
	httpx.JSON(w, http.StatusOK, DeviceView{Device: d, Coverage: cov[d.ID]})
}

func (a *API) listContracts(w http.ResponseWriter, r *http.Request) {
	_, retired, ok := listQuery(w, r, "include_retired")
	if !ok {
		return
	}
	ks, err := a.store.Contracts(r.Context(), scope(r), retired)
	if err != nil {
		errs("contracts").Fail(w, err, "contracts", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"contracts": nonNil(ks)})
}

func (a *API) getContract(w http.ResponseWriter, r *http.Request) {
	k, err := a.store.Contract(r.Context(), scope(r), r.PathValue("id"))
	if err != nil {
		errs("contract").Fail(w, err, "contract", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, k)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
