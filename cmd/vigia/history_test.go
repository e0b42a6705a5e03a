package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
)

// GET /api/v1/devices/{id}/events: a device's transitions, events and
// traps, newest first, for the NOC and the device's own hospital only;
// the query is checked strictly.
func TestDeviceHistoryAPI(t *testing.T) {
	conn := pgtest.DB(t)
	ctx := context.Background()
	raw, err := os.ReadFile("../../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := assets.ParseFile("inventory.yaml", raw, parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	store := assets.NewStore(conn)
	if _, err := store.Import(ctx, inv, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	tokens := auth.NewTokens(conn, clock.Now)
	mk := func(role, customer string) string {
		tok, _, err := tokens.Create(ctx, role+customer, role, customer, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	noc, hsr, cmf := mk(auth.RoleNOC, ""), mk(auth.RoleCustomer, "hsr"), mk(auth.RoleCustomer, "cmf")
	reg := prometheus.NewRegistry()
	probeStore := probes.NewStore(conn)
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	h := server.Handler(httpConfig(httpDeps{conn: conn, tokens: tokens, reg: reg, log: slog.New(slog.DiscardHandler),
		assets: store, probes: probeStore, probeMetrics: probes.NewMetrics(reg), tickets: tickets,
		dispatch: dispatch.NewStore(conn, store, tickets), clock: clock}))

	// One of each kind for hsr-pacs, a minute apart, and one for cmf-pacs.
	t0 := clock.Now().Add(-time.Hour)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO device_transitions (device_id, from_state, to_state, evidence, at) VALUES ('hsr-pacs', 'up', 'degraded', '{"probes":[]}', $1)`,
			[]any{t0}},
		{`INSERT INTO device_traps (device_id, customer_id, site_id, at, source, version, inform, trap_oid, rule, effect, condition, varbinds)
			VALUES ('hsr-pacs', 'hsr', 'hsr-central', $1, '10.0.0.5:50000', 'v2c', false, '.1.3.6.1.6.3.1.1.5.3', 'linkDown', 'interface_down', 'interface:3', '[]')`,
			[]any{t0.Add(time.Minute)}},
		{`INSERT INTO device_events (kind, customer_id, site_id, device_id, detail, at) VALUES ('rebooted', 'hsr', 'hsr-central', 'hsr-pacs', '{}', $1)`,
			[]any{t0.Add(2 * time.Minute)}},
		{`INSERT INTO device_events (kind, customer_id, site_id, device_id, detail, at) VALUES ('rebooted', 'cmf', 'cmf-lima', 'cmf-pacs', '{}', $1)`,
			[]any{t0}},
	} {
		if _, err := conn.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	get := func(path, token string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		name  string
		path  string
		token string
		code  int
		kinds string // the entries' kinds, newest first
		body  string // a fragment the answer must hold
	}{
		{"NOC", "/api/v1/devices/hsr-pacs/events", noc, 200, "event,trap,transition", `"rule": "linkDown"`},
		{"the device's hospital", "/api/v1/devices/hsr-pacs/events", hsr, 200, "event,trap,transition", `"to": "degraded"`},
		{"another hospital", "/api/v1/devices/hsr-pacs/events", cmf, 404, "", `"not_found"`},
		{"another hospital's own device", "/api/v1/devices/cmf-pacs/events", cmf, 200, "event", `"event": "rebooted"`},
		{"unknown device", "/api/v1/devices/nope/events", noc, 404, "", `"not_found"`},
		{"limit", "/api/v1/devices/hsr-pacs/events?limit=2", noc, 200, "event,trap", ""},
		{"before", "/api/v1/devices/hsr-pacs/events?before=" + t0.Add(90*time.Second).Format(time.RFC3339), hsr, 200, "trap,transition", ""},
		{"unknown parameter", "/api/v1/devices/hsr-pacs/events?customer=cmf", noc, 400, "", "unknown query parameter"},
		{"limit out of range", "/api/v1/devices/hsr-pacs/events?limit=501", noc, 400, "", "limit"},
		{"limit not a number", "/api/v1/devices/hsr-pacs/events?limit=ten", noc, 400, "", "limit"},
		{"limit twice", "/api/v1/devices/hsr-pacs/events?limit=1&limit=2", noc, 400, "", "once"},
		{"before malformed", "/api/v1/devices/hsr-pacs/events?before=yesterday", noc, 400, "", "RFC 3339"},
		{"id too long", "/api/v1/devices/" + strings.Repeat("x", 129) + "/events", noc, 400, "", "longer than 100 bytes"},
		{"id with a control character", "/api/v1/devices/hsr%01pacs/events", noc, 400, "", "device id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(tt.path, tt.token)
			if code != tt.code || !strings.Contains(body, tt.body) {
				t.Fatalf("%d %s, want %d with %q", code, body, tt.code, tt.body)
			}
			if code != 200 {
				if strings.Contains(body, "hsr-central") || strings.Contains(body, "linkDown") {
					t.Errorf("a refusal shows history: %s", body)
				}
				return
			}
			var out struct {
				Events []probes.HistoryEntry `json:"events"`
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, e := range out.Events {
				kinds = append(kinds, e.Kind)
			}
			if got := strings.Join(kinds, ","); got != tt.kinds {
				t.Errorf("kinds %s, want %s", got, tt.kinds)
			}
		})
	}
	if code, _ := get("/api/v1/devices/hsr-pacs/events", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
}
