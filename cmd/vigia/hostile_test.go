package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

// writeRoute is a POST or PUT route with a body the NOC may send; the
// hostile test spoils it one value at a time.
type writeRoute struct {
	pattern string
	path    string
	body    string
	// valid lists, by field, the mutations that are meaningful values
	// there (a zero price, a stock of 0, 2³¹ cents), not sent.
	valid map[string][]string
}

var money = []string{"zero", "int32+1"}

// readRoute is a GET route and the query parameters it takes, by kind:
// "id" (a positive integer), "time", "bool" or "text".
type readRoute struct {
	pattern string
	path    string
	params  map[string]string
	// list: unknown query parameters must be refused.
	list bool
}

// mutation is one hostile replacement for a JSON value.
type mutation struct {
	name  string
	value string // raw JSON
}

var (
	megabyte       = strings.Repeat("x", 1<<20-4096)
	stringHostile  = []mutation{{"NUL", `"a\u0000b"`}, {"invalid UTF-8", "\"a\xff\xfeb\""}, {"100 KB", `"` + strings.Repeat("x", 100_000) + `"`}, {"1 MB", `"` + megabyte + `"`}, {"number", `12345`}, {"object", `{"a":1}`}}
	numberHostile  = []mutation{{"int64 max", `9223372036854775807`}, {"beyond int64", `9223372036854775808`}, {"1e400", `1e400`}, {"int32+1", `2147483648`}, {"negative", `-1`}, {"zero", `0`}, {"fraction", `1.5`}, {"string", `"12"`}, {"bool", `true`}}
	boolHostile    = []mutation{{"string", `"yes"`}, {"number", `1`}}
	listHostile    = []mutation{{"string", `"x"`}, {"object", `{}`}}
	textIDHostile  = []string{"%00", "%ff", "a%00b", "%c3%28", strings.Repeat("a", 1000)}
	pathIDHostile  = append(slices.Clone(textIDHostile), "2147483648", "9223372036854775807", "9223372036854775808", "-1", "0")
	queryHostile   = []string{"%00", "%ff", "a%00b", strings.Repeat("a", 1000)}
	numericHostile = []string{"9223372036854775808", "-1", "1e3", "abc"}
)

