package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/hl7test"
	"github.com/vigia-noc/vigia/internal/worklisttest"
)

func TestWorklistCommand(t *testing.T) {
	t.Parallel()
	today := time.Now().Format("20060102")
	dir := t.TempDir()
	worklisttest.Write(t, dir,
		worklisttest.Item{PatientName: "Pérez^Ana", PatientID: "P1", Accession: "A1", Date: today, Time: "080000", Modality: "CT", StationAE: "CT01"},
		worklisttest.Item{PatientName: "Gómez^Luis", PatientID: "P2", Accession: "A2", Date: today, Time: "093000", Modality: "CT", StationAE: "CT02"},
		worklisttest.Item{PatientName: "Ruiz^Eva", PatientID: "P3", Accession: "A3", Date: today, Time: "100000", Modality: "MR", StationAE: "MR01"},
		worklisttest.Item{PatientName: "Soto^Rosa", PatientID: "P4", Accession: "A4", Date: "20200101", Time: "100000", Modality: "CT", StationAE: "CT01"})
	addr := echoTestServer(t, &dicomping.Server{AETitle: "MWL", Worklist: dicomping.WorklistDir(dir)})
	broken := echoTestServer(t, &dicomping.Server{AETitle: "MWL", Worklist: dicomping.WorklistDir(filepath.Join(dir, "missing"))})

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"today's CT", []string{"worklist", "--called", "MWL", "--modality", "CT", addr}, 0, []string{
			today + " 080000 CT       CT01             A1           P1               Pérez^Ana",
			today + " 093000 CT       CT02             A2           P2               Gómez^Luis"}},
		{"station and date", []string{"worklist", "--called", "MWL", "--station", "CT01", "--date", "20200101", addr}, 0, []string{"Soto^Rosa", "OK 1 items rtt="}},
		{"nothing scheduled", []string{"worklist", "--called", "MWL", "--modality", "US", addr}, 0, []string{"OK 0 items rtt="}},
		{"wrong called AE", []string{"worklist", "--called", "OTHER", addr}, echoExitRejected, []string{"REJECTED " + addr + " called=OTHER", "called AE title not recognized"}},
		{"refused", []string{"worklist", closedPort(t)}, echoExitDown, []string{"DOWN "}},
		{"failure status", []string{"worklist", "--called", "MWL", broken}, echoExitStatus, []string{"STATUS ", "C-FIND status 0xC000"}},
		{"bad date", []string{"worklist", "--date", "yesterday", addr}, echoExitUsage, nil},
		{"bad modality", []string{"worklist", "--modality", "c t!", addr}, echoExitUsage, nil},
		{"no address", []string{"worklist"}, echoExitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := echoRun(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if _, out, _ := echoRun(t, "worklist", "--called", "MWL", "--modality", "CT", addr); !regexp.MustCompile(`(?m)^OK 2 items rtt=\S+$`).MatchString(out) {
		t.Errorf("summary line missing:\n%s", out)
	}

	t.Run("json", func(t *testing.T) {
		code, out, _ := echoRun(t, "worklist", "--json", "--called", "MWL", "--modality", "CT", addr)
		var r struct {
			OK    bool                     `json:"ok"`
			Class string                   `json:"class"`
			Date  string                   `json:"date"`
			Total int                      `json:"total"`
			Items []dicomping.WorklistItem `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
			t.Fatalf("exit %d, %v: %s", code, err, out)
		}
		if !r.OK || r.Class != "ok" || r.Date != today || r.Total != 2 || len(r.Items) != 2 || r.Items[0].PatientName != "Pérez^Ana" {
			t.Fatalf("report %+v", r)
		}
	})
}

func TestHL7Command(t *testing.T) {
	t.Parallel()
	aa, ae, silent := hl7test.Start(t, hl7test.AA), hl7test.Start(t, hl7test.AE), hl7test.Start(t, hl7test.Silent)
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"AA", []string{"hl7", "--receiving-app", "RIS", addr(aa)}, 0, "OK " + addr(aa) + " ack=AA rtt="},
		{"AE", []string{"hl7", addr(ae)}, hl7ExitRefused, "REFUSED hl7 " + addr(ae) + ": HL7 ACK AE (application error): Unknown receiving application"},
		{"no answer", []string{"hl7", "--timeout", "500ms", addr(silent)}, hl7ExitDown, "DOWN hl7 " + addr(silent) + ": no ACK: context deadline exceeded"},
		{"refused", []string{"hl7", closedPort(t)}, hl7ExitDown, "connection refused"},
		{"JSON", []string{"hl7", "--json", addr(ae)}, hl7ExitRefused, `"class":"misconfigured","ack":"AE"`},
		{"bad timeout", []string{"hl7", "--timeout", "0s", addr(aa)}, echoExitUsage, ""},
		{"no address", []string{"hl7"}, echoExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := echoRun(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.wantCode, tt.wantOut, out, errOut)
			}
		})
	}
}
