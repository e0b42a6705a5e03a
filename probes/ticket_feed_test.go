package probes

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// feedDB is a database holding the inventory of the pending decisions' test.
func feedDB(t *testing.T) *sqlx.DB {
	t.Helper()
	db := pgtest.DB(t)
	f, err := assets.ParseFile("feed.yaml", []byte(fmt.Sprintf(pendingInventory, 9, 9, 9)), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := assets.NewStore(db).Import(context.Background(), f, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), false); err != nil {
		t.Fatal(err)
	}
	return db
}

// inRolledBackTx runs fn in a transaction that is rolled back: each case starts from
// the same rows.
func inRolledBackTx(t *testing.T, db *sqlx.DB, fn func(tx *sqlx.Tx)) {
	t.Helper()
	tx := db.MustBegin()
	defer tx.Rollback()
	fn(tx)
}

// The ticket stage's view of the device events: claimed oldest first,
// skipping what it deferred and what another transaction holds, applied in
// order per subject, marked handled in its own transaction.
func TestDeviceEventFeed(t *testing.T) {
	db := feedDB(t)
	ctx := context.Background()
	at := time.Date(2026, 6, 1, 15, 0, 0, 0, time.UTC)
	var outage int64
	if err := db.Get(&outage, `INSERT INTO outages (kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at)
		VALUES ('site', 'c1', 's1', 's1-gw', '{s1-gw,s1-ct}', 'gateway down', $1) RETURNING id`, at); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range []struct {
		kind, site string
		device     any
		outage     any
	}{
		{"device_down", "s1", "s1-ct", nil},   // 0
		{"site_down", "s1", "s1-gw", outage},  // 1
		{"device_up", "s1", "s1-ct", nil},     // 2: after 0 of the same device
		{"site_up", "s1", nil, nil},           // 3: after 1 of the same site
		{"device_down", "s2", "s2-pacs", nil}, // 4: a subject of its own
	} {
		var id int64
		if err := db.Get(&id, `INSERT INTO device_events (kind, customer_id, site_id, device_id, outage_id, at) VALUES ($1, 'c1', $2, $3, $4, $5)
			RETURNING id`, e.kind, e.site, e.device, e.outage, at); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	t.Run("claimed oldest first, deferred ones skipped", func(t *testing.T) {
		for _, tc := range []struct {
			skip   []int64
			want   int64
			device string
		}{
			{nil, ids[0], "s1-ct"},
			{ids[:1], ids[1], "s1-gw"},
			{ids[:4], ids[4], "s2-pacs"},
			{ids, 0, ""},
		} {
			inRolledBackTx(t, db, func(tx *sqlx.Tx) {
				ev, ok, err := NextUnhandledEventTx(ctx, tx, tc.skip)
				if err != nil || ok != (tc.want != 0) || ev.ID != tc.want || ev.DeviceID != tc.device {
					t.Errorf("skip %v: %+v, %v, %v; want id %d", tc.skip, ev, ok, err, tc.want)
				}
			})
		}
	})

	t.Run("a locked event is skipped", func(t *testing.T) {
		inRolledBackTx(t, db, func(holder *sqlx.Tx) {
			if ev, ok, err := NextUnhandledEventTx(ctx, holder, nil); err != nil || !ok || ev.ID != ids[0] {
				t.Fatalf("holder claimed %+v, %v, %v", ev, ok, err)
			}
			inRolledBackTx(t, db, func(tx *sqlx.Tx) {
				if ev, ok, err := NextUnhandledEventTx(ctx, tx, nil); err != nil || !ok || ev.ID != ids[1] {
					t.Errorf("second consumer claimed %+v, %v, %v; want %d", ev, ok, err, ids[1])
				}
			})
		})
	})

	t.Run("events of one subject in order", func(t *testing.T) {
		inRolledBackTx(t, db, func(tx *sqlx.Tx) {
			var evs []DeviceEvent
			var skip []int64
			for {
				ev, ok, err := NextUnhandledEventTx(ctx, tx, skip)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				evs, skip = append(evs, ev), append(skip, ev.ID)
			}
			for i, want := range []bool{false, false, true, true, false} {
				earlier, err := EarlierUnhandledTx(ctx, tx, evs[i])
				if err != nil || earlier != want {
					t.Errorf("event %d (%s): earlier unhandled %v, %v; want %v", i, evs[i].Kind, earlier, err, want)
				}
			}
			if evs[1].OutageID != outage || evs[3].DeviceID != "" || evs[3].OutageID != 0 {
				t.Errorf("site events read as %+v and %+v", evs[1], evs[3])
			}
			// Once the device's down is handled, its up may go.
			if err := MarkEventHandledTx(ctx, tx, ids[0], at.Add(time.Second)); err != nil {
				t.Fatal(err)
			}
			if earlier, err := EarlierUnhandledTx(ctx, tx, evs[2]); err != nil || earlier {
				t.Errorf("after handling the down: earlier unhandled %v, %v", earlier, err)
			}
			if ev, _, err := NextUnhandledEventTx(ctx, tx, nil); err != nil || ev.ID != ids[1] {
				t.Errorf("a handled event was claimed again: %+v, %v", ev, err)
			}
		})
	})

	t.Run("the devices an outage took down", func(t *testing.T) {
		inRolledBackTx(t, db, func(tx *sqlx.Tx) {
			got, err := OutageAffectedTx(ctx, tx, outage)
			if err != nil || !slices.Equal(got, []string{"s1-gw", "s1-ct"}) {
				t.Errorf("OutageAffectedTx = %q, %v", got, err)
			}
		})
	})
}

// A window added in the caller's transaction is the probes' window, and an
// invalid one is refused before anything is written.
func TestAddWindowTx(t *testing.T) {
	db := feedDB(t)
	ctx := context.Background()
	start := time.Date(2026, 6, 2, 5, 0, 0, 0, time.UTC)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		w    Window
		ok   bool
	}{
		{"one day on a device", Window{Scope: "device", ScopeID: "s1-ct", Reason: "preventive", StartsAt: start, EndsAt: start.Add(24 * time.Hour)}, true},
		{"ends before it starts", Window{Scope: "device", ScopeID: "s1-ct", StartsAt: start, EndsAt: start.Add(-time.Hour)}, false},
		{"unknown scope", Window{Scope: "planet", ScopeID: "s1-ct", StartsAt: start, EndsAt: start.Add(time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx := db.MustBegin()
			w := tc.w
			err := AddWindowTx(ctx, tx, &w, "vigia (preventive)", created)
			if (err == nil) != tc.ok {
				tx.Rollback()
				t.Fatalf("AddWindowTx: %v, want ok %v", err, tc.ok)
			}
			if !tc.ok {
				tx.Rollback()
				return
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			var at time.Time
			var by string
			if err := db.QueryRow(`SELECT created_at, created_by FROM maintenance_windows WHERE id = $1`, w.ID).Scan(&at, &by); err != nil ||
				!at.Equal(created) || by != "vigia (preventive)" {
				t.Fatalf("stored window: %v %q %v", at, by, err)
			}
			ws, err := NewStore(db).Windows(ctx, start)
			if err != nil || len(ws) != 1 || ws[0].ID != w.ID || !ws[0].Active(start.Add(time.Hour)) {
				t.Fatalf("Windows = %+v, %v", ws, err)
			}
		})
	}
}
