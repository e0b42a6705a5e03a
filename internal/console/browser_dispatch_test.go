package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// dispatchInventory is hsr with a CT whose make, model and serial the
// engineer needs on site, at a site with an address and a contact.
const dispatchInventory = `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: hsr-central
        name: Hospital San Rafael — Sede Central
        kind: hospital
        city: Bogotá
        address: "Carrera 7 No. 40-62"
        contact: "Ing. Marta Pardo, biomédica, ext. 2231"
        devices:
          - id: hsr-ct1
            name: Tomógrafo 1
            kind: modality
            modality: CT
            manufacturer: Siemens Healthineers
            model: Somatom go.Up
            serial: CT-77812
            tcp: {host: 127.0.0.1, port: 1}
    contracts:
      - id: hsr-2026
        sla_policy: imaging-8x5
        devices: all
        start: 2025-01-01
        end: 2035-12-31
        activated: 2025-01-02
`

// invitationSeq reads UID, SEQUENCE and DTSTART of the invitation in a
// captured dispatch e-mail (python3-icalendar checks the format in the
// dispatch package's test; here the values are what matter).
func invitationSeq(t *testing.T, raw []byte) (uid, seq, start string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		t.Fatalf("the dispatch e-mail carries no invitation: %s", msg.Header.Get("Content-Type"))
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no text/calendar part: %v", err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct != "text/calendar" {
			continue
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		ics := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n ", ""), "\r\n", "\n") // unfold
		field := func(re string) string {
			if m := regexp.MustCompile(`(?m)^` + re + `$`).FindStringSubmatch(ics); m != nil {
				return m[1]
			}
			return ""
		}
		return field(`UID:(.+)`), field(`SEQUENCE:(\d+)`), field(`DTSTART;TZID=America/Bogota:(\d{8}T\d{6})`)
	}
}

