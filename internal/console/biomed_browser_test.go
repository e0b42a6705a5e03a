package console

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// biomedInventory: hsr with three Acme ventilators (two inside the
// issue's alert), cmf with one inside it.
const biomedInventory = `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: hsr-central
        name: Sede Central
        kind: hospital
        city: Bogotá
        devices:
          - {id: hsr-vent-1, name: Ventilador UCI 1, kind: biomedical, manufacturer: Acme Medical, model: Vent 500, serial: VX100}
          - {id: hsr-vent-2, name: Ventilador UCI 2, kind: biomedical, manufacturer: Acme Medical, model: Vent 500, serial: VX250}
          - {id: hsr-vent-3, name: Ventilador UCI 3, kind: biomedical, manufacturer: Acme Medical, model: Vent 500, serial: VX300}
    contracts:
      - {id: hsr-2026, sla_policy: imaging-8x5, devices: all, start: 2025-01-01, end: 2035-12-31, activated: 2025-01-02}
  - id: cmf
    name: Clínica Miraflores
    country: PE
    time_zone: America/Lima
    language: en
    sites:
      - id: cmf-main
        name: Sede Miraflores
        kind: hospital
        city: Lima
        devices:
          - {id: cmf-vent-9, name: ICU ventilator 9, kind: biomedical, manufacturer: ACME MEDICAL, model: vent 500, serial: VX260}
    contracts:
      - {id: cmf-desk, sla_policy: desk-standard, devices: all, start: 2025-01-01, end: 2035-12-31, activated: 2025-01-02}
`