func writeRoutes(f *apiFixture) []writeRoute {
	tk := f.ticket
	return []writeRoute{
		{"POST /api/v1/maintenance-windows", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z","cron":"0 2 * * 0","time_zone":"America/Bogota","duration_seconds":3600}`, nil},
		{"POST /api/v1/tickets", "/api/v1/tickets", `{"customer":"hsr","title":"x","description":"y","severity":3,"devices":["hsr-ct1"],"category":"imaging"}`, map[string][]string{"severity": {"zero"}}},
		{"POST /api/v1/tickets/{id}/{action}", "/api/v1/tickets/" + tk + "/comment", `{"text":"hola","severity":0}`, map[string][]string{"severity": {"zero"}}},
		{"POST /api/v1/alertmanager", "/api/v1/alertmanager", `{"version":"4","status":"firing","receiver":"vigia","groupLabels":{"a":"b"},"alerts":[{"status":"firing","labels":{"device":"hsr-ct1"},"startsAt":"2026-11-23T14:00:00Z"}]}`, nil},
		{"POST /api/v1/heartbeats/{device}", "/api/v1/heartbeats/hsr-ris", `{"status":"ok","version":"1.0","detail":"x"}`, nil},
		{"POST /api/v1/preventive-plans", "/api/v1/preventive-plans", `{"device":"hsr-ct1","title":"Mantenimiento","every_months":3,"lead_days":14,"first_due_on":"2027-01-15"}`, map[string][]string{"lead_days": {"zero"}}},
		{"PUT /api/v1/engineers/{id}", "/api/v1/engineers/eng-laura", f.engineerBody, map[string][]string{"hourly_cost_cents": money}},
		{"POST /api/v1/engineers/{id}/oncall", "/api/v1/engineers/eng-laura/oncall", `{"from":"2026-11-28T00:00:00Z","to":"2026-11-29T00:00:00Z"}`, nil},
		{"POST /api/v1/visits", "/api/v1/visits", `{"ticket":` + tk + `,"engineers":["eng-laura"],"site":"hsr-central","devices":["hsr-worklist"],"travel_price_cents":100,"notes":"x"}`, map[string][]string{"travel_price_cents": money}},
		{"POST /api/v1/visits/{id}/transition", "/api/v1/visits/" + f.visit + "/transition", `{"to":"cancelled","note":"x"}`, nil},
		{"POST /api/v1/visits/{id}/outcome", "/api/v1/visits/" + f.visit + "/outcome",
			`{"work_performed":"Cambio de tubo","activity":"repair","parts_used":[{"part_number":"GE-5131","quantity":1}],"signature":{"name":"Dra. Ruiz","kind":"typed","value":"Dra. Ruiz"}}`, nil},
		{"PUT /api/v1/parts", "/api/v1/parts", f.partBody, map[string][]string{"unit_price_cents": money, "unit_cost_cents": money}},
		{"PUT /api/v1/warehouses/{id}", "/api/v1/warehouses/wh-bog", `{"name":"Bodega","city":"Bogotá"}`, nil},
		{"PUT /api/v1/warehouses/{id}/stock/{part}", "/api/v1/warehouses/wh-bog/stock/" + f.part, `{"quantity":3}`, map[string][]string{"quantity": {"zero"}}},
		{"POST /api/v1/part-requests", "/api/v1/part-requests", `{"ticket":` + tk + `,"part":` + f.part + `,"quantity":1,"visit":` + f.visit + `,"note":"x"}`, nil},
		{"POST /api/v1/part-requests/{id}/transition", "/api/v1/part-requests/" + f.partRequest + "/transition", `{"to":"quoted","quote_price_cents":100,"warehouse":"wh-bog","supplier_ref":"x","note":"x"}`, map[string][]string{"quote_price_cents": money}},
		{"POST /api/v1/manufacturer-cases", "/api/v1/manufacturer-cases", `{"ticket":` + tk + `,"manufacturer":"GE","case_number":"GE-CASE-9","summary":"x"}`, nil},
		{"POST /api/v1/manufacturer-cases/{id}/transition", "/api/v1/manufacturer-cases/" + f.manufacturerCase + "/transition", `{"to":"answered","answer":"x","note":"x"}`, nil},
		{"POST /api/v1/waits", "/api/v1/waits", `{"ticket":` + tk + `,"reason":"third_party","note":"x"}`, nil},
		{"POST /api/v1/waits/{id}/end", "/api/v1/waits/" + f.wait + "/end", `{"note":"listo"}`, nil},
		{"POST /api/v1/work-entries", "/api/v1/work-entries", f.workBody, nil},
		{"POST /api/v1/quotes", "/api/v1/quotes", `{"ticket":` + tk + `,"hours":1,"hour_price_cents":1,"note":"x"}`, map[string][]string{"hour_price_cents": money}},
		{"POST /api/v1/quotes/{id}/{decision}", "/api/v1/quotes/" + f.quote + "/reject", `{}`, nil},
		{"POST /api/v1/billing/flags", "/api/v1/billing/flags", `{"ticket":` + tk + `,"cause":"misuse","note":"x"}`, nil},
		{"POST /api/v1/mail/unmatched/{id}/assign", "/api/v1/mail/unmatched/1/assign", `{"customer":"hsr"}`, nil},
		{"POST /api/v1/mail/unmatched/{id}/discard", "/api/v1/mail/unmatched/1/discard", `{}`, nil},
		// A collector's batch (with its own token): a sequence number past
		// int32 is a number a collector may reach, not sent here.
		{"POST /api/v1/collector/results", "/api/v1/collector/results",
			`{"checks":[{"seq":1,"device":"hsr-pacs","results":[{"prober":"dicom","outcome":"ok","detail":"x","at":"2026-11-23T14:00:00Z"}]}]}`,
			map[string][]string{"seq": {"int32+1", "int64 max"}}},
		{"POST /api/v1/biomed/visits/{id}/safety-tests", "/api/v1/biomed/visits/" + f.visit + "/safety-tests",
			`{"tests":[{"device":"hsr-monitor-uci","type":"recurrent","device_class":"I","applied_part":"BF","method":"direct",` +
				`"instrument":{"model":"Fluke ESA615","serial":"X1","calibrated_on":"2026-06-01"},"accessories":["cable"]}]}`, nil},
		// The certificate is the body (a PDF), the record the query: only
		// the path is spoiled here, with a body that is no certificate.
		{"POST /api/v1/biomed/devices/{id}/calibrations", "/api/v1/biomed/devices/hsr-monitor-uci/calibrations?calibrated_on=2026-11-20&laboratory=Metrolab&certificate_number=MC-2&filename=c.pdf", `{}`, nil},
		{"POST /api/v1/biomed/devices/{id}/usage", "/api/v1/biomed/devices/hsr-monitor-uci/usage", `{"counter":"hours","value":10}`,
			map[string][]string{"value": {"zero", "int32+1", "fraction"}}},
		{"POST /api/v1/biomed/alerts", "/api/v1/biomed/alerts", f.alertBody, nil},
	}
}

func readRoutes(f *apiFixture) []readRoute {
	return []readRoute{
		{"GET /api/v1/customers", "/api/v1/customers", nil, true},
		{"GET /api/v1/customers/{id}", "/api/v1/customers/{id}", nil, false},
		{"GET /api/v1/sites", "/api/v1/sites", map[string]string{"include_retired": "bool"}, true},
		{"GET /api/v1/sites/{id}", "/api/v1/sites/{id}", nil, false},
		{"GET /api/v1/devices", "/api/v1/devices", map[string]string{"include_retired": "bool", "kind": "enum", "site": "text", "customer": "text"}, true},
		{"GET /api/v1/devices/{id}", "/api/v1/devices/{id}", nil, false},
		{"GET /api/v1/contracts", "/api/v1/contracts", map[string]string{"include_retired": "bool"}, true},
		{"GET /api/v1/contracts/{id}", "/api/v1/contracts/{id}", nil, false},
		{"GET /api/v1/device-states", "/api/v1/device-states", nil, true},
		{"GET /api/v1/outages", "/api/v1/outages", map[string]string{"open": "bool"}, true},
		{"GET /api/v1/maintenance-windows", "/api/v1/maintenance-windows", nil, true},
		{"GET /api/v1/tickets", "/api/v1/tickets", map[string]string{"status": "enum", "severity": "id", "customer": "text", "site": "text",
			"device": "text", "limit": "id", "cursor": "id"}, true},
		{"GET /api/v1/tickets/{id}", "/api/v1/tickets/{id}", nil, false},
		{"GET /api/v1/tickets/{id}/attachments", "/api/v1/tickets/{id}/attachments", nil, true},
		{"GET /api/v1/tickets/{id}/attachments/{n}", "/api/v1/tickets/{id}/attachments/" + f.attachment, nil, false},
		{"GET /api/v1/preventive-plans", "/api/v1/preventive-plans", map[string]string{"device": "text"}, true},
		{"GET /api/v1/engineers", "/api/v1/engineers", nil, true},
		{"GET /api/v1/engineers/{id}", "/api/v1/engineers/{id}", nil, false},
		{"GET /api/v1/engineers/{id}/availability", "/api/v1/engineers/{id}/availability", map[string]string{"from": "time", "to": "time"}, true},
		{"GET /api/v1/visits", "/api/v1/visits", map[string]string{"state": "text", "ticket": "id", "engineer": "text"}, true},
		{"GET /api/v1/visits/{id}", "/api/v1/visits/{id}", nil, false},
		{"GET /api/v1/visits/{id}/suggestions", "/api/v1/visits/{id}/suggestions", map[string]string{"from": "time", "to": "time"}, true},
		{"GET /api/v1/parts", "/api/v1/parts", map[string]string{"manufacturer": "text"}, true},
		{"GET /api/v1/stock", "/api/v1/stock", map[string]string{"part": "id"}, true},
		{"GET /api/v1/part-requests", "/api/v1/part-requests", map[string]string{"ticket": "id"}, true},
		{"GET /api/v1/part-requests/{id}", "/api/v1/part-requests/{id}", nil, false},
		{"GET /api/v1/manufacturer-cases", "/api/v1/manufacturer-cases", map[string]string{"ticket": "id"}, true},
		{"GET /api/v1/waits", "/api/v1/waits", nil, true},
		{"GET /api/v1/work-entries", "/api/v1/work-entries", map[string]string{"ticket": "id"}, true},
		{"GET /api/v1/billing/report", "/api/v1/billing/report?customer=hsr&month=2026-11", map[string]string{"format": "text"}, true},
		{"GET /api/v1/mail/unmatched", "/api/v1/mail/unmatched", nil, true},
		{"GET /api/v1/collector/config", "/api/v1/collector/config", nil, true},
		{"GET /api/v1/devices/{id}/events", "/api/v1/devices/{id}/events", map[string]string{"limit": "id", "before": "time"}, true},
		{"GET /api/v1/availability", "/api/v1/availability?customer=hsr&from=2026-11-01&to=2026-11-30", map[string]string{"device": "text", "format": "text"}, true},
		{"GET /api/v1/reports/monthly", "/api/v1/reports/monthly?customer=hsr&month=2026-11", map[string]string{"format": "text"}, true},
		{"GET /api/v1/biomed/work-orders", "/api/v1/biomed/work-orders", map[string]string{"customer": "text", "device": "text", "from": "text", "to": "text", "overdue": "text"}, true},
		{"GET /api/v1/biomed/safety-tests", "/api/v1/biomed/safety-tests", map[string]string{"customer": "text", "device": "text", "failed": "text"}, true},
		{"GET /api/v1/biomed/calibrations", "/api/v1/biomed/calibrations", map[string]string{"customer": "text"}, true},
		{"GET /api/v1/biomed/calibrations/{id}/certificate", "/api/v1/biomed/calibrations/{id}/certificate", nil, false},
		{"GET /api/v1/biomed/alerts", "/api/v1/biomed/alerts", map[string]string{"customer": "text"}, true},
		{"GET /api/v1/biomed/report", "/api/v1/biomed/report?customer=hsr&from=2026-11-01&to=2026-12-01", map[string]string{"format": "text"}, true},
	}
}

// leaf is a value in a JSON document: its path and kind.
type leaf struct {
	path []any // keys and indexes
	kind string
}

func leaves(v any, path []any) []leaf {
	switch v := v.(type) {
	case map[string]any:
		var out []leaf
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, leaves(v[k], append(slices.Clone(path), k))...)
		}
		return out
	case []any:
		var out []leaf
		// A body that is a list (the alert file) is not replaced whole:
		// its elements are spoiled one by one.
		if len(path) > 0 {
			out = append(out, leaf{path, "list"})
		}
		for i, e := range v {
			out = append(out, leaves(e, append(slices.Clone(path), i))...)
		}
		return out
	case string:
		return []leaf{{path, "string"}}
	case json.Number:
		return []leaf{{path, "number"}}
	case bool:
		return []leaf{{path, "bool"}}
	}
	return nil
}

