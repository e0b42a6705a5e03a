package maintenance

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

var bogota, _ = time.LoadLocation("America/Bogota")

// monday15 is Monday 1 June 2026, 15:00 in Bogotá (a working day).
var monday15 = time.Date(2026, 6, 1, 15, 0, 0, 0, bogota)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	db    *sqlx.DB
	store *Store
	inv   *assets.Store
}

// newFixture is a migrated database with testdata/inventory.yaml imported
// and notification addresses set.
func newFixture(t *testing.T, webhooks ...string) *fixture {
	t.Helper()
	db := pgtest.DB(t)
	raw, err := os.ReadFile("testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := assets.ParseFile("inventory.yaml", raw, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	inv := assets.NewStore(db)
	if _, err := inv.Import(context.Background(), f, monday15, false); err != nil {
		t.Fatal(err)
	}
	for id, addr := range map[string]string{"acme": "noc@acme.example", "beta": "it@beta.example", "gamma": "sistemas@gamma.example"} {
		db.MustExec(`UPDATE customers SET notify_email = $2 WHERE id = $1`, id, addr)
	}
	return &fixture{db: db, inv: inv, store: NewStore(db, inv, Options{WebhookURLs: webhooks})}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *fixture) ticket(t *testing.T, ref string) Detail {
	t.Helper()
	d, err := f.store.Get(context.Background(), Scope{}, ref, monday15)
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

func kinds(es []Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Kind
	}
	return out
}
