package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/server"
)

type apiFixture struct {
	*fixture
	h     http.Handler
	token map[string]string
	visit map[string]int64 // by customer
}

// newAPIFixture has a visit for andes (eng-bog) and one for impera
// (eng-med), each with a part request carrying an internal cost.
func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	f := newFixture(t)
	now := at(2026, 9, 7, 10, 0)
	clock := func() time.Time { return now }
	a := &apiFixture{fixture: f, token: map[string]string{}, visit: map[string]int64{}}
	tokens := auth.NewTokens(f.db, clock)
	for _, who := range []struct{ name, role, customer, engineer string }{
		{"noc", auth.RoleNOC, "", ""}, {"laura", auth.RoleEngineer, "", "eng-bog"}, {"mateo", auth.RoleEngineer, "", "eng-med"},
		{"andes", auth.RoleCustomer, "andes", ""}, {"impera", auth.RoleCustomer, "impera", ""},
	} {
		tok, _, err := tokens.Create(context.Background(), who.name, who.role, who.customer, who.engineer)
		if err != nil {
			t.Fatal(err)
		}
		a.token[who.name] = tok
	}
	ctx := context.Background()
	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Philips", PartNumber: "PH-77", UnitCostCents: 4321000, UnitPriceCents: 9000000}, now))
	for _, c := range []struct{ customer, device, engineer string }{{"andes", "andes-mr", "eng-bog"}, {"impera", "impera-ris", "eng-med"}} {
		tk := f.openTicket(t, c.customer, []string{c.device}, 3, now)
		must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, now))
		a.visit[c.customer] = must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{c.engineer}}, now)).ID
	}
	a.h = server.Handler(server.Config{DB: f.db, Tokens: tokens, Registry: prometheus.NewRegistry(), Log: quiet,
		API: []server.Routes{NewAPI(f.store, clock, quiet)}})
	return a
}

