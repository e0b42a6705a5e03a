package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/sweeps"
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
	conn := openDB(t, url)
	raw, err := os.ReadFile(filepath.Join(monthTestdata, "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := assets.ParseFile("inventory.yaml", raw, parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	bogota, _ := time.LoadLocation("America/Bogota")
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, bogota) }
	inv := assets.NewStore(conn)
	if _, err := inv.Import(ctx, file, time.Date(2026, 10, 1, 0, 0, 0, 0, bogota), false); err != nil {
		t.Fatal(err)
	}
	// The hospital has been a customer since October.
	conn.MustExec(`UPDATE customers SET created_at = $1`, time.Date(2026, 10, 1, 0, 0, 0, 0, bogota))

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
	staff := auth.Actor{Name: "ana", Role: "noc"}
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
	watcher := sweeps.NewSLAWatcher(tickets, nil, quietLog)
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
	noc := auth.NOCActor("ana")
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
	eng := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bog"}
	if _, err := field.Transition(ctx, eng, v.ID, dispatch.TransitionInput{To: dispatch.VisitOnSite}, at(25, 9, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := field.Outcome(ctx, eng, v.ID, dispatch.OutcomeInput{WorkPerformed: "Calibración del detector", Activity: "repair",
		PartsUsed: []dispatch.PartUsed{{Manufacturer: "Siemens", PartNumber: "DET-9", Quantity: 1}},
		Signature: dispatch.SignatureInput{Name: "Dra. Mejía", Kind: "typed", Value: "Dra. Mejía"}}, at(25, 11, 0)); err != nil {
		t.Fatal(err)
	}
	watch(at(30, 12, 0))

	// The biomedical service: the monitor's programme, imported on 20
	// October; its calibration on 6 November; a passed safety test of the
	// CT on t3's visit; a safety alert on the 30th affecting the monitor.
	raw, err = os.ReadFile(filepath.Join(monthTestdata, "biomedical.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	programme, err := biomed.ParseFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	bio := biomed.NewStore(conn, inv, tickets, field)
	if _, err := bio.Import(ctx, programme, time.Date(2026, 10, 20, 9, 0, 0, 0, bogota)); err != nil {
		t.Fatal(err)
	}
	bioStaff := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bog"}
	if _, err := bio.RecordCalibration(ctx, bioStaff, "cl-monitor", biomed.CalibrationInput{CalibratedOn: "2026-11-06", Laboratory: "Metrología Andina",
		CertificateNumber: "MC-2026-118", Filename: "certificado.pdf", Certificate: []byte("%PDF-1.4\n% MC-2026-118\n%%EOF\n")}, at(6, 15, 0)); err != nil {
		t.Fatal(err)
	}
	earth, leak := 0.12, 180.0
	if _, err := bio.RecordTests(ctx, bioStaff, v.ID, []biomed.TestInput{{DeviceID: "cl-ct", Type: "recurrent", Class: "I", AppliedPart: "none",
		Method: "direct", Instrument: biomed.Instrument{Model: "Fluke ESA615", Serial: "4411", CalibratedOn: "2026-06-15"},
		Measurements: biomed.Measurements{ProtectiveEarthOhm: &earth, EquipmentLeakageUA: &leak}}}, at(25, 11, 30)); err != nil {
		t.Fatal(err)
	}
	alerts, err := biomed.ParseAlerts([]byte(`[{"source": "INVIMA", "reference": "ALERTA-2026-200", "date": "2026-11-27", "manufacturer": "philips",
		"models": ["IntelliVue MX450"], "serials": [{"from": "PM050", "to": "PM150"}], "patient_risk": false, "action": "Actualizar el software de alarmas"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bio.ImportAlerts(ctx, alerts, at(30, 14, 0)); err != nil {
		t.Fatal(err)
	}
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
			if key == "availability" || key == "biomedical" {
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
		"Vigilancia de equipos biomédicos", "2026-11-03", "vencido", "MC-2026-118", "2027-11-06", "ALERTA-2026-200", "VG-2026-000005",
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

// pick keeps of got only the keys want has (recursively through objects,
// and through lists of the same length), so that expected.json can leave
// out what it does not pin.
func pick(got, want any) any {
	if ga, ok := got.([]any); ok {
		if wa, ok := want.([]any); ok && len(ga) == len(wa) {
			out := make([]any, len(ga))
			for i := range ga {
				out[i] = pick(ga[i], wa[i])
			}
			return out
		}
	}
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

// openDB connects to url for the test's duration.
func openDB(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestAvailabilityAPI: GET /api/v1/availability answers a hospital's user
// with its own devices' figures, never another customer's, and refuses
// what it does not understand.
func TestAvailabilityAPI(t *testing.T) {
	ctx := context.Background()
	conn := openDB(t, monthFixture(t))
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	tokens := auth.NewTokens(conn, clock.Now)
	mk := func(role, customer, engineer string) string {
		tok, _, err := tokens.Create(ctx, role+customer, role, customer, engineer)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	noc, clinica, engineer := mk(auth.RoleNOC, "", ""), mk(auth.RoleCustomer, "clinica", ""), mk(auth.RoleEngineer, "", "eng-bog")
	store := assets.NewStore(conn)
	reg := prometheus.NewRegistry()
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	h := server.Handler(httpConfig(httpDeps{conn: conn, tokens: tokens, reg: reg, log: quietLog, assets: store,
		probes: probes.NewStore(conn), probeMetrics: probes.NewMetrics(reg), tickets: tickets,
		dispatch: dispatch.NewStore(conn, store, tickets), clock: clock}))
	get := func(path, token string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	const month = "from=2026-11-01&to=2026-11-30"
	tests := []struct {
		name, path, token string
		want              int
		contains          string
	}{
		{"the hospital's own, customer implied", "/api/v1/availability?" + month, clinica, 200, `"downtime_seconds": 12600`},
		{"the hospital's own, named", "/api/v1/availability?customer=clinica&" + month + "&device=cl-ct", clinica, 200, `"downtime_seconds": 36000`},
		{"NOC names the customer", "/api/v1/availability?customer=clinica&" + month, noc, 200, `"device_id": "cl-ris"`},
		{"NOC without a customer", "/api/v1/availability?" + month, noc, 400, "customer is required"},
		{"another customer is not found", "/api/v1/availability?customer=hsr&" + month, clinica, 404, "not_found"},
		{"a device of nobody", "/api/v1/availability?" + month + "&device=hsr-pacs", clinica, 404, "not_found"},
		{"engineers read no contract reports", "/api/v1/availability?customer=clinica&" + month, engineer, 403, "forbidden"},
		{"unknown parameter", "/api/v1/availability?" + month + "&limit=5", clinica, 400, `unknown parameter \"limit\"`},
		{"repeated parameter", "/api/v1/availability?" + month + "&from=2026-10-01", clinica, 400, "given 2 times"},
		{"bad date", "/api/v1/availability?from=2026-13-01&to=2026-11-30", clinica, 400, "want a date"},
		{"missing to", "/api/v1/availability?from=2026-11-01", clinica, 400, "to is required"},
		{"reversed period", "/api/v1/availability?from=2026-11-30&to=2026-11-01", clinica, 400, "after from"},
		{"NUL in a value", "/api/v1/availability?from=2026-11-01%00&to=2026-11-30", clinica, 400, "from: contains a NUL"},
		{"bad customer id", "/api/v1/availability?customer=Cl%C3%ADnica&" + month, noc, 400, "inventory id"},
		{"too long a period", "/api/v1/availability?customer=clinica&from=2020-01-01&to=2026-11-30", noc, 400, "400 days"},
		{"monthly report as JSON", "/api/v1/reports/monthly?month=2026-11&format=json", clinica, 200, `"billable_total_cents": 18000000`},
		{"monthly report, bad format", "/api/v1/reports/monthly?month=2026-11&format=docx", clinica, 400, "format must be"},
		{"monthly report, bad month", "/api/v1/reports/monthly?month=2026-13", clinica, 400, "YYYY-MM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.path, tc.token)
			if code != tc.want || !strings.Contains(body, tc.contains) {
				t.Errorf("%d %s, want %d with %q", code, body, tc.want, tc.contains)
			}
			if tc.token == clinica && strings.Contains(body, "hsr-pacs") && code == 200 {
				t.Errorf("another customer's device in the answer: %s", body)
			}
		})
	}
}

// TestMonthlyMail: last month's report goes to the customer's address on
// the first working instant of the month (Tuesday 1 December 2026 08:00 on
// its 8x5 contract; Monday 4 January 2027 after the New Year holiday), in
// Spanish, once, however many sweeps and mailers run.
func TestMonthlyMail(t *testing.T) {
	ctx := context.Background()
	conn := openDB(t, monthFixture(t))
	bogota, _ := time.LoadLocation("America/Bogota")
	store := assets.NewStore(conn)
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	var now time.Time
	mailer := &reports.MonthlyMailer{Customers: store, Outbox: notify.NewOutbox(conn), Portal: "https://vigia.example", Log: quietLog,
		Reporter: &reports.Reporter{Inventory: store, History: probes.NewStore(conn), Tickets: tickets,
			Field: dispatch.NewStore(conn, store, tickets), Policies: []*sla.Set{sla.Presets()}, Now: func() time.Time { return now }}}
	count := func(month string) int {
		var n int
		if err := conn.Get(&n, `SELECT count(*) FROM outbox WHERE event_key = $1`, reports.MailKey("clinica", month)); err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		at    time.Time
		month string
		want  int
	}{
		{time.Date(2026, 12, 1, 7, 59, 0, 0, bogota), "2026-11", 0},
		{time.Date(2026, 12, 1, 8, 0, 0, 0, bogota), "2026-11", 1},
		{time.Date(2026, 12, 1, 9, 0, 0, 0, bogota), "2026-11", 1},
		{time.Date(2026, 12, 20, 9, 0, 0, 0, bogota), "2026-11", 1},
		{time.Date(2027, 1, 2, 10, 0, 0, 0, bogota), "2026-12", 0}, // Saturday after the New Year holiday
		{time.Date(2027, 1, 4, 8, 0, 0, 0, bogota), "2026-12", 1},
	}
	// A customer imported after November ended gets no report for it.
	conn.MustExec(`INSERT INTO customers (id, name, country, time_zone, notify_email, created_at) VALUES
		('nuevo', 'Clínica Nueva', 'CO', 'America/Bogota', 'ti@nueva.example', $1)`, time.Date(2026, 12, 1, 0, 0, 0, 0, bogota))
	for _, s := range steps {
		now = s.at
		// Two mailers at once, as two instances would between leader
		// changes: the outbox's key keeps one e-mail.
		errc := make(chan error, 2)
		for range 2 {
			go func() { _, err := mailer.RunDue(ctx, s.at); errc <- err }()
		}
		for range 2 {
			if err := <-errc; err != nil && !strings.Contains(err.Error(), "conflict") {
				t.Fatal(err)
			}
		}
		if got := count(s.month); got != s.want {
			t.Fatalf("at %s: %d e-mails for %s, want %d", s.at, got, s.month, s.want)
		}
	}
	var nov, dec int
	conn.Get(&nov, `SELECT count(*) FROM outbox WHERE event_key = $1`, reports.MailKey("nuevo", "2026-11"))
	conn.Get(&dec, `SELECT count(*) FROM outbox WHERE event_key = $1`, reports.MailKey("nuevo", "2026-12"))
	if nov != 0 || dec != 1 {
		t.Errorf("a customer imported on 1 December got %d reports for November (want 0) and %d for December (want 1)", nov, dec)
	}
	var subject, body, recipient string
	if err := conn.QueryRow(`SELECT subject, body, recipient FROM outbox WHERE event_key = $1`, reports.MailKey("clinica", "2026-11")).
		Scan(&subject, &body, &recipient); err != nil {
		t.Fatal(err)
	}
	if recipient != "direccion@clinica.example" || subject != "Informe mensual de servicio — Clínica del Río — 2026-11" {
		t.Errorf("e-mail to %s: %q", recipient, subject)
	}
	for _, want := range []string{"Contrato cl-8x5: 97.6190 %", "PACS central (cl-pacs): 98.1481 %", "Sev 2: Abiertos 1; Respuesta cumplida 0 / 1",
		"Cliente: 24.00 h", "https://vigia.example/api/v1/reports/monthly?month=2026-11&format=pdf"} {
		if !strings.Contains(body, want) {
			t.Errorf("e-mail body lacks %q:\n%s", want, body)
		}
	}
}

// TestAvailabilityEndToEnd: a device of a 24x7 contract taken down for a
// measured interval shows that downtime, within one probe interval, in
// `vigia report availability` (the state machine confirms down after
// retries + 1 failures and up after two successes: with one retry both
// edges lag by one to two intervals).
func TestAvailabilityEndToEnd(t *testing.T) {
	url := pgtest.URL(t)
	bin := buildVigia(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serveTCP := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serveTCP(ln)
	_, port, _ := net.SplitHostPort(addr)
	inventory := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(inventory, []byte(`
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: hsr-central
        name: Sede Central
        kind: hospital
        devices:
          - id: hsr-ris
            name: RIS central
            kind: ris
            role: core
            tcp: {host: 127.0.0.1, port: `+port+`}
            probe: {interval: 1s, retries: 1}
    contracts:
      - id: hsr-247
        sla_policy: imaging-24x7
        devices: all
        start: 2026-01-01
        end: 2035-12-31
        activated: 2026-01-02
`), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	startServe(t, bin, "--database-url", url, "--import", inventory, "--listen", listen, "--log-level", "warn")
	conn := openDB(t, url)
	state := func() string {
		var s string
		conn.Get(&s, `SELECT state FROM device_states WHERE device_id = 'hsr-ris'`)
		return s
	}
	waitUntil(t, "the RIS up", 30*time.Second, func() bool { return state() == "up" })
	from := time.Now()
	time.Sleep(2 * time.Second)

	ln.Close()
	down := time.Now()
	waitUntil(t, "the RIS down", 15*time.Second, func() bool { return state() == "down" })
	time.Sleep(5 * time.Second)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go serveTCP(ln2)
	measured := time.Since(down)
	waitUntil(t, "the RIS up again", 15*time.Second, func() bool { return state() == "up" })

	code, out, stderr := runVigia(t, "report", "availability", "--database-url", url, "--customer", "hsr",
		"--from", from.Format(time.RFC3339Nano), "--to", time.Now().Add(time.Second).Format(time.RFC3339Nano), "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep reports.Availability
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Devices) != 1 || rep.Devices[0].DeviceID != "hsr-ris" {
		t.Fatalf("devices %+v", rep.Devices)
	}
	d := rep.Devices[0]
	got := time.Duration(d.DowntimeSeconds * float64(time.Second))
	if diff := got - measured; diff < -time.Second || diff > time.Second {
		t.Errorf("downtime %s, measured %s: off by more than one probe interval", got, measured)
	}
	if d.Availability >= 1 || d.Availability <= 0 || d.ExcludedSeconds != 0 {
		t.Errorf("report %+v", d)
	}
	t.Logf("measured %s, reported %s (covered %gs, availability %g)", measured, got, d.CoveredSeconds, d.Availability)
}

// TestReportAvailabilityCommand: the command's formats carry the fixture
// month's figures, and what it cannot answer exits 1 (nothing there) or 2
// (usage).
func TestReportAvailabilityCommand(t *testing.T) {
	url := monthFixture(t)
	base := []string{"report", "availability", "--database-url", url, "--customer", "clinica", "--from", "2026-11-01", "--to", "2026-11-30",
		"--policies", filepath.Join(monthTestdata, "policies.yaml")}
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"csv", append(base, "--format", "csv"), 0, []string{"device_id,site_id,contract_id,covered_seconds,downtime_seconds,excluded_seconds,availability",
			"cl-pacs,cl-central,cl-8x5,684000,12600,3600,0.981481", "cl-ris,cl-central,cl-247,2592000,10800,36000,0.995775"}},
		{"table", append(base, "--format", "table"), 0, []string{"98.1481 %", "97.6190 %", "98.0000 % NOT met, credit 5 %"}},
		{"one device as json", append(base, "--format", "json", "--device", "cl-ct"), 0, []string{`"device_id": "cl-ct"`, `"downtime_seconds": 36000`}},
		{"instants instead of dates", []string{"report", "availability", "--database-url", url, "--customer", "clinica",
			"--from", "2026-11-17T09:00:00-05:00", "--to", "2026-11-17T12:00:00-05:00", "--device", "cl-pacs", "--format", "csv"}, 0,
			[]string{"cl-pacs,cl-central,cl-8x5,10800,9000,0,0.166667"}},
		{"unknown customer", []string{"report", "availability", "--database-url", url, "--customer", "nadie", "--from", "2026-11-01", "--to", "2026-11-30"}, 1, nil},
		{"unknown device", append(base, "--device", "cl-nada"), 1, nil},
		{"bad date", []string{"report", "availability", "--database-url", url, "--customer", "clinica", "--from", "2026-11-31", "--to", "2026-11-30"}, 2, nil},
		{"reversed period", []string{"report", "availability", "--database-url", url, "--customer", "clinica", "--from", "2026-11-30", "--to", "2026-11-01"}, 2, nil},
		{"bad format", append(base, "--format", "xml"), 2, nil},
		{"missing --to", []string{"report", "availability", "--customer", "clinica", "--from", "2026-11-01"}, 2, nil},
		{"monthly: bad month", []string{"report", "monthly", "--database-url", url, "--customer", "clinica", "--month", "2026-13"}, 2, nil},
		{"monthly: not started", []string{"report", "monthly", "--database-url", url, "--customer", "clinica", "--month", "2099-01", "--format", "json"}, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runVigia(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, out, stderr)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
