package dispatch

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

var (
	bogota, _ = time.LoadLocation("America/Bogota")
	mexico, _ = time.LoadLocation("America/Mexico_City")
	quiet     = slog.New(slog.NewTextHandler(io.Discard, nil))
	noc       = auth.NOCActor("ana")
)

// at is a Bogotá wall-clock instant.
func at(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, bogota)
}

type fixture struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets *maintenance.Store
	store   *Store
}

// newFixture is a migrated database with testdata/inventory.yaml imported
// and two engineers: a biomedical one based in Bogotá (Philips MR) and one
// in Medellín (Siemens CT), both on the co-8x5 calendar.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.DB(t)
	raw, err := os.ReadFile("testdata/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file, err := assets.ParseFile("inventory.yaml", raw, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	inv := assets.NewStore(db)
	if _, err := inv.Import(context.Background(), file, at(2025, 1, 1, 0, 0), false); err != nil {
		t.Fatal(err)
	}
	tickets := maintenance.NewStore(db, inv, maintenance.Options{})
	f := &fixture{db: db, inv: inv, tickets: tickets, store: NewStore(db, inv, tickets)}
	for id, in := range map[string]EngineerInput{
		"eng-bog": {Name: "Laura Bogotá", Email: "laura@vigia.example", HomeCity: "Bogotá", Biomedical: true, Modalities: []string{"MR", "US"},
			Manufacturers: []string{"Philips"}, Calendar: CalendarSpec{Preset: "co-8x5"}, HourlyCostCents: 9000000},
		"eng-med": {Name: "Mateo Medellín", Email: "mateo@vigia.example", HomeCity: "Medellín", Biomedical: true, IT: true,
			Modalities: []string{"CT"}, Manufacturers: []string{"Siemens"}, Calendar: CalendarSpec{Preset: "co-8x5"}, HourlyCostCents: 8000000},
	} {
		if _, err := f.store.PutEngineer(context.Background(), noc, id, in, at(2026, 1, 1, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// openTicket opens a ticket as the NOC at when.
func (f *fixture) openTicket(t *testing.T, customer string, devices []string, severity int, when time.Time) maintenance.Ticket {
	t.Helper()
	tk, err := f.tickets.Create(context.Background(), auth.Actor{Name: "ana", Role: "noc"}, maintenance.CreateInput{
		CustomerID: customer, DeviceIDs: devices, Severity: severity, Title: "Falla en " + strings.Join(devices, ", ")}, when)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (f *fixture) ticket(t *testing.T, id int64, now time.Time) maintenance.Detail {
	t.Helper()
	d, err := f.tickets.Get(context.Background(), maintenance.Scope{}, itoa(id), now)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func ptr[T any](v T) *T { return &v }

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
