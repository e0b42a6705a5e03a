package maintenance

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

// apiFixture serves the package's routes over the seeded database, as
// `vigia serve` does, with a token per role (ticketstest.API).
type apiFixture struct {
	*fixture
	*ticketstest.API
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	f := newFixture(t)
	return &apiFixture{fixture: f, API: ticketstest.ServeAPI(t, f.db, func(clock func() time.Time) []server.Routes {
		return []server.Routes{NewAPI(f.store, clock, quiet)}
	})}
}

// rows counts every table a ticket action may write.
func (a *apiFixture) rows(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, tbl := range []string{"tickets", "ticket_events", "ticket_pauses", "ticket_severity_changes", "closure_tasks", "outbox", "misuse_blocks"} {
		parts = append(parts, fmt.Sprintf("%s=%d", tbl, a.count(t, `SELECT count(*) FROM `+tbl)))
	}
	var updated time.Time
	a.db.Get(&updated, `SELECT COALESCE(max(updated_at), 'epoch') FROM tickets`)
	return strings.Join(parts, " ") + " updated=" + updated.String()
}

func TestAPIScopeAndBadInput(t *testing.T) {
	a := newAPIFixture(t)
	code, body := a.Do(t, "acme", "POST", "/api/v1/tickets", `{"title": "El visor no abre estudios", "severity": 3, "devices": ["acme-pacs"], "category": "viewer"}`)
	if code != http.StatusCreated || body["source"] != "portal" || body["customer_id"] != "acme" || body["site_id"] != "acme-main" {
		t.Fatalf("customer create: %d %v", code, body)
	}
	id := fmt.Sprint(body["id"])
	number := body["number"].(string)

	// Another customer: 404 on every ticket endpoint, by id or number, and
	// nothing changes.
	before := a.rows(t)
	for _, ref := range []string{id, number} {
		for _, ep := range append([]string{""}, actions...) {
			method, path := "POST", "/api/v1/tickets/"+ref+"/"+ep
			if ep == "" {
				method, path = "GET", "/api/v1/tickets/"+ref
			}
			t.Run("beta "+method+" "+path, func(t *testing.T) {
				code, body := a.Do(t, "beta", method, path, `{"text": "x", "reason": "customer", "assignee": "x", "severity": 1, "kb_links": ["x"]}`)
				if code != http.StatusNotFound || body["error"] != "not_found" {
					t.Fatalf("%d %v", code, body)
				}
			})
		}
	}
	if _, body := a.Do(t, "beta", "GET", "/api/v1/tickets", ""); len(body["tickets"].([]any)) != 0 {
		t.Fatalf("beta lists %v", body["tickets"])
	}
	if _, body := a.Do(t, "beta", "GET", "/api/v1/tickets?customer=acme", ""); len(body["tickets"].([]any)) != 0 {
		t.Fatalf("beta lists acme's %v", body["tickets"])
	}

	// Bad input: 400 and no change.
	bad := []struct{ name, who, method, path, body string }{
		{"malformed create", "noc", "POST", "/api/v1/tickets", `{"title": "x", "severity": 1`},
		{"unknown field", "noc", "POST", "/api/v1/tickets", `{"title": "x", "severity": 1, "customer": "acme", "priority": 1}`},
		{"severity out of range", "noc", "POST", "/api/v1/tickets", `{"title": "x", "severity": 5, "customer": "acme"}`},
		{"no title", "noc", "POST", "/api/v1/tickets", `{"severity": 2, "customer": "acme"}`},
		{"other customer's device", "beta", "POST", "/api/v1/tickets", `{"title": "x", "severity": 2, "devices": ["acme-pacs"]}`},
		{"customer sets source", "acme", "POST", "/api/v1/tickets", `{"title": "x", "severity": 2, "source": "probe"}`},
		{"malformed comment", "acme", "POST", "/api/v1/tickets/" + id + "/comment", `{"text": `},
		{"empty comment", "acme", "POST", "/api/v1/tickets/" + id + "/comment", `{"text": "  "}`},
		{"bad pause reason", "noc", "POST", "/api/v1/tickets/" + id + "/pause", `{"reason": "lunch"}`},
		{"trailing data", "noc", "POST", "/api/v1/tickets/" + id + "/acknowledge", `{} {}`},
		{"bad severity param", "noc", "GET", "/api/v1/tickets?severity=9", ""},
		{"unknown list param", "noc", "GET", "/api/v1/tickets?sort=asc", ""},
		{"bad close reason", "noc", "POST", "/api/v1/tickets/" + id + "/close", `{"reason": "bored"}`},
		{"misuse without kb", "noc", "POST", "/api/v1/tickets/" + id + "/close", `{"reason": "misuse"}`},
	}
	before = a.rows(t)
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			code, body := a.Do(t, tc.who, tc.method, tc.path, tc.body)
			if code != http.StatusBadRequest {
				t.Fatalf("%d %v", code, body)
			}
			if after := a.rows(t); after != before {
				t.Fatalf("rows changed: %s -> %s", before, after)
			}
		})
	}

	// NOC-only actions: 403 for the owning customer, and no change.
	for _, action := range []string{"acknowledge", "assign", "pause", "resume", "severity", "solve", "close"} {
		t.Run("acme "+action, func(t *testing.T) {
			code, body := a.Do(t, "acme", "POST", "/api/v1/tickets/"+id+"/"+action, `{"text": "x", "reason": "customer", "assignee": "x", "severity": 1}`)
			if code != http.StatusForbidden {
				t.Fatalf("%d %v", code, body)
			}
			if after := a.rows(t); after != before {
				t.Fatalf("rows changed: %s -> %s", before, after)
			}
		})
	}
}