// Field dispatch in a real browser: the NOC dispatches an engineer from a
// Sev 2 ticket, requests an imported part and records the customs wait;
// the ticket page, the NOC board, the dispatch board and the hospital's
// portal show the hold and the paused SLA; a reschedule sends the
// engineer an updated invitation (same UID, higher SEQUENCE); the
// engineer, on a 390×844 phone, opens the visit, records a part from
// their van's stock and a photo, gets the customer's signature and
// completes it.
func TestBrowserDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testpeer.Command(t, "chromium", "chromium")
	h := newHarness(t, dispatchInventory, browserRefresh)
	ctx := context.Background()
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	imported, stocked := h.catalogue(t)
	always := dispatch.CalendarSpec{Config: &calendar.Config{Zone: "America/Bogota", Always: true}}
	for id, in := range map[string]dispatch.EngineerInput{
		"eng-laura": {Name: "Laura Gómez", HomeCity: "Bogotá", Modalities: []string{"CT"}, Manufacturers: []string{"Siemens Healthineers"},
			WarehouseID: "wh-bog"},
		"eng-mateo": {Name: "Mateo Ríos", HomeCity: "Medellín", Modalities: []string{"MR"}},
	} {
		in.Email, in.Biomedical, in.Calendar = id+"@vigia.example", true, always
		if _, err := h.disp.PutEngineer(ctx, auth.NOCActor("test"), id, in, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	h.user(t, auth.UserInput{Username: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"})
	if _, err := h.db.Exec(`INSERT INTO device_states (device_id, state, since, last_detail, last_probe_at, updated_at)
		VALUES ('hsr-ct1', 'degraded', now(), 'C-ECHO 4.8 s', now(), now())`); err != nil {
		t.Fatal(err)
	}
	tk, err := h.tickets.Create(ctx, auth.Actor{Name: "ana", Role: auth.RoleNOC}, maintenance.CreateInput{CustomerID: "hsr",
		DeviceIDs: []string{"hsr-ct1"}, Severity: 2, Title: "Tomógrafo: falla del gantry",
		Description: "El gantry se detiene a mitad del estudio; error 4711 en consola."}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	smtpd := smtptest.Start(t, smtptest.Options{})
	sender := notify.NewSender(h.db, &notify.SMTP{Addr: smtpd.Addr, From: "noc@vigia.example"}, nil, h.console.cfg.Log)
	person, dir := startChromium(t, chromium, h.srv.URL)
	photo := filepath.Join(t.TempDir(), "gantry.png")
	if err := os.WriteFile(photo, testPNG(t, 240, 160), 0o644); err != nil {
		t.Fatal(err)
	}
	page := h.srv.URL + "/console/noc/tickets/" + tk.Number
	var visitID int64

	nocB := person()
	t.Run("noc dispatches", func(t *testing.T) {
		b := nocB
		b.t = t
		b.login("ana", testPassword, "#devices")
		b.do("ticket page", chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("dispatch")))
		// Mateo lives in Medellín: his trip would be billed to the hospital, and the page says so before anything is sent.
		if n := eval[int](b, `document.querySelectorAll('#suggestions tr[data-engineer="eng-mateo"] [data-travel]').length`); n != 1 {
			t.Fatal("the travel rule is not shown for an engineer from another city")
		}
		if first := eval[string](b, `document.querySelector('#suggestions tr[data-engineer]').dataset.engineer`); first != "eng-laura" {
			t.Fatalf("first suggestion %s; want the CT and Siemens engineer in Bogotá", first)
		}
		b.screenshot("dispatch-suggestions")
		b.do("propose the visit",
			chromedp.Click(chromedp.ID("send-eng-laura")), chromedp.Click(chromedp.ID("lead-eng-laura")),
			chromedp.SendKeys(chromedp.ID("visit-notes"), "Llevar la tarjeta de comunicación"),
			chromedp.Click(chromedp.ID("propose-visit")),
			chromedp.WaitVisible(chromedp.CSS(`.visit-card[data-state="proposed"]`)))
		visitID = int64(eval[int](b, `+document.querySelector('.visit-card').dataset.visit`))
		b.do("confirm the visit", chromedp.Click(chromedp.ID(fmt.Sprintf("schedule-visit-%d", visitID))),
			chromedp.WaitVisible(chromedp.CSS(`.visit-card[data-state="scheduled"]`)))

		b.do("request the imported part",
			chromedp.SetValue(chromedp.ID("part-choice"), fmt.Sprint(imported.ID)),
			chromedp.SetValue(chromedp.ID("part-source"), "import"),
			chromedp.SetValue(chromedp.ID("part-eta"), "2026-12-20"),
			chromedp.SendKeys(chromedp.ID("part-supplier"), "AWB 176-123"),
			chromedp.Click(chromedp.ID("request-part")),
			chromedp.WaitVisible(chromedp.CSS(`#part-requests tr[data-state="ordered"]`)))
		rid := eval[string](b, `document.querySelector('#part-requests tr[data-state="ordered"]').dataset.partRequest`)
		b.do("record the customs wait",
			chromedp.SetValue(chromedp.ID("part-to-"+rid), "in_customs"),
			chromedp.SetValue(chromedp.ID("part-eta-"+rid), "2026-12-22"),
			chromedp.Click(chromedp.ID("move-part-submit-"+rid)),
			chromedp.WaitVisible(chromedp.CSS(`#part-requests tr[data-state="in_customs"]`)))
		b.waitFor("the paused status", `#ticket-status[data-status="pending"]`, 10*time.Second)
		hold := eval[string](b, `document.querySelector('[data-hold]').textContent`)
		for _, want := range []string{"En espera: repuesto importado Siemens Healthineers SH-10482 (aduana, ETA 2026-12-22)", "SLA en pausa desde", "Visita programada"} {
			if !strings.Contains(hold, want) {
				t.Errorf("ticket page hold %q lacks %q", hold, want)
			}
		}
		b.screenshot("dispatch-ticket-hold")

		b.do("the NOC board", chromedp.Navigate(h.srv.URL+"/console/noc"),
			chromedp.WaitVisible(chromedp.CSS(`#ticket-queue tr[data-ticket="`+tk.Number+`"] [data-hold]`)))
		if txt := eval[string](b, `document.querySelector('#ticket-queue tr[data-ticket="`+tk.Number+`"] [data-hold]').textContent`); !strings.Contains(txt, "aduana, ETA 2026-12-22") || !strings.Contains(txt, "SLA en pausa desde") {
			t.Errorf("board hold: %q", txt)
		}
		b.screenshot("dispatch-noc-board")
	})
	if visitID == 0 {
		t.FailNow()
	}
	v, err := h.disp.Visit(ctx, auth.NOCActor("t"), visitID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("portal", func(t *testing.T) {
		b := person()
		b.t = t
		b.login("hsr", testPassword, "#portal-tickets")
		txt := eval[string](b, `document.querySelector('#portal-tickets tr[data-ticket="`+tk.Number+`"] [data-hold]').textContent`)
		if !strings.Contains(txt, "repuesto importado Siemens Healthineers SH-10482 (aduana, ETA 2026-12-22)") || !strings.Contains(txt, "SLA en pausa desde") {
			t.Errorf("portal hold: %q", txt)
		}
		b.do("portal ticket", chromedp.Navigate(h.srv.URL+"/console/portal/tickets/"+tk.Number), chromedp.WaitVisible(chromedp.CSS(`[data-hold]`)))
		if html := eval[string](b, `document.body.innerHTML`); strings.Contains(html, "987654321") || strings.Contains(html, "AWB") {
			t.Error("the portal shows an internal cost or the supplier's reference")
		}
		b.screenshot("dispatch-portal-hold")
	})

	t.Run("reschedule", func(t *testing.T) {
		b := nocB
		b.t = t
		newStart := v.WindowStart.Add(5 * time.Hour)
		bog, _ := time.LoadLocation("America/Bogota")
		b.do("reschedule",
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.ID(fmt.Sprintf("schedule-%d", visitID))),
			chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`#schedule-%d input[name="from"]`, visitID)), newStart.In(bog).Format(localLayout)),
			chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`#schedule-%d input[name="to"]`, visitID)), newStart.Add(2*time.Hour).In(bog).Format(localLayout)),
			chromedp.Click(chromedp.ID(fmt.Sprintf("schedule-visit-%d", visitID))),
			chromedp.WaitVisible(chromedp.CSS(`.flash.ok`)))
		b.do("dispatch board", chromedp.Navigate(h.srv.URL+"/console/noc/dispatch?view=week&date="+newStart.In(bog).Format(time.DateOnly)),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#timeline-grid [data-visit="%d"]`, visitID))),
			chromedp.WaitVisible(chromedp.CSS(`#parts-moving tr[data-state="in_customs"]`)))
		b.screenshot("dispatch-board")
		if _, err := sender.SendDue(ctx, h.clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var invites [][3]string
		for _, m := range smtpd.Wait(t, 2, 10*time.Second) {
			if m.To[0] == "eng-laura@vigia.example" {
				uid, seq, start := invitationSeq(t, m.Raw)
				invites = append(invites, [3]string{uid, seq, start})
			}
		}
		want := [][3]string{
			{fmt.Sprintf("visit-%d@vigia", visitID), "0", v.WindowStart.In(bog).Format("20060102T150405")},
			{fmt.Sprintf("visit-%d@vigia", visitID), "1", newStart.In(bog).Format("20060102T150405")},
		}
		if fmt.Sprint(invites) != fmt.Sprint(want) {
			t.Fatalf("Laura's invitations (UID, SEQUENCE, DTSTART): %v; want %v", invites, want)
		}
	})

	t.Run("engineer on the phone", func(t *testing.T) {
		b := person()
		b.t = t
		b.do("a 390×844 phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
		b.login("laura", testPassword, "#live")
		b.do("open the visit", chromedp.Navigate(fmt.Sprintf("%s/console/engineer/visits/%d", h.srv.URL, visitID)),
			chromedp.WaitVisible(chromedp.ID("visit-devices")))
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the visit page is %d px wide on a 390 px phone", w)
		}
		text := eval[string](b, `document.querySelector('main').innerText`)
		for _, want := range []string{"Tomógrafo 1", "Siemens Healthineers Somatom go.Up", "CT-77812", "Degradado", "C-ECHO 4.8 s",
			"Carrera 7 No. 40-62", "Ing. Marta Pardo", "America/Bogota", "error 4711", "aduana, ETA 2026-12-22"} {
			if !strings.Contains(text, want) {
				t.Errorf("the visit page lacks %q", want)
			}
		}
		if href := eval[string](b, `document.getElementById('visit-map').href`); !strings.Contains(href, "Carrera+7") {
			t.Errorf("navigation link %s", href)
		}
		b.screenshot("engineer-phone-visit")
		b.do("on site",
			chromedp.Click(chromedp.ID("move-en_route")),
			chromedp.WaitVisible(chromedp.CSS(`#visit-state[data-state="en_route"]`)),
			chromedp.Click(chromedp.ID("move-on_site")),
			chromedp.WaitVisible(chromedp.ID("outcome-form")))
		b.do("a photo",
			chromedp.SetUploadFiles(chromedp.ID("photos"), []string{photo}),
			chromedp.Click(chromedp.ID("photo-submit")),
			chromedp.WaitVisible(chromedp.CSS(`#visit-photos img[data-photo="gantry.png"]`)))
		if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("the outcome form is %d px wide on a 390 px phone", w)
		}
		b.do("the outcome",
			chromedp.SetValue(chromedp.ID("part_stock_1"), "wh-bog|Siemens Healthineers|"+stocked.PartNumber),
			chromedp.Click(chromedp.ID("check_1")),
			chromedp.SendKeys(chromedp.ID("work_performed"), "Se reemplazó el fusible de la tarjeta del gantry; estudio de prueba correcto."),
			chromedp.SendKeys(chromedp.ID("signer"), "Ing. Marta Pardo"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('sig-pad').scrollIntoView({block: 'center'})`))
		rect := eval[struct{ X, Y, W, H float64 }](b, `(() => { const r = document.getElementById('sig-pad').getBoundingClientRect(); return {X: r.left, Y: r.top, W: r.width, H: r.height}; })()`)
		if rect.W > 390 {
			t.Errorf("the signature pad is %.0f px wide on a 390 px phone", rect.W)
		}
		// Sign with a finger: touch strokes across the pad.
		touch := func(typ input.DispatchTouchEventType, x, y float64) chromedp.Action[chromedp.Void] {
			return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				p := input.DispatchTouchEventParams{Type: typ, TouchPoints: []*input.TouchPoint{}}
				if typ != input.DispatchTouchEventTypeTouchEnd {
					p.TouchPoints = []*input.TouchPoint{{X: x, Y: y}}
				}
				_, err := cdp.Call(ctx, tg, input.DispatchTouchEvent, p)
				return err
			})
		}
		var strokes []chromedp.Action[chromedp.Void]
		for s := range 3 {
			y0, x0 := rect.Y+rect.H*(0.3+0.2*float64(s)), rect.X+rect.W*0.1
			strokes = append(strokes, touch(input.DispatchTouchEventTypeTouchStart, x0, y0))
			for i := 1; i <= 12; i++ {
				strokes = append(strokes, touch(input.DispatchTouchEventTypeTouchMove, x0+rect.W*0.07*float64(i), y0+rect.H*0.15*float64((i%4)-2)))
			}
			strokes = append(strokes, touch(input.DispatchTouchEventTypeTouchEnd, 0, 0))
		}
		b.do("sign", strokes...)
		b.screenshot("engineer-phone-signing")
		b.do("complete", chromedp.Click(chromedp.ID("outcome-submit")),
			chromedp.WaitVisible(chromedp.CSS(`#visit-state[data-state="done"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#signature img`)))
		b.screenshot("engineer-phone-done")

		var parts, kind string
		if err := h.db.QueryRow(`SELECT parts_used::text, signature_kind FROM visits WHERE id = $1`, visitID).Scan(&parts, &kind); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(parts, stocked.PartNumber) || !strings.Contains(parts, `"warehouse": "wh-bog"`) || kind != "drawn" {
			t.Fatalf("outcome: parts %s, signature %s", parts, kind)
		}
		var left, photos int
		h.db.Get(&left, `SELECT quantity FROM stock WHERE warehouse_id = 'wh-bog' AND part_id = $1`, stocked.ID)
		h.db.Get(&photos, `SELECT count(*) FROM ticket_attachments WHERE visit_id = $1 AND content_type = 'image/png'`, visitID)
		if left != 2 || photos != 1 {
			t.Fatalf("stock left %d (want 2: one used from the van), photos %d", left, photos)
		}
	})
	t.Logf("artefacts in %s", dir)
}