// placeholder marks the value to replace, so that raw bytes (invalid
// UTF-8) can be spliced into the encoded document.
const placeholder = "\"__hostile__\""

// spoil replaces the value at path in body with raw JSON.
func spoil(t *testing.T, body string, path []any, raw string) string {
	t.Helper()
	var doc any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	set := func(container any, key any) {
		switch c := container.(type) {
		case map[string]any:
			c[key.(string)] = json.RawMessage(placeholder)
		case []any:
			c[key.(int)] = json.RawMessage(placeholder)
		}
	}
	cur := doc
	for i, k := range path {
		if i == len(path)-1 {
			set(cur, k)
			break
		}
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k.(string)]
		case []any:
			cur = c[k.(int)]
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(out), placeholder, raw, 1)
}

// lastKey is the innermost field name of path.
func lastKey(path []any) string {
	for i := len(path) - 1; i >= 0; i-- {
		if s, ok := path[i].(string); ok {
			return s
		}
	}
	return ""
}

// message is an API error's message (or the raw body).
func message(body string) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &e) == nil && e.Message != "" {
		return e.Message
	}
	return body
}

// consoleForms finds the console's form routes in its source.
var consoleForms = regexp.MustCompile(`Handle(?:Func)?\("POST (/console/[^"]*)"`)

