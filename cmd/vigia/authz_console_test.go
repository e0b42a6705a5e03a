package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/console"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
)

// consoleUser is a logged-in browser of the console.
type consoleUser struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (u *consoleUser) send(method, path, contentType string, body io.Reader) (int, string) {
	u.t.Helper()
	req, err := http.NewRequest(method, u.base+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := consoleCSRF.FindSubmatch(b); m != nil {
		u.csrf = string(m[1])
	}
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

func (u *consoleUser) form(path string, f url.Values) (int, string) {
	return u.send("POST", path, "application/x-www-form-urlencoded", strings.NewReader(f.Encode()))
}

func loginConsole(t *testing.T, base, username string) *consoleUser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u := &consoleUser{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	u.send("GET", "/console/login", "", nil)
	code, home := u.form("/console/login", url.Values{"csrf": {u.csrf}, "username": {username}, "password": {"correct horse battery"}})
	if code != http.StatusSeeOther {
		t.Fatalf("login %s: %d %s", username, code, home)
	}
	if code, _ := u.send("GET", home, "", nil); code != http.StatusOK {
		t.Fatalf("%s at %s: %d", username, home, code)
	}
	return u
}

// consoleAction is one dispatch action of the console, aimed at hsr's
// ticket and its rows, with a form the NOC's session would send.
type consoleAction struct {
	pattern string
	path    string
	form    url.Values
	// allowed is the role that may act (besides nobody else); an engineer
	// not sent on the visit gets 404 for photos, as for a missing visit.
	allowed string
}

// Every dispatch action of the web console refuses the wrong role, another
// customer's user and a form without the session's CSRF token, and the
// database stays as it was; then the allowed role succeeds with the same
// form, so the refusals were the authorization's, not a broken form's.
func TestConsoleDispatchAuthorization(t *testing.T) {
	conn := pgtest.DB(t)
	ctx := context.Background()
	raw, err := os.ReadFile("../../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := assets.ParseFile("inventory.yaml", raw, parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	store := assets.NewStore(conn)
	clock := clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	if _, err := store.Import(ctx, inv, clock.Now(), false); err != nil {
		t.Fatal(err)
	}
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	disp := dispatch.NewStore(conn, store, tickets)
	users := auth.NewUsers(conn, tickets, store)
	log := slog.New(slog.DiscardHandler)
	web, err := console.New(console.Config{Users: users, Probes: probes.NewStore(conn), Assets: store, Tickets: tickets, Dispatch: disp, Now: clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(server.Handler(httpConfig(httpDeps{conn: conn, tokens: auth.NewTokens(conn, clock.Now), reg: reg, log: log,
		assets: store, probes: probes.NewStore(conn), probeMetrics: probes.NewMetrics(reg), tickets: tickets, dispatch: disp, clock: clock,
		console: web})))
	t.Cleanup(srv.Close)

	noc := auth.NOCActor("ana")
	for id, name := range map[string]string{"eng-laura": "Laura Gómez", "eng-pedro": "Pedro Ruiz"} {
		if _, err := disp.PutEngineer(ctx, noc, id, dispatch.EngineerInput{Name: name, Email: id + "@vigia.example", HomeCity: "Bogotá",
			Biomedical: true, IT: true, Calendar: dispatch.CalendarSpec{Preset: "co-8x5"}}, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []auth.UserInput{{Username: "ana", Role: auth.RoleNOC}, {Username: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"},
		{Username: "pedro", Role: auth.RoleEngineer, EngineerID: "eng-pedro"}, {Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"},
		{Username: "cmf", Role: auth.RoleCustomer, CustomerID: "cmf"}} {
		u.Password = "correct horse battery"
		if _, err := users.Create(ctx, u, clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := tickets.Create(ctx, auth.Actor{Name: "ana", Role: auth.RoleNOC}, maintenance.CreateInput{CustomerID: "hsr",
		DeviceIDs: []string{"hsr-ct1"}, Severity: 2, Title: "Tomógrafo de San Rafael sin imagen"}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	visit, err := disp.CreateVisit(ctx, noc, dispatch.VisitInput{TicketID: tk.ID, Engineers: []string{"eng-laura"}}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	part, err := disp.PutPart(ctx, noc, dispatch.PartInput{Manufacturer: "GE", PartNumber: "GE-5131", UnitPriceCents: 100, UnitCostCents: 50}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	request, err := disp.RequestPart(ctx, noc, dispatch.PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	mcase, err := disp.OpenCase(ctx, noc, dispatch.CaseInput{TicketID: tk.ID, Manufacturer: "GE", CaseNumber: "GE-CASE-4711"}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	wait, err := disp.StartWait(ctx, noc, dispatch.WaitInput{TicketID: tk.ID, Reason: dispatch.WaitCustomer, Note: "sin acceso"}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A window inside co-8x5 hours: Tuesday 24 November, 09:00–11:00 in Bogotá.
	window := url.Values{"from": {"2026-11-24T09:00"}, "to": {"2026-11-24T11:00"}}
	with := func(base url.Values, kv ...string) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f
	}
	ref := tk.Number
	actions := []consoleAction{
		{"GET /console/noc/dispatch", "/console/noc/dispatch", nil, auth.RoleNOC},
		{"POST /console/noc/tickets/{ref}/visits", "/console/noc/tickets/" + ref + "/visits", with(window, "engineer", "eng-pedro", "lead", "eng-pedro"), auth.RoleNOC},
		{"POST /console/noc/visits/{id}/schedule", fmt.Sprintf("/console/noc/visits/%d/schedule", visit.ID), window, auth.RoleNOC},
		{"POST /console/noc/visits/{id}/cancel", fmt.Sprintf("/console/noc/visits/%d/cancel", visit.ID), url.Values{"ticket": {ref}}, auth.RoleNOC},
		{"POST /console/noc/tickets/{ref}/parts", "/console/noc/tickets/" + ref + "/parts", url.Values{"part": {fmt.Sprint(part.ID)}, "quantity": {"1"}}, auth.RoleNOC},
		{"POST /console/noc/parts/{id}/move", fmt.Sprintf("/console/noc/parts/%d/move", request.ID), url.Values{"ticket": {ref}, "to": {"approved"}}, auth.RoleNOC},
		{"POST /console/noc/tickets/{ref}/cases", "/console/noc/tickets/" + ref + "/cases", url.Values{"manufacturer": {"GE"}, "case_number": {"GE-CASE-9"}}, auth.RoleNOC},
		{"POST /console/noc/cases/{id}/move", fmt.Sprintf("/console/noc/cases/%d/move", mcase.ID), url.Values{"ticket": {ref}, "to": {"waiting"}}, auth.RoleNOC},
		{"POST /console/noc/tickets/{ref}/waits", "/console/noc/tickets/" + ref + "/waits", url.Values{"reason": {"third_party"}}, auth.RoleNOC},
		{"POST /console/noc/waits/{id}/end", fmt.Sprintf("/console/noc/waits/%d/end", wait.ID), url.Values{"ticket": {ref}}, auth.RoleNOC},
		{"POST /console/engineer/visits/{id}/photos", fmt.Sprintf("/console/engineer/visits/%d/photos", visit.ID), nil, auth.RoleEngineer},
	}
	t.Run("every dispatch route is in the matrix", func(t *testing.T) {
		src, err := os.ReadFile("../../internal/console/dispatch.go")
		if err != nil {
			t.Fatal(err)
		}
		var listed []string
		for _, a := range actions {
			listed = append(listed, a.pattern)
		}
		routes := regexp.MustCompile(`mux\.Handle\("((?:GET|POST) /console/[^"]*)"`).FindAllSubmatch(src, -1)
		if len(routes) < 5 {
			t.Fatalf("found %d console dispatch routes: the scan is broken", len(routes))
		}
		for _, m := range routes {
			if !slices.Contains(listed, string(m[1])) {
				t.Errorf("console route %q is not in the authorization matrix", m[1])
			}
		}
	})

	people := map[string]*consoleUser{}
	for _, n := range []string{"ana", "laura", "pedro", "hsr", "cmf"} {
		people[n] = loginConsole(t, srv.URL, n)
	}
	photo := func(csrf string) (string, io.Reader) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("csrf", csrf)
		w, _ := mw.CreateFormFile("photos", "gantry.png")
		png.Encode(w, image.NewRGBA(image.Rect(0, 0, 8, 8)))
		mw.Close()
		return mw.FormDataContentType(), &body
	}
	act := func(u *consoleUser, a consoleAction, csrf string) (int, string) {
		method := strings.Fields(a.pattern)[0]
		switch {
		case method == "GET":
			return u.send("GET", a.path, "", nil)
		case a.form == nil:
			ct, body := photo(csrf)
			return u.send("POST", a.path, ct, body)
		}
		f := with(a.form)
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		return u.form(a.path, f)
	}
	// Sessions are bookkeeping of authentication itself.
	state := func() string {
		var keep []string
		for _, l := range strings.Split(snapshot(t, conn), "\n") {
			if !strings.HasPrefix(l, "console_sessions ") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	before := state()
	for _, a := range actions {
		t.Run(a.pattern, func(t *testing.T) {
			for _, who := range []string{"ana", "laura", "pedro", "hsr", "cmf"} {
				u := people[who]
				role := map[string]string{"ana": auth.RoleNOC, "laura": auth.RoleEngineer, "pedro": auth.RoleEngineer,
					"hsr": auth.RoleCustomer, "cmf": auth.RoleCustomer}[who]
				if role == a.allowed {
					continue
				}
				// Wrong role (hsr on its own ticket) or another customer (cmf): refused.
				want := http.StatusForbidden
				if a.allowed == auth.RoleEngineer && role == auth.RoleNOC {
					continue // the NOC may add photos too; checked below with the token missing
				}
				if code, body := act(u, a, u.csrf); code != want {
					t.Errorf("%s (%s): %d, want %d (%.200s)", who, role, code, want, body)
				}
			}
			if strings.HasPrefix(a.pattern, "GET ") {
				return
			}
			// The allowed role without the session's token, or with a forged one.
			allowed := people["ana"]
			if a.allowed == auth.RoleEngineer {
				allowed = people["laura"]
				// An engineer not sent on the visit does not find it.
				if code, _ := act(people["pedro"], a, people["pedro"].csrf); code != http.StatusNotFound {
					t.Errorf("pedro, not on the visit: %d, want 404", code)
				}
			}
			// The forged token differs from the real one in its first
			// character whatever that character is.
			forged := "A" + allowed.csrf[1:]
			if allowed.csrf[0] == 'A' {
				forged = "B" + allowed.csrf[1:]
			}
			for _, token := range []string{"", forged} {
				if code, body := act(allowed, a, token); code != http.StatusForbidden {
					t.Errorf("CSRF token %q: %d, want 403 (%.200s)", token, code, body)
				}
			}
		})
	}
	if after := state(); after != before {
		t.Fatalf("refused console actions changed the database:\n%s", diffLines(before, after))
	}
	// The same forms from the allowed role go through, each changing something.
	for _, a := range actions {
		if strings.HasPrefix(a.pattern, "GET ") {
			continue
		}
		u := people["ana"]
		if a.allowed == auth.RoleEngineer {
			u = people["laura"]
		}
		prev := state()
		code, loc := act(u, a, u.csrf)
		if code != http.StatusSeeOther {
			t.Fatalf("%s as %s: %d (%.300s)", a.pattern, a.allowed, code, loc)
		}
		if _, page := u.send("GET", loc, "", nil); strings.Contains(page, `class="flash error"`) {
			i := strings.Index(page, `class="flash error"`)
			t.Fatalf("%s as %s refused: %.300s", a.pattern, a.allowed, page[i:])
		}
		if state() == prev {
			t.Errorf("%s as %s changed nothing", a.pattern, a.allowed)
		}
	}
	if code, page := people["ana"].send("GET", "/console/noc/dispatch?view=week&date=2026-11-24", "", nil); code != http.StatusOK ||
		!strings.Contains(page, `data-engineer="eng-pedro"`) {
		t.Errorf("NOC's dispatch board: %d", code)
	}
}
