package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// endpoint is one route of the API with a request aimed at a resource of
// customer hsr, and what other callers must get.
type endpoint struct {
	pattern string // as registered: "METHOD /path"
	path    string // concrete path, on hsr's resources
	body    string // a valid body for POST and PUT
	// otherCustomer is the status for a token of another customer (cmf):
	// 404 for hsr's resources, 403 for NOC- or engineer-only actions, 200
	// for lists (which must then show none of hsr's rows), 400 for a create
	// naming hsr's objects (unknown to the caller).
	otherCustomer int
}

func TestAuthorizationMatrix(t *testing.T) {
	f := newAPIFixture(t)
	conn, do, noc, cmf := f.conn, f.do, f.noc, f.cmf
	ticket, visit, part, partRequest, manufacturerCase, wait, quote := f.ticket, f.visit, f.part, f.partRequest,
		f.manufacturerCase, f.wait, f.quote
	engineer, partBody, work := f.engineerBody, f.partBody, f.workBody
	calibration, calibrationPath, pdf, alert := f.calibration, f.calibrationPath, f.calibrationPDF, f.alertBody
	collectorToken := f.collectorToken

	endpoints := []endpoint{
		{"GET /api/v1/customers", "/api/v1/customers", "", 200},
		{"GET /api/v1/customers/{id}", "/api/v1/customers/hsr", "", 404},
		{"GET /api/v1/sites", "/api/v1/sites", "", 200},
		{"GET /api/v1/sites/{id}", "/api/v1/sites/hsr-central", "", 404},
		{"GET /api/v1/devices", "/api/v1/devices", "", 200},
		{"GET /api/v1/devices/{id}", "/api/v1/devices/hsr-pacs", "", 404},
		{"GET /api/v1/contracts", "/api/v1/contracts", "", 200},
		{"GET /api/v1/contracts/{id}", "/api/v1/contracts/hsr-imaging-2026", "", 404},
		{"GET /api/v1/device-states", "/api/v1/device-states", "", 200},
		{"GET /api/v1/outages", "/api/v1/outages", "", 200},
		{"GET /api/v1/devices/{id}/events", "/api/v1/devices/hsr-pacs/events", "", 404},
		{"GET /api/v1/maintenance-windows", "/api/v1/maintenance-windows", "", 403},
		{"POST /api/v1/maintenance-windows", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z"}`, 403},
		{"GET /api/v1/tickets", "/api/v1/tickets", "", 200},
		{"GET /api/v1/tickets/{id}", "/api/v1/tickets/1", "", 404},
		{"GET /api/v1/tickets/{id}/attachments", "/api/v1/tickets/" + ticket + "/attachments", "", 404},
		{"GET /api/v1/tickets/{id}/attachments/{n}", "/api/v1/tickets/" + ticket + "/attachments/" + f.attachment, "", 404},
		// Another customer's device is unknown to this caller: 400, and
		// the same answer as for a device that does not exist.
		{"POST /api/v1/tickets", "/api/v1/tickets", `{"title":"x","description":"y","severity":3,"devices":["hsr-ct1"]}`, 400},
		{"POST /api/v1/tickets/{id}/{action}", "/api/v1/tickets/1/comment", `{"text":"hola"}`, 404},
		{"POST /api/v1/alertmanager", "/api/v1/alertmanager", `{"version":"4","status":"firing","alerts":[]}`, 403},
		{"POST /api/v1/heartbeats/{device}", "/api/v1/heartbeats/hsr-ris", `{}`, 401},
		// Collectors authenticate with their own tokens: an API token is unknown there.
		{"GET /api/v1/collector/config", "/api/v1/collector/config", "", 401},
		{"POST /api/v1/collector/results", "/api/v1/collector/results",
			`{"checks":[{"seq":1,"device":"hsr-ris","results":[{"prober":"tcp","outcome":"failed","at":"2026-11-23T14:00:00Z"}]}]}`, 401},
		{"GET /api/v1/preventive-plans", "/api/v1/preventive-plans", "", 200},
		{"POST /api/v1/preventive-plans", "/api/v1/preventive-plans",
			`{"device":"hsr-ct1","title":"Mantenimiento trimestral","every_months":3,"first_due_on":"2027-01-15"}`, 403},

		// Dispatch: engineers, the catalogue, stock and every write but a
		// customer's decision on a quoted part or a quote are the
		// provider's (403, whatever the id); hsr's visits, part requests
		// and quotes are 404; lists are empty.
		{"GET /api/v1/engineers", "/api/v1/engineers", "", 403},
		{"GET /api/v1/engineers/{id}", "/api/v1/engineers/eng-laura", "", 404},
		{"PUT /api/v1/engineers/{id}", "/api/v1/engineers/eng-laura", engineer, 403},
		{"POST /api/v1/engineers/{id}/oncall", "/api/v1/engineers/eng-laura/oncall", `{"from":"2026-11-28T00:00:00Z","to":"2026-11-29T00:00:00Z"}`, 403},
		{"GET /api/v1/engineers/{id}/availability", "/api/v1/engineers/eng-laura/availability?from=2026-11-24T14:00:00Z&to=2026-11-24T16:00:00Z", "", 404},
		{"GET /api/v1/visits", "/api/v1/visits?ticket=" + ticket, "", 200},
		{"POST /api/v1/visits", "/api/v1/visits", `{"ticket":` + ticket + `,"engineers":["eng-laura"]}`, 403},
		{"GET /api/v1/visits/{id}", "/api/v1/visits/" + visit, "", 404},
		{"GET /api/v1/visits/{id}/suggestions", "/api/v1/visits/" + visit + "/suggestions", "", 403},
		{"POST /api/v1/visits/{id}/transition", "/api/v1/visits/" + visit + "/transition", `{"to":"cancelled"}`, 403},
		{"POST /api/v1/visits/{id}/outcome", "/api/v1/visits/" + visit + "/outcome",
			`{"work_performed":"Cambio de tubo","signature":{"name":"Dra. Ruiz","kind":"typed","value":"Dra. Ruiz"}}`, 403},
		{"GET /api/v1/parts", "/api/v1/parts", "", 403},
		{"PUT /api/v1/parts", "/api/v1/parts", partBody, 403},
		{"PUT /api/v1/warehouses/{id}", "/api/v1/warehouses/wh-bog", `{"name":"Bodega Lima","city":"Lima"}`, 403},
		{"PUT /api/v1/warehouses/{id}/stock/{part}", "/api/v1/warehouses/wh-bog/stock/" + part, `{"quantity":0}`, 403},
		{"GET /api/v1/stock", "/api/v1/stock", "", 403},
		{"GET /api/v1/part-requests", "/api/v1/part-requests?ticket=" + ticket, "", 200},
		{"POST /api/v1/part-requests", "/api/v1/part-requests", `{"ticket":` + ticket + `,"part":` + part + `,"quantity":1}`, 403},
		{"GET /api/v1/part-requests/{id}", "/api/v1/part-requests/" + partRequest, "", 404},
		// Customers may approve or reject their own quoted parts: another's is not found.
		{"POST /api/v1/part-requests/{id}/transition", "/api/v1/part-requests/" + partRequest + "/transition", `{"to":"cancelled"}`, 404},
		{"GET /api/v1/manufacturer-cases", "/api/v1/manufacturer-cases?ticket=" + ticket, "", 200},
		{"POST /api/v1/manufacturer-cases", "/api/v1/manufacturer-cases", `{"ticket":` + ticket + `,"manufacturer":"GE","case_number":"GE-CASE-9999"}`, 403},
		{"POST /api/v1/manufacturer-cases/{id}/transition", "/api/v1/manufacturer-cases/" + manufacturerCase + "/transition", `{"to":"closed"}`, 403},
		{"GET /api/v1/waits", "/api/v1/waits", "", 200},
		{"POST /api/v1/waits", "/api/v1/waits", `{"ticket":` + ticket + `,"reason":"customer"}`, 403},
		{"POST /api/v1/waits/{id}/end", "/api/v1/waits/" + wait + "/end", `{"note":"listo"}`, 403},
		{"GET /api/v1/work-entries", "/api/v1/work-entries?ticket=" + ticket, "", 200},
		{"POST /api/v1/work-entries", "/api/v1/work-entries", work, 403},
		{"POST /api/v1/quotes", "/api/v1/quotes", `{"ticket":` + ticket + `,"hours":1,"hour_price_cents":1}`, 403},
		{"POST /api/v1/quotes/{id}/{decision}", "/api/v1/quotes/" + quote + "/approve", "", 404},
		{"POST /api/v1/billing/flags", "/api/v1/billing/flags", `{"ticket":` + ticket + `,"cause":"misuse"}`, 403},
		{"GET /api/v1/billing/report", "/api/v1/billing/report?customer=hsr&month=2026-11", "", 404},
		{"GET /api/v1/mail/unmatched", "/api/v1/mail/unmatched", "", 403},
		{"POST /api/v1/mail/unmatched/{id}/assign", "/api/v1/mail/unmatched/1/assign", `{"customer":"cmf"}`, 403},
		{"POST /api/v1/mail/unmatched/{id}/discard", "/api/v1/mail/unmatched/1/discard", "", 403},

		// The biomedical service: records are the provider's to write
		// (403); hsr's certificate and report are not found; lists are empty.
		{"GET /api/v1/biomed/work-orders", "/api/v1/biomed/work-orders", "", 200},
		{"POST /api/v1/biomed/visits/{id}/safety-tests", "/api/v1/biomed/visits/" + visit + "/safety-tests", `{"tests":[]}`, 403},
		{"GET /api/v1/biomed/safety-tests", "/api/v1/biomed/safety-tests", "", 200},
		{"GET /api/v1/biomed/calibrations", "/api/v1/biomed/calibrations", "", 200},
		{"POST /api/v1/biomed/devices/{id}/calibrations", calibrationPath, pdf, 403},
		{"GET /api/v1/biomed/calibrations/{id}/certificate", "/api/v1/biomed/calibrations/" + calibration + "/certificate", "", 404},
		{"POST /api/v1/biomed/devices/{id}/usage", "/api/v1/biomed/devices/hsr-monitor-uci/usage", `{"counter":"hours","value":10}`, 403},
		{"GET /api/v1/biomed/alerts", "/api/v1/biomed/alerts", "", 200},
		{"POST /api/v1/biomed/alerts", "/api/v1/biomed/alerts", alert, 403},
		{"GET /api/v1/biomed/report", "/api/v1/biomed/report?customer=hsr&from=2026-11-01&to=2026-12-01", "", 404},

		// Contract reports: another customer's are not found.
		{"GET /api/v1/availability", "/api/v1/availability?customer=hsr&from=2026-11-01&to=2026-11-30", "", 404},
		{"GET /api/v1/reports/monthly", "/api/v1/reports/monthly?customer=hsr&month=2026-11&format=json", "", 404},
	}

	// What the NOC reads at each dispatch GET above: the rows exist, so an
	// empty list or a 404 for cmf is scoping, not an empty database.
	nocSees := map[string]string{
		"/api/v1/engineers":                                 "eng-laura",
		"/api/v1/engineers/eng-laura":                       "Laura Gómez",
		"/api/v1/visits?ticket=" + ticket:                   `"customer_id": "hsr"`,
		"/api/v1/visits/" + visit:                           "Revisar worklist de San Rafael",
		"/api/v1/visits/" + visit + "/suggestions":          `"engineer": "eng-laura"`,
		"/api/v1/parts":                                     "GE-5131",
		"/api/v1/stock":                                     `"warehouse": "wh-bog"`,
		"/api/v1/part-requests?ticket=" + ticket:            "Tubo para San Rafael",
		"/api/v1/part-requests/" + partRequest:              "Tubo para San Rafael",
		"/api/v1/manufacturer-cases?ticket=" + ticket:       "GE-CASE-4711",
		"/api/v1/waits":                                     "San Rafael sin acceso al servidor",
		"/api/v1/work-entries?ticket=" + ticket:             "Diagnóstico remoto de San Rafael",
		"/api/v1/billing/report?customer=hsr&month=2026-11": `"customer_name": "Red Hospitalaria San Rafael"`,
		"/api/v1/engineers/eng-laura/availability?from=2026-11-24T14:00:00Z&to=2026-11-24T16:00:00Z": `"available": true`,
	}
	dispatchPatterns := apiPatterns(t, "../../dispatch")
	for _, e := range endpoints {
		want, ok := nocSees[e.path]
		if !strings.HasPrefix(e.pattern, "GET ") || !slices.Contains(dispatchPatterns, e.pattern) {
			continue
		}
		if !ok {
			t.Errorf("%s: say what the NOC sees at %s", e.pattern, e.path)
			continue
		}
		if code, body := do("GET", e.path, noc, ""); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("NOC at %s: %d without %q (%s)", e.path, code, want, body)
		}
	}

	// The NOC reads hsr's biomedical rows at each GET: cmf's empty lists
	// and 404s are scoping.
	for path, want := range map[string]string{
		"/api/v1/biomed/work-orders":                                       "hsr-monitor-uci",
		"/api/v1/biomed/calibrations":                                      "MC-1",
		"/api/v1/biomed/alerts":                                            "ALERTA-2026-200",
		"/api/v1/biomed/calibrations/" + calibration + "/certificate":      "certificado San Rafael",
		"/api/v1/biomed/report?customer=hsr&from=2026-11-01&to=2026-12-01": `"customer_id": "hsr"`,
	} {
		if code, body := do("GET", path, noc, ""); code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("NOC at %s: %d without %q (%s)", path, code, want, body)
		}
	}

	t.Run("every registered endpoint is in the matrix", func(t *testing.T) {
		var listed []string
		for _, e := range endpoints {
			listed = append(listed, e.pattern)
		}
		for _, p := range registeredAPIPatterns(t) {
			if !slices.Contains(listed, p) {
				t.Errorf("endpoint %q is not in the authorization matrix", p)
			}
		}
	})

	before := snapshot(t, conn)
	for _, e := range endpoints {
		method := strings.Fields(e.pattern)[0]
		t.Run(e.pattern, func(t *testing.T) {
			if code, body := do(method, e.path, "", e.body); code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s", code, body)
			}
			if code, body := do(method, e.path, "vigia_forged", e.body); code != http.StatusUnauthorized {
				t.Errorf("forged token: %d %s", code, body)
			}
			code, body := do(method, e.path, cmf, e.body)
			if code != e.otherCustomer {
				t.Errorf("other customer's token: %d, want %d (%s)", code, e.otherCustomer, body)
			}
			// Nothing of hsr may show, beyond the ids the caller itself sent
			// (in the path, the query or the body).
			leaked := body
			for _, id := range sentIDs(e.path, e.body) {
				leaked = strings.ReplaceAll(leaked, id, "")
			}
			for _, mark := range []string{"hsr", "San Rafael", "Worklist lenta", "GE-CASE-4711", "Laura"} {
				if strings.Contains(leaked, mark) {
					t.Errorf("other customer's token sees hsr data (%q): %s", mark, body)
				}
			}
			if method == "POST" || method == "PUT" {
				token := noc
				if strings.Contains(e.pattern, "heartbeats") {
					token = "hsr-ris-heartbeat-demo-token"
				}
				if strings.Contains(e.pattern, "collector") {
					token = collectorToken
				}
				for _, bad := range []string{`{"title": `, `not json`, `[1,2,3]`, `{"unknown_field": 1}`} {
					if code, body := do(method, e.path, token, bad); code != http.StatusBadRequest {
						t.Errorf("malformed body %q: %d, want 400 (%s)", bad, code, body)
					}
				}
				huge := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
				if code, _ := do(method, e.path, token, huge); code != http.StatusRequestEntityTooLarge {
					t.Errorf("oversized body: %d, want 413", code)
				}
			}
		})
	}
	if after := snapshot(t, conn); after != before {
		t.Errorf("refused requests changed the database:\n%s", diffLines(before, after))
	}
}

