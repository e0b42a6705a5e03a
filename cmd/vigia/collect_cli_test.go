package main

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

// The uplink to the NOC is TLS: the CA given with --ca is trusted, an
// unknown one is not; plain http only to loopback.
func TestUpstreamTLSAndURL(t *testing.T) {
	noc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer noc.Close()
	ca := filepath.Join(t.TempDir(), "noc-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: noc.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, ca, want string
	}{
		{"the NOC's CA", ca, ""},
		{"the system's CAs", "", "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := upstreamClient(tc.ca)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Get(noc.URL + "/api/v1/collector/config")
			if err == nil {
				resp.Body.Close()
			}
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := upstreamClient(filepath.Join(t.TempDir(), "none.pem")); err == nil {
		t.Error("a missing --ca file is accepted")
	}
	for url, ok := range map[string]bool{"https://noc.example.com": true, "http://127.0.0.1:8080": true, "http://localhost:8080": true,
		"http://noc.example.com": false, "ftp://noc.example.com": false, "": false, "https://": false} {
		if _, err := upstreamURL(url); (err == nil) != ok {
			t.Errorf("upstream %q: %v", url, err)
		}
	}
}

// vigia collector create|revoke and token revoke, as an operator runs them.
func TestCollectorAndRevokeCommands(t *testing.T) {
	url := pgtest.URL(t)
	inventory := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(inventory, []byte(`
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - {id: site-a, name: Sede Norte, kind: hospital}
  - id: cmf
    name: Clínica Miraflores
    country: PE
    time_zone: America/Lima
    sites:
      - {id: cmf-main, name: Sede Miraflores, kind: hospital}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "import", "--database-url", url, inventory); code != 0 {
		t.Fatalf("import: %s %s", out, errs)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"create", []string{"collector", "create", "--customer", "hsr", "--site", "site-a"}, 0, "vigia_col_", "collector 1 created (site-a)"},
		{"a site taken", []string{"collector", "create", "--customer", "hsr", "--site", "site-a"}, 2, "", `site "site-a" already has a collector`},
		{"another customer's site", []string{"collector", "create", "--customer", "hsr", "--site", "cmf-main"}, 2, "", `no active site "cmf-main" of customer "hsr"`},
		{"no site", []string{"collector", "create", "--customer", "hsr"}, 2, "", "at least one --site"},
		{"revoke", []string{"collector", "revoke", "1"}, 0, "collector 1 revoked", ""},
		{"revoke again", []string{"collector", "revoke", "1"}, 2, "", "no active collector 1"},
		{"revoke a word", []string{"collector", "revoke", "one"}, 2, "", `collector ID "one" is not a number`},
		{"the site is free again", []string{"collector", "create", "--customer", "hsr", "--site", "site-a", "--name", "norte"}, 0, "vigia_col_", "created (norte)"},
		{"token create", []string{"token", "create", "--role", "noc"}, 0, "vigia_", "token 1 created"},
		{"token revoke", []string{"token", "revoke", "1"}, 0, "token 1 revoked", ""},
		{"token revoke a word", []string{"token", "revoke", "x"}, 2, "", `token ID "x" is not a number`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slices.Clone(tc.args[:2]), append([]string{"--database-url", url}, tc.args[2:]...)...)
			code, out, errs := runCLI(t, args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
}

// collect's trap flags are serve's: an engine ID in hex of 5 to 32 bytes,
// and a trap port that cannot be bound stops it before it starts.
func TestCollectTrapFlags(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("vigia_col_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name  string
		flags []string
		code  int
		want  string
	}{
		{"engine ID not hex", []string{"--snmp-trap-listen", "127.0.0.1:0", "--snmp-trap-engine-id", "zz"}, 2, "want hex digits"},
		{"engine ID too short", []string{"--snmp-trap-listen", "127.0.0.1:0", "--snmp-trap-engine-id", "80001f"}, 2, "want 5 to 32"},
		{"port taken", []string{"--snmp-trap-listen", taken.LocalAddr().String()}, 1, "listen for SNMP traps on " + taken.LocalAddr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"collect", "--upstream", "http://127.0.0.1:1", "--token-file", token, "--data-dir", filepath.Join(dir, "q"),
				"--listen", "127.0.0.1:0"}, tc.flags...)
			code, _, errs := runCLI(t, args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d with %q", code, errs, tc.code, tc.want)
			}
		})
	}
}
