package dispatch

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves dispatch under /api/v1: engineers, visits, parts, manufacturer
// cases, waits, work entries, quotes and billing. Rows outside the
// caller's scope answer 404 exactly like rows that do not exist.
type API struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
	errs  httpx.Errors
}

// NewAPI returns the dispatch API; now is the clock of every change.
func NewAPI(store *Store, now func() time.Time, log *slog.Logger) *API {
	return &API{store: store, now: now, log: log,
		errs: httpx.Errors{Log: log, API: "dispatch API", Internal: "could not process the request"}}
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
	mux.HandleFunc("POST /api/v1/visits/{id}/transition", onID(a, "visit", http.StatusOK, a.store.Transition))
	mux.HandleFunc("POST /api/v1/visits/{id}/outcome", onID(a, "visit", http.StatusOK, a.store.Outcome))

	mux.HandleFunc("GET /api/v1/parts", a.listParts)
	mux.HandleFunc("PUT /api/v1/parts", a.putPart)
	mux.HandleFunc("PUT /api/v1/warehouses/{id}", a.putWarehouse)
	mux.HandleFunc("PUT /api/v1/warehouses/{id}/stock/{part}", a.setStock)
	mux.HandleFunc("GET /api/v1/stock", a.listStock)
	mux.HandleFunc("GET /api/v1/part-requests", a.listPartRequests)
	mux.HandleFunc("POST /api/v1/part-requests", a.requestPart)
	mux.HandleFunc("GET /api/v1/part-requests/{id}", a.getPartRequest)
	mux.HandleFunc("POST /api/v1/part-requests/{id}/transition", onID(a, "part request", http.StatusOK, a.store.MovePart))

	mux.HandleFunc("GET /api/v1/manufacturer-cases", a.listCases)
	mux.HandleFunc("POST /api/v1/manufacturer-cases", a.openCase)
	mux.HandleFunc("POST /api/v1/manufacturer-cases/{id}/transition", onID(a, "manufacturer case", http.StatusOK, a.store.MoveCase))

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

// answer writes out with status, or err as the refusal of a request
// about what (id): the status comes from the error's kind (httpx.Errors).
func (a *API) answer(w http.ResponseWriter, status int, out any, err error, what, id string) {
	if err != nil {
		a.errs.Fail(w, err, what, id)
		return
	}
	httpx.JSON(w, status, out)
}

// onID serves POST …/{id}/…: the path id of what, a JSON body of type In,
// call, and its result with status.
func onID[In, Out any](a *API, what string, status int,
	call func(context.Context, auth.Actor, int64, In, time.Time) (Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r, what)
		if !ok {
			return
		}
		var in In
		if !httpx.Decode(w, r, &in) {
			return
		}
		out, err := call(r.Context(), auth.RequestActor(r), id, in, a.now())
		a.answer(w, status, out, err, what, r.PathValue("id"))
	}
}

// pathID reads a positive integer path value; a malformed one is 404.
func pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	return httpx.PathID(w, r, "id", what)
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
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	es, err := a.store.Engineers(r.Context(), auth.RequestActor(r))
	a.answer(w, http.StatusOK, map[string]any{"engineers": es}, err, "engineer", "")
}

func (a *API) getEngineer(w http.ResponseWriter, r *http.Request) {
	e, err := a.store.Engineer(r.Context(), auth.RequestActor(r), r.PathValue("id"))
	a.answer(w, http.StatusOK, e, err, "engineer", r.PathValue("id"))
}

func (a *API) putEngineer(w http.ResponseWriter, r *http.Request) {
	var in EngineerInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	e, err := a.store.PutEngineer(r.Context(), auth.RequestActor(r), r.PathValue("id"), in, a.now())
	a.answer(w, http.StatusOK, e, err, "engineer", r.PathValue("id"))
}

