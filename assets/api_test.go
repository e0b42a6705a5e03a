package assets

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
)

const betaCustomer = `
  - id: beta
    name: Hospital Beta
    country: PE
    time_zone: America/Lima
    sites:
      - id: beta-main
        name: Beta
        kind: hospital
        devices:
          - id: beta-ct
            name: CT Beta
            kind: modality
            modality: CT
            dicom: {host: 127.0.0.1, port: 11200, called_ae: BETA_CT}
    contracts:
      - id: beta-2026
        sla_policy: it-support-pe
        devices: all
        start: 2026-01-01
        end: 2026-12-31
        activated: 2026-01-02
`

func TestAPIAuthorization(t *testing.T) {
	db := pgtest.DB(t)
	store := NewStore(db)
	ctx := context.Background()
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	if _, err := store.Import(ctx, parseTestFile(t, string(raw)+betaCustomer), time.Now(), false); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 6, 1, 15, 0, 0, 0, time.UTC) }
	tokens := auth.NewTokens(db, now)
	mk := func(role, customer string) string {
		tok, _, err := tokens.Create(ctx, role+customer, role, customer, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	noc, acme, beta, engineer := mk("noc", ""), mk("customer", "acme"), mk("customer", "beta"), mk("engineer", "")
	revokedTok, revokedID, _ := tokens.Create(ctx, "old", "noc", "", "")
	if err := tokens.Revoke(ctx, revokedID); err != nil {
		t.Fatal(err)
	}
	h := server.Handler(server.Config{DB: db, Tokens: tokens, Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), API: []server.Routes{NewAPI(store, now)}})

	get := func(path, token string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	// Every endpoint, for acme's resources: who may see them.
	endpoints := []string{
		"/api/v1/customers/acme", "/api/v1/sites/acme-main", "/api/v1/devices/acme-pacs", "/api/v1/contracts/acme-2026",
	}
	for _, ep := range endpoints {
		t.Run(ep, func(t *testing.T) {
			for _, c := range []struct {
				who   string
				token string
				want  int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"garbage token", "vigia_nope", http.StatusUnauthorized},
				{"revoked token", revokedTok, http.StatusUnauthorized},
				{"noc", noc, http.StatusOK},
				{"engineer", engineer, http.StatusOK},
				{"own customer", acme, http.StatusOK},
				{"other customer", beta, http.StatusNotFound},
			} {
				code, body := get(ep, c.token)
				if code != c.want {
					t.Errorf("%s: status %d, want %d (%s)", c.who, code, c.want, body)
				}
				if c.want == http.StatusNotFound && strings.Contains(body, "Acme") {
					t.Errorf("%s: 404 body leaks data: %s", c.who, body)
				}
			}
		})
	}

	// Lists show a customer only its own rows, whatever it asks for.
	lists := []struct{ path, key string }{
		{"/api/v1/customers", "customers"}, {"/api/v1/sites", "sites"}, {"/api/v1/devices", "devices"},
		{"/api/v1/contracts", "contracts"}, {"/api/v1/devices?customer=acme", "devices"},
	}
	for _, l := range lists {
		t.Run("list "+l.path, func(t *testing.T) {
			if code, _ := get(l.path, ""); code != http.StatusUnauthorized {
				t.Errorf("no token: %d", code)
			}
			code, body := get(l.path, beta)
			if code != http.StatusOK {
				t.Fatalf("beta: %d %s", code, body)
			}
			var out map[string][]map[string]any
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(err)
			}
			for _, row := range out[l.key] {
				cust, _ := row["customer_id"].(string)
				if cust == "" {
					cust, _ = row["id"].(string)
				}
				if cust != "beta" {
					t.Errorf("beta sees a row of %q: %v", cust, row)
				}
			}
			if code, body := get(l.path, noc); code != http.StatusOK || !strings.Contains(body, "acme") {
				t.Errorf("noc list: %d %s", code, body)
			}
		})
	}

	t.Run("device list carries coverage", func(t *testing.T) {
		_, body := get("/api/v1/devices", noc)
		var out struct {
			Devices []struct {
				ID       string
				Coverage Coverage
			}
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range out.Devices {
			got[d.ID] = d.Coverage.Status + "/" + d.Coverage.Reason
		}
		want := map[string]string{"acme-pacs": "covered/contract", "acme-gw": "covered/contract",
			"acme-ct": "billable/device_not_listed", "beta-ct": "covered/contract"}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("%s coverage = %s, want %s", id, got[id], w)
			}
		}
		if strings.Contains(body, "auth-passphrase-secret") {
			t.Error("API leaks an SNMP passphrase")
		}
	})

	t.Run("bad parameters are 400", func(t *testing.T) {
		for _, p := range []string{"/api/v1/devices?kind=toaster", "/api/v1/sites?include_retired=maybe"} {
			if code, _ := get(p, noc); code != http.StatusBadRequest {
				t.Errorf("%s: %d, want 400", p, code)
			}
		}
		if code, _ := get("/api/v1/nothing-here", noc); code != http.StatusNotFound {
			t.Errorf("unknown endpoint: %d", code)
		}
	})
}