// TestAPIWorkflow walks a portal ticket through acknowledge, pause/resume,
// severity change, solve, rejection and confirmation, checking the SLA
// cache against maintenance/sla at each step.
func TestAPIWorkflow(t *testing.T) {
	a := newAPIFixture(t)
	h := time.Hour
	step := func(who, method, path, body string, at time.Duration, wantCode int) map[string]any {
		t.Helper()
		a.Now = monday15.Add(at)
		code, out := a.Do(t, who, method, path, body)
		if code != wantCode {
			t.Fatalf("%s %s: %d %v, want %d", method, path, code, out, wantCode)
		}
		return out
	}
	tk := step("acme", "POST", "/api/v1/tickets", `{"title": "Worklist caída en tomógrafo", "severity": 3, "devices": ["acme-ct"]}`, 0, 201)
	if tk["billable"] != true || tk["billable_reason"] != "device_not_listed" {
		t.Fatalf("acme-ct is not under contract: %v", tk)
	}
	p := "/api/v1/tickets/" + fmt.Sprint(tk["id"])
	step("acme", "POST", p+"/acknowledge", "", time.Minute, 403)
	step("noc", "POST", p+"/acknowledge", "", 30*time.Minute, 200)
	step("noc", "POST", p+"/acknowledge", "", 31*time.Minute, 409)
	step("noc", "POST", p+"/pause", `{"reason": "spare_parts", "text": "tubo de rayos X importado"}`, h, 200)
	step("noc", "POST", p+"/pause", `{"reason": "customer"}`, h, 409)
	step("noc", "POST", p+"/resume", `{}`, 3*h, 200)
	step("noc", "POST", p+"/severity", `{"severity": 2, "text": "afecta todo el servicio"}`, 4*h, 200)
	step("acme", "POST", p+"/comment", `{"text": "gracias"}`, 4*h, 200)

	d := a.ticket(t, fmt.Sprint(tk["id"]))
	want, err := policy(t, "imaging-8x5").Due(sla.Input{Opened: monday15, Severity: 3,
		Pauses:  []calendar.Interval{{From: monday15.Add(h), To: monday15.Add(3 * h)}},
		Changes: []sla.SeverityChange{{At: monday15.Add(4 * h), Severity: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Severity != 2 || d.ResponseDueAt == nil || !d.ResponseDueAt.Equal(want.Response.Due) || len(d.Pauses) != 1 || len(d.SeverityChanges) != 1 {
		t.Fatalf("sev %d due %v want %v pauses %v changes %v", d.Severity, d.ResponseDueAt, want.Response.Due, d.Pauses, d.SeverityChanges)
	}
	if d.Schedule.Response.DoneAt == nil || !d.Schedule.Response.DoneAt.Equal(monday15.Add(30*time.Minute)) || d.Schedule.Response.Breached {
		t.Fatalf("response %+v", d.Schedule.Response)
	}

	step("noc", "POST", p+"/solve", `{}`, 5*h, 400)
	step("noc", "POST", p+"/solve", `{"text": "se reinició el servicio de worklist"}`, 5*h, 200)
	step("acme", "POST", p+"/reopen", `{"text": "sigue fallando"}`, 6*h, 200)
	step("noc", "POST", p+"/solve", `{"text": "se cambió la configuración"}`, 7*h, 200)
	out := step("acme", "POST", p+"/confirm", "", 8*h, 200)
	if out["status"] != "closed" || out["close_reason"] != "confirmed" {
		t.Fatalf("after confirm: %v", out)
	}
	d = a.ticket(t, fmt.Sprint(tk["id"]))
	// Each solution's notice is also the protocol's first contact.
	wantKinds := []string{"opened", "acknowledged", "paused", "resumed", "severity_changed", "comment", "solved", "contact_attempt",
		"reopened", "solved", "contact_attempt", "closed"}
	if !slices.Equal(kinds(d.Timeline), wantKinds) {
		t.Fatalf("timeline %v\nwant %v", kinds(d.Timeline), wantKinds)
	}
	for _, e := range d.Timeline {
		if e.Author == "" {
			t.Fatalf("event %s without author", e.Kind)
		}
	}
	if d.Timeline[1].Author != "noc user (noc)" || d.Timeline[5].Author != "acme user (customer)" {
		t.Fatalf("authors %q %q", d.Timeline[1].Author, d.Timeline[5].Author)
	}
	if n := a.count(t, `SELECT count(*) FROM closure_tasks WHERE done_at IS NULL AND cancelled_at IS NULL`); n != 0 {
		t.Fatalf("%d protocol tasks left pending after confirmation", n)
	}

	// Listing: filters and pagination.
	for i := range 3 {
		step("noc", "POST", "/api/v1/tickets", fmt.Sprintf(`{"title": "consulta %d", "severity": 4, "customer": "gamma"}`, i), 9*h, 201)
	}
	list := step("noc", "GET", "/api/v1/tickets?customer=gamma&limit=2", "", 9*h, 200)
	if len(list["tickets"].([]any)) != 2 || list["next_cursor"] == nil {
		t.Fatalf("page 1: %v", list)
	}
	list = step("noc", "GET", "/api/v1/tickets?customer=gamma&limit=2&cursor="+list["next_cursor"].(string), "", 9*h, 200)
	if len(list["tickets"].([]any)) != 1 || list["next_cursor"] != nil {
		t.Fatalf("page 2: %v", list)
	}
	list = step("acme", "GET", "/api/v1/tickets?status=closed&severity=2", "", 9*h, 200)
	if len(list["tickets"].([]any)) != 1 {
		t.Fatalf("acme closed sev 2: %v", list)
	}
}

// TestMisuseAndReports: a misuse closure links knowledge-base material and
// refuses the same category from the same requester (seed 000 §10); a
// report request is due in 72 business hours (§14).
func TestMisuseAndReports(t *testing.T) {
	a := newAPIFixture(t)
	_, tk := a.Do(t, "acme", "POST", "/api/v1/tickets", `{"title": "No sé exportar un estudio", "severity": 4, "category": "Training"}`)
	p := "/api/v1/tickets/" + fmt.Sprint(tk["id"])
	if code, body := a.Do(t, "noc", "POST", p+"/close", `{"reason": "misuse", "kb_links": ["https://kb.example/exportar-estudios"]}`); code != 200 {
		t.Fatalf("misuse close: %d %v", code, body)
	}
	code, body := a.Do(t, "acme", "POST", "/api/v1/tickets", `{"title": "Otra vez exportar", "severity": 4, "category": "training"}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body["message"].(string), "https://kb.example/exportar-estudios") {
		t.Fatalf("repeat misuse: %d %v", code, body)
	}
	if code, _ := a.Do(t, "acme", "POST", "/api/v1/tickets", `{"title": "Otra cosa", "severity": 4, "category": "viewer"}`); code != 201 {
		t.Fatalf("other category: %d", code)
	}
	if code, _ := a.Do(t, "acme", "POST", p+"/reopen", `{}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("reopen misuse: %d", code)
	}

	_, rep := a.Do(t, "acme", "POST", "/api/v1/tickets", `{"title": "Informe de disponibilidad de mayo", "severity": 4, "category": "report"}`)
	want, _ := policy(t, "imaging-8x5").ReportDue(monday15)
	if got, _ := time.Parse(time.RFC3339, fmt.Sprint(rep["report_due_at"])); !got.Equal(want) || want.IsZero() {
		t.Fatalf("report due %v, want %v", rep["report_due_at"], want)
	}
}

// TestReopenWindow: seed 003 lets the customer reopen within 5 business
// days of the solution; after that the answer points to a new linked ticket.
func TestReopenWindow(t *testing.T) {
	mx, _ := time.LoadLocation("America/Mexico_City")
	tests := []struct {
		name     string
		after    time.Time
		wantCode int
	}{
		{"day 5", time.Date(2026, 6, 8, 10, 0, 0, 0, mx), 200}, // Mon 1 → Mon 8 10:00 is the limit
		{"day 6", time.Date(2026, 6, 8, 10, 0, 1, 0, mx), 422},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPIFixture(t)
			a.Now = time.Date(2026, 6, 1, 10, 0, 0, 0, mx)
			_, tk := a.Do(t, "beta", "POST", "/api/v1/tickets", `{"title": "Slow RIS", "severity": 3}`)
			p := "/api/v1/tickets/" + fmt.Sprint(tk["id"])
			if code, b := a.Do(t, "noc", "POST", p+"/solve", `{"text": "index rebuilt"}`); code != 200 || b["sla_policy"] != "hosting-mx" {
				t.Fatalf("solve: %d %v", code, b)
			}
			// Seed 003 auto-closes 48 h later (its contact at the solution
			// was the solved notice).
			if n := sweepClosures(t, a.store, a.Now.Add(49*time.Hour)); n != 1 {
				t.Fatalf("sweep: %d", n)
			}
			if d := a.ticket(t, fmt.Sprint(tk["id"])); d.CloseReason != CloseAutoClosed || !d.ClosedAt.Equal(a.Now.Add(48*time.Hour)) {
				t.Fatalf("closed %v as %s", d.ClosedAt, d.CloseReason)
			}
			a.Now = tc.after
			if code, b := a.Do(t, "beta", "POST", p+"/reopen", `{"text": "it is slow again"}`); code != tc.wantCode {
				t.Fatalf("reopen: %d %v", code, b)
			}
		})
	}
}
