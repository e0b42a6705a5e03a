package probes

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

// echoSCP serves C-ECHO as the AE title ae on a real listener on
// localhost and returns its port.
func echoSCP(t *testing.T, ae string) int {
	t.Helper()
	srv := &dicomping.Server{AETitle: ae}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, dicomping.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// TestDICOMProbe runs the C-ECHO prober against a real DICOM node on
// localhost: an answer is up, a rejected association is a configuration
// fault (never an outage), a closed port is a failure, and an answer slower
// than the bound is degraded.
func TestDICOMProbe(t *testing.T) {
	t.Parallel()
	port := echoSCP(t, "PACS")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	device := func(port int, called string) assets.Device {
		return assets.Device{ID: "pacs", DICOM: &assets.DICOMEndpoint{Host: "127.0.0.1", Port: port, CalledAE: called, CallingAE: "VIGIA"}}
	}
	tests := []struct {
		name    string
		prober  *DICOM
		device  assets.Device
		want    Outcome
		details string
	}{
		{"answers", &DICOM{}, device(port, "PACS"), OK, "C-ECHO ok"},
		{"wrong called AE title", &DICOM{}, device(port, "OTHER"), Misconfigured, "called AE title"},
		{"closed port", &DICOM{}, device(closedPort, "PACS"), Failed, "refused"},
		// Every real association takes longer than a nanosecond.
		{"slower than the degraded bound", &DICOM{Slow: time.Nanosecond}, device(port, "PACS"), Degraded, "C-ECHO slow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := tc.prober.Probe(ctx, tc.device)
			if r.Outcome != tc.want || !strings.Contains(r.Detail, tc.details) || r.Prober != "dicom" {
				t.Fatalf("Probe = %+v; want %s with %q", r, tc.want, tc.details)
			}
		})
	}
	if (&DICOM{}).Applies(assets.Device{}) || !(&DICOM{}).Applies(device(port, "PACS")) {
		t.Fatal("Applies must follow the device's dicom endpoint")
	}
}