// The hospital's portal shows the safety alert's affected devices with
// their tickets (its own only), the device a failed safety test took out
// of service, and the overdue preventive work, in a real browser.
func TestBrowserBiomedical(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testpeer.Command(t, "chromium", "chromium")
	h := newHarness(t, biomedInventory, time.Second)
	bio := biomed.NewStore(h.db, h.inv, h.tickets, h.disp)
	h.console.cfg.Biomedical = bio
	ctx, now := context.Background(), h.clock.Now()

	alerts, err := biomed.ParseAlerts([]byte(`[{"source": "INVIMA", "reference": "ALERTA-2026-123", "date": "2026-11-30",
		"manufacturer": "Acme Medical", "models": ["Vent 500"], "serials": ["VX100", {"from": "VX200", "to": "VX299"}],
		"patient_risk": true, "action": "Reemplazar válvula"}]`))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := bio.ImportAlerts(ctx, alerts, now)
	if err != nil || len(sum.Tickets) != 3 {
		t.Fatalf("alert import %+v, %v", sum, err)
	}
	// A programme planned 40 days ago with no visit since: overdue work.
	if _, err := bio.Import(ctx, overdueProgramme(t), now.Add(-40*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A failed electrical safety test on a visit to hsr-vent-2.
	h.engineer(t, "eng-laura", "Laura Gómez")
	var ticketID int64
	if err := h.db.Get(&ticketID, `SELECT ticket_id FROM biomed_alert_matches WHERE device_id = 'hsr-vent-2'`); err != nil {
		t.Fatal(err)
	}
	v := h.scheduledVisit(t, ticketID, "eng-laura")
	eng := auth.Actor{Name: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"}
	if _, err := h.disp.Transition(ctx, eng, v.ID, dispatch.TransitionInput{To: dispatch.VisitOnSite}, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	earth, leak := 0.8, 90.0
	if _, err := bio.RecordTests(ctx, auth.Actor{Name: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"}, v.ID, []biomed.TestInput{{
		DeviceID: "hsr-vent-2", Type: "recurrent", Class: "I", AppliedPart: "BF", Method: "direct",
		Instrument:   biomed.Instrument{Model: "Fluke ESA615", Serial: "3344556", CalibratedOn: now.AddDate(0, -2, 0).Format(time.DateOnly)},
		Measurements: biomed.Measurements{ProtectiveEarthOhm: &earth, EquipmentLeakageUA: &leak, AppliedPartLeakageUA: &leak}}},
		now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "cmf", Role: auth.RoleCustomer, CustomerID: "cmf", Language: "en"})

	person, _ := startChromium(t, chromium, h.srv.URL)
	t.Run("hospital", func(t *testing.T) {
		b := person()
		b.t = t
		b.login("hsr", testPassword, "#devices")
		b.do("biomedical page", chromedp.Click(chromedp.ID("nav-biomed")), chromedp.WaitVisible(chromedp.ID("bio-alerts")))
		serials := eval[[]string](b, `[...document.querySelectorAll('#bio-alerts [data-alert="ALERTA-2026-123"]')].map(e => e.dataset.serial).sort()`)
		if !slices.Equal(serials, []string{"VX100", "VX250"}) {
			t.Fatalf("hsr's portal lists the alert for serials %v; want VX100 and VX250", serials)
		}
		if html := eval[string](b, `document.body.innerHTML`); strings.Contains(html, "VX260") || strings.Contains(html, "Miraflores") ||
			!strings.Contains(html, "Reemplazar válvula") || !strings.Contains(html, "Alertas de seguridad") {
			t.Fatal("hsr's biomedical page: another customer's device, or the alert's action missing")
		}
		out := eval[[]string](b, `[...document.querySelectorAll('#bio-out [data-device]')].map(e => e.dataset.device)`)
		if !slices.Equal(out, []string{"hsr-vent-2"}) {
			t.Fatalf("out of service: %v", out)
		}
		if n := eval[int](b, `document.querySelectorAll('#bio-overdue tr[data-state="overdue"]').length`); n < 3 {
			t.Fatalf("%d overdue work orders shown; want at least one per ventilator", n)
		}
		b.screenshot("portal-biomedical")
		ticket := eval[string](b, `document.querySelector('#bio-alerts [data-device="hsr-vent-1"] a[data-ticket]').dataset.ticket`)
		b.do("open the alert's ticket", chromedp.Click(chromedp.CSS(`#bio-alerts [data-device="hsr-vent-1"] a[data-ticket]`)),
			chromedp.WaitVisible(chromedp.ID("ticket-number")))
		if got := eval[string](b, `document.getElementById('ticket-number').textContent`); !strings.Contains(got, ticket) {
			t.Fatalf("ticket page shows %q; want %s", got, ticket)
		}
		if html := eval[string](b, `document.body.innerHTML`); !strings.Contains(html, "ALERTA-2026-123") {
			t.Fatal("the ticket does not name its alert")
		}
	})
	t.Run("other hospital, in English", func(t *testing.T) {
		b := person()
		b.t = t
		b.login("cmf", testPassword, "#devices")
		b.do("biomedical page", chromedp.Click(chromedp.ID("nav-biomed")), chromedp.WaitVisible(chromedp.ID("bio-alerts")))
		serials := eval[[]string](b, `[...document.querySelectorAll('#bio-alerts [data-alert]')].map(e => e.dataset.serial)`)
		if !slices.Equal(serials, []string{"VX260"}) {
			t.Fatalf("cmf's portal lists serials %v; want VX260 only", serials)
		}
		if html := eval[string](b, `document.body.innerHTML`); !strings.Contains(html, "Safety alerts and recalls") || strings.Contains(html, "VX250") {
			t.Fatal("cmf's biomedical page is not in English or shows hsr's devices")
		}
		b.screenshot("portal-biomedical-en")
	})
}

// The NOC's biomedical page lists every customer's alerts and overdue
// work; a hospital's user cannot open it, and its own page is its own.
func TestBiomedicalPages(t *testing.T) {
	h := newHarness(t, biomedInventory, time.Second)
	bio := biomed.NewStore(h.db, h.inv, h.tickets, h.disp)
	h.console.cfg.Biomedical = bio
	ctx, now := context.Background(), h.clock.Now()
	alerts, err := biomed.ParseAlerts([]byte(`[{"source": "DIGEMID", "reference": "AM-2026-77", "date": "2026-11-02",
		"manufacturer": "acme medical", "models": [], "serials": [], "patient_risk": false, "action": "Inspeccionar el cable"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bio.ImportAlerts(ctx, alerts, now); err != nil {
		t.Fatal(err)
	}
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})

	noc := h.client(t)
	noc.login("ana", testPassword)
	code, body := noc.get("/console/noc/biomedical")
	if code != 200 {
		t.Fatalf("NOC biomedical page: %d", code)
	}
	for _, want := range []string{`data-serial="VX100"`, `data-serial="VX300"`, `data-serial="VX260"`, "/console/noc/tickets/VG-"} {
		if !strings.Contains(body, want) {
			t.Errorf("NOC page lacks %q", want)
		}
	}
	// The dispatch board lists the overdue preventive work to plan.
	if _, err := bio.Import(ctx, overdueProgramme(t), now.Add(-40*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	code, body = noc.get("/console/noc/dispatch")
	if code != 200 || !strings.Contains(body, `id="board-bio-overdue"`) || !strings.Contains(body, `data-state="overdue"`) {
		t.Errorf("dispatch board: %d, without the overdue preventive work orders", code)
	}
	hsr := h.client(t)
	hsr.login("hsr", testPassword)
	if code, _ := hsr.get("/console/noc/biomedical"); code != 403 {
		t.Errorf("hsr at the NOC's biomedical page: %d; want 403", code)
	}
	code, body = hsr.get("/console/portal/biomedical")
	if code != 200 || strings.Contains(body, "VX260") || !strings.Contains(body, `data-serial="VX300"`) ||
		!strings.Contains(body, "/console/portal/tickets/VG-") {
		t.Fatalf("hsr's biomedical page: %d, shows another's device or not its own", code)
	}
}

// overdueProgramme is a monthly check of the Acme ventilators: imported 40
// days back with no visit since, its work orders are overdue.
func overdueProgramme(t *testing.T) *biomed.File {
	t.Helper()
	programme, err := biomed.ParseFile([]byte(`programmes:
  - id: acme-vent-500
    manufacturer: Acme Medical
    model: Vent 500
    starts: 2025-01-06
    tasks:
      - {id: monthly, title: {es: Revisión mensual, en: Monthly check}, every_months: 1, duration: 45m}
`))
	if err != nil {
		t.Fatal(err)
	}
	return programme
}
