package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

func TestCreateUserValidation(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.engineer(t, "eng-1", "Laura")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		in   auth.UserInput
		want error
	}{
		{"noc", auth.UserInput{Username: "Ana.Noc", Password: testPassword, Role: auth.RoleNOC}, nil},
		{"engineer", auth.UserInput{Username: "laura", Password: testPassword, Role: auth.RoleEngineer, EngineerID: "eng-1"}, nil},
		{"customer", auth.UserInput{Username: "hsr-1", Password: testPassword, Role: auth.RoleCustomer, CustomerID: "hsr", Language: "en"}, nil},
		{"taken", auth.UserInput{Username: "ana.noc", Password: testPassword, Role: auth.RoleNOC}, auth.ErrUserExists},
		{"short password", auth.UserInput{Username: "bob", Password: "short", Role: auth.RoleNOC}, auth.ErrInvalidUser},
		{"bad username", auth.UserInput{Username: "a b", Password: testPassword, Role: auth.RoleNOC}, auth.ErrInvalidUser},
		{"unknown role", auth.UserInput{Username: "bob", Password: testPassword, Role: "admin"}, auth.ErrInvalidUser},
		{"customer without customer", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleCustomer}, auth.ErrInvalidUser},
		{"unknown customer", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleCustomer, CustomerID: "nope"}, auth.ErrInvalidUser},
		{"engineer without engineer", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleEngineer}, auth.ErrInvalidUser},
		{"unknown engineer", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleEngineer, EngineerID: "nope"}, auth.ErrInvalidUser},
		{"noc with customer", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleNOC, CustomerID: "hsr"}, auth.ErrInvalidUser},
		{"bad language", auth.UserInput{Username: "bob", Password: testPassword, Role: auth.RoleNOC, Language: "fr"}, auth.ErrInvalidUser},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := h.users.Create(ctx, c.in, h.clock.Now())
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Create: %v; want %v", err, c.want)
			}
			if err == nil && (u.Username != strings.ToLower(c.in.Username) || u.Role != c.in.Role) {
				t.Fatalf("created %+v", u)
			}
		})
	}
	var stored string
	if err := h.db.Get(&stored, `SELECT password_hash FROM console_users WHERE username = 'ana.noc'`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, testPassword) || !strings.HasPrefix(stored, "$argon2id$") {
		t.Fatalf("stored password %q", stored)
	}
}

// cmf's plan (desk-standard) has two portal seats: console users and API
// tokens share them.
func TestPortalSeats(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	ctx := context.Background()
	h.user(t, auth.UserInput{Username: "cmf-1", Role: auth.RoleCustomer, CustomerID: "cmf"})
	if _, _, err := auth.NewTokens(h.db, h.clock.Now).Create(ctx, "cmf api", auth.RoleCustomer, "cmf", ""); err != nil {
		t.Fatal(err)
	}
	_, err := h.users.Create(ctx, auth.UserInput{Username: "cmf-2", Password: testPassword, Role: auth.RoleCustomer, CustomerID: "cmf"}, h.clock.Now())
	if !errors.Is(err, auth.ErrNoSeats) {
		t.Fatalf("third seat of a 2-seat plan: %v; want ErrNoSeats", err)
	}
	// hsr's policy sets no limit; staff never count.
	for i := range 4 {
		h.user(t, auth.UserInput{Username: fmt.Sprintf("hsr-%d", i), Role: auth.RoleCustomer, CustomerID: "hsr"})
	}
	h.user(t, auth.UserInput{Username: "noc", Role: auth.RoleNOC})
}

func cookieNamed(hdr http.Header, name string) *http.Cookie {
	for _, line := range hdr.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	return nil
}

