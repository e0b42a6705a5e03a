package main

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
