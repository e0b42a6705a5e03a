package reports

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// API serves the contract reports under /api/v1, confined to the caller's
// customer: a hospital's token reads its own reports and no other's.
type API struct {
	r   *Reporter
	log *slog.Logger
}

// NewAPI returns the reports API.
func NewAPI(r *Reporter, log *slog.Logger) *API { return &API{r: r, log: log} }

// Register adds the routes.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/availability", a.availability)
	mux.HandleFunc("GET /api/v1/reports/monthly", a.monthly)
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// params checks the query strictly: only allowed names, each once, short,
// valid UTF-8 without NUL; required ones present.
func params(w http.ResponseWriter, r *http.Request, allowed, required []string) (map[string]string, bool) {
	out := map[string]string{}
	for k, vs := range r.URL.Query() {
		if !slices.Contains(allowed, k) {
			httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "unknown parameter %q (allowed: %s)", truncate(k), strings.Join(allowed, ", "))
			return nil, false
		}
		if len(vs) != 1 {
			httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%s given %d times", k, len(vs))
			return nil, false
		}
		v := vs[0]
		if len(v) > 64 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%s must be valid text of at most 64 bytes", k)
			return nil, false
		}
		out[k] = v
	}
	for _, k := range required {
		if out[k] == "" {
			httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%s is required", k)
			return nil, false
		}
	}
	return out, true
}

func truncate(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// scopedCustomer resolves the customer a request is about: a customer's
// user may name only its own (any other answers 404, as for a missing
// one), the NOC any; engineers read no contract reports.
func (a *API) scopedCustomer(w http.ResponseWriter, r *http.Request, id string) (assets.Customer, bool) {
	p, _ := auth.FromContext(r.Context())
	if p.Role == auth.RoleEngineer {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "contract reports are for the NOC and the customer")
		return assets.Customer{}, false
	}
	if id == "" {
		id = p.CustomerScope()
	}
	if id == "" {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "customer is required")
		return assets.Customer{}, false
	}
	if !idRE.MatchString(id) {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "customer must be an inventory id")
		return assets.Customer{}, false
	}
	c, err := a.r.Inventory.Customer(r.Context(), assets.Scope{CustomerID: p.CustomerScope()}, id)
	if err != nil {
		if !errors.Is(err, assets.ErrNotFound) {
			a.log.Warn("reports: read customer", "customer", id, "err", err)
		}
		httpx.NotFound(w, "customer", id)
		return assets.Customer{}, false
	}
	return c, true
}

func (a *API) availability(w http.ResponseWriter, r *http.Request) {
	q, ok := params(w, r, []string{"customer", "from", "to", "device"}, []string{"from", "to"})
	if !ok {
		return
	}
	if q["device"] != "" && !idRE.MatchString(q["device"]) {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "device must be an inventory id")
		return
	}
	c, ok := a.scopedCustomer(w, r, q["customer"])
	if !ok {
		return
	}
	from, to, err := ParsePeriod(q["from"], q["to"], c.Location())
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%v", err)
		return
	}
	if to.Sub(from) > 400*24*time.Hour {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "the period is longer than 400 days")
		return
	}
	rep, err := a.r.Availability(r.Context(), AvailabilityQuery{CustomerID: c.ID, From: from, To: to, DeviceID: q["device"]})
	if !a.handled(w, err, "availability") {
		return
	}
	httpx.JSON(w, http.StatusOK, rep)
}

func (a *API) monthly(w http.ResponseWriter, r *http.Request) {
	q, ok := params(w, r, []string{"customer", "month", "format"}, []string{"month"})
	if !ok {
		return
	}
	format := q["format"]
	if format == "" {
		format = FormatHTML
	}
	ctype, ok := map[string]string{FormatHTML: "text/html; charset=utf-8", FormatPDF: "application/pdf",
		FormatJSON: "application/json; charset=utf-8", FormatCSV: "text/csv; charset=utf-8"}[format]
	if !ok {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "format must be html, pdf, json or csv")
		return
	}
	if !monthRE.MatchString(q["month"]) {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "month must be YYYY-MM")
		return
	}
	c, ok := a.scopedCustomer(w, r, q["customer"])
	if !ok {
		return
	}
	m, err := a.r.Monthly(r.Context(), c.ID, q["month"])
	if !a.handled(w, err, "monthly report") {
		return
	}
	var body bytes.Buffer
	if err := m.Write(r.Context(), &body, format); err != nil {
		a.log.Warn("reports: write monthly report", "customer", c.ID, "month", q["month"], "format", format, "err", err)
		httpx.Fail(w, http.StatusInternalServerError, "internal", "could not write the report")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="vigia-%s-%s.%s"`, c.ID, q["month"], format))
	w.Write(body.Bytes())
}

// handled answers err (if any, see httpx.Errors.Fail) and reports whether
// the handler goes on.
func (a *API) handled(w http.ResponseWriter, err error, what string) bool {
	if err == nil {
		return true
	}
	httpx.Errors{Log: a.log, API: "reports: " + what, Internal: "could not compute the " + what}.Fail(w, err, "", "")
	return false
}

// ParsePeriod reads a period: a date (YYYY-MM-DD) is midnight in loc and
// to, as a date, is included whole; an RFC3339 instant is taken as is
// (to excluded).
func ParsePeriod(from, to string, loc *time.Location) (time.Time, time.Time, error) {
	parse := func(name, s string, endOfDay bool) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		d, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: want a date YYYY-MM-DD or an RFC3339 instant", name, truncate(s))
		}
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	f, err := parse("from", from, false)
	if err != nil {
		return f, f, err
	}
	t, err := parse("to", to, true)
	if err != nil {
		return f, t, err
	}
	if !f.Before(t) {
		return f, t, errors.New("to must be after from")
	}
	return f, t, nil
}
