package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
)

// endpoint is one route of the API with a request aimed at a resource of
// customer hsr, and what other callers must get.
type endpoint struct {
	pattern string // as registered: "METHOD /path"
	path    string // concrete path, on hsr's resources
	body    string // a valid body for POST
	// otherCustomer is the status for a token of another customer (cmf):
	// 404 for hsr's resources, 403 for NOC-only actions, 200 for lists
	// (which must then show none of hsr's rows).
	otherCustomer int
}

func TestAuthorizationMatrix(t *testing.T) {
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
		assets: store, probes: probeStore, probeMetrics: probes.NewMetrics(reg), tickets: tickets, clock: clock}))

	do := func(method, path, token, body string) (int, string) {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req := httptest.NewRequest(method, path, r)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	// One ticket of hsr to aim at.
	code, body := do("POST", "/api/v1/tickets", hsr, `{"title":"Worklist lenta","description":"La lista de trabajo tarda","severity":3,"devices":["hsr-worklist"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create hsr ticket: %d %s", code, body)
	}

	endpoints := []endpoint{
		{"GET /api/v1/customers", "/api/v1/customers", "", 200},
		{"GET /api/v1/customers/{id}", "/api/v1/customers/hsr", "", 404},
		{"GET /api/v1/sites", "/api/v1/sites", "", 200},
		{"GET /api/v1/sites/{id}", "/api/v1/sites/hsr-central", "", 404},
		{"GET /api/v1/devices", "/api/v1/devices", "", 200},
		{"GET /api/v1/devices/{id}", "/api/v1/devices/hsr-pacs", "", 404},
		{"GET /api/v1/contracts", "/api/v1/contracts", "", 200},
		{"GET /api/v1/contracts/{id}", "/api/v1/contracts/hsr-imaging-2026", "", 404},
		{"GET /api/v1/device-states", "/api/v1/device-states", "", 200},
		{"GET /api/v1/outages", "/api/v1/outages", "", 200},
		{"GET /api/v1/maintenance-windows", "/api/v1/maintenance-windows", "", 403},
		{"POST /api/v1/maintenance-windows", "/api/v1/maintenance-windows",
			`{"scope":"device","scope_id":"hsr-ct1","reason":"x","starts_at":"2026-11-24T08:00:00Z","ends_at":"2026-11-24T10:00:00Z"}`, 403},
		{"GET /api/v1/tickets", "/api/v1/tickets", "", 200},
		{"GET /api/v1/tickets/{id}", "/api/v1/tickets/1", "", 404},
		// Another customer's device is unknown to this caller: 400, and
		// the same answer as for a device that does not exist.
		{"POST /api/v1/tickets", "/api/v1/tickets", `{"title":"x","description":"y","severity":3,"devices":["hsr-ct1"]}`, 400},
		{"POST /api/v1/tickets/{id}/{action}", "/api/v1/tickets/1/comment", `{"text":"hola"}`, 404},
		{"POST /api/v1/alertmanager", "/api/v1/alertmanager", `{"version":"4","status":"firing","alerts":[]}`, 403},
		{"POST /api/v1/heartbeats/{device}", "/api/v1/heartbeats/hsr-ris", `{}`, 401},
		{"GET /api/v1/preventive-plans", "/api/v1/preventive-plans", "", 200},
		{"POST /api/v1/preventive-plans", "/api/v1/preventive-plans",
			`{"device":"hsr-ct1","title":"Mantenimiento trimestral","every_months":3,"first_due_on":"2027-01-15"}`, 403},
	}

	t.Run("every registered endpoint is in the matrix", func(t *testing.T) {
		var listed []string
		for _, e := range endpoints {
			listed = append(listed, e.pattern)
		}
		for _, p := range registeredAPIPatterns(t) {
			if !slices.Contains(listed, p) {
				t.Errorf("endpoint %q is not in the authorization matrix", p)
			}
		}
	})

	before := snapshot(t, conn)
	for _, e := range endpoints {
		method := strings.Fields(e.pattern)[0]
		t.Run(e.pattern, func(t *testing.T) {
			if code, body := do(method, e.path, "", e.body); code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s", code, body)
			}
			if code, body := do(method, e.path, "vigia_forged", e.body); code != http.StatusUnauthorized {
				t.Errorf("forged token: %d %s", code, body)
			}
			code, body := do(method, e.path, cmf, e.body)
			if code != e.otherCustomer {
				t.Errorf("other customer's token: %d, want %d (%s)", code, e.otherCustomer, body)
			}
			// Nothing of hsr may show, beyond the id the caller itself sent.
			leaked := strings.ReplaceAll(body, filepath.Base(e.path), "")
			for _, id := range []string{"hsr-ct1", "hsr-worklist", "hsr-pacs", "hsr-central", "hsr-ris"} {
				if strings.Contains(e.path+e.body, id) {
					leaked = strings.ReplaceAll(leaked, id, "")
				}
			}
			if strings.Contains(leaked, "hsr") || strings.Contains(leaked, "San Rafael") || strings.Contains(leaked, "Worklist lenta") {
				t.Errorf("other customer's token sees hsr data: %s", body)
			}
			if method == "POST" {
				token := noc
				if strings.Contains(e.pattern, "heartbeats") {
					token = "hsr-ris-heartbeat-demo-token"
				}
				for _, bad := range []string{`{"title": `, `not json`, `[1,2,3]`, `{"unknown_field": 1}`} {
					if code, body := do(method, e.path, token, bad); code != http.StatusBadRequest {
						t.Errorf("malformed body %q: %d, want 400 (%s)", bad, code, body)
					}
				}
				huge := `{"title":"` + strings.Repeat("x", 2<<20) + `"}`
				if code, _ := do(method, e.path, token, huge); code != http.StatusRequestEntityTooLarge {
					t.Errorf("oversized body: %d, want 413", code)
				}
			}
		})
	}
	if after := snapshot(t, conn); after != before {
		t.Errorf("refused requests changed the database:\n%s", diffLines(before, after))
	}
}

var handlePattern = regexp.MustCompile(`HandleFunc\("((?:GET|POST|PUT|PATCH|DELETE) /api/[^"]*)"`)

// registeredAPIPatterns reads every API route registered in the product's
// source, so a new endpoint cannot escape the matrix.
func registeredAPIPatterns(t *testing.T) []string {
	t.Helper()
	var out []string
	root := "../.."
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "var" || d.Name() == "fleetsim" || d.Name() == "dispatch" || strings.HasPrefix(d.Name(), ".")) && path != root {
			// The simulator's control API is not Vigía's API; dispatch is
			// not served yet (its routes join this matrix when it is).
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range handlePattern.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d API routes in the source: the scan is broken", len(out))
	}
	return out
}

// snapshot fingerprints every table's content, except api_tokens whose
// last_used_at is bookkeeping of authentication itself.
func snapshot(t *testing.T, conn *sqlx.DB) string {
	t.Helper()
	var tables []string
	if err := conn.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'
		AND tablename NOT IN ('api_tokens', 'goose_db_version') ORDER BY tablename`); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, tbl := range tables {
		var sum string
		if err := conn.Get(&sum, `SELECT COALESCE(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM `+tbl+` x`); err != nil {
			t.Fatal(err)
		}
		b.WriteString(tbl + " " + sum + "\n")
	}
	return b.String()
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			out = append(out, al[i]+" -> "+bl[i])
		}
	}
	return strings.Join(out, "\n")
}