// dbInternals are words of PostgreSQL's own error texts that must never
// reach a caller.
var dbInternals = regexp.MustCompile(`pq:|violates|constraint|duplicate key|is not present in table|invalid byte sequence|out of range for type|SQLSTATE`)

// TestHostileInput sends every write route bodies spoiled one value at a
// time (NUL, invalid UTF-8, 100 KB and 1 MB strings, int64 and beyond,
// negative and zero numbers, wrong types), every route hostile path ids
// and every list hostile query parameters, and the console's forms
// hostile fields: each answer is a 4xx naming the field, /readyz stays 200
// and no row changes.
func TestHostileInput(t *testing.T) {
	f := newAPIFixture(t)
	heartbeatToken := "hsr-ris-heartbeat-demo-token"
	ready := func(t *testing.T) {
		t.Helper()
		if code, body := f.do("GET", "/readyz", "", ""); code != http.StatusOK {
			t.Fatalf("/readyz: %d %s", code, body)
		}
	}
	refused := func(t *testing.T, what string, code int, body, field string) {
		t.Helper()
		if code < 400 || code > 499 {
			t.Errorf("%s: %d, want 4xx (%.300s)", what, code, body)
			return
		}
		msg := message(body)
		// A malformed value is named; a well-formed one may be refused
		// for what it means (404, 409, 422), a body for its size (413).
		if code == http.StatusBadRequest && field != "" && !strings.Contains(msg, field) {
			t.Errorf("%s: %d %.300q does not name %q", what, code, msg, field)
		}
		if dbInternals.MatchString(body) {
			t.Errorf("%s: database internals in the answer: %.300s", what, body)
		}
	}
	before := hostileSnapshot(t, f)

	writes := writeRoutes(f)
	t.Run("every write route is covered", func(t *testing.T) {
		for _, p := range registeredAPIPatterns(t) {
			if strings.HasPrefix(p, "GET ") {
				continue
			}
			if !slices.ContainsFunc(writes, func(w writeRoute) bool { return w.pattern == p }) {
				t.Errorf("write route %q has no hostile-input case", p)
			}
		}
	})
	for _, w := range writes {
		method := strings.Fields(w.pattern)[0]
		token := f.noc
		switch {
		case strings.Contains(w.pattern, "heartbeats"):
			token = heartbeatToken
		case strings.Contains(w.pattern, "/collector/"):
			token = f.collectorToken
		}
		t.Run(w.pattern, func(t *testing.T) {
			var doc any
			dec := json.NewDecoder(strings.NewReader(w.body))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			for _, l := range leaves(doc, nil) {
				var ms []mutation
				switch l.kind {
				case "string":
					ms = stringHostile
				case "number":
					ms = numberHostile
				case "bool":
					ms = boolHostile
				case "list":
					ms = listHostile
				}
				for _, m := range ms {
					if slices.Contains(w.valid[lastKey(l.path)], m.name) {
						continue
					}
					body := spoil(t, w.body, l.path, m.value)
					code, out := f.do(method, w.path, token, body)
					refused(t, fmt.Sprint(l.path, " ", m.name), code, out, lastKey(l.path))
				}
			}
			// The path's ids, with a valid body.
			if strings.Contains(w.pattern, "{") {
				ids := pathIDHostile
				if !strings.ContainsAny(strings.TrimPrefix(w.path, "/api/v1/"), "0123456789") {
					ids = textIDHostile // PUT creates what a text id names
				}
				for _, id := range ids {
					path := replaceID(w.path, id)
					code, out := f.do(method, path, token, w.body)
					refused(t, "path "+id[:min(len(id), 20)], code, out, "")
				}
			}
			ready(t)
		})
	}

	reads := readRoutes(f)
	t.Run("every read route is covered", func(t *testing.T) {
		for _, p := range registeredAPIPatterns(t) {
			if strings.HasPrefix(p, "GET ") && !slices.ContainsFunc(reads, func(r readRoute) bool { return r.pattern == p }) {
				t.Errorf("read route %q has no hostile-input case", p)
			}
		}
	})
	for _, r := range reads {
		token := f.noc
		if strings.Contains(r.pattern, "/collector/") {
			token = f.collectorToken
		}
		t.Run(r.pattern, func(t *testing.T) {
			base := strings.ReplaceAll(r.path, "{id}", "eng-laura")
			if strings.Contains(r.pattern, "visits/{id}") {
				base = strings.ReplaceAll(r.path, "{id}", f.visit)
			}
			if strings.Contains(r.path, "{id}") {
				for _, id := range pathIDHostile {
					code, out := f.do("GET", strings.ReplaceAll(r.path, "{id}", id), token, "")
					refused(t, "path "+id[:min(len(id), 20)], code, out, "")
				}
			}
			sep := "?"
			if strings.Contains(base, "?") {
				sep = "&"
			}
			if r.list {
				code, out := f.do("GET", base+sep+"bogus=1", token, "")
				refused(t, "unknown parameter", code, out, "bogus")
			}
			for name, kind := range r.params {
				values := queryHostile
				if kind == "id" || kind == "time" || kind == "bool" {
					values = append(slices.Clone(values), numericHostile...)
				}
				for _, v := range values {
					code, out := f.do("GET", base+sep+name+"="+v, token, "")
					refused(t, name+"="+v[:min(len(v), 20)], code, out, "")
				}
			}
			ready(t)
		})
	}

	// Well-formed values refused for what they mean: told by the value at
	// fault, never by PostgreSQL's wording.
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		says                     []string
	}{
		{"duplicate case number", "POST", "/api/v1/manufacturer-cases",
			`{"ticket":` + f.ticket + `,"manufacturer":"GE","case_number":"GE-CASE-4711"}`, http.StatusConflict, []string{`"GE-CASE-4711"`}},
		{"unknown engineer", "POST", "/api/v1/work-entries", strings.Replace(f.workBody, `"eng-laura"`, `"eng-nadie"`, 1),
			http.StatusBadRequest, []string{`engineer "eng-nadie"`}},
		{"second open wait", "POST", "/api/v1/waits", `{"ticket":` + f.ticket + `,"reason":"customer"}`, http.StatusConflict, []string{"already exists"}},
		{"window without starts_at", "POST", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","ends_at":"2026-11-24T10:00:00Z"}`, http.StatusBadRequest, []string{"starts_at"}},
		{"window in year 1", "POST", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"0001-01-01T00:00:00Z","ends_at":"2026-11-24T10:00:00Z"}`, http.StatusBadRequest, []string{"starts_at"}},
		{"window with a junk zone", "POST", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z","time_zone":"Mars/Olympus"}`,
			http.StatusBadRequest, []string{"time_zone"}},
		{"window with a negative duration", "POST", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z","duration_seconds":-60}`,
			http.StatusBadRequest, []string{"duration_seconds"}},
		{"window of a year", "POST", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z","cron":"0 2 * * *","duration_seconds":40000000}`,
			http.StatusBadRequest, []string{"duration_seconds"}},
		{"money at int64's end", "PUT", "/api/v1/parts", strings.Replace(f.partBody, `"unit_price_cents":900000000`, `"unit_price_cents":9223372036854775807`, 1),
			http.StatusBadRequest, []string{"unit_price_cents"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.do(c.method, c.path, f.noc, c.body)
			if code != c.code {
				t.Errorf("%d, want %d (%s)", code, c.code, body)
			}
			for _, want := range c.says {
				if !strings.Contains(message(body), want) {
					t.Errorf("%q does not say %s", message(body), want)
				}
			}
			if dbInternals.MatchString(body) {
				t.Errorf("database internals in the answer: %s", body)
			}
		})
	}

	if after := hostileSnapshot(t, f); after != before {
		t.Errorf("refused requests changed the database:\n%s", diffLines(before, after))
	}
	// The console's users are created first: it compares on its own.
	t.Run("console forms", func(t *testing.T) { hostileConsole(t, f, refused) })
}