func (a *apiFixture) do(t *testing.T, who, method, path, body string) (int, string) {
	t.Helper()
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, path, nil)
	} else {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+a.token[who])
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func visitIDs(t *testing.T, body string) []int64 {
	t.Helper()
	var out struct {
		Visits []struct {
			ID int64 `json:"id"`
		} `json:"visits"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("not a visit list: %s", body)
	}
	var ids []int64
	for _, v := range out.Visits {
		ids = append(ids, v.ID)
	}
	return ids
}

func TestAPIScopes(t *testing.T) {
	a := newAPIFixture(t)
	andes, impera := a.visit["andes"], a.visit["impera"]
	cases := []struct {
		name, who, method, path string
		want                    int
		ids                     []int64  // for lists: exactly these visits
		has, hasNot             []string // in the body
	}{
		{"NOC lists all", "noc", "GET", "/api/v1/visits", 200, []int64{impera, andes}, nil, nil},
		{"NOC sees internal costs", "noc", "GET", fmt.Sprintf("/api/v1/visits/%d", andes), 200, nil,
			[]string{`"hourly_cost_cents": 9000000`, `"unit_cost_cents": 4321000`}, nil},
		{"engineer lists only own", "laura", "GET", "/api/v1/visits", 200, []int64{andes}, nil, nil},
		{"engineer reads own", "laura", "GET", fmt.Sprintf("/api/v1/visits/%d", andes), 200, nil, []string{"andes-mr", "checklist"}, []string{"cost"}},
		{"engineer: another's visit is 404", "laura", "GET", fmt.Sprintf("/api/v1/visits/%d", impera), 404, nil, nil, nil},
		{"engineer: filtering on another engineer finds nothing", "laura", "GET", "/api/v1/visits?engineer=eng-med", 200, nil, nil, nil},
		{"customer lists own", "andes", "GET", "/api/v1/visits", 200, []int64{andes}, nil, nil},
		{"customer reads own without internal costs", "andes", "GET", fmt.Sprintf("/api/v1/visits/%d", andes), 200, nil,
			[]string{`"engineers"`, `"parts"`, "PH-77"}, []string{"cost", "4321000", "9000000"}},
		{"customer: another customer's visit is 404", "andes", "GET", fmt.Sprintf("/api/v1/visits/%d", impera), 404, nil, nil, nil},
		{"customer: part requests without costs", "andes", "GET", "/api/v1/part-requests", 200, nil, []string{"PH-77"}, []string{"cost", "4321000"}},
		{"customer: waits of own tickets only", "impera", "GET", "/api/v1/waits", 200, nil, []string{"impera"}, []string{"andes"}},
		{"customer cannot list engineers", "andes", "GET", "/api/v1/engineers", 403, nil, nil, nil},
		{"customer cannot read the catalogue", "andes", "GET", "/api/v1/parts", 403, nil, nil, nil},
		{"customer: another customer's report is 404", "andes", "GET", "/api/v1/billing/report?customer=impera&month=2026-09", 404, nil, nil, nil},
		{"engineer reads own engineer record without cost", "laura", "GET", "/api/v1/engineers/eng-bog", 200, nil, []string{"Laura"}, []string{"cost"}},
		{"malformed id is 404", "noc", "GET", "/api/v1/visits/abc", 404, nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := a.do(t, c.who, c.method, c.path, "")
			if code != c.want {
				t.Fatalf("%s %s as %s: %d, want %d: %s", c.method, c.path, c.who, code, c.want, body)
			}
			if strings.HasPrefix(c.path, "/api/v1/visits") && !strings.Contains(c.path, "/visits/") && code == 200 {
				got := visitIDs(t, body)
				if fmt.Sprint(got) != fmt.Sprint(c.ids) {
					t.Fatalf("visits = %v, want %v", got, c.ids)
				}
			}
			for _, s := range c.has {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q: %s", s, body)
				}
			}
			for _, s := range c.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("body has %q: %s", s, body)
				}
			}
		})
	}
}

// Writes: bad JSON is 400 and changes nothing; roles are enforced; another
// customer's or engineer's ids are 404.
func TestAPIWrites(t *testing.T) {
	a := newAPIFixture(t)
	andes, impera := a.visit["andes"], a.visit["impera"]
	rows := func() string {
		var parts []string
		for _, tbl := range []string{"visits", "visit_events", "engineers", "part_requests", "waits", "work_entries", "quotes", "ticket_events", "outbox", "tickets"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, a.count(t, `SELECT count(*) FROM `+tbl)))
		}
		var updated time.Time
		a.db.Get(&updated, `SELECT max(updated_at) FROM visits`)
		return strings.Join(parts, " ") + " " + updated.String()
	}
	var ticket int64
	if err := a.db.Get(&ticket, `SELECT ticket_id FROM visits WHERE id = $1`, andes); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, who, method, path, body string
		want                          int
		changes                       bool
	}{
		{"visit: bad JSON", "noc", "POST", "/api/v1/visits", `{"ticket": `, 400, false},
		{"visit: unknown field", "noc", "POST", "/api/v1/visits", `{"ticket": 1, "engineer": "x"}`, 400, false},
		{"transition: bad JSON", "laura", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", andes), `{"to": "en_route"`, 400, false},
		{"outcome: bad JSON", "laura", "POST", fmt.Sprintf("/api/v1/visits/%d/outcome", andes), `[1, 2]`, 400, false},
		{"engineer: bad JSON", "noc", "PUT", "/api/v1/engineers/eng-new", `{"name": "x", "it": "yes"}`, 400, false},
		{"part request: bad JSON", "noc", "POST", "/api/v1/part-requests", `{"ticket": "one"}`, 400, false},
		{"work entry: bad JSON", "laura", "POST", "/api/v1/work-entries", `{"kind": "remote",}`, 400, false},
		{"wait: bad JSON", "noc", "POST", "/api/v1/waits", `nope`, 400, false},
		{"engineer cannot dispatch", "laura", "POST", "/api/v1/visits", fmt.Sprintf(`{"ticket": %d, "engineers": ["eng-bog"]}`, ticket), 403, false},
		{"customer cannot move a visit", "andes", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", andes), `{"to": "cancelled"}`, 403, false},
		{"engineer cannot move another's visit", "laura", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", impera), `{"to": "en_route"}`, 404, false},
		{"customer: another customer's ticket", "andes", "POST", "/api/v1/quotes/999/approve", ``, 404, false},
		{"quote decision: bad JSON", "noc", "POST", "/api/v1/quotes/999/approve", `nope`, 400, false},
		{"engineer cannot schedule", "laura", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", andes),
			`{"to": "scheduled", "window_start": "2026-09-08T10:00:00-05:00", "window_end": "2026-09-08T12:00:00-05:00"}`, 403, false},
		{"NOC schedules", "noc", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", andes),
			`{"to": "scheduled", "window_start": "2026-09-08T10:00:00-05:00", "window_end": "2026-09-08T12:00:00-05:00"}`, 200, true},
		{"NOC records a customer wait", "noc", "POST", "/api/v1/waits", fmt.Sprintf(`{"ticket": %d, "reason": "customer", "note": "sin acceso"}`, ticket), 201, true},
		{"the same wait twice is a conflict", "noc", "POST", "/api/v1/waits", fmt.Sprintf(`{"ticket": %d, "reason": "customer"}`, ticket), 409, false},
		{"engineer records own work", "laura", "POST", "/api/v1/work-entries",
			fmt.Sprintf(`{"ticket": %d, "kind": "remote", "started_at": "2026-09-07T08:00:00-05:00", "ended_at": "2026-09-07T09:10:00-05:00"}`, ticket), 201, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := rows()
			code, body := a.do(t, c.who, c.method, c.path, c.body)
			if code != c.want {
				t.Fatalf("%d, want %d: %s", code, c.want, body)
			}
			if after := rows(); (after != before) != c.changes {
				t.Fatalf("database changed = %v, want %v:\nbefore %s\nafter  %s", after != before, c.changes, before, after)
			}
		})
	}
	// The engineer's own visit is now scheduled and theirs to move.
	if code, body := a.do(t, "laura", "POST", fmt.Sprintf("/api/v1/visits/%d/transition", andes), `{"to": "en_route"}`); code != 200 {
		t.Fatalf("engineer moves own visit: %d %s", code, body)
	}
}