func TestLoginSessionAndLogout(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	c := h.client(t)

	// Pages need a session.
	code, hdr, _ := c.do(http.MethodGet, "/console/noc", "", nil)
	if code != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/console/login?next=") {
		t.Fatalf("anonymous board: %d %s", code, hdr.Get("Location"))
	}
	// The login form needs its double-submit token.
	c.get("/console/login")
	code, _, _ = c.post("/console/login", url.Values{"username": {"ana"}, "password": {testPassword}, "csrf": {"forged"}})
	if code != http.StatusForbidden {
		t.Fatalf("login with a forged token: %d", code)
	}
	c.get("/console/login")
	code, _, body := c.post("/console/login", url.Values{"username": {"ana"}, "password": {"wrong password"}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "Usuario o contraseña incorrectos") {
		t.Fatalf("wrong password: %d", code)
	}
	c.get("/console/login")
	code, hdr, _ = c.do(http.MethodPost, "/console/login", url.Values{"username": {"ANA"}, "password": {testPassword}, "csrf": {c.csrf},
		"next": {"/console/noc?kind=pacs"}}.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Forwarded-Proto": {"https"}})
	if code != http.StatusSeeOther || hdr.Get("Location") != "/console/noc?kind=pacs" {
		t.Fatalf("login: %d → %s", code, hdr.Get("Location"))
	}
	ck := cookieNamed(hdr, sessionCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || !ck.Secure || len(ck.Value) < 40 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Secure behind https", ck)
	}
	var n int
	if err := h.db.Get(&n, `SELECT count(*) FROM console_sessions WHERE id_sha256 = $1`, sha256Of(ck.Value)); err != nil || n != 1 {
		t.Fatalf("session stored by hash: %d %v", n, err)
	}
	// The jar keeps the Secure cookie off plain http: give it over again.
	u, _ := url.Parse(h.srv.URL)
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: ck.Value, Path: "/"}})
	if code, body := c.get("/console/noc"); code != http.StatusOK || !strings.Contains(body, `data-user="ana"`) {
		t.Fatalf("board after login: %d", code)
	}
	// A login redirect never leaves the console.
	if got := safeNext("//evil.example/x", "/console/noc"); got != "/console/noc" {
		t.Fatalf("safeNext: %s", got)
	}
	// Logout needs the token, then ends the session in the database.
	if code, _, _ := c.post("/console/logout", url.Values{"csrf": {"nope"}}); code != http.StatusForbidden {
		t.Fatalf("logout without the token: %d", code)
	}
	if code, _, _ := c.post("/console/logout", url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	if err := h.db.Get(&n, `SELECT count(*) FROM console_sessions`); err != nil || n != 0 {
		t.Fatalf("sessions after logout: %d %v", n, err)
	}
	c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: ck.Value, Path: "/"}})
	if code, _ := c.get("/console/noc"); code != http.StatusSeeOther {
		t.Fatalf("old session after logout: %d", code)
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	c := h.client(t)
	c.login("ana", testPassword)
	h.clock.Advance(auth.SessionIdle + time.Minute)
	if code, _ := c.get("/console/noc"); code != http.StatusSeeOther {
		t.Fatalf("idle session: %d; want a redirect to the login", code)
	}
	// A live fragment of an expired session asks the page to reload.
	code, _, _ := c.do(http.MethodGet, "/console/noc", "", http.Header{liveHeader: {"1"}})
	if code != http.StatusUnauthorized {
		t.Fatalf("live fragment without session: %d", code)
	}
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "beto", Role: auth.RoleNOC})
	c := h.client(t)
	for i := range auth.MaxFailuresPerUser {
		c.get("/console/login")
		if code, _, _ := c.post("/console/login", url.Values{"username": {"ana"}, "password": {fmt.Sprint("guess ", i)}}); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	// Even the right password is refused now, with a clear message.
	c.get("/console/login")
	code, hdr, body := c.post("/console/login", url.Values{"username": {"ana"}, "password": {testPassword}})
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || !strings.Contains(body, "Demasiados intentos fallidos") {
		t.Fatalf("after %d failures: %d %q", auth.MaxFailuresPerUser, code, hdr.Get("Retry-After"))
	}
	// Another user from the same address is not locked out by ana's failures.
	c.get("/console/login")
	if code, _, _ := c.post("/console/login", url.Values{"username": {"beto"}, "password": {testPassword}}); code != http.StatusSeeOther {
		t.Fatalf("beto: %d", code)
	}
	// The window passes and ana may log in again.
	h.clock.Advance(auth.LoginWindow + time.Second)
	c2 := h.client(t)
	c2.login("ana", testPassword)
}

