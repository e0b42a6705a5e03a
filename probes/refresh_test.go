package probes

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// uptimeProber answers OK with an agent uptime the test sets.
type uptimeProber struct{ uptime atomic.Int64 }

func (p *uptimeProber) Applies(assets.Device) bool { return true }
func (p *uptimeProber) Probe(context.Context, assets.Device) Result {
	return Result{Outcome: OK, Detail: "up", Uptime: time.Duration(p.uptime.Load())}
}

const refreshInventory = `
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede
        kind: hospital
        devices:
          - {id: sw, name: Switch, kind: network, tcp: {host: 127.0.0.1, port: 9}, probe: {interval: 10s, retries: 1}}
`

// An unchanged status is refreshed in a batch, not by its check; the batch
// never undoes a change committed after it was queued; a reboot is written
// at once.
func TestStatusRefreshesAreBatched(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	as := assets.NewStore(db)
	f, err := assets.ParseFile("test.yaml", []byte(refreshInventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	prober := &uptimeProber{}
	prober.uptime.Store(int64(time.Hour))
	e, err := NewEngine(ctx, NewStore(db), as, Config{Clock: clock, SuccessesToUp: 1,
		Probers: map[string]Prober{"scripted": prober}, StatusWriteEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	row := func() (at time.Time, uptime int64) {
		t.Helper()
		if err := db.QueryRowxContext(ctx, `SELECT last_probe_at, COALESCE(last_uptime_seconds, 0) FROM device_states WHERE device_id = 'sw'`).
			Scan(&at, &uptime); err != nil {
			t.Fatal(err)
		}
		return at.UTC(), uptime
	}
	check := func() {
		t.Helper()
		if err := e.Check(ctx, "sw"); err != nil {
			t.Fatal(err)
		}
	}

	check() // unknown → up: a change, written at once
	first := clock.Now()
	if at, up := row(); !at.Equal(first) || up != 3600 {
		t.Fatalf("after the first check: row (%v, %d), want (%v, 3600)", at, up, first)
	}

	// Polls within the refresh period change nothing in the database, even
	// as the uptime grows.
	for i := 1; i <= 5; i++ {
		clock.Advance(10 * time.Second)
		prober.uptime.Add(int64(10 * time.Second))
		check()
	}
	if at, _ := row(); !at.Equal(first) {
		t.Fatalf("polls within the period wrote the row: last_probe_at %v", at)
	}

	// The refresh falls due: queued by the check, written by the flush.
	clock.Advance(10 * time.Second)
	prober.uptime.Add(int64(10 * time.Second))
	check()
	due := clock.Now()
	if at, _ := row(); !at.Equal(first) {
		t.Fatalf("the due refresh was written by the check itself, not batched")
	}
	if err := e.FlushRefreshes(ctx); err != nil {
		t.Fatal(err)
	}
	if at, up := row(); !at.Equal(due) || up != 3660 {
		t.Fatalf("after the flush: row (%v, %d), want (%v, 3660)", at, up, due)
	}
	if err := e.FlushRefreshes(ctx); err != nil {
		t.Fatalf("an empty flush: %v", err)
	}

	// A refresh queued before a change committed later must not undo it.
	for range 6 {
		clock.Advance(10 * time.Second)
		prober.uptime.Add(int64(10 * time.Second))
		check()
	}
	e.mu.RLock()
	queued, ok := e.refreshes["sw"]
	e.mu.RUnlock()
	if !ok {
		t.Fatal("no refresh queued a period after the last write")
	}
	clock.Advance(10 * time.Second)
	prober.uptime.Store(int64(5 * time.Second)) // the agent rebooted: an event, written at once
	check()
	rebootAt := clock.Now()
	if at, up := row(); !at.Equal(rebootAt) || up != 5 {
		t.Fatalf("reboot not written at once: row (%v, %d), want (%v, 5)", at, up, rebootAt)
	}
	// Put the stale refresh back, as if its flush had raced the commit.
	e.mu.Lock()
	e.refreshes["sw"] = queued
	e.mu.Unlock()
	if err := e.FlushRefreshes(ctx); err != nil {
		t.Fatal(err)
	}
	if at, up := row(); !at.Equal(rebootAt) || up != 5 {
		t.Fatalf("a stale refresh overwrote a newer change: row (%v, %d), want (%v, 5)", at, up, rebootAt)
	}
	var reboots int
	if err := db.GetContext(ctx, &reboots, `SELECT count(*) FROM device_events WHERE kind = $1`, EventRebooted); err != nil {
		t.Fatal(err)
	}
	if reboots != 1 {
		t.Fatalf("rebooted events = %d, want 1", reboots)
	}
}

// An agent's odd text (Latin-1, NUL padding) is stored, not refused: one
// such device must not block every other device's refresh.
func TestStoreRefreshAcceptsAgentText(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	as := assets.NewStore(db)
	f, err := assets.ParseFile("test.yaml", []byte(refreshInventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	store := NewStore(db)
	at := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	odd := "interfaces down: Puerto\xf1o\x00\x00"
	if err := putStatus(ctx, db, "sw", Status{State: StateUp, Since: at, LastProbeAt: at, LastDetail: odd}); err != nil {
		t.Fatalf("status with agent text: %v", err)
	}
	if err := store.Refresh(ctx, map[string]Status{"sw": {State: StateUp, Since: at, LastProbeAt: at.Add(time.Minute), LastDetail: odd}}); err != nil {
		t.Fatalf("refresh with agent text: %v", err)
	}
	var detail string
	if err := db.GetContext(ctx, &detail, `SELECT last_detail FROM device_states WHERE device_id = 'sw'`); err != nil {
		t.Fatal(err)
	}
	if detail != "interfaces down: Puerto\uFFFDo" {
		t.Fatalf("stored detail %q", detail)
	}
}
