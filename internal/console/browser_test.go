package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image/png"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/fleetsim"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/mailintake"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/intake"
	"github.com/vigia-noc/vigia/probes"
)

// Browser test timings. The NOC board must show an outage within one
// probe cycle of the device: its interval, the confirmation retries and
// one board refresh (plus slack for a loaded 2-core machine).
const (
	browserProbeInterval = 2 * time.Second
	browserProbeRetries  = 1
	browserRefresh       = time.Second
)

// browserInventory is hsr (three simulated devices) and cmf (one), on
// loopback ports given by the caller.
func browserInventory(ports []int) string {
	return fmt.Sprintf(`
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
        devices:
          - id: hsr-pacs
            name: PACS central
            kind: pacs
            role: core
            dicom: {host: 127.0.0.1, port: %[1]d, called_ae: HSR_PACS}
            probe: {interval: %[5]s, retries: %[6]d}
          - id: hsr-ris
            name: RIS central
            kind: ris
            role: core
            tcp: {host: 127.0.0.1, port: %[2]d}
            probe: {interval: %[5]s, retries: %[6]d}
          - id: hsr-ct1
            name: Tomógrafo 1
            kind: modality
            modality: CT
            manufacturer: Siemens Healthineers
            dicom: {host: 127.0.0.1, port: %[3]d, called_ae: HSR_CT1}
            probe: {interval: %[5]s, retries: %[6]d}
    contracts:
      - id: hsr-2026
        sla_policy: imaging-8x5
        devices: all
        start: 2025-01-01
        end: 2035-12-31
        activated: 2025-01-02
  - id: cmf
    name: Clínica Miraflores
    country: PE
    time_zone: America/Lima
    sites:
      - id: cmf-main
        name: Sede Miraflores
        kind: hospital
        city: Lima
        devices:
          - id: cmf-pacs
            name: PACS Miraflores
            kind: pacs
            role: core
            dicom: {host: 127.0.0.1, port: %[4]d, called_ae: CMF_PACS}
            probe: {interval: %[5]s, retries: %[6]d}
    contracts:
      - id: cmf-soporte
        sla_policy: it-support-pe
        devices: all
        start: 2025-01-01
        end: 2035-12-31
        activated: 2025-01-02
`, ports[0], ports[1], ports[2], ports[3], browserProbeInterval, browserProbeRetries)
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// artefacts is where screenshots go: test-artifacts/browser in the
// repository, or the test's temporary directory when that is not writable.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "test-artifacts", "browser")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if f, err := os.CreateTemp(dir, ".probe"); err == nil {
			f.Close()
			os.Remove(f.Name())
			abs, _ := filepath.Abs(dir)
			return abs
		}
	}
	return t.TempDir()
}

// browser is one person's browser: its own cookie jar (browser context).
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor waits up to limit for a CSS selector to be visible.
func (b *browser) waitFor(what, sel string, limit time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %s not visible within %s: %v", what, sel, limit, err)
	}
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