func TestCSRFOnEveryForm(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	tk := h.openTicket(t, "hsr", "hsr-pacs", 2, "PACS lento")
	noc := h.client(t)
	noc.login("ana", testPassword)
	// A forged token: the real one with its first character changed.
	forged := "A" + noc.csrf[1:]
	if noc.csrf[0] == 'A' {
		forged = "B" + noc.csrf[1:]
	}
	for _, form := range []url.Values{
		{"action": {"acknowledge"}},
		{"action": {"acknowledge"}, "csrf": {""}},
		{"action": {"acknowledge"}, "csrf": {forged}},
	} {
		if !form.Has("csrf") {
			form.Set("csrf", "")
		}
		if code, _, _ := noc.post("/console/noc/tickets/"+tk.Number+"/act", form); code != http.StatusForbidden {
			t.Fatalf("action with csrf %q: %d", form.Get("csrf"), code)
		}
	}
	got, err := h.tickets.Get(context.Background(), maintenance.Scope{}, tk.Number, h.clock.Now())
	if err != nil || got.Status != maintenance.StatusNew {
		t.Fatalf("ticket changed by forged forms: %s %v", got.Status, err)
	}
	if code, _, _ := noc.post("/console/noc/tickets/"+tk.Number+"/act", url.Values{"action": {"acknowledge"}}); code != http.StatusSeeOther {
		t.Fatalf("acknowledge with the token: %d", code)
	}
	got, _ = h.tickets.Get(context.Background(), maintenance.Scope{}, tk.Number, h.clock.Now())
	if got.Status != maintenance.StatusAcknowledged {
		t.Fatalf("status %s after acknowledge", got.Status)
	}
	// Another session's token is not this session's.
	cust := h.client(t)
	cust.login("hsr", testPassword)
	if code, _, _ := cust.post("/console/portal/tickets/"+tk.Number+"/act", url.Values{"action": {"comment"}, "text": {"hola"}, "csrf": {noc.csrf}}); code != http.StatusForbidden {
		t.Fatalf("another session's token: %d", code)
	}
	// A multipart form is checked too.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("title", "sin token")
	mw.WriteField("severity", "3")
	mw.Close()
	code, _, _ := cust.do(http.MethodPost, "/console/portal/tickets", body.String(), http.Header{"Content-Type": {mw.FormDataContentType()}})
	if code != http.StatusForbidden {
		t.Fatalf("multipart without token: %d", code)
	}
	var n int
	h.db.Get(&n, `SELECT count(*) FROM tickets`)
	if n != 1 {
		t.Fatalf("%d tickets; the forged form opened one", n)
	}
}

var deviceAttr = regexp.MustCompile(`data-device="([^"]+)"`)

