package maintenance

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves tickets under /api/v1/tickets (the Alertmanager receiver is
// intake's, the preventive plans sweeps'). A customer's token sees and acts on its own
// customer's tickets only: another customer's ticket answers 404 exactly
// like one that does not exist.
type API struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
	errs  httpx.Errors
}

// NewAPI returns the ticket API; now is the clock of every action.
func NewAPI(store *Store, now func() time.Time, log *slog.Logger) *API {
	return &API{store: store, now: now, log: log,
		errs: httpx.Errors{Log: log, API: "ticket API", Internal: "could not process the ticket"}}
}

// Actions reachable as POST /api/v1/tickets/{id}/{action}.
var actions = actionNames()

// Register adds the routes to mux (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/tickets", a.list)
	mux.HandleFunc("POST /api/v1/tickets", a.create)
	mux.HandleFunc("GET /api/v1/tickets/{id}", a.show)
	mux.HandleFunc("GET /api/v1/tickets/{id}/attachments", a.attachments)
	mux.HandleFunc("GET /api/v1/tickets/{id}/attachments/{n}", a.attachment)
	mux.HandleFunc("POST /api/v1/tickets/{id}/{action}", a.act)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "status", "severity", "customer", "site", "device", "limit", "cursor")
	if !ok {
		return
	}
	ac := auth.RequestActor(r)
	f := ListFilter{Scope: scopeOf(ac), Status: q["status"], CustomerID: q["customer"], SiteID: q["site"],
		DeviceID: q["device"], Limit: 50}
	if f.Status != "" && !slices.Contains([]string{StatusNew, StatusAcknowledged, StatusInProgress, StatusPending, StatusSolved,
		StatusClosed, StatusReopened}, f.Status) {
		httpx.Refuse(w, httpx.Invalid("status", "unknown status %q", f.Status))
		return
	}
	sev, err1 := q.Int("severity", 1, 4)
	limit, err2 := q.Int("limit", 1, 200)
	cursor, err3 := q.Int("cursor", 1, 1<<62)
	if err := cmp.Or(err1, err2, err3); err != nil {
		httpx.Refuse(w, err)
		return
	}
	f.Severity, f.Limit, f.Cursor = int(sev), int(cmp.Or(limit, 50)), cursor
	if f.Scope.CustomerID != "" && f.CustomerID != "" && f.CustomerID != f.Scope.CustomerID {
		httpx.JSON(w, http.StatusOK, map[string]any{"tickets": []Ticket{}})
		return
	}
	ts, next, err := a.store.List(r.Context(), f)
	if err != nil {
		a.errs.Fail(w, err, "ticket", "")
		return
	}
	body := map[string]any{"tickets": ts}
	if next != 0 {
		body["next_cursor"] = strconv.FormatInt(next, 10)
	}
	httpx.JSON(w, http.StatusOK, body)
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var in CreateInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	t, err := a.store.Create(r.Context(), auth.RequestActor(r), in, a.now())
	if err != nil {
		a.errs.Fail(w, err, "ticket", "")
		return
	}
	httpx.JSON(w, http.StatusCreated, t)
}

func (a *API) show(w http.ResponseWriter, r *http.Request) {
	d, err := a.store.Get(r.Context(), scopeOf(auth.RequestActor(r)), r.PathValue("id"), a.now())
	if err != nil {
		a.errs.Fail(w, err, "ticket", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, d)
}

func (a *API) act(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if !slices.Contains(actions, action) {
		httpx.Fail(w, http.StatusNotFound, "not_found", "no ticket action %q (try one of %v)", action, actions)
		return
	}
	var in ActionInput
	// Acknowledge or confirm need no body; anything sent must be valid.
	if r.ContentLength != 0 && !httpx.Decode(w, r, &in) {
		return
	}
	t, err := a.store.Act(r.Context(), auth.RequestActor(r), r.PathValue("id"), action, in, a.now())
	if err != nil {
		a.errs.Fail(w, err, "ticket", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, t)
}
