package ticketstest

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

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/server"
)

// Quiet is the logger of the tests: it writes nothing.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// API serves a ticket-stage package's routes as `vigia serve` does, behind
// a bearer token per role of the seeded inventory: noc, eng, and the
// customers acme, beta and gamma. Every route reads the clock Now, which
// the test moves.
type API struct {
	Now   time.Time
	h     http.Handler
	token map[string]string
}

// ServeAPI serves the routes routes returns for the API's clock, over db
// (seeded by Seed), at Monday15.
func ServeAPI(t testing.TB, db *sqlx.DB, routes func(clock func() time.Time) []server.Routes) *API {
	t.Helper()
	a := &API{Now: Monday15, token: map[string]string{}}
	clock := func() time.Time { return a.Now }
	tokens := auth.NewTokens(db, clock)
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
	a.h = server.Handler(server.Config{DB: db, Tokens: tokens, Registry: prometheus.NewRegistry(), Log: Quiet, API: routes(clock)})
	return a
}

// Do sends a request as who (a role above) and returns the status and the
// decoded JSON body; a body that is not JSON fails the test.
func (a *API) Do(t testing.TB, who, method, path, body string) (int, map[string]any) {
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
