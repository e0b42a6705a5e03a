package probes

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// FuzzHeartbeat posts arbitrary device ids, tokens and bodies to the real
// handler over a real database: the answer is always one of the documented
// statuses, and a heartbeat is recorded only for a device's own token.
//
//	go test -run '^$' -fuzz FuzzHeartbeat -fuzztime 60s ./probes
func FuzzHeartbeat(f *testing.F) {
	db := pgtest.DB(f)
	inv := oneSiteInventory(`          - {id: agent, name: A, kind: biomedical, heartbeat: {grace: 1m, token: agent-heartbeat-token-1}}
          - {id: other, name: B, kind: biomedical, heartbeat: {grace: 1m, token: other-heartbeat-token-2}}
`)
	file, err := assets.ParseFile("fuzz.yaml", []byte(inv), assets.ParseOptions{})
	if err != nil {
		f.Fatal(err)
	}
	store := assets.NewStore(db)
	if _, err := store.Import(context.Background(), file, time.Now(), false); err != nil {
		f.Fatal(err)
	}
	ps := NewStore(db)
	api := &HeartbeatAPI{Devices: store, Log: ps, Clock: clockwork.NewRealClock()}
	mux := http.NewServeMux()
	api.Register(mux)

	f.Add("agent", "agent-heartbeat-token-1", []byte(`{"status":"ok"}`))
	f.Add("agent", "other-heartbeat-token-2", []byte(``))
	f.Add("other", "agent-heartbeat-token-1", []byte(`{`))
	f.Add("agent", "", []byte(`null`))
	f.Add("../devices", "agent-heartbeat-token-1", bytes.Repeat([]byte("a"), 70000))
	f.Fuzz(func(t *testing.T, device, token string, body []byte) {
		var before int
		db.Get(&before, `SELECT count(*) FROM heartbeats`)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/heartbeats/"+url.PathEscape(device), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		valid := (device == "agent" && token == "agent-heartbeat-token-1") || (device == "other" && token == "other-heartbeat-token-2")
		switch rec.Code {
		case http.StatusAccepted:
			if !valid {
				t.Fatalf("heartbeat accepted for device %q with token %q", device, token)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge, http.StatusNotFound,
			http.StatusMethodNotAllowed, http.StatusTemporaryRedirect, http.StatusMovedPermanently: // the mux cleans paths like "." by redirecting
			var after int
			db.Get(&after, `SELECT count(*) FROM heartbeats`)
			if after != before {
				t.Fatalf("refused heartbeat (%d) changed the database", rec.Code)
			}
		default:
			t.Fatalf("status %d for device %q token %q: %s", rec.Code, device, token, rec.Body.String())
		}
	})
}
