package dicomping

// Interoperability with real DICOM implementations: dcmtk (storescp,
// echoscu) and Orthanc, started by the tests on free loopback ports.

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

func startStorescp(t *testing.T) string {
	storescp := testpeer.Command(t, "storescp", "dcmtk")
	port := testpeer.FreePort(t)
	return testpeer.Start(t, port, storescp, "--aetitle", "STORESCP", "--output-directory", t.TempDir(), strconv.Itoa(port))
}

func TestEchoAgainstRealPeers(t *testing.T) {
	t.Parallel()
	storescp := startStorescp(t)
	orthanc := orthanctest.Start(t, "ORTHANC").Addr()

	tests := []struct {
		name      string
		addr      string
		called    string
		wantClass Class
		wantErr   string
	}{
		{name: "storescp", addr: storescp, called: "STORESCP", wantClass: ClassOK},
		{name: "orthanc", addr: orthanc, called: "ORTHANC", wantClass: ClassOK},
		{name: "orthanc wrong called AE", addr: orthanc, called: "NOT-ORTHANC", wantClass: ClassMisconfigured,
			wantErr: "rejected-permanent by service-user: called AE title not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := Echo(ctx, tt.addr, Options{CallingAETitle: "VIGIATEST", CalledAETitle: tt.called})
			if got := Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.wantClass)
			}
			if tt.wantErr != "" {
				var rj *RejectedError
				if !errors.As(err, &rj) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a *RejectedError saying %q", err, tt.wantErr)
				}
				return
			}
			if res.PeerImplementationClassUID == "" || res.PeerMaxPDULength == 0 && tt.name == "storescp" {
				t.Errorf("peer identity not decoded: %+v", res)
			}
			if res.RTT <= 0 || res.Associate <= 0 || res.Echo <= 0 || res.Release <= 0 ||
				res.Connect+res.Associate+res.Echo+res.Release > res.RTT {
				t.Errorf("phase times do not add up: %+v", res)
			}
			if res.TransferSyntax != ImplicitVRLittleEndian && res.TransferSyntax != ExplicitVRLittleEndian {
				t.Errorf("transfer syntax %q", res.TransferSyntax)
			}
		})
	}
}

func TestEchoscuAgainstServer(t *testing.T) {
	t.Parallel()
	echoscu := testpeer.Command(t, "echoscu", "dcmtk")
	addr := startServer(t, &Server{AETitle: "VIGIASCP", AllowedCallingAETitles: []string{"ECHOSCU", "OTHER"}})
	host, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		name     string
		args     []string
		wantExit bool // whether echoscu must fail
		wantOut  string
	}{
		// echoscu 3.6.7 has no -xe/-xi: -pts n proposes its first n
		// transfer syntaxes (implicit LE, explicit LE, explicit BE...),
		// -ppc n proposes Verification in n presentation contexts.
		{name: "default transfer syntaxes", args: []string{"-aec", "VIGIASCP"},
			wantOut: "Accepted Transfer Syntax: =LittleEndianImplicit"},
		{name: "implicit VR only", args: []string{"-aec", "VIGIASCP", "-pts", "1"},
			wantOut: "Accepted Transfer Syntax: =LittleEndianImplicit"},
		{name: "all transfer syntaxes incl. big endian and JPEG", args: []string{"-aec", "VIGIASCP", "-pts", "38"},
			wantOut: "Received Echo Response (Success)"},
		{name: "128 presentation contexts", args: []string{"-aec", "VIGIASCP", "-ppc", "128"},
			wantOut: "Context ID:        255 (Accepted)"},
		{name: "several echoes", args: []string{"-aec", "VIGIASCP", "--repeat", "3"}, wantOut: "Received Echo Response (Success)"},
		{name: "wrong called AE", args: []string{"-aec", "WRONG"}, wantExit: true,
			wantOut: "Reason: Called AE Title Not Recognized"},
		{name: "calling AE not allowed", args: []string{"-aec", "VIGIASCP", "-aet", "INTRUDER"}, wantExit: true,
			wantOut: "Reason: Calling AE Title Not Recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"-d", "-to", "5", "-aet", "ECHOSCU"}, tt.args...)
			out, err := exec.CommandContext(ctx, echoscu, append(args, host, port)...).CombinedOutput()
			if tt.wantExit != (err != nil) {
				t.Fatalf("echoscu %v: err=%v, want failure %v\n%s", tt.args, err, tt.wantExit, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Fatalf("echoscu output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}

// startServer serves s on a loopback port until the test ends.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}