func (b *browser) login(username, password, landing string) {
	b.t.Helper()
	b.do("login as "+username,
		chromedp.Navigate(b.base+"/console/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), username),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS(landing)))
}

// The console in a real browser: a hospital's user sees only its devices,
// opens a ticket with a screenshot and confirms the solution; an engineer
// completes a visit with a drawn signature; the NOC board turns the core
// PACS red within one probe cycle of the simulated outage, its Sev 1
// ticket appears on the board, and the hospital's open portal shows it
// without a reload.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testpeer.Command(t, "chromium", "chromium")
	started := time.Now()

	// The fleet, the NOC's probes and the outage consumer, as `vigia serve`
	// runs them, over a real database.
	ports := freePorts(t, 4)
	inventory := browserInventory(ports)
	file, err := assets.ParseFile("inventory.yaml", []byte(inventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sim, err := fleetsim.New(fleetsim.FromInventory(file).Devices, fleetsim.Options{DICOMTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	h := newHarness(t, inventory, browserRefresh)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { stop(); <-done; <-done })
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	engine, err := probes.NewEngine(ctx, probes.NewStore(h.db), h.inv, probes.Config{Log: log,
		Probers: map[string]probes.Prober{"dicom": &probes.DICOM{}, "tcp": &probes.TCP{}}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := probes.NewScheduler(engine, probes.SchedulerConfig{Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer func() { done <- struct{}{} }(); sched.Run(ctx) }()
	go func() {
		defer func() { done <- struct{}{} }()
		intake.NewOutageConsumer(h.tickets, h.inv, h.clock.Now, log).Run(ctx, 250*time.Millisecond)
	}()

	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "cmf", Role: auth.RoleCustomer, CustomerID: "cmf"})
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.engineer(t, "eng-laura", "Laura Gómez")
	h.user(t, auth.UserInput{Username: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"})

	person, dir := startChromium(t, chromium, h.srv.URL)
	shot := filepath.Join(t.TempDir(), "pantalla.png")
	if err := os.WriteFile(shot, testPNG(t, 320, 200), 0o644); err != nil {
		t.Fatal(err)
	}

	// The hospital's browser stays open across the subtests.
	var hospital *browser
	t.Run("hospital", func(t *testing.T) {
		b := person()
		b.t = t
		b.do("login page", chromedp.Navigate(h.srv.URL+"/console/login"), chromedp.WaitVisible(chromedp.ID("login-form")))
		b.screenshot("login")
		b.login("hsr", testPassword, "#devices")
		ids := eval[[]string](b, `[...document.querySelectorAll('#devices [data-device]')].map(e => e.dataset.device).sort()`)
		if !slices.Equal(ids, []string{"hsr-ct1", "hsr-pacs", "hsr-ris"}) {
			t.Fatalf("hsr's portal shows devices %v", ids)
		}
		if html := eval[string](b, `document.body.innerHTML`); strings.Contains(html, "cmf") || strings.Contains(html, "Miraflores") {
			t.Fatal("hsr's portal mentions the other customer")
		}
		b.screenshot("portal")

		b.do("open a ticket",
			chromedp.Click(chromedp.ID("new-ticket")),
			chromedp.WaitVisible(chromedp.ID("new-ticket-form")),
			chromedp.SendKeys(chromedp.ID("title"), "El tomógrafo no envía estudios al PACS"),
			chromedp.SetValue(chromedp.ID("severity"), "2"),
			chromedp.SetValue(chromedp.ID("device"), "hsr-ct1"),
			chromedp.SendKeys(chromedp.ID("description"), "Desde las 7:00 los estudios quedan en cola. Adjunto captura."),
			chromedp.SetUploadFiles(chromedp.ID("attachments"), []string{shot}))
		b.screenshot("portal-new-ticket")
		b.do("submit the ticket", chromedp.Click(chromedp.ID("new-ticket-submit")), chromedp.WaitVisible(chromedp.ID("ticket-number")))
		number := eval[string](b, `document.getElementById('ticket-number').textContent`)
		b.waitFor("attachment shown", `img[alt="pantalla.png"]`, 10*time.Second)
		if w := eval[int](b, `document.querySelector('img[alt="pantalla.png"]').naturalWidth`); w != 320 {
			t.Fatalf("the attached screenshot renders %d px wide; want 320", w)
		}
		b.screenshot("portal-ticket")
		var source, requester string
		if err := h.db.QueryRow(`SELECT source, requester FROM tickets WHERE number = $1`, number).Scan(&source, &requester); err != nil ||
			source != maintenance.SourcePortal || requester != "hsr" {
			t.Fatalf("ticket %s: %s %s %v", number, source, requester, err)
		}

		// The NOC solves it; the portal shows it live, then the customer confirms.
		if _, err := h.tickets.Act(context.Background(), auth.Actor{Name: "ana", Role: auth.RoleNOC}, number, "solve",
			maintenance.ActionInput{Text: "Se liberó la cola DICOM del tomógrafo y se reenviaron los estudios."}, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		b.waitFor("solved status without reload", `#ticket-status[data-status="solved"]`, 10*time.Second)
		b.do("confirm", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("act-confirm")),
			chromedp.SendKeys(chromedp.CSS(`#confirm-form input[name="text"]`), "Confirmado, ya llegan los estudios."),
			chromedp.Click(chromedp.ID("act-confirm")),
			chromedp.WaitVisible(chromedp.CSS(`#ticket-status[data-status="closed"]`)))
		b.screenshot("portal-ticket-confirmed")
		var reason string
		if err := h.db.QueryRow(`SELECT close_reason FROM tickets WHERE number = $1`, number).Scan(&reason); err != nil || reason != maintenance.CloseConfirmed {
			t.Fatalf("close reason %q %v", reason, err)
		}
		// Leave the portal open: the outage below must reach it live.
		b.do("back to the portal", chromedp.Navigate(h.srv.URL+"/console/portal"), chromedp.WaitVisible(chromedp.ID("devices")))
		hospital = b
	})
	if hospital == nil {
		t.FailNow()
	}

	t.Run("engineer", func(t *testing.T) {
		tk := h.openTicket(t, "hsr", "hsr-ct1", 2, "Tomógrafo: falla del gantry")
		v := h.scheduledVisit(t, tk.ID, "eng-laura")
		b := person()
		b.t = t
		card := fmt.Sprintf(`#visits-today [data-visit="%d"]`, v.ID)
		b.login("laura", testPassword, card)
		b.screenshot("engineer-visits")
		// Links inside a live region may be replaced under the pointer:
		// follow the href instead of clicking.
		href := eval[string](b, `document.querySelector('`+card+` a').href`)
		if want := fmt.Sprintf("%s/console/engineer/visits/%d", h.srv.URL, v.ID); href != want {
			t.Fatalf("visit link %s; want %s", href, want)
		}
		b.do("go on site",
			chromedp.Navigate(href),
			chromedp.WaitVisible(chromedp.ID("move-en_route")),
			chromedp.Click(chromedp.ID("move-en_route")),
			chromedp.WaitVisible(chromedp.CSS(`#visit-state[data-state="en_route"]`)),
			chromedp.Click(chromedp.ID("move-on_site")),
			chromedp.WaitVisible(chromedp.ID("outcome-form")))
		items := eval[int](b, `document.querySelectorAll('input[name^="check_"]').length`)
		if items == 0 {
			t.Fatal("the visit has no checklist")
		}
		b.do("fill the outcome",
			chromedp.Click(chromedp.ID("check_1")),
			chromedp.SendKeys(chromedp.ID("work_performed"), "Se reemplazó la tarjeta de comunicación del gantry; pruebas de imagen correctas."),
			chromedp.SendKeys(chromedp.ID("signer"), "Dra. Marcela Ríos"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById('sig-pad').scrollIntoView({block: 'center'})`))
		// Sign with the mouse: a few strokes across the pad.
		rect := eval[struct{ X, Y, W, H float64 }](b, `(() => { const r = document.getElementById('sig-pad').getBoundingClientRect(); return {X: r.left, Y: r.top, W: r.width, H: r.height}; })()`)
		var strokes []chromedp.Action[chromedp.Void]
		for s := range 3 {
			y0 := rect.Y + rect.H*(0.3+0.2*float64(s))
			x0 := rect.X + rect.W*0.1
			strokes = append(strokes, chromedp.MouseEvent(chromedp.MousePressed, x0, y0, chromedp.ButtonLeft))
			for i := 1; i <= 12; i++ {
				x := x0 + rect.W*0.07*float64(i)
				y := y0 + rect.H*0.15*float64((i%4)-2)
				strokes = append(strokes, chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft,
					func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }))
			}
			strokes = append(strokes, chromedp.MouseEvent(chromedp.MouseReleased, x0+rect.W*0.84, y0, chromedp.ButtonLeft))
		}
		b.do("sign", strokes...)
		b.screenshot("engineer-visit-signing")
		b.do("record the outcome", chromedp.Click(chromedp.ID("outcome-submit")),
			chromedp.WaitVisible(chromedp.CSS(`#visit-state[data-state="done"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#signature img`)))
		b.screenshot("engineer-visit-done")

		var kind, sig, checklist string
		if err := h.db.QueryRow(`SELECT signature_kind, signature, checklist::text FROM visits WHERE id = $1`, v.ID).Scan(&kind, &sig, &checklist); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "data:image/png;base64,"))
		if kind != "drawn" || err != nil {
			t.Fatalf("signature %s (%v)", kind, err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("the signature is not a PNG: %v", err)
		}
		inked := 0
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
				if r, g, bl, _ := img.At(x, y).RGBA(); r < 0x8000 && g < 0x8000 && bl < 0x8000 {
					inked++
				}
			}
		}
		if inked < 200 {
			t.Fatalf("the drawn signature has %d dark pixels: the strokes did not reach the canvas", inked)
		}
		if !strings.Contains(checklist, `"id": 1, "done": true`) && !strings.Contains(checklist, `"done": true, "id": 1`) {
			t.Fatalf("checklist item 1 not ticked: %s", checklist)
		}
	})

	t.Run("noc", func(t *testing.T) {
		b := person()
		b.t = t
		b.login("ana", testPassword, "#devices")
		// Every device up first: the probes have run and the board follows.
		b.waitFor("all devices up", `[data-device="hsr-pacs"][data-state="up"]`, 20*time.Second)
		b.waitFor("all devices up", `[data-device="cmf-pacs"][data-state="up"]`, 10*time.Second)
		b.screenshot("noc-board")

		// Red within one probe interval: the first failed probe (at most one
		// interval after the outage) shows the device red, "not answering,
		// confirming", before the retries confirm it down.
		redBudget := browserProbeInterval + browserRefresh + 2*time.Second
		budget := browserProbeInterval + time.Duration(browserProbeRetries)*max(browserProbeInterval/time.Duration(browserProbeRetries+2), 500*time.Millisecond) +
			browserRefresh + 3*time.Second
		down := time.Now()
		if err := sim.Down("hsr-pacs", fleetsim.Refuse); err != nil {
			t.Fatal(err)
		}
		b.waitFor("the PACS turns red", `[data-device="hsr-pacs"][data-failing="true"], [data-device="hsr-pacs"][data-state="down"]`, redBudget+10*time.Second)
		red := time.Since(down)
		colour := eval[string](b, `getComputedStyle(document.querySelector('[data-device="hsr-pacs"]')).backgroundColor`)
		if colour != "rgb(214, 40, 40)" {
			t.Fatalf("the failing PACS is drawn %s, not red", colour)
		}
		if red > redBudget {
			t.Fatalf("the board turned red %s after the outage; the budget (one probe interval %s + refresh %s + slack) is %s",
				red, browserProbeInterval, browserRefresh, redBudget)
		}
		b.waitFor("the PACS confirmed down", `[data-device="hsr-pacs"][data-state="down"]`, budget+10*time.Second)
		took := time.Since(down)
		t.Logf("hsr-pacs red on the board %s after the outage (budget %s), confirmed down after %s (budget %s)",
			red.Round(100*time.Millisecond), redBudget, took.Round(100*time.Millisecond), budget)
		if colour := eval[string](b, `getComputedStyle(document.querySelector('[data-device="hsr-pacs"]')).backgroundColor`); colour != "rgb(214, 40, 40)" {
			t.Fatalf("the down PACS is drawn %s, not red", colour)
		}
		if took > budget {
			t.Fatalf("the board showed the PACS down %s after the outage; the budget (interval %s + confirmation + refresh %s + slack) is %s",
				took, browserProbeInterval, browserRefresh, budget)
		}
		if others := eval[[]string](b, `[...document.querySelectorAll('[data-state="down"]')].map(e => e.dataset.device)`); !slices.Equal(others, []string{"hsr-pacs"}) {
			t.Fatalf("down on the board: %v", others)
		}
		// The outage becomes a Sev 1 ticket at the top of the queue.
		b.waitFor("the Sev 1 ticket", `#ticket-queue tr[data-ticket] .sev1`, 15*time.Second)
		b.waitFor("the open outage", `#outages tr[data-outage]`, 5*time.Second)
		b.screenshot("noc-board-outage")
		var number string
		if err := h.db.QueryRow(`SELECT number FROM tickets WHERE source = 'probe' AND severity = 1`).Scan(&number); err != nil {
			t.Fatalf("no Sev 1 ticket from the outage: %v", err)
		}
		if first := eval[string](b, `document.querySelector('#ticket-queue tr[data-ticket]').dataset.ticket`); first != number {
			t.Fatalf("the queue starts with %s; want the Sev 1 %s", first, number)
		}
		// The hospital's portal, open all along, shows it without a reload.
		hospital.t = t
		hospital.waitFor("the Sev 1 ticket in the portal", `#portal-tickets tr[data-ticket="`+number+`"]`, 10*time.Second)
		hospital.waitFor("the PACS red in the portal", `#devices [data-device="hsr-pacs"][data-state="down"]`, 5*time.Second)
		hospital.screenshot("portal-outage")

		href := eval[string](b, `document.querySelector('#ticket-queue tr[data-ticket="`+number+`"] a').href`)
		b.do("ticket page", chromedp.Navigate(href), chromedp.WaitVisible(chromedp.ID("timeline")))
		if got := eval[string](b, `document.getElementById('ticket-number').textContent`); got != number {
			t.Fatalf("ticket page of %s", got)
		}
		b.screenshot("noc-ticket")
		// The language switch.
		b.do("switch to English", chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #timeline`)))
		if title := eval[string](b, `[...document.querySelectorAll('h2')].map(e => e.textContent).join('|')`); !strings.Contains(title, "Timeline") {
			t.Fatalf("headings after the switch: %s", title)
		}
		b.screenshot("noc-ticket-en")

		// Unmatched mail: a message from nobody's address, made a ticket.
		if _, err := h.mail.Process(context.Background(), mailintake.Envelope{Mailbox: "imap://soporte@mail.test:143/INBOX", UIDValidity: 1, UID: 1,
			Received: h.clock.Now().Add(-10 * time.Minute), Raw: []byte("From: Residente <residente@correo.example>\r\nSubject: El ecógrafo no envía\r\n" +
				"Message-ID: <b1@correo.example>\r\n\r\nEl ecógrafo de la sala 2 no envía estudios al PACS.\r\n")}); err != nil {
			t.Fatal(err)
		}
		b.do("unmatched mail", chromedp.Navigate(h.srv.URL+"/console/noc/mail"), chromedp.WaitVisible(chromedp.ID("mail-queue")))
		b.screenshot("noc-mail")
		b.do("assign to a customer", chromedp.Click(chromedp.CSS(`#mail-queue form[action$="/assign"] button`)), chromedp.WaitVisible(chromedp.ID("mail-empty")))
		b.screenshot("noc-mail-assigned")
	})
	t.Logf("browser test took %s (artefacts in %s)", time.Since(started).Round(time.Second), dir)
}

// startChromium starts one headless Chromium for a test; person opens an
// isolated browser context (its own cookie jar) for one person.
func startChromium(t *testing.T, chromium, base string) (person func() *browser, dir string) {
	t.Helper()
	// One browser, one isolated context (cookie jar) per person.
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	dir = artefacts(t)
	person = func() *browser {
		ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// The first run opens the tab and binds it to its context: no timeout here.
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("open a tab: %v", err)
		}
		return &browser{t: t, ctx: ctx, base: base, dir: dir}
	}
	return person, dir
}
