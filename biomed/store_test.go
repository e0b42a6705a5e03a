package biomed

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// fixture is a database with testdata/fleet.yaml imported and the stores
// of the flow wired as `vigia serve` wires them.
type fixture struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets *maintenance.Store
	disp    *dispatch.Store
	store   *Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.DB(t)
	data, err := os.ReadFile(filepath.Join("testdata", "fleet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := assets.ParseFile("fleet.yaml", data, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, inv: assets.NewStore(db)}
	if _, err := f.inv.Import(context.Background(), file, at(2026, 1, 1, 0), false); err != nil {
		t.Fatal(err)
	}
	f.tickets = maintenance.NewStore(db, f.inv, maintenance.Options{})
	f.disp = dispatch.NewStore(db, f.inv, f.tickets)
	f.store = NewStore(db, f.inv, f.tickets, f.disp)
	return f
}

func at(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := f.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *fixture) importProgrammes(t *testing.T, now time.Time) ImportSummary {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "programmes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := f.store.Import(context.Background(), file, now)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// workOrders lists device/task/due/state of every work order.
func (f *fixture) workOrders(t *testing.T, flt WorkOrderFilter, now time.Time) []string {
	t.Helper()
	ws, err := f.store.WorkOrders(context.Background(), System, flt, now)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range ws {
		out = append(out, w.DeviceID+" "+w.TaskID+" "+w.DueOn+" "+w.State)
	}
	return out
}

// Importing the programmes and the fleet plans the next 90 days of work
// on the customer's calendar (Bogotá, Colombian holidays), opens the
// tickets whose lead time has begun with their maintenance windows, and
// a re-import changes nothing.
func TestProgrammeWorkOrders(t *testing.T) {
	f := newFixture(t)
	now := at(2026, 3, 2, 15) // Monday 2 March, 10:00 in Bogotá: the plan runs to 31 May
	sum := f.importProgrammes(t, now)
	// Vent 500 (hsr-vent-1, hsr-vent-2; hsr-vent-3 has its own programme):
	//   quarterly check, first Monday of each quarter: 6 Apr;
	//   monthly from 15 Jan: Sun 15 Mar → Mon 16, Wed 15 Apr, Fri 15 May.
	// hsr-vent-3: every 2 months from 10 Jan: Tue 10 Mar, Sun 10 May → Mon 11.
	// cmf-vent-9 (Lima; model written in capitals): the same four.
	want := []string{
		"hsr-vent-3 override-2m 2026-03-10 planned",
		"cmf-vent-9 monthly 2026-03-16 open",
		"hsr-vent-1 monthly 2026-03-16 open",
		"hsr-vent-2 monthly 2026-03-16 open",
		"cmf-vent-9 quarterly 2026-04-06 planned",
		"hsr-vent-1 quarterly 2026-04-06 planned",
		"hsr-vent-2 quarterly 2026-04-06 planned",
		"cmf-vent-9 monthly 2026-04-15 planned",
		"hsr-vent-1 monthly 2026-04-15 planned",
		"hsr-vent-2 monthly 2026-04-15 planned",
		"hsr-vent-3 override-2m 2026-05-11 planned",
		"cmf-vent-9 monthly 2026-05-15 planned",
		"hsr-vent-1 monthly 2026-05-15 planned",
		"hsr-vent-2 monthly 2026-05-15 planned",
	}
	got := f.workOrders(t, WorkOrderFilter{}, now)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("work orders\n got %q\nwant %q", got, want)
	}
	if sum.Plan.Planned != 14 || sum.Plan.Opened != 3 || sum.Programmes != 3 || sum.Calibration != 1 {
		t.Fatalf("import summary %+v", sum)
	}
	// Each opened work order is a Sev 4 preventive ticket in the customer's
	// language with a maintenance window over its due day in its zone.
	var rows []struct {
		Device   string    `db:"device_id"`
		Severity int       `db:"severity"`
		Source   string    `db:"source"`
		Title    string    `db:"title"`
		Starts   time.Time `db:"starts_at"`
		Ends     time.Time `db:"ends_at"`
	}
	if err := f.db.Select(&rows, `SELECT w.device_id, t.severity, t.source, t.title, m.starts_at, m.ends_at FROM biomed_work_orders w
		JOIN tickets t ON t.id = w.ticket_id JOIN maintenance_windows m ON m.id = w.window_id ORDER BY w.device_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("opened work orders %+v", rows)
	}
	for _, r := range rows {
		zone := "America/Bogota"
		if r.Device == "cmf-vent-9" {
			zone = "America/Lima"
		}
		loc, _ := time.LoadLocation(zone)
		if r.Severity != 4 || r.Source != "preventive" || !r.Starts.Equal(time.Date(2026, 3, 16, 0, 0, 0, 0, loc)) ||
			!r.Ends.Equal(time.Date(2026, 3, 17, 0, 0, 0, 0, loc)) {
			t.Fatalf("work order ticket %+v", r)
		}
	}
	if !strings.HasPrefix(rows[0].Title, "Preventive maintenance 2026-03-16: Monthly check") ||
		!strings.HasPrefix(rows[1].Title, "Mantenimiento preventivo 2026-03-16: Revisión mensual") {
		t.Fatalf("titles %q, %q", rows[0].Title, rows[1].Title)
	}

	again := f.importProgrammes(t, now)
	if again.Programmes != 0 || again.Plan != (PlanResult{}) || again.Unchanged != 4 {
		t.Fatalf("re-import changed something: %+v", again)
	}
	if n := f.count(t, `SELECT count(*) FROM biomed_work_orders`); n != 14 {
		t.Fatalf("%d work orders after re-import", n)
	}
	if n := f.count(t, `SELECT count(*) FROM tickets`); n != 3 {
		t.Fatalf("%d tickets after re-import", n)
	}
	// The database, not the code, refuses a second work order for the same
	// device, task and day.
	_, err := f.db.Exec(`INSERT INTO biomed_work_orders (customer_id, device_id, programme_id, task_id, title_es, title_en, due_on,
		lead_days, duration_minutes, created_at) SELECT customer_id, device_id, programme_id, task_id, title_es, title_en, due_on, lead_days,
		duration_minutes, created_at FROM biomed_work_orders LIMIT 1`)
	if err == nil || !strings.Contains(err.Error(), "unique") {
		t.Fatalf("duplicate work order: %v", err)
	}

	t.Run("overdue list and compliance", func(t *testing.T) {
		// hsr-vent-1's visit is done on its due day; the others are not:
		// on 17 March they are overdue.
		f.doVisit(t, "hsr-vent-1", at(2026, 3, 16, 14))
		later := at(2026, 3, 17, 15)
		overdue := f.workOrders(t, WorkOrderFilter{Overdue: true}, later)
		if strings.Join(overdue, ",") != "hsr-vent-3 override-2m 2026-03-10 overdue,cmf-vent-9 monthly 2026-03-16 overdue,"+
			"hsr-vent-2 monthly 2026-03-16 overdue" {
			t.Fatalf("overdue %v", overdue)
		}
		// hsr's Vent 500s are not cmf's: a customer sees its own only.
		ws, err := f.store.WorkOrders(context.Background(), auth.Actor{Role: "customer", CustomerID: "cmf"}, WorkOrderFilter{Overdue: true}, later)
		if err != nil || len(ws) != 1 || ws[0].DeviceID != "cmf-vent-9" {
			t.Fatalf("cmf's overdue list %+v, %v", ws, err)
		}
		loc, _ := time.LoadLocation("America/Bogota")
		sm, err := f.store.Summary(context.Background(), "hsr", time.Date(2026, 3, 1, 0, 0, 0, 0, loc), time.Date(2026, 4, 1, 0, 0, 0, 0, loc), later)
		if err != nil {
			t.Fatal(err)
		}
		// March: hsr-vent-1 on time; hsr-vent-2 and hsr-vent-3 (due 10 March,
		// no visit) missed.
		if sm.Compliance != (Compliance{OnTime: 1, Missed: 2}) {
			t.Fatalf("compliance %+v (%+v)", sm.Compliance, sm.WorkOrders)
		}
	})
}

// doVisit sends an engineer to device's open work order and records the
// outcome at done.
func (f *fixture) doVisit(t *testing.T, device string, done time.Time) dispatch.Visit {
	t.Helper()
	ctx := context.Background()
	noc := auth.NOCActor("ana")
	if _, err := f.disp.PutEngineer(ctx, noc, "eng-bio", dispatch.EngineerInput{Name: "Laura Gómez", Email: "laura@vigia.example", HomeCity: "Bogotá", Biomedical: true,
		Calendar: dispatch.CalendarSpec{Config: &calendar.Config{Zone: "America/Bogota", Always: true}}}, done.Add(-4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var ticketID int64
	if err := f.db.Get(&ticketID, `SELECT id FROM tickets WHERE $1 = ANY (device_ids) ORDER BY id DESC LIMIT 1`, device); err != nil {
		t.Fatal(err)
	}
	v, err := f.disp.CreateVisit(ctx, noc, dispatch.VisitInput{TicketID: ticketID, Engineers: []string{"eng-bio"}}, done.Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	from, to := done.Add(-2*time.Hour), done.Add(time.Hour)
	if _, err := f.disp.Transition(ctx, noc, v.ID, dispatch.TransitionInput{To: dispatch.VisitScheduled, WindowStart: &from, WindowEnd: &to},
		done.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	eng := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bio"}
	if _, err := f.disp.Transition(ctx, eng, v.ID, dispatch.TransitionInput{To: dispatch.VisitOnSite}, done.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, err = f.disp.Outcome(ctx, eng, v.ID, dispatch.OutcomeInput{WorkPerformed: "Mantenimiento según el manual", Activity: "preventive",
		Signature: dispatch.SignatureInput{Name: "Ing. Ruiz", Kind: "typed", Value: "Ing. Ruiz"}}, done); err != nil {
		t.Fatal(err)
	}
	return v
}

// A failed IEC 62353 test on a visit takes the device out of service in
// the inventory and opens one Sev 2 ticket; a second failed test keeps
// that one ticket; a passed test after repair puts the device back.
func TestFailedSafetyTest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := at(2026, 3, 10, 15)
	_, err := f.tickets.Create(ctx, auth.Actor{Name: "ana", Role: "noc"}, maintenance.CreateInput{CustomerID: "hsr",
		DeviceIDs: []string{"hsr-vent-2"}, Severity: 4, Title: "Prueba de seguridad eléctrica anual"}, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	v := f.doVisit(t, "hsr-vent-2", now)
	eng := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bio"}
	test := func(typ string, earth float64) TestInput {
		return TestInput{DeviceID: "hsr-vent-2", Type: typ, Class: "I", AppliedPart: "BF", Method: "direct",
			Instrument:   Instrument{Model: "Fluke ESA615", Serial: "3344556", CalibratedOn: "2025-11-20"},
			Accessories:  []string{"Cable de alimentación", "Circuito de paciente"},
			Measurements: Measurements{ProtectiveEarthOhm: &earth, EquipmentLeakageUA: f64(120), AppliedPartLeakageUA: f64(15)}}
	}
	recs, err := f.store.RecordTests(ctx, eng, v.ID, []TestInput{test("recurrent", 0.45)}, now)
	if err != nil {
		t.Fatal(err)
	}
	firstTicket := recs[0].Ticket
	if recs[0].Passed || recs[0].Ticket == "" {
		t.Fatalf("record %+v", recs[0])
	}
	d, _ := f.inv.Device(ctx, assets.Scope{}, "hsr-vent-2")
	if !d.OutOfService() || !strings.Contains(d.Operational.Reason, "resistencia de la tierra de protección 0.45 ohm (límite 0.3)") {
		t.Fatalf("device after a failed test: %+v", d.Operational)
	}
	var sev int
	var source, title string
	if err := f.db.QueryRow(`SELECT severity, source, title FROM tickets WHERE number = $1`, recs[0].Ticket).Scan(&sev, &source, &title); err != nil {
		t.Fatal(err)
	}
	if sev != 2 || source != "biomed" || !strings.HasPrefix(title, "Equipo fuera de servicio") {
		t.Fatalf("ticket sev %d source %s title %q", sev, source, title)
	}
	// Recording it again is refused; a second failure (another type) opens
	// no second ticket while the first is open.
	if _, err := f.store.RecordTests(ctx, eng, v.ID, []TestInput{test("recurrent", 0.45)}, now); err == nil {
		t.Fatal("the same test recorded twice")
	}
	recs, err = f.store.RecordTests(ctx, eng, v.ID, []TestInput{test("after_repair", 0.5)}, now.Add(time.Minute))
	if err != nil || recs[0].Ticket != "" {
		t.Fatalf("second failure %+v, %v", recs, err)
	}
	if n := f.count(t, `SELECT count(*) FROM tickets WHERE severity = 2 AND 'hsr-vent-2' = ANY (device_ids)`); n != 1 {
		t.Fatalf("%d Sev 2 tickets", n)
	}
	// Validation: a device not on the visit, an analyser out of calibration,
	// a customer recording.
	bad := test("recurrent", 0.1)
	bad.DeviceID = "hsr-vent-1"
	if _, err := f.store.RecordTests(ctx, eng, v.ID, []TestInput{bad}, now); err == nil || !strings.Contains(err.Error(), "not on visit") {
		t.Fatalf("device not on the visit: %v", err)
	}
	old := test("recurrent", 0.1)
	old.Instrument.CalibratedOn = "2024-12-01"
	if _, err := f.store.RecordTests(ctx, eng, v.ID, []TestInput{old}, now); err == nil || !strings.Contains(err.Error(), "more than 12 months") {
		t.Fatalf("stale analyser: %v", err)
	}
	if _, err := f.store.RecordTests(ctx, auth.Actor{Role: "customer", CustomerID: "hsr"}, v.ID, []TestInput{test("recurrent", 0.1)}, now); err == nil {
		t.Fatal("a customer recorded a test")
	}
	// A passed test after repair on a later visit puts it back in service.
	v2 := f.doVisit(t, "hsr-vent-2", now.Add(48*time.Hour))
	if _, err := f.store.RecordTests(ctx, eng, v2.ID, []TestInput{test("after_repair", 0.2)}, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.inv.Device(ctx, assets.Scope{}, "hsr-vent-2"); d.OutOfService() {
		t.Fatalf("still out of service after a passed test: %+v", d.Operational)
	}
	failed, err := f.store.Tests(ctx, auth.Actor{Role: "customer", CustomerID: "hsr"}, TestFilter{FailedOnly: true})
	if err != nil || len(failed) != 2 || failed[0].Evaluation.Checks[0].Pass || failed[0].Ticket != "" || failed[1].Ticket != firstTicket {
		t.Fatalf("failed tests %+v, %v", failed, err)
	}
	if other, _ := f.store.Tests(ctx, auth.Actor{Role: "customer", CustomerID: "cmf"}, TestFilter{}); len(other) != 0 {
		t.Fatalf("cmf sees hsr's tests: %+v", other)
	}
}

func f64(v float64) *float64 { return &v }

// The issue's alert opens exactly one ticket per matching serial, Sev 2
// for a patient risk, with the alert linked; a re-import changes nothing;
// the same alert as CSV is the same alert.
func TestAlertImport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := at(2026, 12, 1, 14)
	alerts, err := ParseAlerts([]byte(issueAlert + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	noRisk := AlertInput{Source: "FDA", Reference: "Z-0001-2027", Date: "2026-11-02", Manufacturer: "philips",
		Models: []string{"intellivue mx450"}, Action: "Actualizar firmware"}
	sum, err := f.store.ImportAlerts(ctx, append(alerts, noRisk), now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range sum.Tickets {
		got = append(got, tk.Reference+" "+tk.DeviceID+" "+tk.Serial+" sev"+string(rune('0'+tk.Severity)))
	}
	slices.Sort(got)
	// VX100 (hsr-vent-1), VX250 (hsr-vent-2, manufacturer in capitals),
	// VX260 (cmf-vent-9, model in capitals); not VX300 (hsr-vent-3) nor
	// hsr-vent-old (Vent 400, serial VX210).
	want := []string{"ALERTA-2026-123 cmf-vent-9 VX260 sev2", "ALERTA-2026-123 hsr-vent-1 VX100 sev2",
		"ALERTA-2026-123 hsr-vent-2 VX250 sev2", "Z-0001-2027 hsr-mon-1 PM1 sev3"}
	if strings.Join(got, ",") != strings.Join(want, ",") || sum.New != 2 {
		t.Fatalf("tickets %v (summary %+v)", got, sum)
	}
	if n := f.count(t, `SELECT count(*) FROM tickets t JOIN biomed_alert_matches m ON m.ticket_id = t.id
		WHERE t.source = 'biomed' AND t.category = 'safety_alert'`); n != 4 {
		t.Fatalf("%d linked alert tickets", n)
	}
	csvFile := "source,reference,date,manufacturer,models,serials,patient_risk,action\n" +
		"INVIMA,ALERTA-2026-123,2026-11-30,Acme Medical,Vent 500,VX100;VX200..VX299,true,Reemplazar válvula\n"
	fromCSV, err := ParseAlerts([]byte(csvFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, again := range [][]AlertInput{alerts, fromCSV} {
		sum, err := f.store.ImportAlerts(ctx, again, now.Add(time.Hour))
		if err != nil || len(sum.Tickets) != 0 || sum.New != 0 || len(sum.Ignored) != 0 {
			t.Fatalf("re-import: %+v, %v", sum, err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM tickets`); n != 4 {
		t.Fatalf("%d tickets after re-imports", n)
	}
	// The hospital sees its own matches with the ticket, not another's.
	ms, err := f.store.Matches(ctx, auth.Actor{Role: "customer", CustomerID: "cmf"}, "", time.Time{}, time.Time{})
	if err != nil || len(ms) != 1 || ms[0].DeviceID != "cmf-vent-9" || ms[0].Ticket == "" || ms[0].Status != "new" || !ms[0].PatientRisk {
		t.Fatalf("cmf's matches %+v, %v", ms, err)
	}
	if _, err := f.store.Matches(ctx, auth.Actor{Role: "customer", CustomerID: "cmf"}, "hsr", time.Time{}, time.Time{}); err == nil {
		t.Fatal("cmf read hsr's matches")
	}
}

// Calibration: a flagged device's due date, a certificate checked by its
// content, and one overdue ticket per due date.
func TestCalibration(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.importProgrammes(t, at(2026, 3, 2, 15))
	eng := auth.Actor{Name: "laura", Role: "engineer"}
	st, err := f.store.Calibrations(ctx, System, "hsr", at(2026, 3, 2, 15))
	if err != nil || len(st) != 1 || st[0].DueOn != "2026-03-20" || st[0].State != "due_soon" {
		t.Fatalf("status %+v, %v", st, err)
	}
	// 21 March in Bogotá: overdue, one Sev 3 ticket; another sweep opens none.
	for range 2 {
		if _, err := f.store.Plan(ctx, at(2026, 3, 21, 15)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM tickets WHERE category = 'calibration' AND severity = 3 AND 'hsr-mon-1' = ANY (device_ids)`); n != 1 {
		t.Fatalf("%d calibration tickets", n)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
	if _, err := f.store.RecordCalibration(ctx, eng, "hsr-mon-1", CalibrationInput{CalibratedOn: "2026-03-22", Laboratory: "Metrología SAS",
		CertificateNumber: "MC-2026-0042", Filename: "cert.exe", Certificate: []byte("MZ not a certificate")}, at(2026, 3, 23, 15)); err == nil {
		t.Fatal("an executable accepted as a certificate")
	}
	c, err := f.store.RecordCalibration(ctx, eng, "hsr-mon-1", CalibrationInput{CalibratedOn: "2026-03-22", Laboratory: "Metrología SAS",
		CertificateNumber: "MC-2026-0042", Filename: "../certificado.pdf", Certificate: pdf}, at(2026, 3, 23, 15))
	if err != nil || c.NextDueOn != "2027-03-22" || c.Filename != "certificado.pdf" || c.ContentType != "application/pdf" {
		t.Fatalf("calibration %+v, %v", c, err)
	}
	st, _ = f.store.Calibrations(ctx, auth.Actor{Role: "customer", CustomerID: "hsr"}, "", at(2026, 3, 23, 15))
	if len(st) != 1 || st[0].State != "ok" || st[0].LastCalibrated != "2026-03-22" || st[0].CalibrationID != c.ID {
		t.Fatalf("status after calibration %+v", st)
	}
	if _, err := f.store.Certificate(ctx, auth.Actor{Role: "customer", CustomerID: "cmf"}, c.ID); err == nil {
		t.Fatal("cmf downloaded hsr's certificate")
	}
	if _, err := f.store.RecordCalibration(ctx, eng, "hsr-vent-1", CalibrationInput{CalibratedOn: "2026-03-22", Laboratory: "x",
		CertificateNumber: "y", Filename: "c.pdf", Certificate: pdf}, at(2026, 3, 23, 15)); err == nil {
		t.Fatal("calibration of a device not flagged")
	}
}

// Usage tasks fall due when the counter has run their amount.
func TestUsageWorkOrder(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := at(2026, 3, 2, 15)
	f.importProgrammes(t, now)
	eng := auth.Actor{Name: "laura", Role: "engineer"}
	for _, v := range []float64{40000, 49999} {
		now = now.Add(time.Hour)
		if err := f.store.RecordUsage(ctx, eng, "hsr-ct-1", "exams", v, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.store.RecordUsage(ctx, eng, "hsr-ct-1", "exams", 100, now); err == nil {
		t.Fatal("a counter went backwards")
	}
	res, _ := f.store.Plan(ctx, now)
	if res.Planned != 0 {
		t.Fatalf("due before 50000 exams: %+v", res)
	}
	if err := f.store.RecordUsage(ctx, eng, "hsr-ct-1", "exams", 50001, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err := f.store.Plan(ctx, now.Add(2*time.Hour))
	if err != nil || res.Planned != 1 || res.Opened != 1 {
		t.Fatalf("plan at 50001 exams: %+v, %v", res, err)
	}
	if res, _ := f.store.Plan(ctx, now.Add(3*time.Hour)); res.Planned != 0 {
		t.Fatalf("usage work order planned twice: %+v", res)
	}
}

// A programme that starts later plans nothing before its start, and a
// changed programme withdraws the unopened work orders it no longer calls
// for.
func TestProgrammeStartAndChange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := at(2026, 3, 2, 15)
	file := func(starts, schedule string) *File {
		t.Helper()
		pf, err := ParseFile([]byte(`programmes:
  - id: mx450
    manufacturer: philips
    model: intellivue mx450
    starts: ` + starts + `
    tasks:
      - {id: check, title: {es: Revisión, en: Check}, schedule: ` + schedule + `, duration: 30m, lead_days: 0}
`))
		if err != nil {
			t.Fatal(err)
		}
		return pf
	}
	if _, err := f.store.Import(ctx, file("2026-05-01", "first monday of each month"), now); err != nil {
		t.Fatal(err)
	}
	// Not 2 March, 6 April: the programme starts on 1 May; Monday 4 May.
	if got := f.workOrders(t, WorkOrderFilter{}, now); strings.Join(got, ",") != "hsr-mon-1 check 2026-05-04 planned" {
		t.Fatalf("work orders %v", got)
	}
	sum, err := f.store.Import(ctx, file("2026-03-01", "day 20 of each month"), now)
	if err != nil {
		t.Fatal(err)
	}
	// 20 March (Fri), 20 April (Mon), 20 May (Wed); 4 May withdrawn.
	if got := f.workOrders(t, WorkOrderFilter{}, now); strings.Join(got, ",") !=
		"hsr-mon-1 check 2026-03-20 planned,hsr-mon-1 check 2026-04-20 planned,hsr-mon-1 check 2026-05-20 planned" || sum.Plan.Withdrawn != 1 {
		t.Fatalf("after the change: %v (%+v)", got, sum)
	}
}
