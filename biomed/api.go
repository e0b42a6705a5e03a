package biomed

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves the biomedical service under /api/v1/biomed. A customer's
// token reads its own work orders, test records, calibrations and alerts;
// another customer's rows answer 404.
type API struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
	errs  httpx.Errors
}

// NewAPI returns the API; now is the clock of every change.
func NewAPI(store *Store, now func() time.Time, log *slog.Logger) *API {
	return &API{store: store, now: now, log: log,
		errs: httpx.Errors{Log: log, API: "biomed API", Internal: "could not process the request"}}
}

// Register adds the routes (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/biomed/work-orders", a.workOrders)
	mux.HandleFunc("POST /api/v1/biomed/visits/{id}/safety-tests", a.recordTests)
	mux.HandleFunc("GET /api/v1/biomed/safety-tests", a.tests)
	mux.HandleFunc("GET /api/v1/biomed/calibrations", a.calibrations)
	mux.HandleFunc("POST /api/v1/biomed/devices/{id}/calibrations", a.recordCalibration)
	mux.HandleFunc("GET /api/v1/biomed/calibrations/{id}/certificate", a.certificate)
	mux.HandleFunc("POST /api/v1/biomed/devices/{id}/usage", a.usage)
	mux.HandleFunc("GET /api/v1/biomed/alerts", a.alerts)
	mux.HandleFunc("POST /api/v1/biomed/alerts", a.importAlerts)
	mux.HandleFunc("GET /api/v1/biomed/report", a.report)
}

func dateParam(w http.ResponseWriter, q map[string]string, name string) (time.Time, bool) {
	if q[name] == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(dateLayout, q[name])
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%s must be a date YYYY-MM-DD", name)
		return t, false
	}
	return t, true
}

func (a *API) workOrders(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer", "device", "from", "to", "overdue")
	if !ok {
		return
	}
	for _, k := range []string{"from", "to"} {
		if _, ok := dateParam(w, q, k); !ok {
			return
		}
	}
	if v := q["overdue"]; v != "" && v != "true" && v != "false" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "overdue must be true or false")
		return
	}
	ws, err := a.store.WorkOrders(r.Context(), auth.RequestActor(r), WorkOrderFilter{CustomerID: q["customer"], DeviceID: q["device"],
		From: q["from"], To: q["to"], Overdue: q["overdue"] == "true"}, a.now())
	if err != nil {
		a.errs.Fail(w, err, "customer", q["customer"])
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"work_orders": ws})
}

