package mailintake

import (
	"log/slog"
	"net/http"
	"regexp"
	"strconv"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves the unmatched-mail queue to NOC tokens only (a customer's or
// an engineer's token is 403: the queue holds other people's mail):
//
//	GET  /api/v1/mail/unmatched               the waiting messages
//	POST /api/v1/mail/unmatched/{id}/assign   {"customer": "ID"} → the ticket
//	POST /api/v1/mail/unmatched/{id}/discard  out of the queue
type API struct {
	intake *Intake
	log    *slog.Logger
	errs   httpx.Errors
}

// NewAPI returns the queue's API.
func NewAPI(intake *Intake, log *slog.Logger) *API {
	return &API{intake: intake, log: log, errs: httpx.Errors{Log: log, API: "mail queue API", Internal: "could not process the message"}}
}

// Register adds the routes to mux (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/mail/unmatched", a.noc(a.list))
	mux.HandleFunc("POST /api/v1/mail/unmatched/{id}/assign", a.noc(a.assign))
	mux.HandleFunc("POST /api/v1/mail/unmatched/{id}/discard", a.noc(a.discard))
}

func (a *API) noc(h func(w http.ResponseWriter, r *http.Request, p auth.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok || p.Role != auth.RoleNOC {
			httpx.Fail(w, http.StatusForbidden, "forbidden", "the mail queue is for NOC staff")
			return
		}
		h(w, r, p)
	}
}

func (a *API) list(w http.ResponseWriter, r *http.Request, _ auth.Principal) {
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	q, err := a.intake.Queue(r.Context(), 500)
	if err != nil {
		a.errs.Fail(w, err, "message", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"messages": q})
}

// customerIDRE is the inventory's id syntax.
var customerIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

func (a *API) assign(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var in struct {
		Customer string `json:"customer"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	if !customerIDRE.MatchString(in.Customer) {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "customer must be a customer id")
		return
	}
	out, err := a.intake.Assign(r.Context(), id, in.Customer, p.Name+" (noc)")
	if err != nil {
		a.errs.Fail(w, err, "message", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusCreated, map[string]any{"ticket": out.Ticket, "ticket_id": out.TicketID, "status": out.Status})
}

func (a *API) discard(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var none struct{}
	if r.ContentLength != 0 && !httpx.Decode(w, r, &none) {
		return
	}
	if err := a.intake.Discard(r.Context(), id, p.Name+" (noc)"); err != nil {
		a.errs.Fail(w, err, "message", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"status": StatusDiscarded})
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		httpx.NotFound(w, "message", r.PathValue("id"))
		return 0, false
	}
	return id, true
}
