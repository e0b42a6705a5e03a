package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

// The device view lists the device's history (the API's, worded in the
// reader's language) to the NOC and to the device's own hospital; another
// hospital gets not found.
func TestDeviceViewHistory(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "en"})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "cmf", Role: auth.RoleCustomer, CustomerID: "cmf"})
	at := h.clock.Now().Add(-time.Hour)
	for _, q := range []string{
		`INSERT INTO device_transitions (device_id, from_state, to_state, evidence, at)
			VALUES ('hsr-pacs', 'up', 'degraded', '{"probes":[{"prober":"trap","detail":"trap: UPS running on battery"}]}', $1)`,
		`INSERT INTO device_events (kind, customer_id, site_id, device_id, detail, at) VALUES ('storage_trend', 'hsr', 'hsr-central', 'hsr-pacs',
			'{"volumes":[{"volume":"/archive","filling":true,"full_at":"2026-12-20T00:00:00Z","days":9,"severity":3}]}', $1::timestamptz + interval '1 minute')`,
		`INSERT INTO device_traps (device_id, customer_id, site_id, at, source, version, inform, trap_oid, rule, effect, condition, varbinds)
			VALUES ('hsr-pacs', 'hsr', 'hsr-central', $1::timestamptz + interval '2 minutes', '127.0.0.1:5000', 'v3', true,
			'.1.3.6.1.6.3.1.1.5.3', 'linkDown', 'interface_down', 'interface:3', '[]')`,
	} {
		if _, err := h.db.Exec(q, at); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		user, path string
		code       int
		want       []string
	}{
		{"ana", "/console/noc/devices/hsr-pacs", 200, []string{"Trap linkDown", "v3 · inform · interface down · interface:3",
			"Storage forecast", "/archive full in ~9 days (2026-12-20)", "Up → Degraded", "trap: UPS running on battery"}},
		{"hsr", "/console/portal/devices/hsr-pacs", 200, []string{"Trap linkDown", "interfaz caída", "Pronóstico de almacenamiento",
			"/archive lleno en ~9 días", "Operativo → Degradado"}},
		{"hsr", "/console/portal/devices/hsr-ct1", 200, []string{"Sin eventos registrados."}},
		{"hsr", "/console/portal/devices/cmf-pacs", 404, nil},
		{"cmf", "/console/portal/devices/hsr-pacs", 404, nil},
		{"cmf", "/console/noc/devices/hsr-pacs", 403, nil},
		{"ana", "/console/noc/devices/nope", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.path, func(t *testing.T) {
			c := h.client(t)
			c.login(tt.user, testPassword)
			code, body := c.get(tt.path)
			if code != tt.code {
				t.Fatalf("%d, want %d", code, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if code != http.StatusOK && strings.Contains(body, "linkDown") {
				t.Error("a refusal shows the history")
			}
		})
	}
}