func (a *API) recordTests(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		httpx.NotFound(w, "visit", r.PathValue("id"))
		return
	}
	var in struct {
		Tests []TestInput `json:"tests"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	recs, err := a.store.RecordTests(r.Context(), auth.RequestActor(r), id, in.Tests, a.now())
	if err != nil {
		a.errs.Fail(w, err, "visit", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusCreated, map[string]any{"safety_tests": recs})
}

func (a *API) tests(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer", "device", "failed")
	if !ok {
		return
	}
	ts, err := a.store.Tests(r.Context(), auth.RequestActor(r), TestFilter{CustomerID: q["customer"], DeviceID: q["device"], FailedOnly: q["failed"] == "true"})
	if err != nil {
		a.errs.Fail(w, err, "customer", q["customer"])
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"safety_tests": ts, "limits_source": a.store.limits.Source})
}

func (a *API) calibrations(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer")
	if !ok {
		return
	}
	cs, err := a.store.Calibrations(r.Context(), auth.RequestActor(r), q["customer"], a.now())
	if err != nil {
		a.errs.Fail(w, err, "customer", q["customer"])
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"calibrations": cs})
}

// recordCalibration takes the certificate as the body (a PDF, PNG or JPEG
// within the API's body limit, httpx.MaxBody) and the record in the query.
func (a *API) recordCalibration(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "calibrated_on", "laboratory", "certificate_number", "filename")
	if !ok {
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		httpx.Fail(w, http.StatusRequestEntityTooLarge, "too_large", "the certificate has at most %d bytes", httpx.MaxBody)
		return
	}
	c, err := a.store.RecordCalibration(r.Context(), auth.RequestActor(r), r.PathValue("id"), CalibrationInput{CalibratedOn: q["calibrated_on"],
		Laboratory: q["laboratory"], CertificateNumber: q["certificate_number"], Filename: q["filename"], Certificate: data}, a.now())
	if err != nil {
		a.errs.Fail(w, err, "device", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusCreated, c)
}

func (a *API) certificate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		httpx.NotFound(w, "calibration", r.PathValue("id"))
		return
	}
	f, err := a.store.Certificate(r.Context(), auth.RequestActor(r), id)
	if err != nil {
		a.errs.Fail(w, err, "calibration", r.PathValue("id"))
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Name))
	w.Write(f.Data)
}

// maxUsage bounds a usage counter reading: a billion hours or exams.
const maxUsage = 1e9

func (a *API) usage(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Counter string   `json:"counter"`
		Value   *float64 `json:"value"`
	}
	if !httpx.Decode(w, r, &in) {
		return
	}
	if in.Value == nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "value is required")
		return
	}
	// A counter (tube hours, exams) is a count a device can reach, not any
	// number JSON can carry.
	if v := *in.Value; math.IsNaN(v) || v < 0 || v > maxUsage {
		httpx.Refuse(w, httpx.Invalid("value", "a counter reading between 0 and %g", float64(maxUsage)))
		return
	}
	if err := a.store.RecordUsage(r.Context(), auth.RequestActor(r), r.PathValue("id"), in.Counter, *in.Value, a.now()); err != nil {
		a.errs.Fail(w, err, "device", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusCreated, map[string]any{"device": r.PathValue("id"), "counter": in.Counter, "value": *in.Value})
}

func (a *API) alerts(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer")
	if !ok {
		return
	}
	ms, err := a.store.Matches(r.Context(), auth.RequestActor(r), q["customer"], time.Time{}, time.Time{})
	if err != nil {
		a.errs.Fail(w, err, "customer", q["customer"])
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"alerts": ms})
}

// importAlerts takes the alert file's JSON array (NOC only).
func (a *API) importAlerts(w http.ResponseWriter, r *http.Request) {
	if auth.RequestActor(r).Role != auth.RoleNOC {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "only the NOC imports safety alerts")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		httpx.Fail(w, http.StatusRequestEntityTooLarge, "too_large", "at most %d bytes", httpx.MaxBody)
		return
	}
	if !bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")) {
		httpx.Fail(w, http.StatusBadRequest, "invalid_json", "send the alerts as a JSON array")
		return
	}
	alerts, err := ParseAlerts(data)
	if err != nil {
		a.errs.Fail(w, err, "", "")
		return
	}
	sum, err := a.store.ImportAlerts(r.Context(), alerts, a.now())
	if err != nil {
		a.errs.Fail(w, err, "alert", "")
		return
	}
	httpx.JSON(w, http.StatusOK, sum)
}

// report answers the biomedical report of a customer for [from, to)
// (dates in the customer's zone) as JSON or CSV.
func (a *API) report(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "customer", "from", "to", "format")
	if !ok {
		return
	}
	from, ok1 := dateParam(w, q, "from")
	if !ok1 {
		return
	}
	to, ok2 := dateParam(w, q, "to")
	if !ok2 {
		return
	}
	customerID, err := scope(auth.RequestActor(r), q["customer"])
	if err != nil || customerID == "" || from.IsZero() || !to.After(from) {
		if err != nil {
			a.errs.Fail(w, err, "customer", q["customer"])
			return
		}
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "customer, from and to (after from) are required")
		return
	}
	if auth.RequestActor(r).Role == auth.RoleEngineer {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "engineers read no customer reports")
		return
	}
	cu, err := a.store.inv.Customer(r.Context(), assets.Scope{CustomerID: customerID}, customerID)
	if err != nil {
		httpx.NotFound(w, "customer", customerID)
		return
	}
	loc := cu.Location()
	sm, err := a.store.Summary(r.Context(), customerID, time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, loc),
		time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, loc), a.now())
	if err != nil {
		a.errs.Fail(w, err, "customer", customerID)
		return
	}
	switch q["format"] {
	case "", "json":
		httpx.JSON(w, http.StatusOK, sm)
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "biomedical-"+customerID+"-"+q["from"]+".csv"))
		if err := sm.WriteCSV(w); err != nil {
			a.log.Error("biomed report csv", "err", err)
		}
	default:
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "format must be json or csv")
	}
}
