package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// echoRun runs the vigia CLI in-process and returns its exit code and output.
func echoRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// echoTestServer serves a Verification SCP on loopback for the test.
func echoTestServer(t *testing.T, s *dicomping.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, dicomping.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestEchoCommand(t *testing.T) {
	t.Parallel()
	sim := echoTestServer(t, &dicomping.Server{AETitle: "SIM"})
	failing := echoTestServer(t, &dicomping.Server{AETitle: "SIM", Verify: func(dicomping.Association) uint16 { return 0x0122 }})
	// A listener that accepts and never answers: a hung service.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	refused := closedPort(t)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string // regular expression the whole stdout must match
		wantErr  string // substring of stderr
	}{
		{"success", []string{"--called", "SIM", sim}, 0,
			`^OK ` + regexp.QuoteMeta(sim) + ` called=SIM rtt=[0-9.]+[µm]?s\n$`, ""},
		{"flags after the address", []string{sim, "--called", "SIM", "--calling", "NOC1"}, 0, `^OK .* called=SIM rtt=`, ""},
		{"wrong called AE is a rejection", []string{"--called", "WRONG", sim}, 2,
			`^REJECTED .* called=WRONG: associate: association rejected: rejected-permanent by service-user: called AE title not recognized\n$`, ""},
		{"connection refused", []string{"--called", "SIM", refused}, 1, `^DOWN .*connection refused\n$`, ""},
		{"no answer before the timeout", []string{"--timeout", "200ms", hung.Addr().String()}, 1, `^DOWN .*deadline exceeded`, ""},
		{"failure status", []string{"--called", "SIM", failing}, 3, `^STATUS .*C-ECHO status 0x0122: refused: SOP class not supported\n$`, ""},
		{"repeat", []string{"--called", "SIM", "--repeat", "3", "--interval", "1ms", sim}, 0,
			`^(OK .*\n){3}--- .*: 3 echoes, 3 ok, 0 failed, rtt min/avg/max = \S+/\S+/\S+\n$`, ""},
		{"repeat reports the first failure", []string{"--called", "WRONG", "--repeat", "2", "--interval", "1ms", sim}, 2,
			`^(REJECTED .*\n){2}--- .*: 2 echoes, 0 ok, 2 failed\n$`, ""},
		{"bad flag", []string{"--bogus", sim}, 64, `^$`, "flag provided but not defined: -bogus"},
		{"no address", []string{"--called", "SIM"}, 64, `^$`, "want exactly one HOST:PORT"},
		{"address without port", []string{"pacs.example.org"}, 64, `^$`, "is not HOST:PORT"},
		{"AE title too long", []string{"--called", "SEVENTEEN-CHARS-X", sim}, 64, `^$`, "longer than 16"},
		{"--ca without --tls", []string{"--ca", "x.pem", sim}, 64, `^$`, "need --tls"},
		{"help", []string{"--help"}, 0, `(?s)Usage: vigia echo.*64  bad command line`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := echoRun(t, append([]string{"echo"}, tt.args...)...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !regexp.MustCompile(tt.wantOut).MatchString(stdout) {
				t.Errorf("stdout %q does not match %q", stdout, tt.wantOut)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantErr)
			}
		})
	}
}

func TestEchoCommandJSON(t *testing.T) {
	t.Parallel()
	sim := echoTestServer(t, &dicomping.Server{AETitle: "SIM"})
	tests := []struct {
		name      string
		called    string
		wantCode  int
		wantClass string
		check     func(t *testing.T, r map[string]any)
	}{
		{"success", "SIM", 0, "ok", func(t *testing.T, r map[string]any) {
			if r["ok"] != true || r["rtt_seconds"].(float64) <= 0 || r["status"] != 0.0 ||
				r["peer_implementation_version_name"] != dicomping.ImplementationVersionName || r["peer_max_pdu_length"] != 16384.0 {
				t.Errorf("report %v", r)
			}
		}},
		{"rejected", "WRONG", 2, "misconfigured", func(t *testing.T, r map[string]any) {
			rej, _ := r["rejection"].(map[string]any)
			if r["phase"] != "associate" || rej["reason"] != 7.0 || rej["description"] != "rejected-permanent by service-user: called AE title not recognized" {
				t.Errorf("report %v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := echoRun(t, "echo", "--json", "--called", tt.called, sim)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s %s", code, tt.wantCode, stdout, stderr)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
			}
			if r["class"] != tt.wantClass || r["addr"] != sim || r["called_ae"] != tt.called {
				t.Errorf("report %v", r)
			}
			tt.check(t, r)
		})
	}
}

// TestEchoCommandAgainstRealPeers runs the CLI against dcmtk's storescp and
// against Orthanc, which checks the called AE title as a PACS would.
func TestEchoCommandAgainstRealPeers(t *testing.T) {
	t.Parallel()
	storescp := echoStartStorescp(t)
	orthanc := orthanctest.Start(t, "ORTHANC").Addr()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"storescp", []string{"--called", "STORESCP", storescp}, 0, "OK " + storescp + " called=STORESCP rtt="},
		{"orthanc", []string{"--called", "ORTHANC", orthanc}, 0, "OK " + orthanc + " called=ORTHANC rtt="},
		{"orthanc with a wrong called AE", []string{"--called", "PACS", orthanc}, 2,
			"REJECTED " + orthanc + " called=PACS: associate: association rejected: rejected-permanent by service-user: called AE title not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := echoRun(t, append([]string{"echo"}, tt.args...)...)
			if code != tt.wantCode || !strings.HasPrefix(stdout, tt.wantOut) {
				t.Fatalf("exit %d (want %d), stdout %q (want prefix %q), stderr %q", code, tt.wantCode, stdout, tt.wantOut, stderr)
			}
		})
	}
}

func echoStartStorescp(t *testing.T) string {
	storescp := testpeer.Command(t, "storescp", "dcmtk")
	port := testpeer.FreePort(t)
	return testpeer.Start(t, port, storescp, "--aetitle", "STORESCP", "--output-directory", t.TempDir(), strconv.Itoa(port))
}

// echoTestPKI writes a throwaway CA, a server certificate for 127.0.0.1
// and a client certificate as PEM files, and returns their paths by name:
// ca, server.crt, server.key, client.crt, client.key.
func echoTestPKI(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	write := func(name, typ string, der []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigia test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca", "CERTIFICATE", caDER)
	for i, name := range []string{"server", "client"} {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".crt", "CERTIFICATE", der)
		write(name+".key", "PRIVATE KEY", keyDER)
	}
	return paths
}