func (a *API) addOnCall(w http.ResponseWriter, r *http.Request) {
	var in struct {
		From time.Time `json:"from"`
		To   time.Time `json:"to"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	id, err := a.store.AddOnCall(r.Context(), auth.RequestActor(r), r.PathValue("id"), in.From, in.To)
	a.answer(w, http.StatusCreated, map[string]any{"id": id, "engineer": r.PathValue("id"), "from": in.From, "to": in.To}, err, "engineer", r.PathValue("id"))
}

func (a *API) availability(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "from", "to")
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
	av, err := a.store.Availability(r.Context(), auth.RequestActor(r), r.PathValue("id"), *from, *to)
	a.answer(w, http.StatusOK, av, err, "engineer", r.PathValue("id"))
}

func (a *API) listVisits(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "state", "ticket", "engineer")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	vs, err := a.store.Visits(r.Context(), auth.RequestActor(r), VisitFilter{State: q["state"], TicketID: ticket, EngineerID: q["engineer"]})
	a.answer(w, http.StatusOK, map[string]any{"visits": vs}, err, "visit", "")
}

func (a *API) createVisit(w http.ResponseWriter, r *http.Request) {
	var in VisitInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	v, err := a.store.CreateVisit(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, v, err, "ticket", strconv.FormatInt(in.TicketID, 10))
}

func (a *API) getVisit(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	v, err := a.store.Visit(r.Context(), auth.RequestActor(r), id)
	a.answer(w, http.StatusOK, v, err, "visit", r.PathValue("id"))
}

func (a *API) suggest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "visit")
	if !ok {
		return
	}
	q, ok := httpx.ReadQuery(w, r, "from", "to")
	if !ok {
		return
	}
	from, ok1 := timeParam(w, q, "from")
	to, ok2 := timeParam(w, q, "to")
	if !ok1 || !ok2 {
		return
	}
	ss, err := a.store.Suggest(r.Context(), auth.RequestActor(r), id, from, to, a.now())
	a.answer(w, http.StatusOK, map[string]any{"suggestions": ss}, err, "visit", r.PathValue("id"))
}

func (a *API) listParts(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "manufacturer")
	if !ok {
		return
	}
	ps, err := a.store.Parts(r.Context(), auth.RequestActor(r), q["manufacturer"])
	a.answer(w, http.StatusOK, map[string]any{"parts": ps}, err, "part", "")
}

func (a *API) putPart(w http.ResponseWriter, r *http.Request) {
	var in PartInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	p, err := a.store.PutPart(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusOK, p, err, "part", in.PartNumber)
}

func (a *API) putWarehouse(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
		City string `json:"city"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	wh, err := a.store.PutWarehouse(r.Context(), auth.RequestActor(r), Warehouse{ID: r.PathValue("id"), Name: in.Name, City: in.City})
	a.answer(w, http.StatusOK, wh, err, "warehouse", r.PathValue("id"))
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
	if err := a.store.SetStock(r.Context(), auth.RequestActor(r), r.PathValue("id"), part, in.Quantity); err != nil {
		a.errs.Fail(w, err, "warehouse", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"warehouse": r.PathValue("id"), "part": part, "quantity": in.Quantity})
}

func (a *API) listStock(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "part")
	if !ok {
		return
	}
	part, ok := intParam(w, q, "part")
	if !ok {
		return
	}
	ls, err := a.store.Stock(r.Context(), auth.RequestActor(r), part)
	a.answer(w, http.StatusOK, map[string]any{"stock": ls}, err, "stock", "")
}

func (a *API) listPartRequests(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	rs, err := a.store.PartRequests(r.Context(), auth.RequestActor(r), ticket)
	a.answer(w, http.StatusOK, map[string]any{"part_requests": rs}, err, "part request", "")
}

func (a *API) requestPart(w http.ResponseWriter, r *http.Request) {
	var in PartRequestInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	pr, err := a.store.RequestPart(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, pr, err, "ticket", strconv.FormatInt(in.TicketID, 10))
}

func (a *API) getPartRequest(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "part request")
	if !ok {
		return
	}
	pr, err := a.store.partRequest(r.Context(), auth.RequestActor(r), id)
	a.answer(w, http.StatusOK, pr, err, "part request", r.PathValue("id"))
}

func (a *API) listCases(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	cs, err := a.store.Cases(r.Context(), auth.RequestActor(r), ticket)
	a.answer(w, http.StatusOK, map[string]any{"manufacturer_cases": cs}, err, "manufacturer case", "")
}

func (a *API) openCase(w http.ResponseWriter, r *http.Request) {
	var in CaseInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	c, err := a.store.OpenCase(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, c, err, "ticket", strconv.FormatInt(in.TicketID, 10))
}

func (a *API) listWaits(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	ws, err := a.store.OpenWaits(r.Context(), auth.RequestActor(r))
	a.answer(w, http.StatusOK, map[string]any{"tickets": ws}, err, "wait", "")
}

func (a *API) startWait(w http.ResponseWriter, r *http.Request) {
	var in WaitInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	wt, err := a.store.StartWait(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, wt, err, "ticket", strconv.FormatInt(in.TicketID, 10))
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
	wt, err := a.store.EndWait(r.Context(), auth.RequestActor(r), id, in.Note, a.now())
	a.answer(w, http.StatusOK, wt, err, "wait", r.PathValue("id"))
}

func (a *API) listWork(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "ticket")
	if !ok {
		return
	}
	ticket, ok := intParam(w, q, "ticket")
	if !ok {
		return
	}
	es, err := a.store.WorkEntries(r.Context(), auth.RequestActor(r), ticket)
	a.answer(w, http.StatusOK, map[string]any{"work_entries": es}, err, "work entry", "")
}

func (a *API) recordWork(w http.ResponseWriter, r *http.Request) {
	var in WorkInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	e, err := a.store.RecordWork(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, e, err, "ticket", strconv.FormatInt(in.TicketID, 10))
}

func (a *API) proposeQuote(w http.ResponseWriter, r *http.Request) {
	var in QuoteInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	q, err := a.store.ProposeQuote(r.Context(), auth.RequestActor(r), in, a.now())
	a.answer(w, http.StatusCreated, q, err, "ticket", strconv.FormatInt(in.TicketID, 10))
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
	q, err := a.store.DecideQuote(r.Context(), auth.RequestActor(r), id, d == "approve", a.now())
	a.answer(w, http.StatusOK, q, err, "quote", r.PathValue("id"))
}

func (a *API) flagBillable(w http.ResponseWriter, r *http.Request) {
	var in FlagInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	if err := a.store.FlagBillable(r.Context(), auth.RequestActor(r), in, a.now()); err != nil {
		a.errs.Fail(w, err, "ticket", strconv.FormatInt(in.TicketID, 10))
		return
	}
	httpx.JSON(w, http.StatusOK, in)
}

func (a *API) report(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer", "month", "format")
	if !ok {
		return
	}
	ac := auth.RequestActor(r)
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
		a.errs.Fail(w, err, "customer", customer)
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
