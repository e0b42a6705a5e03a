package sweeps

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

// bogota and monday15 (Monday 1 June 2026, 15:00 in Bogotá, a working
// day) are the seeded database's zone and import instant.
var bogota, monday15 = ticketstest.Bogota, ticketstest.Monday15

var quiet = ticketstest.Quiet

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
		return []server.Routes{maintenance.NewAPI(f.store, clock, quiet), NewAPI(f.plans, clock, quiet)}
	})}
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