// sentIDs are the path segments and query values of path and the ids of
// hsr named in body: what a caller may see echoed in an answer.
func sentIDs(path, body string) []string {
	p, rawQuery, _ := strings.Cut(path, "?")
	out := strings.Split(p, "/")
	for _, kv := range strings.Split(rawQuery, "&") {
		if _, v, ok := strings.Cut(kv, "="); ok {
			out = append(out, v)
		}
	}
	for _, id := range []string{"hsr-ct1", "hsr-worklist", "hsr-pacs", "hsr-central", "hsr-ris"} {
		if strings.Contains(body, id) {
			out = append(out, id)
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	// Longest first, so that "hsr-central" goes before "hsr" would.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

var handlePattern = regexp.MustCompile(`HandleFunc\("((?:GET|POST|PUT|PATCH|DELETE) /api/[^"]*)"`)

// registeredAPIPatterns reads every API route registered in the product's
// source, so a new endpoint cannot escape the matrix.
func registeredAPIPatterns(t *testing.T) []string {
	t.Helper()
	out := apiPatterns(t, "../..")
	if len(out) < 10 {
		t.Fatalf("found only %d API routes in the source: the scan is broken", len(out))
	}
	return out
}

// apiPatterns reads the API routes registered in the Go source under root.
func apiPatterns(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "var" || d.Name() == "fleetsim" || strings.HasPrefix(d.Name(), ".")) && path != root {
			// The simulator's control API is not Vigía's API.
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range handlePattern.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot fingerprints every table's content, except api_tokens whose
// last_used_at and collectors whose last_contact_at are bookkeeping of
// authentication itself.
func snapshot(t *testing.T, conn *sqlx.DB) string {
	t.Helper()
	var tables []string
	if err := conn.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'
		AND tablename NOT IN ('api_tokens', 'collectors', 'goose_db_version') ORDER BY tablename`); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, tbl := range tables {
		var sum string
		if err := conn.Get(&sum, `SELECT COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM `+tbl+` x`); err != nil {
			t.Fatal(err)
		}
		b.WriteString(tbl + " " + sum + "\n")
	}
	return b.String()
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			out = append(out, al[i]+" -> "+bl[i])
		}
	}
	return strings.Join(out, "\n")
}