// replaceID puts id where the route's first path id is.
func replaceID(path, id string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if i >= 4 && p != "" && (strings.Trim(p, "0123456789") == "" || strings.Contains(p, "-")) {
			parts[i] = id
			return strings.Join(parts, "/")
		}
	}
	return path + "/" + id
}

// hostileSnapshot is snapshot without the console's sessions, whose
// last_seen_at is bookkeeping of authentication itself.
func hostileSnapshot(t *testing.T, f *apiFixture) string {
	t.Helper()
	lines := strings.Split(snapshot(t, f.conn), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "console_sessions ") })
	return strings.Join(lines, "\n")
}

// consoleForm is a console form and the fields it takes.
type consoleForm struct {
	path   string
	fields url.Values // valid values
	// numeric fields, spoiled with numbers as well
	numeric []string
}

func hostileConsole(t *testing.T, f *apiFixture, refused func(*testing.T, string, int, string, string)) {
	ctx := t.Context()
	now := f.clock.Now()
	login := func(username, role, customer, engineer string) (string, string) {
		t.Helper()
		if _, err := f.users.Create(ctx, auth.UserInput{Username: username, Password: "una clave larga y segura", Role: role,
			CustomerID: customer, EngineerID: engineer}, now); err != nil {
			t.Fatal(err)
		}
		id, sess, err := f.users.Login(ctx, username, "una clave larga y segura", "127.0.0.1", now)
		if err != nil {
			t.Fatal(err)
		}
		return id, sess.CSRF
	}
	nocSession, nocCSRF := login("ana", "noc", "", "")
	engSession, engCSRF := login("laura", "engineer", "", "eng-laura")
	custSession, custCSRF := login("sofia", "customer", "hsr", "")
	before := hostileSnapshot(t, f)
	post := func(path, session string, form url.Values) (int, string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if session != "" {
			req.AddCookie(&http.Cookie{Name: "vigia_session", Value: session})
		} else {
			req.AddCookie(&http.Cookie{Name: "vigia_login", Value: form.Get("csrf")})
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	forms := []struct {
		consoleForm
		session, csrf string
	}{
		{consoleForm{"/console/login", url.Values{"username": {"ana"}, "password": {"una clave larga y segura"}, "next": {"/console/noc"}}, nil}, "", "login-token"},
		{consoleForm{"/console/lang", url.Values{"lang": {"en"}, "next": {"/console/noc"}}, nil}, nocSession, nocCSRF},
		{consoleForm{"/console/noc/tickets/" + f.ticket + "/act", url.Values{"action": {"comment"}, "text": {"hola"}}, nil}, nocSession, nocCSRF},
		{consoleForm{"/console/noc/tickets/" + f.ticket + "/act", url.Values{"action": {"severity"}, "severity": {"2"}, "text": {"más grave"}}, []string{"severity"}}, nocSession, nocCSRF},
		{consoleForm{"/console/engineer/visits/" + f.visit + "/move", url.Values{"to": {"en_route"}, "note": {"salgo"}}, nil}, engSession, engCSRF},
		{consoleForm{"/console/engineer/visits/" + f.visit + "/outcome", url.Values{"work_performed": {"Cambio"}, "activity": {"repair"},
			"part_number_1": {"GE-5131"}, "part_qty_1": {"1"}, "part_maker_1": {"GE"}, "signer": {"Dra. Ruiz"}, "signature_kind": {"typed"},
			"signature_typed": {"Dra. Ruiz"}}, []string{"part_qty_1"}}, engSession, engCSRF},
		{consoleForm{"/console/portal/tickets", url.Values{"title": {"Falla"}, "description": {"No abre"}, "severity": {"3"}, "device": {"hsr-ct1"}}, []string{"severity"}}, custSession, custCSRF},
		{consoleForm{"/console/portal/tickets/" + f.ticket + "/act", url.Values{"action": {"comment"}, "text": {"hola"}}, nil}, custSession, custCSRF},
		{consoleForm{"/console/noc/mail/1/assign", url.Values{"customer": {"hsr"}}, nil}, nocSession, nocCSRF},
		{consoleForm{"/console/timezone", url.Values{"zone": {"America/Lima"}, "next": {"/console/noc"}}, nil}, nocSession, nocCSRF},
		{consoleForm{"/console/logout", url.Values{}, nil}, custSession, custCSRF},
	}
	t.Run("every console form is covered", func(t *testing.T) {
		src, err := os.ReadFile("../../internal/console/console.go")
		if err != nil {
			t.Fatal(err)
		}
		routes := consoleForms.FindAllStringSubmatch(string(src), -1)
		if len(routes) < 5 {
			t.Fatalf("found only %d console forms in the source: the scan is broken", len(routes))
		}
		for _, m := range routes {
			re := regexp.MustCompile("^" + regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(m[1], "[^/]+") + "$")
			if !slices.ContainsFunc(forms, func(fm struct {
				consoleForm
				session, csrf string
			}) bool {
				return re.MatchString(fm.path)
			}) {
				t.Errorf("console form %q has no hostile-input case", m[1])
			}
		}
	})
	textHostile := []struct{ name, value string }{{"NUL", "a\x00b"}, {"invalid UTF-8", "a\xff\xfeb"}, {"100 KB", strings.Repeat("x", 100_000)}}
	numberValues := []string{"9223372036854775807", "9223372036854775808", "2147483648", "-1", "1e400"}
	for _, fm := range forms {
		t.Run(fm.path, func(t *testing.T) {
			fields := slices.Sorted(func(yield func(string) bool) {
				for k := range fm.fields {
					if !yield(k) {
						return
					}
				}
			})
			fields = append(fields, "extra")
			for _, field := range fields {
				values := textHostile
				if slices.Contains(fm.numeric, field) {
					for _, n := range numberValues {
						values = append(slices.Clone(values), struct{ name, value string }{n, n})
					}
				}
				for _, v := range values {
					form := url.Values{}
					for k, vs := range fm.fields {
						form[k] = slices.Clone(vs)
					}
					form.Set(field, v.value)
					form.Set("csrf", fm.csrf)
					code, body := post(fm.path, fm.session, form)
					refused(t, field+" "+v.name, code, body, field)
				}
			}
			// Hostile ids in the form's path.
			if strings.Count(fm.path, "/") > 3 {
				for _, id := range pathIDHostile {
					form := url.Values{}
					for k, vs := range fm.fields {
						form[k] = slices.Clone(vs)
					}
					form.Set("csrf", fm.csrf)
					code, body := post(replaceID(fm.path, id), fm.session, form)
					refused(t, "path "+id[:min(len(id), 20)], code, body, "")
				}
			}
		})
	}
	// GET pages with hostile ids.
	for _, page := range []struct{ path, session string }{
		{"/console/noc/tickets/{id}", nocSession}, {"/console/engineer/visits/{id}", engSession},
		{"/console/portal/tickets/{id}", custSession}, {"/console/attachments/{id}", custSession},
	} {
		for _, id := range pathIDHostile {
			req := httptest.NewRequest("GET", strings.ReplaceAll(page.path, "{id}", id), nil)
			req.AddCookie(&http.Cookie{Name: "vigia_session", Value: page.session})
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			refused(t, page.path+" "+id[:min(len(id), 20)], rec.Code, rec.Body.String(), "")
		}
	}
	if after := hostileSnapshot(t, f); after != before {
		t.Errorf("refused console forms changed the database:\n%s", diffLines(before, after))
	}
}

// TestHostileConcurrency sends 50 simultaneous requests of each hostile
// kind — among them the 30 KB engineer id that used to hang lib/pq — to
// a real HTTP server; then heartbeats and the device list answer at their
// normal pace, no session is left idle in transaction and no row changed.
func TestHostileConcurrency(t *testing.T) {
	f := newAPIFixture(t)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(method, path, token, body string) (int, time.Duration, error) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, time.Since(start), err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(start), nil
	}
	// The normal pace: the slowest of a few calls of each.
	normal := func() (heartbeat, devices time.Duration) {
		t.Helper()
		for range 5 {
			code, d, err := send("POST", "/api/v1/heartbeats/hsr-ris", "hsr-ris-heartbeat-demo-token", "")
			if err != nil || code != http.StatusAccepted {
				t.Fatalf("heartbeat: %d %v", code, err)
			}
			heartbeat = max(heartbeat, d)
			code, d, err = send("GET", "/api/v1/devices", f.noc, "")
			if err != nil || code != http.StatusOK {
				t.Fatalf("devices: %d %v", code, err)
			}
			devices = max(devices, d)
		}
		return heartbeat, devices
	}
	hbBefore, devBefore := normal()

	work := func(field, value string) string {
		return strings.Replace(f.workBody, `"`+field+`":"eng-laura"`, `"`+field+`":`+value, 1)
	}
	kinds := []struct{ name, method, path, body string }{
		{"30 KB engineer id", "POST", "/api/v1/work-entries", work("engineer", `"`+strings.Repeat("e", 30_000)+`"`)},
		{"NUL", "POST", "/api/v1/work-entries", strings.Replace(f.workBody, `"note":"`, `"note":"\u0000`, 1)},
		{"invalid UTF-8", "POST", "/api/v1/work-entries", strings.Replace(f.workBody, `"note":"`, "\"note\":\"\xff", 1)},
		{"1 MB string", "POST", "/api/v1/work-entries", strings.Replace(f.workBody, `"note":"`, `"note":"`+megabyte, 1)},
		{"beyond int64", "POST", "/api/v1/visits", `{"ticket":9223372036854775808,"engineers":["eng-laura"]}`},
		{"int32+1 id", "POST", "/api/v1/waits", `{"ticket":2147483648,"reason":"customer"}`},
		{"int32+1 path id", "GET", "/api/v1/tickets/2147483648", ""},
		{"invalid path id", "GET", "/api/v1/devices/%ff", ""},
		{"NUL query", "GET", "/api/v1/devices?customer=%00", ""},
		{"wrong type", "POST", "/api/v1/quotes", `{"ticket":"1","hours":[],"hour_price_cents":{}}`},
	}
	before := hostileSnapshot(t, f)
	var wg sync.WaitGroup
	start := make(chan struct{})
	type answer struct {
		kind string
		code int
		err  error
	}
	answers := make(chan answer, 50*len(kinds))
	for _, k := range kinds {
		for range 50 {
			wg.Go(func() {
				<-start
				code, _, err := send(k.method, k.path, f.noc, k.body)
				answers <- answer{k.name, code, err}
			})
		}
	}
	stopReady := make(chan struct{})
	readyDone := make(chan error, 1)
	go func() {
		// /readyz answers 200 all through the storm.
		for {
			select {
			case <-stopReady:
				readyDone <- nil
				return
			case <-time.After(50 * time.Millisecond):
			}
			if code, _, err := send("GET", "/readyz", "", ""); err != nil || code != http.StatusOK {
				readyDone <- fmt.Errorf("/readyz during the storm: %d %v", code, err)
				return
			}
		}
	}()
	close(start)
	wg.Wait()
	close(stopReady)
	if err := <-readyDone; err != nil {
		t.Error(err)
	}
	close(answers)
	for a := range answers {
		if a.err != nil || a.code < 400 || a.code > 499 {
			t.Errorf("%s: %d %v, want 4xx", a.kind, a.code, a.err)
		}
	}
	if after := hostileSnapshot(t, f); after != before {
		t.Errorf("refused requests changed the database:\n%s", diffLines(before, after))
	}
	var idle []string
	if err := f.conn.Select(&idle, `SELECT left(query, 80) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`); err != nil {
		t.Fatal(err)
	}
	if len(idle) > 0 {
		t.Errorf("%d sessions idle in transaction: %q", len(idle), idle)
	}
	hbAfter, devAfter := normal()
	// Generous, for a loaded test machine: a hang shows as seconds.
	for _, c := range []struct {
		what          string
		before, after time.Duration
	}{{"heartbeat", hbBefore, hbAfter}, {"device list", devBefore, devAfter}} {
		if c.after > max(10*c.before, time.Second) {
			t.Errorf("%s after the storm: %s (before: %s)", c.what, c.after, c.before)
		}
	}
}

// TestConcurrentWritesKeepThePool sends more simultaneous valid writes
// than the pool has connections, on one ticket: each holds a transaction
// (and the ticket's lock) and must not wait for a second pooled connection
// that the others hold, or they all wait until their deadline.
func TestConcurrentWritesKeepThePool(t *testing.T) {
	f := newAPIFixture(t)
	for _, w := range []struct{ name, path, body string }{
		{"tickets", "/api/v1/tickets", `{"customer":"hsr","title":"x","description":"y","severity":3,"devices":["hsr-ct1"]}`},
		{"work entries", "/api/v1/work-entries", f.workBody},
	} {
		t.Run(w.name, func(t *testing.T) {
			start := time.Now()
			var wg sync.WaitGroup
			codes := make(chan string, 60)
			for range 60 {
				wg.Go(func() {
					code, body := f.do("POST", w.path, f.noc, w.body)
					codes <- fmt.Sprintf("%d %.120s", code, message(body))
				})
			}
			wg.Wait()
			close(codes)
			for c := range codes {
				if !strings.HasPrefix(c, "201 ") {
					t.Errorf("answer %s", c)
				}
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("60 writes took %s", took)
			}
		})
	}
}
