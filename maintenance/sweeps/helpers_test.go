package sweeps

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

// bogota and monday15 (Monday 1 June 2026, 15:00 in Bogotá, a working
// day) are the seeded database's zone and import instant.
var bogota, monday15 = ticketstest.Bogota, ticketstest.Monday15

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	db    *sqlx.DB
	store *maintenance.Store
	inv   *assets.Store
	plans *Preventive
}

// newFixture is the seeded database of ticketstest.
func newFixture(t *testing.T, webhooks ...string) *fixture {
	t.Helper()
	db, inv := ticketstest.Seed(t)
	store := maintenance.NewStore(db, inv, maintenance.Options{WebhookURLs: webhooks})
	return &fixture{db: db, inv: inv, store: store, plans: NewPreventive(db, inv, store)}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *fixture) ticket(t *testing.T, ref string) maintenance.Detail {
	t.Helper()
	d, err := f.store.Get(context.Background(), maintenance.Scope{}, ref, monday15)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// apiFixture serves the ticket API and the preventive plans, as
// `vigia serve` does, with a token per role.
type apiFixture struct {
	*fixture
	h     http.Handler
	now   time.Time
	token map[string]string
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	f := newFixture(t)
	a := &apiFixture{fixture: f, now: monday15, token: map[string]string{}}
	clock := func() time.Time { return a.now }
	tokens := auth.NewTokens(f.db, clock)
	for _, who := range []struct{ name, role, customer string }{
		{"noc", auth.RoleNOC, ""}, {"eng", auth.RoleEngineer, ""}, {"acme", auth.RoleCustomer, "acme"},
		{"beta", auth.RoleCustomer, "beta"}, {"gamma", auth.RoleCustomer, "gamma"},
	} {
		tok, _, err := tokens.Create(context.Background(), who.name+" user", who.role, who.customer, "")
		if err != nil {
			t.Fatal(err)
		}
		a.token[who.name] = tok
	}
	a.h = server.Handler(server.Config{DB: f.db, Tokens: tokens, Registry: prometheus.NewRegistry(), Log: quiet,
		API: []server.Routes{maintenance.NewAPI(f.store, clock, quiet), NewAPI(f.plans, clock, quiet)}})
	return a
}

func (a *apiFixture) do(t *testing.T, who, method, path, body string) (int, map[string]any) {
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
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %d, not JSON: %s", method, path, rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

var noc = auth.Actor{Name: "ana", Role: auth.RoleNOC}

// usePolicy points acme's contract at policy, so acme's tickets run on it.
func (f *fixture) usePolicy(t *testing.T, policy string) {
	t.Helper()
	f.db.MustExec(`UPDATE contracts SET sla_policy = $1 WHERE id = 'acme-2026'`, policy)
}

func (f *fixture) open(t *testing.T, device string, severity int, at time.Time) maintenance.Ticket {
	t.Helper()
	tk, err := f.store.Create(context.Background(), noc, maintenance.CreateInput{CustomerID: "acme", DeviceIDs: []string{device},
		Severity: severity, Title: "falla " + device}, at)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func kinds(es []maintenance.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
}
