// Package ticketstest seeds the database the ticket stage's tests run on:
// one inventory (three customers in Colombia, Peru and Mexico) imported on
// a fresh migrated database, with the customers' notification addresses.
// The ticket core and its intake and sweeps packages share it, so their
// fixtures cannot drift apart.
package ticketstest

import (
	"context"
	_ "embed"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

//go:embed inventory.yaml
var inventory []byte

// Bogota is the zone of the seeded customer acme.
var Bogota, _ = time.LoadLocation("America/Bogota")

// Monday15 is Monday 1 June 2026, 15:00 in Bogotá (a working day): the
// instant the inventory is imported at.
var Monday15 = time.Date(2026, 6, 1, 15, 0, 0, 0, Bogota)

// Seed returns a migrated database with the inventory imported and
// notification addresses set, and its inventory store.
func Seed(t testing.TB) (*sqlx.DB, *assets.Store) {
	t.Helper()
	db := pgtest.DB(t)
	f, err := assets.ParseFile("inventory.yaml", inventory, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	inv := assets.NewStore(db)
	if _, err := inv.Import(context.Background(), f, Monday15, false); err != nil {
		t.Fatal(err)
	}
	for id, addr := range map[string]string{"acme": "noc@acme.example", "beta": "it@beta.example", "gamma": "sistemas@gamma.example"} {
		db.MustExec(`UPDATE customers SET notify_email = $2 WHERE id = $1`, id, addr)
	}
	return db, inv
}
