package console

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/mailintake"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
	"github.com/vigia-noc/vigia/reports"
)

// harness is the console mounted on the real root mux of `vigia serve`
// (internal/server), over a real migrated PostgreSQL with an inventory.
type harness struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets *maintenance.Store
	disp    *dispatch.Store
	users   *auth.Users
	console *Console
	mail    *mailintake.Intake
	srv     *httptest.Server
	clock   *testClock
}

// testClock is a settable clock; it follows real time unless set.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// twoHospitals is the unit tests' inventory: hsr (imaging-8x5, unlimited
// seats) and cmf (desk-standard: two portal seats).
const twoHospitals = `
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
          - id: hsr-pacs
            name: PACS central
            kind: pacs
            role: core
            tcp: {host: 127.0.0.1, port: 1}
          - id: hsr-ct1
            name: Tomógrafo 1
            kind: modality
            modality: CT
            tcp: {host: 127.0.0.1, port: 1}
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
    language: es
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
            tcp: {host: 127.0.0.1, port: 1}
    contracts:
      - id: cmf-desk
        sla_policy: desk-standard
        devices: all
        start: 2025-01-01
        end: 2035-12-31
        activated: 2025-01-02
`

func newHarness(t testing.TB, inventory string, refresh time.Duration) *harness {
	t.Helper()
	db := pgtest.DB(t)
	file, err := assets.ParseFile("inventory.yaml", []byte(inventory), assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	h := &harness{db: db, inv: assets.NewStore(db), clock: clock}
	if _, err := h.inv.Import(context.Background(), file, clock.Now(), false); err != nil {
		t.Fatal(err)
	}
	h.tickets = maintenance.NewStore(db, h.inv, maintenance.Options{})
	h.disp = dispatch.NewStore(db, h.inv, h.tickets)
	h.users = auth.NewUsers(db, h.tickets, h.inv)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h.mail = mailintake.New(db, h.tickets, h.inv, clock.Now, log)
	h.console, err = New(Config{Users: h.users, Assets: h.inv, Tickets: h.tickets, Dispatch: h.disp, Mail: h.mail,
		Probes: probes.NewStore(db), History: probes.NewStore(db), Now: clock.Now, Log: log, Refresh: refresh,
		Reports: &reports.Reporter{Inventory: h.inv, History: probes.NewStore(db), Tickets: h.tickets, Field: h.disp,
			Policies: []*sla.Set{sla.Presets()}, Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h.srv = httptest.NewServer(server.Handler(server.Config{Tokens: auth.NewTokens(db, clock.Now), Registry: reg, Log: log,
		API:    []server.Routes{maintenance.NewAPI(h.tickets, clock.Now, log)},
		Public: []server.Routes{h.console}}))
	t.Cleanup(h.srv.Close)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// user creates a console user with a fixed test password.
func (h *harness) user(t testing.TB, in auth.UserInput) auth.User {
	t.Helper()
	if in.Password == "" {
		in.Password = testPassword
	}
	u, err := h.users.Create(context.Background(), in, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const testPassword = "correct horse battery"

// engineer creates a field engineer available around the clock.
func (h *harness) engineer(t testing.TB, id, name string) {
	t.Helper()
	if _, err := h.disp.PutEngineer(context.Background(), auth.NOCActor("test"), id, dispatch.EngineerInput{Name: name, Email: id + "@vigia.example", HomeCity: "Bogotá",
		IT: true, Biomedical: true, Calendar: dispatch.CalendarSpec{Config: &calendar.Config{Zone: "America/Bogota", Always: true}}},
		h.clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// openTicket opens a ticket as the NOC.
func (h *harness) openTicket(t testing.TB, customer, device string, severity int, title string) maintenance.Ticket {
	t.Helper()
	tk, err := h.tickets.Create(context.Background(), auth.Actor{Name: "ana", Role: auth.RoleNOC}, maintenance.CreateInput{
		CustomerID: customer, DeviceIDs: []string{device}, Severity: severity, Title: title}, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// scheduledVisit sends engineer to the ticket's device now, scheduled.
func (h *harness) scheduledVisit(t testing.TB, ticketID int64, engineer string) dispatch.Visit {
	t.Helper()
	ctx, noc := context.Background(), auth.NOCActor("ana")
	now := h.clock.Now()
	v, err := h.disp.CreateVisit(ctx, noc, dispatch.VisitInput{TicketID: ticketID, Engineers: []string{engineer}}, now)
	if err != nil {
		t.Fatal(err)
	}
	from, to := now.Add(time.Minute), now.Add(3*time.Hour)
	if _, err := h.disp.Transition(ctx, noc, v.ID, dispatch.TransitionInput{To: dispatch.VisitScheduled, WindowStart: &from, WindowEnd: &to}, now); err != nil {
		t.Fatal(err)
	}
	return v
}

// client is a browser-like HTTP client: a cookie jar, no redirects
// followed, so tests see each answer.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
}

func (h *harness) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: h.srv.URL, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request and returns status, headers and body; it keeps the
// last CSRF token seen on a page.
func (c *client) do(method, path string, body string, header http.Header) (int, http.Header, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if method == http.MethodPost && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if m := csrfField.FindStringSubmatch(buf.String()); m != nil {
		c.csrf = m[1]
	}
	return resp.StatusCode, resp.Header, buf.String()
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	code, _, body := c.do(http.MethodGet, path, "", nil)
	return code, body
}

// post sends a form with the current CSRF token unless form sets one.
func (c *client) post(path string, form url.Values) (int, http.Header, string) {
	c.t.Helper()
	if !form.Has("csrf") {
		form.Set("csrf", c.csrf)
	}
	return c.do(http.MethodPost, path, form.Encode(), nil)
}

// login logs in through the form and fails the test unless it works.
func (c *client) login(username, password string) {
	c.t.Helper()
	if code, _ := c.get("/console/login"); code != http.StatusOK {
		c.t.Fatalf("GET login: %d", code)
	}
	code, hdr, body := c.post("/console/login", url.Values{"username": {username}, "password": {password}})
	if code != http.StatusSeeOther {
		c.t.Fatalf("login as %s: %d %s", username, code, body)
	}
	loc := hdr.Get("Location")
	if code, _ := c.get(loc); code != http.StatusOK {
		c.t.Fatalf("GET %s after login: %d", loc, code)
	}
}

// testPNG is a small but real PNG screenshot.
func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 120, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
