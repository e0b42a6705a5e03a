package dispatch

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves dispatch under /api/v1: engineers, visits, parts, manufacturer
// cases, waits, work entries, quotes and billing. Rows outside the
// caller's scope answer 404 exactly like rows that do not exist.
type API struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
}

// NewAPI returns the dispatch API; now is the clock of every change.
func NewAPI(store *Store, now func() time.Time, log *slog.Logger) *API {
	return &API{store: store, now: now, log: log}
}

// Register adds the routes to mux (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/engineers", a.listEngineers)
	mux.HandleFunc("GET /api/v1/engineers/{id}", a.getEngineer)
	mux.HandleFunc("PUT /api/v1/engineers/{id}", a.putEngineer)
	mux.HandleFunc("POST /api/v1/engineers/{id}/oncall", a.addOnCall)
	mux.HandleFunc("GET /api/v1/engineers/{id}/availability", a.availability)

	mux.HandleFunc("GET /api/v1/visits", a.listVisits)
	mux.HandleFunc("POST /api/v1/visits", a.createVisit)
	mux.HandleFunc("GET /api/v1/visits/{id}", a.getVisit)
	mux.HandleFunc("GET /api/v1/visits/{id}/suggestions", a.suggest)
	mux.HandleFunc("POST /api/v1/visits/{id}/transition", a.transition)
	mux.HandleFunc("POST /api/v1/visits/{id}/outcome", a.outcome)

	mux.HandleFunc("GET /api/v1/parts", a.listParts)
	mux.HandleFunc("PUT /api/v1/parts", a.putPart)
	mux.HandleFunc("PUT /api/v1/warehouses/{id}", a.putWarehouse)
	mux.HandleFunc("PUT /api/v1/warehouses/{id}/stock/{part}", a.setStock)
	mux.HandleFunc("GET /api/v1/stock", a.listStock)
	mux.HandleFunc("GET /api/v1/part-requests", a.listPartRequests)
	mux.HandleFunc("POST /api/v1/part-requests", a.requestPart)
	mux.HandleFunc("GET /api/v1/part-requests/{id}", a.getPartRequest)
	mux.HandleFunc("POST /api/v1/part-requests/{id}/transition", a.movePart)

	mux.HandleFunc("GET /api/v1/manufacturer-cases", a.listCases)
	mux.HandleFunc("POST /api/v1/manufacturer-cases", a.openCase)
	mux.HandleFunc("POST /api/v1/manufacturer-cases/{id}/transition", a.moveCase)

	mux.HandleFunc("GET /api/v1/waits", a.listWaits)
	mux.HandleFunc("POST /api/v1/waits", a.startWait)
	mux.HandleFunc("POST /api/v1/waits/{id}/end", a.endWait)

	mux.HandleFunc("GET /api/v1/work-entries", a.listWork)
	mux.HandleFunc("POST /api/v1/work-entries", a.recordWork)
	mux.HandleFunc("POST /api/v1/quotes", a.proposeQuote)
	mux.HandleFunc("POST /api/v1/quotes/{id}/{decision}", a.decideQuote)
	mux.HandleFunc("POST /api/v1/billing/flags", a.flagBillable)
	mux.HandleFunc("GET /api/v1/billing/report", a.report)
}

func actor(r *http.Request) Actor {
	p, _ := auth.FromContext(r.Context())
	return ActorOf(p)
}

// fail answers an error of the store with its status code.
func (a *API) fail(w http.ResponseWriter, err error, what, id string) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.NotFound(w, what, id)
	case errors.Is(err, ErrInvalid):
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "%s", cause(err, ErrInvalid))
	case errors.Is(err, ErrForbidden):
		httpx.Fail(w, http.StatusForbidden, "forbidden", "%s", cause(err, ErrForbidden))
	case errors.Is(err, ErrRefused):
		httpx.Fail(w, http.StatusUnprocessableEntity, "refused", "%s", cause(err, ErrRefused))
	case errors.Is(err, ErrConflict):
		httpx.Fail(w, http.StatusConflict, "conflict", "%s", cause(err, ErrConflict))
	case db.Busy(err):
		a.log.Warn("dispatch API: database busy", "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the database did not answer in time; try again")
	default:
		a.log.Error("dispatch API", "err", err)
		httpx.Fail(w, http.StatusInternalServerError, "internal", "could not process the request")
	}
}

// cause keeps what follows the sentinel, for people.
func cause(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()); i >= 0 {
		return strings.TrimPrefix(msg[i+len(sentinel.Error()):], ": ")
	}
	return msg
}

// pathID reads a positive integer path value; a malformed one is 404.
func pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	return httpx.PathID(w, r, "id", what)
}

// query checks the parameters against allowed (see httpx.ParseQuery).
func query(w http.ResponseWriter, r *http.Request, allowed ...string) (httpx.Query, bool) {
	q, err := httpx.ParseQuery(r, allowed...)
	if err != nil {
		httpx.Refuse(w, err)
		return nil, false
	}
	return q, true
}

