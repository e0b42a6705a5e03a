package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
	"github.com/vigia-noc/vigia/reports"
)

// monthTestdata holds the fixture month: inventory, a policy file and the
// hand-computed figures (README.md there says how each was worked out).
var monthTestdata = filepath.Join("..", "..", "reports", "testdata", "month")

// monthFixture writes November 2026 of the customer clinica through the
// owners' own functions where they have them (tickets, pauses, windows,
// visits, billing) and as rows where only the probes write them
// (transitions, outages); it returns the database URL.
func monthFixture(t *testing.T) string {
	t.Helper()
	url := pgtest.URL(t)
	ctx := context.Background()
	conn, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := os.ReadFile(filepath.Join(monthTestdata, "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := assets.ParseFile("inventory.yaml", raw, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	bogota, _ := time.LoadLocation("America/Bogota")
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, bogota) }
	inv := assets.NewStore(conn)
	if _, err := inv.Import(ctx, file, time.Date(2026, 10, 1, 0, 0, 0, 0, bogota), false); err != nil {
		t.Fatal(err)
	}

	// Transitions: every device up since 1 October, then the month's.
	transition := func(device, from, to string, at time.Time) {
		t.Helper()
		conn.MustExec(`INSERT INTO device_transitions (device_id, from_state, to_state, at) VALUES ($1, $2, $3, $4)`, device, from, to, at)
	}
	for _, d := range []string{"cl-pacs", "cl-ris", "cl-ct", "cl-norte-gw", "cl-us"} {
		transition(d, "unknown", "up", time.Date(2026, 10, 1, 0, 0, 0, 0, bogota))
	}
	for _, tr := range []struct {
		device      string
		state       string
		from, until time.Time
	}{
		{"cl-pacs", "down", at(13, 22, 0), at(14, 10, 0)},     // Friday night: no covered time
		{"cl-pacs", "down", at(17, 9, 0), at(17, 11, 30)},     // 9000 s
		{"cl-pacs", "degraded", at(18, 14, 0), at(18, 16, 0)}, // 7200 s × 0.5
		{"cl-pacs", "down", at(19, 8, 0), at(19, 8, 30)},      // inside the firmware window
		{"cl-ris", "down", at(7, 2, 0), at(7, 5, 0)},          // Saturday night, 24x7: 10800 s
		{"cl-ris", "down", at(8, 1, 30), at(8, 2, 30)},        // inside the Sunday window
		{"cl-ct", "down", at(23, 10, 0), at(24, 10, 0)},       // 8 h Monday + 2 h Tuesday
		{"cl-ct", "down", at(25, 15, 0), at(25, 17, 0)},       // the customer's doing
		{"cl-norte-gw", "down", at(26, 9, 0), at(26, 12, 0)},  // the hospital's uplink
		{"cl-us", "unreachable", at(26, 9, 0), at(26, 12, 0)},
	} {
		transition(tr.device, "up", tr.state, tr.from)
		transition(tr.device, tr.state, "up", tr.until)
	}
	ps := probes.NewStore(conn)
	for _, w := range []*probes.Window{
		{Scope: "device", ScopeID: "cl-pacs", Reason: "Actualización de firmware", StartsAt: at(19, 7, 0), EndsAt: at(19, 9, 0)},
		{Scope: "site", ScopeID: "cl-central", Reason: "Respaldo semanal", StartsAt: at(1, 0, 0), EndsAt: time.Date(2026, 12, 1, 0, 0, 0, 0, bogota),
			Cron: "0 1 * * 0", TimeZone: "America/Bogota", Duration: 2 * time.Hour},
	} {
		if err := ps.AddWindow(ctx, w, "ana"); err != nil {
			t.Fatal(err)
		}
	}

	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	staff := maintenance.Actor{Name: "ana", Role: "noc"}
	open := func(device string, severity int, title string, when time.Time) maintenance.Ticket {
		t.Helper()
		tk, err := tickets.Create(ctx, staff, maintenance.CreateInput{CustomerID: "clinica", DeviceIDs: []string{device}, Severity: severity, Title: title}, when)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	act := func(tk maintenance.Ticket, action string, in maintenance.ActionInput, when time.Time) {
		t.Helper()
		if _, err := tickets.Act(ctx, staff, tk.Number, action, in, when); err != nil {
			t.Fatalf("%s %s: %v", tk.Number, action, err)
		}
	}
	watcher := maintenance.NewSLAWatcher(tickets, nil, quietLog)
	watch := func(when time.Time) {
		t.Helper()
		if _, err := watcher.RunDue(ctx, when); err != nil {
			t.Fatal(err)
		}
	}
	t1 := open("cl-pacs", 1, "PACS central caído", at(13, 22, 0))
	act(t1, "acknowledge", maintenance.ActionInput{}, at(14, 6, 0))
	act(t1, "solve", maintenance.ActionInput{Text: "Servicio reiniciado"}, at(14, 10, 0))
	watch(at(14, 10, 30))
	t2 := open("cl-pacs", 2, "PACS lento", at(17, 9, 0))
	act(t2, "pause", maintenance.ActionInput{Reason: "manufacturer", Text: "Caso abierto con el fabricante"}, at(17, 10, 0))
	act(t2, "resume", maintenance.ActionInput{}, at(17, 11, 0))
	act(t2, "assign", maintenance.ActionInput{Assignee: "laura"}, at(17, 23, 0))
	watch(at(18, 0, 0))
	t3 := open("cl-ct", 3, "Artefactos en el tomógrafo", at(23, 10, 0))
	act(t3, "acknowledge", maintenance.ActionInput{}, at(23, 11, 0))
	act(t3, "pause", maintenance.ActionInput{Reason: "customer", Text: "Sala ocupada"}, at(23, 12, 0))
	act(t3, "resume", maintenance.ActionInput{}, at(24, 12, 0))
	watch(at(24, 13, 0))
	t4 := open("cl-ct", 3, "Tomógrafo apagado por el cliente", at(25, 15, 0))

	// The customer-caused outage and its ticket.
	var outageID int64
	if err := conn.Get(&outageID, `INSERT INTO outages (kind, customer_id, site_id, device_id, cause, started_at, ended_at)
		VALUES ('device', 'clinica', 'cl-central', 'cl-ct', 'refused', $1, $2) RETURNING id`, at(25, 15, 0), at(25, 17, 0)); err != nil {
		t.Fatal(err)
	}
	conn.MustExec(`INSERT INTO ticket_outages (outage_id, ticket_id, attached_at) VALUES ($1, $2, $3)`, outageID, t4.ID, at(25, 15, 0))

	field := dispatch.NewStore(conn, inv, tickets)
	noc := dispatch.NOC("ana")
	if err := field.FlagBillable(ctx, noc, dispatch.FlagInput{TicketID: t4.ID, Cause: "customer_fault", Note: "Equipo desconectado de la red eléctrica"}, at(25, 16, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := field.RecordWork(ctx, noc, dispatch.WorkInput{TicketID: t4.ID, Kind: "remote", Activity: "diagnosis",
		StartedAt: at(25, 15, 30), EndedAt: at(25, 16, 30), WithoutQuote: true}, at(25, 16, 30)); err != nil {
		t.Fatal(err)
	}
	act(t4, "close", maintenance.ActionInput{Reason: maintenance.CloseResolved, Text: "Equipo reconectado"}, at(25, 17, 30))
	watch(at(25, 18, 0))

	// The visit of t3: on site Wednesday 09:00–11:00, one part used.
	if _, err := field.PutEngineer(ctx, noc, "eng-bog", dispatch.EngineerInput{Name: "Laura Rincón", Email: "laura@vigia.example", HomeCity: "Bogotá",
		Biomedical: true, Modalities: []string{"CT"}, Manufacturers: []string{"Siemens"}, Calendar: dispatch.CalendarSpec{Preset: "co-8x5"}}, at(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	v, err := field.CreateVisit(ctx, noc, dispatch.VisitInput{TicketID: t3.ID, Engineers: []string{"eng-bog"}}, at(24, 13, 0))
	if err != nil {
		t.Fatal(err)
	}
	ws, we := at(25, 8, 0), at(25, 12, 0)
	if _, err := field.Transition(ctx, noc, v.ID, dispatch.TransitionInput{To: dispatch.VisitScheduled, WindowStart: &ws, WindowEnd: &we}, at(24, 14, 0)); err != nil {
		t.Fatal(err)
	}
	eng := dispatch.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bog"}
	if _, err := field.Transition(ctx, eng, v.ID, dispatch.TransitionInput{To: dispatch.VisitOnSite}, at(25, 9, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := field.Outcome(ctx, eng, v.ID, dispatch.OutcomeInput{WorkPerformed: "Calibración del detector", Activity: "repair",
		PartsUsed: []dispatch.PartUsed{{Manufacturer: "Siemens", PartNumber: "DET-9", Quantity: 1}},
		Signature: dispatch.SignatureInput{Name: "Dra. Mejía", Kind: "typed", Value: "Dra. Mejía"}}, at(25, 11, 0)); err != nil {
		t.Fatal(err)
	}
	watch(at(30, 12, 0))
	return url
}

// TestMonthlyReportFixture: `vigia report monthly --format json` gives the
// hand-computed figures of the fixture month exactly, and the HTML and the
// PDF (read back with pdftotext) carry the same numbers.
func TestMonthlyReportFixture(t *testing.T) {
	url := monthFixture(t)
	base := []string{"report", "monthly", "--database-url", url, "--customer", "clinica", "--month", "2026-11",
		"--policies", filepath.Join(monthTestdata, "policies.yaml")}
	code, out, stderr := runVigia(t, append(base, "--format", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rawWant, err := os.ReadFile(filepath.Join(monthTestdata, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(rawWant, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) < 14 {
		t.Fatalf("expected.json pins only %d sections", len(want))
	}
	// Every section expected.json names must match to the last field.
	for key, w := range want {
		t.Run(key, func(t *testing.T) {
			g := got[key]
			if key == "availability" {
				g = pick(g, w)
			}
			if !reflect.DeepEqual(g, w) {
				gj, _ := json.MarshalIndent(g, "", "  ")
				wj, _ := json.MarshalIndent(w, "", "  ")
				t.Errorf("%s:\n got %s\nwant %s", key, gj, wj)
			}
		})
	}

	figures := []string{
		"98.1481 %", "94.6809 %", "99.5775 %", "100.0000 %", "98.4821 %", "97.6190 %", // availability
		"12600", "36000", "10800", "7200", "3600", // downtime and excluded seconds
		"190.00", "720.00", // covered hours, 8x5 and 24x7
		"24.00", "1.00", // pause hours: customer, manufacturer
		"1:00:00", "-1:00:00", "55:00:00", "43:30:00", // SLA margins
		"VG-2026-000001", "VG-2026-000004", "DET-9", "180000.00", "18.00",
		"Informe mensual de servicio", "Disponibilidad", "incumplido",
	}
	code, html, stderr := runVigia(t, append(base, "--format", "html")...)
	if code != 0 {
		t.Fatalf("html: exit %d: %s", code, stderr)
	}
	for _, f := range figures {
		if !strings.Contains(html, f) {
			t.Errorf("HTML lacks %q", f)
		}
	}

	pdftotext := testpeer.Command(t, "pdftotext", "poppler-utils")
	if _, err := os.Stat(reports.Chromium); err != nil {
		testpeer.Missing(t, "chromium", "chromium")
	}
	code, pdf, stderr := runVigia(t, append(base, "--format", "pdf")...)
	if code != 0 {
		t.Fatalf("pdf: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(pdf, "%PDF-") {
		t.Fatalf("not a PDF: %.40q", pdf)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.pdf"), []byte(pdf), 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(pdftotext, "-layout", filepath.Join(dir, "r.pdf"), "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	for _, f := range figures {
		if !strings.Contains(string(text), f) {
			t.Errorf("PDF text lacks %q", f)
		}
	}
	if t.Failed() {
		t.Logf("PDF text:\n%s", text)
	}
}

// pick keeps of got only the keys want has (recursively through objects),
// so that expected.json can leave out what it does not pin.
func pick(got, want any) any {
	gm, ok1 := got.(map[string]any)
	wm, ok2 := want.(map[string]any)
	if !ok1 || !ok2 {
		return got
	}
	out := map[string]any{}
	for k, w := range wm {
		out[k] = pick(gm[k], w)
	}
	return out
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
