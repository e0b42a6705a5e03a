package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

var biomedTestdata = filepath.Join("..", "..", "biomed", "testdata")

// The commands end to end: the fleet and its programmes imported (twice:
// the second changes nothing), the alert imported as JSON opens
// exactly the tickets of the matching serials, the same alert as CSV opens
// none, and the biomedical report lists them.
func TestBiomedCommands(t *testing.T) {
	url := pgtest.URL(t)
	db := []string{"--database-url", url}
	if code, _, stderr := runVigia(t, append([]string{"import"}, append(db, filepath.Join(biomedTestdata, "fleet.yaml"))...)...); code != 0 {
		t.Fatalf("import fleet: %d %s", code, stderr)
	}
	importProgrammes := func() biomed.ImportSummary {
		t.Helper()
		code, out, stderr := runVigia(t, append([]string{"biomed", "import"}, append(db, filepath.Join(biomedTestdata, "programmes.yaml"))...)...)
		if code != 0 {
			t.Fatalf("biomed import: %d %s", code, stderr)
		}
		var sum biomed.ImportSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return sum
	}
	first := importProgrammes()
	// Four Vent 500s on two calendar tasks (monthly, quarterly) and one
	// device's own programme: at least 3 monthly work orders each in 90 days.
	if first.Programmes != 3 || first.Calibration != 1 || first.Plan.Planned < 12 {
		t.Fatalf("first import %+v", first)
	}
	if again := importProgrammes(); again.Programmes != 0 || again.Plan.Planned != 0 || again.Plan.Opened != 0 || again.Unchanged != 4 {
		t.Fatalf("second import changed something: %+v", again)
	}

	dir := t.TempDir()
	jsonFile, csvFile := filepath.Join(dir, "alerts.json"), filepath.Join(dir, "alerts.csv")
	os.WriteFile(jsonFile, []byte(`[{"source": "INVIMA", "reference": "ALERTA-2026-123", "date": "2026-11-30", "manufacturer": "Acme Medical",
		"models": ["Vent 500"], "serials": ["VX100", {"from": "VX200", "to": "VX299"}], "patient_risk": true, "action": "Reemplazar válvula"}]`), 0o600)
	os.WriteFile(csvFile, []byte("source,reference,date,manufacturer,models,serials,patient_risk,action\n"+
		"INVIMA,ALERTA-2026-123,2026-11-30,Acme Medical,Vent 500,VX100;VX200..VX299,true,Reemplazar válvula\n"), 0o600)
	importAlerts := func(file string) biomed.AlertSummary {
		t.Helper()
		code, out, stderr := runVigia(t, append([]string{"alerts", "import"}, append(db, file)...)...)
		if code != 0 {
			t.Fatalf("alerts import %s: %d %s", file, code, stderr)
		}
		var sum biomed.AlertSummary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return sum
	}
	sum := importAlerts(jsonFile)
	var got []string
	for _, tk := range sum.Tickets {
		got = append(got, tk.Serial)
		if tk.Severity != 2 {
			t.Errorf("ticket %s severity %d; want 2 (patient risk)", tk.Ticket, tk.Severity)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"VX100", "VX250", "VX260"}) {
		t.Fatalf("alert tickets for serials %v; want VX100, VX250, VX260", got)
	}
	if again := importAlerts(csvFile); len(again.Tickets) != 0 || again.New != 0 || again.Matched != 3 {
		t.Fatalf("the same alert as CSV: %+v", again)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"source": "INVIMA"}]`), 0o600)
	if code, _, stderr := runVigia(t, append([]string{"alerts", "import"}, append(db, bad)...)...); code != 1 || !strings.Contains(stderr, "reference is required") {
		t.Fatalf("invalid alert file: exit %d, %s", code, stderr)
	}

	today := time.Now().Format(time.DateOnly)
	code, out, stderr := runVigia(t, append([]string{"report", "biomedical", "--customer", "hsr", "--from", "2026-01-01", "--to",
		time.Now().AddDate(0, 0, 100).Format(time.DateOnly)}, db...)...)
	if code != 0 {
		t.Fatalf("report: %d %s", code, stderr)
	}
	for _, want := range []string{"compliance,on_time,late,missed,pending", "work_order,", "alert,INVIMA,ALERTA-2026-123,2026-11-30,true,hsr-vent-1,VX100,VG-",
		"alert,INVIMA,ALERTA-2026-123,2026-11-30,true,hsr-vent-2,VX250,VG-", "calibration,hsr-mon-1,12,"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q (today %s):\n%s", want, today, out)
		}
	}
	if strings.Contains(out, "cmf-vent-9") {
		t.Errorf("hsr's report shows cmf's device:\n%s", out)
	}
}