// A hospital's user sees its own devices, tickets and attachments only;
// another hospital's answer 404 as if they did not exist, and staff pages
// are forbidden.
func TestCustomerScope(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "cmf", Role: auth.RoleCustomer, CustomerID: "cmf"})
	cmfTicket := h.openTicket(t, "cmf", "cmf-pacs", 1, "PACS caído")
	hsrTicket := h.openTicket(t, "hsr", "hsr-ct1", 2, "CT no envía")
	var cmfAtt int64
	if err := h.tickets.AddAttachments(context.Background(), maintenance.Scope{CustomerID: "cmf"}, cmfTicket.ID, "cmf",
		[]maintenance.Attachment{{Name: "x.png", ContentType: "image/png", Data: testPNG(t, 4, 4)}}, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	h.db.Get(&cmfAtt, `SELECT id FROM ticket_attachments`)

	c := h.client(t)
	c.login("hsr", testPassword)
	code, body := c.get("/console/portal")
	if code != http.StatusOK {
		t.Fatalf("portal: %d", code)
	}
	var seen []string
	for _, m := range deviceAttr.FindAllStringSubmatch(body, -1) {
		seen = append(seen, m[1])
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"hsr-ct1", "hsr-pacs"}) {
		t.Fatalf("hsr's portal shows devices %v", seen)
	}
	if strings.Contains(body, "cmf") || !strings.Contains(body, hsrTicket.Number) || strings.Contains(body, cmfTicket.Number) {
		t.Fatal("hsr's portal shows another customer's data, or not its own ticket")
	}
	for path, want := range map[string]int{
		"/console/portal/tickets/" + cmfTicket.Number:  http.StatusNotFound,
		"/console/portal/tickets/" + hsrTicket.Number:  http.StatusOK,
		fmt.Sprintf("/console/attachments/%d", cmfAtt): http.StatusNotFound,
		"/console/noc": http.StatusForbidden,
		"/console/noc/tickets/" + hsrTicket.Number: http.StatusForbidden,
		"/console/engineer":                        http.StatusForbidden,
	} {
		if code, _ := c.get(path); code != want {
			t.Errorf("GET %s as hsr: %d; want %d", path, code, want)
		}
	}
	if code, _, _ := c.post("/console/portal/tickets/"+cmfTicket.Number+"/act", url.Values{"action": {"comment"}, "text": {"x"}}); code != http.StatusNotFound {
		t.Errorf("commenting on cmf's ticket as hsr: %d", code)
	}
	// Staff-only actions are refused to a customer, on its own ticket too.
	if code, _, _ := c.post("/console/portal/tickets/"+hsrTicket.Number+"/act", url.Values{"action": {"solve"}, "text": {"x"}}); code != http.StatusUnprocessableEntity {
		t.Errorf("solve as a customer: %d", code)
	}
	cmf := h.client(t)
	cmf.login("cmf", testPassword)
	if code, _ := cmf.get(fmt.Sprintf("/console/attachments/%d", cmfAtt)); code != http.StatusOK {
		t.Errorf("cmf reading its own attachment: %d", code)
	}
}