func intParam(w http.ResponseWriter, q httpx.Query, name string) (int64, bool) {
	n, err := q.ID(name)
	if err != nil {
		httpx.Refuse(w, err)
		return 0, false
	}
	return n, true
}

func timeParam(w http.ResponseWriter, q httpx.Query, name string) (*time.Time, bool) {
	t, err := q.Time(name)
	if err != nil {
		httpx.Refuse(w, err)
		return nil, false
	}
	return t, true
}

func (a *API) listEngineers(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r); !ok {
		return
	}
	es, err := a.store.Engineers(r.Context(), actor(r))
	if err != nil {
		a.fail(w, err, "engineer", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"engineers": es})
}

func (a *API) getEngineer(w http.ResponseWriter, r *http.Request) {
	e, err := a.store.Engineer(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, err, "engineer", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, e)
}

func (a *API) putEngineer(w http.ResponseWriter, r *http.Request) {
	var in EngineerInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	e, err := a.store.PutEngineer(r.Context(), actor(r), r.PathValue("id"), in, a.now())
	if err != nil {
		a.fail(w, err, "engineer", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, e)
}

func (a *API) addOnCall(w http.ResponseWriter, r *http.Request) {
	var in struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	id, err := a.store.AddOnCall(r.Context(), actor(r), r.PathValue("id"), in.From, in.To)
	if err != nil {
		a.fail(w, err, "engineer", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusCreated, map[string]any{"id": id, "engineer": r.PathValue("id"), "from": in.From, "to": in.To})
}

func (a *API) availability(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "from", "to")
	if !ok {
		return
	}
	from, ok1 := timeParam(w, q, "from")
	if !ok1 {
		return
	}
	to, ok2 := timeParam(w, q, "to")
	if !ok2 {
		return
	}
	if from == nil || to == nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "from and to are required")
		return
	}
	av, err := a.store.Availability(r.Context(), actor(r), r.PathValue("id"), *from, *to)
	if err != nil {
		a.fail(w, err, "engineer", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, av)
}

func (a *API) listVisits(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "state", "ticket", "engineer")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	vs, err := a.store.Visits(r.Context(), actor(r), VisitFilter{State: q["state"], TicketID: ticket, EngineerID: q["engineer"]})
	if err != nil {
		a.fail(w, err, "visit", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"visits": vs})
}

func (a *API) createVisit(w http.ResponseWriter, r *http.Request) {
	var in VisitInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	v, err := a.store.CreateVisit(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, v)
}

