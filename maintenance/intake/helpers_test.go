package intake

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
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
}

// newFixture is the seeded database of ticketstest.
func newFixture(t *testing.T, webhooks ...string) *fixture {
	t.Helper()
	db, inv := ticketstest.Seed(t)
	return &fixture{db: db, inv: inv, store: maintenance.NewStore(db, inv, maintenance.Options{WebhookURLs: webhooks})}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// outage writes an outage and its event as the probes stage does; it
// returns the outage id.
func (f *fixture) outage(t *testing.T, kind, customer, site, device string, affected []string, at time.Time) int64 {
	t.Helper()
	var id int64
	var dev any
	if device != "" {
		dev = device
	}
	if affected == nil {
		affected = []string{}
	}
	err := f.db.QueryRow(`INSERT INTO outages (kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at)
		VALUES ($1, $2, $3, $4, $5, 'test', $6) RETURNING id`, kind, customer, site, dev, pq.StringArray(affected), at).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	f.event(t, kind+"_down", customer, site, device, id, at)
	return id
}

// end closes an outage and writes its up event.
func (f *fixture) end(t *testing.T, outageID int64, at time.Time) {
	t.Helper()
	var kind, customer, site string
	var device *string
	if err := f.db.QueryRow(`UPDATE outages SET ended_at = $2 WHERE id = $1 RETURNING kind, customer_id, site_id, device_id`, outageID, at).
		Scan(&kind, &customer, &site, &device); err != nil {
		t.Fatal(err)
	}
	d := ""
	if device != nil {
		d = *device
	}
	f.event(t, kind+"_up", customer, site, d, outageID, at)
}

func (f *fixture) event(t *testing.T, kind, customer, site, device string, outageID int64, at time.Time) {
	t.Helper()
	var dev, out any
	if device != "" {
		dev = device
	}
	if outageID != 0 {
		out = outageID
	}
	f.db.MustExec(`INSERT INTO device_events (kind, customer_id, site_id, device_id, outage_id, detail, at)
		VALUES ($1, $2, $3, $4, $5, '{"cause": "test"}', $6)`, kind, customer, site, dev, out, at)
}

func (f *fixture) consume(t *testing.T) int {
	t.Helper()
	n, err := NewOutageConsumer(f.store, f.inv, func() time.Time { return monday15 }, quiet).RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
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

func policy(t *testing.T, name string) sla.Policy {
	t.Helper()
	p, err := sla.Presets().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kinds(es []maintenance.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
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
		return []server.Routes{maintenance.NewAPI(f.store, clock, quiet), NewAPI(NewReceiver(f.store, f.inv), clock, quiet)}
	})}
}