// multipartTicket builds the portal's new-ticket form.
func multipartTicket(t *testing.T, csrf, title string, files map[string][]byte) (string, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", csrf)
	mw.WriteField("title", title)
	mw.WriteField("severity", "2")
	mw.WriteField("device", "hsr-ct1")
	mw.WriteField("description", "No llegan estudios al PACS")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := mw.CreateFormFile("attachments", n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	mw.Close()
	return body.String(), mw.FormDataContentType()
}

func TestPortalTicketWithAttachments(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	c := h.client(t)
	c.login("hsr", testPassword)
	shot := testPNG(t, 64, 40)
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, 100)...) // a JPEG header, then nothing decodable
	for _, bad := range []struct {
		name  string
		files map[string][]byte
		msg   string
	}{
		{"text named png", map[string][]byte{"captura.png": []byte("hola, no soy una imagen")}, "no es una imagen PNG o JPG"},
		{"html", map[string][]byte{"x.png": []byte("<html><script>alert(1)</script></html>")}, "no es una imagen PNG o JPG"},
		{"broken jpeg", map[string][]byte{"x.jpg": jpeg}, "no es una imagen PNG o JPG"},
		{"too big", map[string][]byte{"big.png": append(shot, make([]byte, maxAttachmentBytes)...)}, "supera 5 MB"},
		{"too many", map[string][]byte{"1.png": shot, "2.png": shot, "3.png": shot, "4.png": shot, "5.png": shot, "6.png": shot}, "hasta 5 archivos"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			c.get("/console/portal/tickets/new")
			body, ct := multipartTicket(t, c.csrf, "Falla "+bad.name, bad.files)
			code, _, page := c.do(http.MethodPost, "/console/portal/tickets", body, http.Header{"Content-Type": {ct}})
			if code != http.StatusUnprocessableEntity || !strings.Contains(page, bad.msg) || !strings.Contains(page, "Falla "+bad.name) {
				t.Fatalf("%d; want 422 with %q and the form kept", code, bad.msg)
			}
		})
	}
	var n int
	h.db.Get(&n, `SELECT count(*) FROM tickets`)
	if n != 0 {
		t.Fatalf("%d tickets opened by refused uploads", n)
	}

	c.get("/console/portal/tickets/new")
	body, ct := multipartTicket(t, c.csrf, "CT no envía estudios", map[string][]byte{"pantalla.png": shot})
	code, hdr, _ := c.do(http.MethodPost, "/console/portal/tickets", body, http.Header{"Content-Type": {ct}})
	if code != http.StatusSeeOther {
		t.Fatalf("create: %d", code)
	}
	code, page := c.get(hdr.Get("Location"))
	if code != http.StatusOK || !strings.Contains(page, "CT no envía estudios") || !strings.Contains(page, `data-attachment="pantalla.png"`) {
		t.Fatalf("ticket page after create: %d", code)
	}
	var tk struct {
		Source, Requester, Customer string
		Severity                    int
	}
	if err := h.db.QueryRow(`SELECT source, requester, customer_id, severity FROM tickets`).Scan(&tk.Source, &tk.Requester, &tk.Customer, &tk.Severity); err != nil {
		t.Fatal(err)
	}
	if tk.Source != maintenance.SourcePortal || tk.Requester != "hsr" || tk.Customer != "hsr" || tk.Severity != 2 {
		t.Fatalf("ticket %+v", tk)
	}
	var id int64
	var stored []byte
	if err := h.db.QueryRow(`SELECT id, data FROM ticket_attachments`).Scan(&id, &stored); err != nil || !bytes.Equal(stored, shot) {
		t.Fatalf("stored attachment: %v", err)
	}
	for _, who := range []*client{c, func() *client { s := h.client(t); s.login("ana", testPassword); return s }()} {
		code, hdr, got := who.do(http.MethodGet, fmt.Sprintf("/console/attachments/%d", id), "", nil)
		if code != http.StatusOK || hdr.Get("Content-Type") != "image/png" || got != string(shot) || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("attachment: %d %s", code, hdr.Get("Content-Type"))
		}
	}
}