func (a *API) getVisit(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	v, err := a.store.Visit(r.Context(), actor(r), id)
	if err != nil {
		a.fail(w, err, "visit", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

func (a *API) suggest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	q, ok := query(w, r, "from", "to")
	if !ok {
		return
	}
	from, ok1 := timeParam(w, q, "from")
	to, ok2 := timeParam(w, q, "to")
	if !ok1 || !ok2 {
		return
	}
	ss, err := a.store.Suggest(r.Context(), actor(r), id, from, to, a.now())
	if err != nil {
		a.fail(w, err, "visit", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"suggestions": ss})
}

func (a *API) transition(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	var in TransitionInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	res, err := a.store.Transition(r.Context(), actor(r), id, in, a.now())
	if err != nil {
		a.fail(w, err, "visit", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (a *API) outcome(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	var in OutcomeInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	v, err := a.store.Outcome(r.Context(), actor(r), id, in, a.now())
	if err != nil {
		a.fail(w, err, "visit", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, v)
}

func (a *API) listParts(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "manufacturer")
	if !ok {
		return
	}
	ps, err := a.store.Parts(r.Context(), actor(r), q["manufacturer"])
	if err != nil {
		a.fail(w, err, "part", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"parts": ps})
}

func (a *API) putPart(w http.ResponseWriter, r *http.Request) {
	var in PartInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	p, err := a.store.PutPart(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "part", in.PartNumber)
		return
	}
	httpx.JSON(w, http.StatusOK, p)
}

func (a *API) putWarehouse(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		City string `json:"city"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	wh, err := a.store.PutWarehouse(r.Context(), actor(r), Warehouse{ID: r.PathValue("id"), Name: in.Name, City: in.City})
	if err != nil {
		a.fail(w, err, "warehouse", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, wh)
}

func (a *API) setStock(w http.ResponseWriter, r *http.Request) {
	part, err := strconv.ParseInt(r.PathValue("part"), 10, 64)
	if err != nil || part <= 0 {
		httpx.NotFound(w, "part", r.PathValue("part"))
		return
	}
	var in struct {
		Quantity int `json:"quantity" max:"100000"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	if err := a.store.SetStock(r.Context(), actor(r), r.PathValue("id"), part, in.Quantity); err != nil {
		a.fail(w, err, "warehouse", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"warehouse": r.PathValue("id"), "part": part, "quantity": in.Quantity})
}

func (a *API) listStock(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "part")
	if !ok {
		return
	}
	part, ok := intParam(w, q, "part")
	if !ok {
		return
	}
	ls, err := a.store.Stock(r.Context(), actor(r), part)
	if err != nil {
		a.fail(w, err, "stock", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"stock": ls})
}

func (a *API) listPartRequests(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	rs, err := a.store.PartRequests(r.Context(), actor(r), ticket)
	if err != nil {
		a.fail(w, err, "part request", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"part_requests": rs})
}

func (a *API) requestPart(w http.ResponseWriter, r *http.Request) {
	var in PartRequestInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	pr, err := a.store.RequestPart(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, pr)
}

func (a *API) getPartRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "part request")
	if !ok {
		return
	}
	pr, err := a.store.partRequest(r.Context(), actor(r), id)
	if err != nil {
		a.fail(w, err, "part request", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, pr)
}

func (a *API) movePart(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "part request")
	if !ok {
		return
	}
	var in PartMoveInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	pr, err := a.store.MovePart(r.Context(), actor(r), id, in, a.now())
	if err != nil {
		a.fail(w, err, "part request", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, pr)
}

func (a *API) listCases(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	cs, err := a.store.Cases(r.Context(), actor(r), ticket)
	if err != nil {
		a.fail(w, err, "manufacturer case", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"manufacturer_cases": cs})
}

func (a *API) openCase(w http.ResponseWriter, r *http.Request) {
	var in CaseInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	c, err := a.store.OpenCase(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, c)
}

func (a *API) moveCase(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "manufacturer case")
	if !ok {
		return
	}
	var in CaseMoveInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	c, err := a.store.MoveCase(r.Context(), actor(r), id, in, a.now())
	if err != nil {
		a.fail(w, err, "manufacturer case", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, c)
}

func (a *API) listWaits(w http.ResponseWriter, r *http.Request) {
	if _, ok := query(w, r); !ok {
		return
	}
	ws, err := a.store.OpenWaits(r.Context(), actor(r))
	if err != nil {
		a.fail(w, err, "wait", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"tickets": ws})
}

func (a *API) startWait(w http.ResponseWriter, r *http.Request) {
	var in WaitInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	wt, err := a.store.StartWait(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, wt)
}

func (a *API) endWait(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "wait")
	if !ok {
		return
	}
	var in struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 && !httpx.Decode(w, r, &in) {
		return
	}
	wt, err := a.store.EndWait(r.Context(), actor(r), id, in.Note, a.now())
	if err != nil {
		a.fail(w, err, "wait", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, wt)
}

func (a *API) listWork(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	es, err := a.store.WorkEntries(r.Context(), actor(r), ticket)
	if err != nil {
		a.fail(w, err, "work entry", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"work_entries": es})
}

func (a *API) recordWork(w http.ResponseWriter, r *http.Request) {
	var in WorkInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	e, err := a.store.RecordWork(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, e)
}

func (a *API) proposeQuote(w http.ResponseWriter, r *http.Request) {
	var in QuoteInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	q, err := a.store.ProposeQuote(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusCreated, q)
}

func (a *API) decideQuote(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "quote")
	if !ok {
		return
	}
	d := r.PathValue("decision")
	if d != "approve" && d != "reject" {
		httpx.Fail(w, http.StatusNotFound, "not_found", "no quote action %q (approve or reject)", d)
		return
	}
	// The decision is the path; a body, if any, must still be valid JSON
	// (an empty object), so garbage is not taken for a decision.
	if r.ContentLength != 0 && !httpx.Decode(w, r, &struct{}{}) {
		return
	}
	q, err := a.store.DecideQuote(r.Context(), actor(r), id, d == "approve", a.now())
	if err != nil {
		a.fail(w, err, "quote", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, q)
}

func (a *API) flagBillable(w http.ResponseWriter, r *http.Request) {
	var in FlagInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	if err := a.store.FlagBillable(r.Context(), actor(r), in, a.now()); err != nil {
		a.fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusOK, in)
}

func (a *API) report(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, "customer", "month", "format")
	if !ok {
		return
	}
	ac := actor(r)
	customer := q["customer"]
	if customer == "" {
		customer = ac.CustomerID
	}
	if customer == "" || q["month"] == "" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "customer and month (YYYY-MM) are required")
		return
	}
	format := q["format"]
	if format != "" && format != "json" && format != "csv" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "format must be json or csv")
		return
	}
	rep, err := a.store.Report(r.Context(), ac, customer, q["month"])
	if err != nil {
		a.fail(w, err, "customer", customer)
		return
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		if err := rep.WriteCSV(w); err != nil {
			a.log.Error("billing report", "err", err)
		}
		return
	}
	httpx.JSON(w, http.StatusOK, rep)
}
