package intake

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance"
)

// FuzzAlertmanager posts arbitrary bodies to the real Alertmanager receiver
// over a real database: it answers 200 or a clear 4xx, never a 5xx, and a
// refused body changes nothing.
//
//	go test -run '^$' -fuzz FuzzAlertmanager -fuzztime 60s ./maintenance/intake
func FuzzAlertmanager(f *testing.F) {
	db := pgtest.DB(f)
	inv := `
customers:
  - id: c1
    name: Clínica
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede
        kind: hospital
        devices:
          - {id: pacs, name: PACS, kind: pacs, role: core, tcp: {host: 127.0.0.1, port: 9}}
`
	file, err := assets.ParseFile("fuzz.yaml", []byte(inv), assets.ParseOptions{})
	if err != nil {
		f.Fatal(err)
	}
	inventory := assets.NewStore(db)
	if _, err := inventory.Import(context.Background(), file, time.Now(), false); err != nil {
		f.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC) }
	api := NewAPI(NewReceiver(maintenance.NewStore(db, inventory, maintenance.Options{}), inventory), now, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	api.Register(mux)
	noc := auth.Principal{Name: "fuzz", Role: auth.RoleNOC}

	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"device":"pacs","alertname":"PACSDown"},` +
		`"startsAt":"2026-11-23T14:00:00Z","fingerprint":"abc"}]}`))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"site":"s1"},` +
		`"startsAt":"2026-11-23T14:00:00Z","endsAt":"2026-11-23T14:30:00Z","fingerprint":"def"}]}`))
	f.Add([]byte(`{"version":"3","alerts":null}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"device":"nope"},"startsAt":"0001-01-01T00:00:00Z","fingerprint":""}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var before int
		db.Get(&before, `SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM ticket_alerts) + (SELECT count(*) FROM ticket_events)`)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alertmanager", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(auth.WithPrincipal(req.Context(), noc))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			var after int
			db.Get(&after, `SELECT (SELECT count(*) FROM tickets) + (SELECT count(*) FROM ticket_alerts) + (SELECT count(*) FROM ticket_events)`)
			if after != before {
				t.Fatalf("refused payload (%d) changed the database: %s", rec.Code, body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}
