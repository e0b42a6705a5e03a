package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

const pendingInventory = `
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede con enlace
        kind: hospital
        gateway: s1-gw
        devices:
          - {id: s1-gw, name: Router, kind: network, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
          - {id: s1-ct, name: CT, kind: modality, modality: CT, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
      - id: s2
        name: Sede sin enlace
        kind: centre
        devices:
          - {id: s2-pacs, name: PACS, kind: pacs, role: core, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
`

// Devices fail while the database is down: the engine decides at the
// failing probes' instants, keeps the decisions, and writes them with
// those instants when the database is back — outages, transitions and
// events do not start at the commit.
func TestDecisionsWaitForTheDatabase(t *testing.T) {
	ctx := context.Background()
	gw, ct, pacs := newTCPGear(t), newTCPGear(t), newTCPGear(t)
	dbURL := pgtest.URL(t)
	pg := pgtest.NewOutage(t, dbURL)
	conn, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	as := assets.NewStore(conn)
	f, err := assets.ParseFile("test.yaml", fmt.Appendf(nil, pendingInventory, gw.port, ct.port, pacs.port), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	store := NewStore(conn)
	e, err := NewEngine(ctx, store, as, Config{Clock: clockwork.NewRealClock(), SuccessesToUp: 1, Probers: map[string]Prober{"tcp": &TCP{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(id string) Status {
		t.Helper()
		if err := e.Check(ctx, id); err != nil {
			t.Fatalf("Check(%s): %v", id, err)
		}
		st, _ := e.Status(id)
		return st
	}
	for _, id := range []string{"s1-gw", "s1-ct", "s2-pacs"} {
		if st := check(id); st.State != StateUp {
			t.Fatalf("%s: %s before the test", id, st.State)
		}
	}

	pg.Down()
	pacs.down()
	gw.down()
	ct.down()
	pacsDown := check("s2-pacs")
	gwDown := check("s1-gw")
	ctState := check("s1-ct")
	if pacsDown.State != StateDown || gwDown.State != StateDown || ctState.State != StateUnreachable {
		t.Fatalf("with the database down: pacs %s, gateway %s, ct %s; want down, down, unreachable", pacsDown.State, gwDown.State, ctState.State)
	}
	if e.Pending() == 0 {
		t.Fatal("no decision waits for the database")
	}
	// Still failing: nothing is decided again at a later instant.
	time.Sleep(1500 * time.Millisecond)
	if st := check("s2-pacs"); !st.Since.Equal(pacsDown.Since) {
		t.Fatalf("the outage was re-decided at %s (first %s)", st.Since, pacsDown.Since)
	}
	// However often it is tried, nothing is given up while the database
	// refuses connections.
	waiting := e.Pending()
	for range pendingAttempts + 1 {
		if _, err := e.FlushPending(ctx); err == nil {
			t.Fatal("flushed while the database refuses connections")
		}
	}
	if n := e.Pending(); n != waiting {
		t.Fatalf("%d decisions waiting after failed flushes, had %d", n, waiting)
	}

	pg.Up()
	back := time.Now()
	if _, err := e.FlushPending(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.Pending(); n != 0 {
		t.Fatalf("%d decisions still waiting", n)
	}
	q := conn // the assertions read what was committed
	for _, tc := range []struct {
		name, kind, subject string
		at                  time.Time
	}{
		{"device outage", "device", "s2-pacs", pacsDown.Since},
		{"site incident", "site", "s1-gw", gwDown.Since},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o struct {
				ID      int64     `db:"id"`
				Started time.Time `db:"started_at"`
			}
			if err := q.Get(&o, `SELECT id, started_at FROM outages WHERE kind = $1 AND device_id = $2`, tc.kind, tc.subject); err != nil {
				t.Fatal(err)
			}
			want := tc.at.Round(time.Microsecond)
			if !o.Started.Equal(want) || !o.Started.Before(back) {
				t.Errorf("outage started %s, want the failing probe's instant %s (database back at %s)", o.Started, want, back)
			}
			var evAt time.Time
			if err := q.Get(&evAt, `SELECT at FROM device_events WHERE outage_id = $1 AND kind LIKE '%_down'`, o.ID); err != nil || !evAt.Equal(want) {
				t.Errorf("down event at %s (%v), want %s", evAt, err, want)
			}
			var tr struct {
				At       time.Time `db:"at"`
				Evidence []byte    `db:"evidence"`
			}
			if err := q.Get(&tr, `SELECT at, evidence FROM device_transitions WHERE device_id = $1 AND to_state = 'down'`, tc.subject); err != nil {
				t.Fatal(err)
			}
			var ev struct{ Probes []Result }
			if err := json.Unmarshal(tr.Evidence, &ev); err != nil || len(ev.Probes) == 0 {
				t.Fatalf("evidence %s: %v", tr.Evidence, err)
			}
			if last := ev.Probes[len(ev.Probes)-1]; !tr.At.Equal(want) || !last.At.Round(time.Microsecond).Equal(want) || last.Outcome != Failed {
				t.Errorf("transition at %s, deciding probe %s at %s; want both %s", tr.At, last.Outcome, last.At, want)
			}
		})
	}
	var unreachableAt time.Time
	if err := q.Get(&unreachableAt, `SELECT at FROM device_transitions WHERE device_id = 's1-ct' AND to_state = 'unreachable'`); err != nil ||
		!unreachableAt.Equal(gwDown.Since.Round(time.Microsecond)) {
		t.Errorf("ct unreachable at %s (%v), want the gateway's instant %s", unreachableAt, err, gwDown.Since)
	}
	if n := countRows(t, q, `SELECT count(*) FROM outages`); n != 2 {
		t.Errorf("%d outages, want the PACS's and the site's", n)
	}
	if n := countRows(t, q, `SELECT count(*) FROM device_events WHERE kind IN ('device_down', 'site_down')`); n != 2 {
		t.Errorf("%d down events, want 2", n)
	}

	// Back up: the outage ends at the first good probe's instant too, and
	// a flush with nothing waiting writes nothing.
	pacs.up(t)
	upState := check("s2-pacs")
	var ended time.Time
	if err := q.Get(&ended, `SELECT ended_at FROM outages WHERE device_id = 's2-pacs'`); err != nil || !ended.Equal(upState.Since.Round(time.Microsecond)) {
		t.Errorf("outage ended %s (%v), want %s", ended, err, upState.Since)
	}
	if n, err := e.FlushPending(ctx); n != 0 || err != nil {
		t.Errorf("empty flush wrote %d: %v", n, err)
	}
}

func countRows(t *testing.T, conn *sqlx.DB, q string) int {
	t.Helper()
	var n int
	if err := conn.Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

// A waiting decision the database refuses while answering (not down) is
// retried a few times, then given up so that the ones behind it are
// written; counters-only updates of one device fold into one write.
func TestPendingOrderAndGiveUp(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.DB(t)
	e, err := NewEngine(ctx, NewStore(conn), assets.NewStore(conn), Config{})
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	w := func(name string, fail bool) *pendingWrite {
		return &pendingWrite{device: name, what: name,
			write: func(ctx context.Context) (Committed, error) {
				if fail {
					var n int
					return Committed{}, conn.GetContext(ctx, &n, `SELECT count(*) FROM no_such_table`)
				}
				written = append(written, name)
				return Committed{}, nil
			}}
	}
	e.queue(w("bad", true), true)
	e.queue(w("a", false), false)
	e.queue(w("b", false), false)
	status := func(failures int) *pendingWrite {
		return &pendingWrite{device: "c", what: "counters", change: &Change{Device: assets.Device{ID: "c"}, Status: Status{Failures: failures}}}
	}
	e.queue(status(1), false)
	e.queue(status(2), false)
	if n := e.Pending(); n != 4 {
		t.Fatalf("%d waiting, want 4 (two counter updates folded into one)", n)
	}
	for range pendingAttempts - 1 {
		if n, err := e.FlushPending(ctx); n != 0 || err == nil {
			t.Fatalf("flush past a refused write: %d, %v", n, err)
		}
	}
	// The counters write fails too (no such device), after a, b in order.
	for range pendingAttempts {
		e.FlushPending(ctx)
	}
	if fmt.Sprint(written) != "[a b]" || e.Pending() != 0 {
		t.Fatalf("written %v, %d still waiting", written, e.Pending())
	}
}
