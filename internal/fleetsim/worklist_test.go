package fleetsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/worklisttest"
)

// TestFleetWorklists plays an inventory's brokers with their worklist
// folders: one scheduled, one with its folder missing (a broken
// worklist), and a PACS without a worklist check.
func TestFleetWorklists(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 3)
	port := func(a string) string { return a[strings.LastIndex(a, ":")+1:] }
	inv := fmt.Sprintf(`
customers:
  - id: c
    name: Clínica
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s
        name: Sede
        kind: hospital
        devices:
          - {id: broker, name: Broker, kind: broker, dicom: {host: 127.0.0.1, port: %s, called_ae: MWL, worklist: {modality: CT}}}
          - {id: broker-broken, name: Broker roto, kind: broker, dicom: {host: 127.0.0.1, port: %s, called_ae: MWL2, worklist: {modality: CT}}}
          - {id: pacs, name: PACS, kind: pacs, dicom: {host: 127.0.0.1, port: %s, called_ae: PACS}}
`, port(addrs[0]), port(addrs[1]), port(addrs[2]))
	f, err := assets.ParseFile("fleet.yaml", []byte(inv), parseOptions)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "broker"), 0o700); err != nil {
		t.Fatal(err)
	}
	worklisttest.Write(t, filepath.Join(dir, "broker"), worklisttest.Item{PatientName: "Pérez^Ana", PatientID: "P1",
		Accession: "A1", Date: "20261206", Time: "080000", Modality: "CT", StationAE: "CT01"})
	plan := FromInventoryWithWorklists(f, dir)
	start(t, plan.Devices, Options{})

	tests := []struct {
		name, addr, ae string
		want           dicomping.Class
		wantErr        string
		wantItems      int
	}{
		{"scheduled", addrs[0], "MWL", dicomping.ClassOK, "", 1},
		{"folder missing", addrs[1], "MWL2", dicomping.ClassStatus, "0xC000", 0},
		{"no worklist check", addrs[2], "PACS", dicomping.ClassMisconfigured, "abstract syntax not supported", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := dicomping.FindWorklist(ctx, tt.addr, dicomping.WorklistQuery{Modality: "CT"}, dicomping.Options{CalledAETitle: tt.ae})
			if got := dicomping.Classify(err); got != tt.want || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("FindWorklist: %v (%s), want %s with %q", err, got, tt.want, tt.wantErr)
			}
			if len(res.Items) != tt.wantItems {
				t.Fatalf("%d items, want %d", len(res.Items), tt.wantItems)
			}
		})
	}
}
