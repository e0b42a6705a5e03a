package maintenance

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/ticketstest"
)

// bogota and monday15 (Monday 1 June 2026, 15:00 in Bogotá, a working
// day) are the seeded database's zone and import instant.
var bogota, monday15 = ticketstest.Bogota, ticketstest.Monday15

var quiet = ticketstest.Quiet

type fixture struct {
	db    *sqlx.DB
	store *Store
	inv   *assets.Store
}

// newFixture is the seeded database of ticketstest.
func newFixture(t *testing.T, webhooks ...string) *fixture {
	t.Helper()
	db, inv := ticketstest.Seed(t)
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

// sweepClosures performs every pre-closure task due at now, as the sweeps'
// pre-closure sweeper does, and returns how many it performed.
func sweepClosures(t *testing.T, s *Store, now time.Time) int {
	t.Helper()
	n := 0
	var skip []int64
	for {
		id, done, err := s.PerformDueClosureTask(context.Background(), now, skip)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case id == 0:
			return n
		case done:
			n++
		default:
			skip = append(skip, id)
		}
	}
}

// watch records the SLA marks of every watched ticket at now, as the
// sweeps' SLA watcher does.
func watch(t *testing.T, s *Store, now time.Time) {
	t.Helper()
	ids, err := s.WatchedTickets(context.Background(), now.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, _, err := s.RecordSLAMarks(context.Background(), id, now); err != nil {
			t.Fatal(err)
		}
	}
}
