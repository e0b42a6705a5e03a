package probes

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

const boardInventory = `
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede Norte
        kind: hospital
        devices:
          - {id: c1-ct, name: CT, kind: modality, modality: CT, tcp: {host: 127.0.0.1, port: 1}}
          - {id: c1-pacs, name: PACS, kind: pacs, tcp: {host: 127.0.0.1, port: 2}}
          - {id: c1-new, name: Recién llegado, kind: network, tcp: {host: 127.0.0.1, port: 3}}
      - id: s2
        name: Sede Sur
        kind: centre
        devices:
          - {id: c1-ris, name: RIS, kind: ris, tcp: {host: 127.0.0.1, port: 4}}
  - id: c2
    name: Clínica Dos
    country: PE
    time_zone: America/Lima
    sites:
      - id: s3
        name: Sede Lima
        kind: hospital
        devices:
          - {id: c2-pacs, name: PACS Lima, kind: pacs, tcp: {host: 127.0.0.1, port: 5}}
`

// boardFixture is the inventory above with probe states and outages
// written as the probes write them.
func boardFixture(t *testing.T) (*sqlx.DB, *assets.Store, *Store, time.Time) {
	t.Helper()
	db := pgtest.DB(t)
	inv := assets.NewStore(db)
	f, err := assets.ParseFile("board.yaml", []byte(boardInventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	if _, err := inv.Import(context.Background(), f, at, false); err != nil {
		t.Fatal(err)
	}
	db.MustExec(`INSERT INTO device_states (device_id, state, since, consecutive_failures, flapping, last_probe_at, last_detail, updated_at) VALUES
		('c1-ct', 'down', $1, 3, false, $2, 'connection refused', $2),
		('c1-pacs', 'up', $1, 1, true, NULL, '', $2),
		('c1-ris', 'up', $1, 0, false, $2, 'ok', $2),
		('c2-pacs', 'degraded', $1, 0, false, $2, 'slow', $2)`, at.Add(time.Minute), at.Add(2*time.Minute))
	db.MustExec(`INSERT INTO outages (kind, customer_id, site_id, device_id, affected_device_ids, cause, started_at, ended_at) VALUES
		('device', 'c1', 's1', 'c1-ct', '{}', 'refused', $1, NULL),
		('site', 'c1', 's2', NULL, '{c1-ris}', 'gateway down', $2, NULL),
		('device', 'c1', 's1', 'c1-pacs', '{}', 'old', $3, $4),
		('device', 'c2', 's3', 'c2-pacs', '{}', 'lima', $4, NULL)`,
		at.Add(3*time.Minute), at.Add(time.Minute), at.Add(-time.Hour), at.Add(-time.Minute))
	return db, inv, NewStore(db), at
}

func TestLiveStates(t *testing.T) {
	_, _, store, at := boardFixture(t)
	got, err := store.LiveStates(context.Background(), []string{"c1-ct", "c1-pacs", "c1-new", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	last := at.Add(2 * time.Minute)
	want := map[string]LiveState{
		"c1-ct":   {State: "down", Since: at.Add(time.Minute), Detail: "connection refused", LastProbe: &last, Failures: 3},
		"c1-pacs": {State: "up", Since: at.Add(time.Minute), Flapping: true, Failures: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("states of %d devices (%v), want %d: only the ids asked, and only those probed", len(got), got, len(want))
	}
	for id, w := range want {
		g := got[id]
		if g.State != w.State || !g.Since.Equal(w.Since) || g.Flapping != w.Flapping || g.Detail != w.Detail || g.Failures != w.Failures ||
			(g.LastProbe == nil) != (w.LastProbe == nil) || (g.LastProbe != nil && !g.LastProbe.Equal(*w.LastProbe)) {
			t.Errorf("%s: %+v, want %+v", id, g, w)
		}
	}
	if none, err := store.LiveStates(context.Background(), nil); err != nil || len(none) != 0 {
		t.Fatalf("no ids: %v %v", none, err)
	}
}

func TestOutages(t *testing.T) {
	_, _, store, _ := boardFixture(t)
	yes, no := true, false
	for _, c := range []struct {
		name string
		f    OutageFilter
		want []string // causes, in order
	}{
		{"everything, newest first", OutageFilter{}, []string{"refused", "gateway down", "lima", "old"}},
		{"open, oldest first", OutageFilter{Open: &yes, OldestFirst: true}, []string{"lima", "gateway down", "refused"}},
		{"ended", OutageFilter{Open: &no}, []string{"old"}},
		{"one customer's open ones", OutageFilter{CustomerID: "c1", Open: &yes, OldestFirst: true}, []string{"gateway down", "refused"}},
		{"one site", OutageFilter{CustomerID: "c1", SiteID: "s2"}, []string{"gateway down"}},
		{"another customer's site", OutageFilter{CustomerID: "c2", SiteID: "s2"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			os, err := store.Outages(context.Background(), c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range os {
				got = append(got, o.Cause)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("%v, want %v", got, c.want)
			}
		})
	}
}

// GET /api/v1/device-states lists the caller's active devices in inventory
// order with their states; a device never probed is unknown since it
// entered the inventory.
func TestDeviceStatesAPI(t *testing.T) {
	db, inv, store, at := boardFixture(t)
	// A retired device is not listed, even with a state.
	db.MustExec(`UPDATE devices SET retired_at = $1 WHERE id = 'c1-pacs'`, at)
	var created time.Time
	if err := db.Get(&created, `SELECT created_at FROM devices WHERE id = 'c1-new'`); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewAPI(store, inv, func() time.Time { return at }).Register(mux)
	for _, c := range []struct {
		name string
		who  auth.Principal
		want []string // "device state"
	}{
		{"NOC", auth.Principal{Name: "ana", Role: auth.RoleNOC}, []string{"c1-ct down", "c1-new unknown", "c1-ris up", "c2-pacs degraded"}},
		{"a customer", auth.Principal{Name: "c2", Role: auth.RoleCustomer, CustomerID: "c2"}, []string{"c2-pacs degraded"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/device-states", nil)
			req = req.WithContext(auth.WithPrincipal(req.Context(), c.who))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
			var body struct {
				States []DeviceState `json:"device_states"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range body.States {
				got = append(got, s.DeviceID+" "+s.State)
				switch s.DeviceID {
				case "c1-new":
					if !s.Since.Equal(created) || s.LastProbe != nil || s.Flapping || s.Detail != "" || s.SiteID != "s1" || s.CustomerID != "c1" {
						t.Errorf("never probed: %+v, want unknown since %s", s, created)
					}
				case "c1-ct":
					if !s.Since.Equal(at.Add(time.Minute)) || s.Detail != "connection refused" || s.LastProbe == nil {
						t.Errorf("c1-ct: %+v", s)
					}
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("%v, want %v", got, c.want)
			}
		})
	}
}