// Confirming, rejecting and reopening go through the ticket store's
// rules: outside the policy's window a reopening is refused with the reason.
func TestPortalConfirmRejectReopen(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	c := h.client(t)
	c.login("hsr", testPassword)
	ctx := context.Background()
	noc := auth.Actor{Name: "ana", Role: auth.RoleNOC}
	tk := h.openTicket(t, "hsr", "hsr-ct1", 2, "CT no envía")
	solve := func() {
		t.Helper()
		if _, err := h.tickets.Act(ctx, noc, tk.Number, "solve", maintenance.ActionInput{Text: "Se reinició el nodo DICOM"}, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	status := func() string {
		d, err := h.tickets.Get(ctx, maintenance.Scope{}, tk.Number, h.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return d.Status
	}
	act := func(action, text string) (int, string) {
		t.Helper()
		c.get("/console/portal/tickets/" + tk.Number)
		code, hdr, _ := c.post("/console/portal/tickets/"+tk.Number+"/act", url.Values{"action": {action}, "text": {text}})
		if code != http.StatusSeeOther {
			t.Fatalf("%s: %d", action, code)
		}
		_, page := c.get(hdr.Get("Location"))
		return code, page
	}
	solve()
	if _, page := c.get("/console/portal/tickets/" + tk.Number); !strings.Contains(page, `id="act-confirm"`) || !strings.Contains(page, `id="act-reject"`) {
		t.Fatal("a solved ticket offers no confirm and reject")
	}
	act("reopen", "Sigue sin enviar")
	if s := status(); s != maintenance.StatusReopened {
		t.Fatalf("after reject: %s", s)
	}
	solve()
	act("confirm", "Gracias")
	if s := status(); s != maintenance.StatusClosed {
		t.Fatalf("after confirm: %s", s)
	}
	// imaging-8x5 does not reopen closed tickets: the refusal is shown.
	_, page := act("reopen", "Volvió a fallar")
	if s := status(); s != maintenance.StatusClosed || !strings.Contains(page, "flash error") || !strings.Contains(page, "does not allow reopening") {
		t.Fatalf("reopen after close under imaging-8x5: status %s", s)
	}
}

func TestBoardLiveFragmentAndQueue(t *testing.T) {
	h := newHarness(t, twoHospitals, 1500*time.Millisecond)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "en"})
	sev1 := h.openTicket(t, "cmf", "cmf-pacs", 1, "PACS down")
	sev3 := h.openTicket(t, "hsr", "hsr-ct1", 3, "CT slow")
	if _, err := h.db.Exec(`INSERT INTO device_states (device_id, state, since, last_detail, updated_at) VALUES ('hsr-pacs', 'down', now(), 'connection refused', now())`); err != nil {
		t.Fatal(err)
	}
	c := h.client(t)
	c.login("ana", testPassword)
	code, page := c.get("/console/noc")
	if code != http.StatusOK || !strings.Contains(page, "<html") || !strings.Contains(page, `data-every="1500"`) || !strings.Contains(page, "NOC board") {
		t.Fatalf("board: %d", code)
	}
	code, _, frag := c.do(http.MethodGet, "/console/noc", "", http.Header{liveHeader: {"1"}})
	if code != http.StatusOK || strings.Contains(frag, "<html") || !strings.Contains(frag, `data-device="hsr-pacs" data-state="down"`) {
		t.Fatalf("live fragment: %d %.300s", code, frag)
	}
	// The most urgent response due comes first: Sev 1 before Sev 3.
	if i, j := strings.Index(frag, `data-ticket="`+sev1.Number+`"`), strings.Index(frag, `data-ticket="`+sev3.Number+`"`); i < 0 || j < 0 || i > j {
		t.Fatalf("queue order: sev1 at %d, sev3 at %d", i, j)
	}
	// Filters narrow the board to one customer and kind.
	_, frag = func() (int, string) {
		_, _, b := c.do(http.MethodGet, "/console/noc?customer=hsr&kind=modality", "", http.Header{liveHeader: {"1"}})
		return 0, b
	}()
	var seen []string
	for _, m := range deviceAttr.FindAllStringSubmatch(frag, -1) {
		seen = append(seen, m[1])
	}
	if !slices.Equal(seen, []string{"hsr-ct1"}) || strings.Contains(frag, sev1.Number) {
		t.Fatalf("filtered board shows %v", seen)
	}
}

func TestUrgencyQueue(t *testing.T) {
	at := func(m int) *time.Time { x := time.Date(2026, 5, 4, 10, m, 0, 0, time.UTC); return &x }
	queue := urgencyQueue([]maintenance.Ticket{
		{ID: 1, Number: "closed", Status: maintenance.StatusClosed, ResponseDueAt: at(0)},
		{ID: 2, Number: "resolution-soon", Status: maintenance.StatusInProgress, AcknowledgedAt: at(0), ResponseDueAt: at(1), ResolutionDueAt: at(20)},
		{ID: 3, Number: "response-later", Status: maintenance.StatusNew, ResponseDueAt: at(30), ResolutionDueAt: at(10)},
		{ID: 4, Number: "no-target-sev2", Status: maintenance.StatusNew, Severity: 2},
		{ID: 5, Number: "solved", Status: maintenance.StatusSolved, ResolutionDueAt: at(5), Severity: 1},
		{ID: 6, Number: "response-first", Status: maintenance.StatusNew, ResponseDueAt: at(5)},
	})
	var got []string
	for _, q := range queue {
		got = append(got, q.Number)
	}
	want := []string{"response-first", "resolution-soon", "response-later", "solved", "no-target-sev2"}
	if !slices.Equal(got, want) {
		t.Fatalf("queue %v; want %v", got, want)
	}
}

func TestLanguages(t *testing.T) {
	for header, want := range map[string]string{
		"":                          "es",
		"en-US,en;q=0.9":            "en",
		"fr-FR, en;q=0.5, es;q=0.8": "es",
		"de, en;q=0.1":              "en",
		"es-CO":                     "es",
		"en;q=0":                    "es",
	} {
		if got := negotiate(header); got != want {
			t.Errorf("negotiate(%q) = %s; want %s", header, got, want)
		}
	}
	// Both catalogues have the same keys, and every key a template uses.
	for key := range messages["es"] {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("key %q has no English text", key)
		}
	}
	for key := range messages["en"] {
		if _, ok := messages["es"][key]; !ok {
			t.Errorf("key %q has no Spanish text", key)
		}
	}
	used := regexp.MustCompile(`\.T "([a-z.]+)"`)
	prefixed := regexp.MustCompile(`printf "([a-z]+)\.%s"`)
	err := fs.WalkDir(templateFS, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(templateFS, path)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if _, ok := messages["es"][m[1]]; !ok {
				t.Errorf("%s uses unknown key %q", path, m[1])
			}
		}
		for _, m := range prefixed.FindAllStringSubmatch(string(b), -1) {
			found := false
			for k := range messages["es"] {
				found = found || strings.HasPrefix(k, m[1]+".")
			}
			if !found {
				t.Errorf("%s uses unknown key family %q", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every value of the families the templates build keys from is there.
	for family, values := range map[string][]string{
		"state":  stateOrder,
		"class":  append([]string{"problems"}, boardClasses...),
		"status": {"new", "acknowledged", "in_progress", "pending", "solved", "closed", "reopened"},
		"pause":  maintenance.PauseReasons,
		"kind":   {"pacs", "ris", "broker", "modality", "biomedical", "network"},
		"vstate": {"proposed", "scheduled", "en_route", "on_site", "done", "equipment_unavailable", "cancelled"},
		"role":   {"noc", "engineer", "customer"},
		"clock":  {"response", "resolution"},
		"mark":   {"warning", "breach"},
	} {
		for _, v := range values {
			if _, ok := messages["es"][family+"."+v]; !ok {
				t.Errorf("no text for %s.%s", family, v)
			}
		}
	}

	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	c := h.client(t)
	_, _, page := c.do(http.MethodGet, "/console/login", "", http.Header{"Accept-Language": {"en-GB,en;q=0.9"}})
	if !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "Log in") {
		t.Fatal("Accept-Language en does not give an English login")
	}
	// The switch sets the cookie before login, and the user's preference after.
	code, hdr, _ := c.post("/console/lang", url.Values{"lang": {"en"}, "next": {"/console/login"}})
	if code != http.StatusSeeOther || cookieNamed(hdr, langCookie) == nil || cookieNamed(hdr, langCookie).Value != "en" {
		t.Fatalf("switch before login: %d", code)
	}
	if _, page := c.get("/console/login"); !strings.Contains(page, "Log in") {
		t.Fatal("language cookie ignored")
	}
	c.login("ana", testPassword)
	if code, _, _ := c.post("/console/lang", url.Values{"lang": {"en"}, "next": {"/console/noc"}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("switch with a forged token: %d", code)
	}
	if code, _, _ := c.post("/console/lang", url.Values{"lang": {"en"}, "next": {"/console/noc"}}); code != http.StatusSeeOther {
		t.Fatalf("switch: %d", code)
	}
	var lang string
	h.db.Get(&lang, `SELECT language FROM console_users WHERE username = 'ana'`)
	if lang != "en" {
		t.Fatalf("user language %q after the switch", lang)
	}
	if _, page := c.get("/console/noc"); !strings.Contains(page, "NOC board") {
		t.Fatal("board not in English")
	}
}

func TestDemoUsers(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	ctx := context.Background()
	var out bytes.Buffer
	users, err := CreateDemoUsers(ctx, &out, h.users, h.inv, h.disp, "http://127.0.0.1:8080", h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
		if !strings.Contains(out.String(), u.Password) {
			t.Errorf("password of %s not printed", u.Username)
		}
		if _, _, err := h.users.Login(ctx, u.Username, u.Password, "127.0.0.1", h.clock.Now()); err != nil {
			t.Errorf("demo user %s cannot log in: %v", u.Username, err)
		}
	}
	if !slices.Equal(names, []string{"noc", "ingeniero", "cmf", "hsr"}) || !strings.Contains(out.String(), "http://127.0.0.1:8080/console/") {
		t.Fatalf("demo users %v:\n%s", names, out.String())
	}
	// A second run (make run again on the same database) gives new passwords.
	again, err := CreateDemoUsers(ctx, &out, h.users, h.inv, h.disp, "http://127.0.0.1:8080", h.clock.Now())
	if err != nil || len(again) != 4 || again[0].Password == users[0].Password {
		t.Fatalf("second run: %v %v", again, err)
	}
	if _, _, err := h.users.Login(ctx, "noc", users[0].Password, "127.0.0.2", h.clock.Now()); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("old demo password still works: %v", err)
	}
}

// The board shows each collector's last contact and lag, a lost one first.
func TestBoardShowsCollectors(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "en"})
	now := h.clock.Now()
	h.db.MustExec(`INSERT INTO collectors (name, customer_id, token_sha256, created_at, last_contact_at, last_result_at)
		VALUES ('hsr-norte', 'hsr', sha256('a'), $1, $2, $3)`, now.Add(-time.Hour), now.Add(-10*time.Second), now.Add(-100*time.Second))
	h.db.MustExec(`INSERT INTO collectors (name, customer_id, token_sha256, created_at, last_contact_at, lost_at)
		VALUES ('cmf-lima', 'cmf', sha256('b'), $1, $2, $3)`, now.Add(-time.Hour), now.Add(-20*time.Minute), now.Add(-15*time.Minute))
	h.db.MustExec(`INSERT INTO collector_sites SELECT id, 'hsr-central' FROM collectors WHERE name = 'hsr-norte'`)
	c := h.client(t)
	c.login("ana", testPassword)
	_, _, frag := c.do(http.MethodGet, "/console/noc", "", http.Header{liveHeader: {"1"}})
	lost, ok := strings.Index(frag, "cmf-lima"), strings.Index(frag, "hsr-norte")
	if lost < 0 || ok < 0 || lost > ok || !strings.Contains(frag, "monitoring lost") || !strings.Contains(frag, "<td data-lag>1m30s</td>") ||
		!strings.Contains(frag, "hsr-central") || !strings.Contains(frag, "20m") {
		t.Fatalf("collectors on the board:\n%s", frag[strings.Index(frag, `id="collectors"`)-100:][:1500])
	}
	_, _, frag = c.do(http.MethodGet, "/console/noc?customer=hsr", "", http.Header{liveHeader: {"1"}})
	if strings.Contains(frag, "cmf-lima") {
		t.Error("the customer filter keeps another customer's collector")
	}
}

// sha256Of is how the user store keys a session: by its cookie value's hash.
func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
