// Package console is Vigía's own web console, served by `vigia serve`
// beside the API: the NOC's live board and ticket pages, field engineers'
// visits, and the hospitals' portal. Pages are rendered on the server from
// embedded templates; a small script refreshes the live parts of a page and
// captures drawn signatures. People log in with a password (argon2id) and
// get a session cookie; every form that changes something carries the
// session's CSRF token.
//
// A customer's user sees only its customer: every read and action goes
// through the domain stores with the user's scope, exactly as the API's
// bearer tokens do.
package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/reports"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names.
const (
	sessionCookie = "vigia_session"
	loginCookie   = "vigia_login" // double-submit CSRF token of the login and language forms before a session exists
	langCookie    = "vigia_lang"
	flashCookie   = "vigia_flash"
)

// liveHeader asks a page for its live fragment only.
const liveHeader = "X-Vigia-Live"

// Config is what the console needs.
type Config struct {
	Users    *auth.Users
	Assets   *assets.Store
	Tickets  *maintenance.Store
	Dispatch *dispatch.Store
	// Mail is the unmatched-mail queue; nil shows it empty.
	Mail MailQueue
	// Probes reads the devices' live states, open outages and collectors
	// (probes.Store).
	Probes ProbeReads
	// History lists a device's history on its page; nil: the page shows
	// the device's state only.
	History DeviceHistory
	// Now is the clock of every action; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// Refresh is how often live parts of a page are reloaded (default 3s).
	Refresh time.Duration
	// Location is where staff read times (default time.Local); customers
	// read them in their own time zone.
	Location *time.Location
	// Reports builds the monthly report the portal offers for download
	// (nil: not offered).
	Reports *reports.Reporter
	// Biomedical serves the biomedical pages (nil: not shown).
	Biomedical Biomedical
}

// Console serves the web console.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
}

// pageNames are the templates besides layout.html, one per page.
var pageNames = []string{"login", "error", "board", "ticket", "visits", "visit", "portal", "portal_ticket", "portal_new", "mail", "dispatch_board", "device", "biomed"}

// New parses the templates and returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Users == nil || cfg.Assets == nil || cfg.Tickets == nil || cfg.Dispatch == nil || cfg.Probes == nil {
		return nil, errors.New("console: Users, Assets, Tickets, Dispatch and Probes are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 3 * time.Second
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html",
			"templates/dispatch_partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Register adds the console's routes to the root mux: / and /console/….
// They authenticate with the session cookie themselves.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/console/static/", http.FileServerFS(static))
	mux.Handle("GET /console/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/{$}", c.home)
	mux.HandleFunc("GET /console/login", c.loginForm)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/lang", c.switchLanguage)
	mux.Handle("POST /console/logout", c.handle(anyRole, c.logout))
	mux.Handle("POST /console/timezone", c.handle(anyRole, c.setTimeZone))

	staff := []string{auth.RoleNOC, auth.RoleEngineer}
	noc := []string{auth.RoleNOC}
	mux.Handle("GET /console/noc", c.handle(noc, c.board))
	mux.Handle("GET /console/noc/mail", c.handle(noc, c.mailQueue))
	mux.Handle("GET /console/noc/biomedical", c.handle(noc, c.biomedical))
	mux.Handle("POST /console/noc/mail/{id}/{action}", c.handle(noc, c.mailAct))
	mux.Handle("GET /console/noc/tickets/{ref}", c.handle(staff, c.staffTicket))
	mux.Handle("GET /console/noc/devices/{id}", c.handle(staff, c.nocDevice))
	mux.Handle("POST /console/noc/tickets/{ref}/act", c.handle(staff, c.staffAct))

	eng := []string{auth.RoleEngineer, auth.RoleNOC}
	mux.Handle("GET /console/engineer", c.handle(eng, c.visits))
	mux.Handle("GET /console/engineer/visits/{id}", c.handle(eng, c.visit))
	mux.Handle("POST /console/engineer/visits/{id}/move", c.handle(eng, c.moveVisit))
	mux.Handle("POST /console/engineer/visits/{id}/outcome", c.handle(eng, c.outcome))

	cust := []string{auth.RoleCustomer}
	mux.Handle("GET /console/portal", c.handle(cust, c.portal))
	mux.Handle("GET /console/portal/tickets/new", c.handle(cust, c.newTicketForm))
	mux.Handle("GET /console/portal/reports/monthly", c.handle(cust, c.portalReport))
	mux.Handle("GET /console/portal/biomedical", c.handle(cust, c.biomedical))
	mux.Handle("POST /console/portal/tickets", c.handle(cust, c.createTicket))
	mux.Handle("GET /console/portal/tickets/{ref}", c.handle(cust, c.portalTicket))
	mux.Handle("GET /console/portal/devices/{id}", c.handle(cust, c.portalDevice))
	mux.Handle("POST /console/portal/tickets/{ref}/act", c.handle(cust, c.portalAct))

	mux.Handle("GET /console/attachments/{id}", c.handle(anyRole, c.attachment))
	c.registerDispatch(mux)
}

var anyRole = []string{auth.RoleNOC, auth.RoleEngineer, auth.RoleCustomer}

// request is one authenticated request.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	sess    auth.Session
	lang    string
	now     time.Time
	loc     *time.Location
	flash   *flash
	console *Console
}

func (rq *request) principal() auth.Principal { return rq.sess.User.Principal() }
func (rq *request) ctx() context.Context      { return rq.r.Context() }
func (rq *request) actor() auth.Actor         { return auth.ActorOf(rq.principal()) }

// homeOf is where a role lands after login.
func homeOf(role string) string {
	switch role {
	case auth.RoleNOC:
		return "/console/noc"
	case auth.RoleEngineer:
		return "/console/engineer"
	default:
		return "/console/portal"
	}
}

// handle authenticates by session cookie, checks the role and, for every
// state-changing method, the CSRF token; then runs h.
func (c *Console) handle(roles []string, h func(rq *request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		now := c.cfg.Now()
		rq := &request{w: w, r: r, now: now, console: c, lang: c.anonymousLanguage(r)}
		ck, err := r.Cookie(sessionCookie)
		if err == nil {
			rq.sess, err = c.cfg.Users.Session(r.Context(), ck.Value, now)
		}
		switch {
		case errors.Is(err, http.ErrNoCookie) || errors.Is(err, auth.ErrNoSession):
			if r.Header.Get(liveHeader) != "" {
				http.Error(w, "session expired", http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(rq, http.StatusUnauthorized, "err.csrf")
			return
		case err != nil:
			c.cfg.Log.Warn("console: session", "err", err)
			c.fail(rq, http.StatusServiceUnavailable, "err.unavailable")
			return
		}
		rq.lang = rq.sess.User.Language
		rq.loc = c.cfg.Location
		if rq.sess.User.CustomerID != "" {
			if cu, err := c.cfg.Assets.Customer(r.Context(), assets.Scope{CustomerID: rq.sess.User.CustomerID}, rq.sess.User.CustomerID); err == nil {
				rq.loc = cu.Location()
			}
		}
		// A zone the user chose wins over their customer's or the server's.
		rq.loc = rq.sess.User.Location(rq.loc)
		rq.flash = takeFlash(w, r)
		if !contains(roles, rq.sess.User.Role) {
			c.fail(rq, http.StatusForbidden, "err.forbidden")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			ok, err := validCSRF(w, r, rq.sess.CSRF)
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				c.fail(rq, http.StatusRequestEntityTooLarge, "portal.toolarge", maxUploadBytes>>20)
				return
			case err != nil:
				c.fail(rq, http.StatusBadRequest, "err.badform")
				return
			case !ok:
				c.fail(rq, http.StatusForbidden, "err.csrf")
				return
			}
			if err := httpx.CheckForm(r.PostForm, formLimits); err != nil {
				c.failErr(rq, err)
				return
			}
		}
		rq.r = r.WithContext(auth.WithPrincipal(r.Context(), rq.principal()))
		if err := h(rq); err != nil {
			c.failErr(rq, err)
		}
	})
}

// formLimits are the form fields allowed beyond httpx.MaxText: a drawn
// signature is a PNG data URL.
var formLimits = map[string]int{"signature_png": 90_000}

// validCSRF compares the form's token with the session's in constant time.
// Forms are read under a size limit: multipart ones (attachments) under
// maxUploadBytes, the rest under 1 MiB.
func validCSRF(w http.ResponseWriter, r *http.Request, want string) (bool, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			return false, err
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			return false, err
		}
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// anonymousLanguage is the language before login: the switch's cookie,
// then Accept-Language.
func (c *Console) anonymousLanguage(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil && knownLanguage(ck.Value) {
		return ck.Value
	}
	return negotiate(r.Header.Get("Accept-Language"))
}

// secure reports whether the browser reached us over TLS, directly or
// through a proxy that says so; cookies are then marked Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: secure(r)})
}

// remoteAddr is the client's address for rate limiting. X-Forwarded-For is
// not trusted: anyone can send it.
func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext keeps post-login redirects inside the console.
func safeNext(next, def string) string {
	if strings.HasPrefix(next, "/console/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return def
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// home sends a visitor to their role's landing page, or to the login.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if s, err := c.cfg.Users.Session(r.Context(), ck.Value, c.cfg.Now()); err == nil {
			http.Redirect(w, r, homeOf(s.User.Role), http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// loginForm shows the login page with a fresh double-submit token.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	c.renderLogin(w, r, http.StatusOK, "", r.URL.Query().Get("next"))
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, errKey string, next string, args ...any) {
	token, err := auth.NewFormToken()
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setCookie(w, r, loginCookie, token, 3600)
	rq := &request{w: w, r: r, lang: c.anonymousLanguage(r), now: c.cfg.Now(), loc: c.cfg.Location, console: c}
	rq.sess.CSRF = token
	data := map[string]any{"Next": safeNext(next, ""), "Username": r.PostFormValue("username")}
	if errKey != "" {
		rq.flash = &flash{Kind: "error", Text: translate(rq.lang, errKey, args...)}
	}
	c.render(rq, status, "login", translate(rq.lang, "login.title"), data)
}

// login checks the password and opens a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := r.PostFormValue("next")
	ck, err := r.Cookie(loginCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		c.renderLogin(w, r, http.StatusForbidden, "login.expired", next)
		return
	}
	// A username or password PostgreSQL could not even compare is refused
	// before it is looked up.
	var fe *httpx.FieldError
	if err := httpx.CheckForm(r.PostForm, map[string]int{"username": httpx.MaxName, "password": httpx.MaxName}); errors.As(err, &fe) {
		c.renderLogin(w, r, http.StatusBadRequest, "err.field", "", fe.Field)
		return
	}
	id, sess, err := c.cfg.Users.Login(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), remoteAddr(r), c.cfg.Now())
	var limited *auth.RateLimitError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", fmt.Sprint(int(limited.RetryAfter.Seconds())+1))
		c.renderLogin(w, r, http.StatusTooManyRequests, "login.limited", next, int(limited.RetryAfter.Minutes())+1)
		return
	case errors.Is(err, auth.ErrBadCredentials):
		c.renderLogin(w, r, http.StatusUnauthorized, "login.bad", next)
		return
	case err != nil:
		c.cfg.Log.Warn("console: login", "err", err)
		c.renderLogin(w, r, http.StatusServiceUnavailable, "err.unavailable", next)
		return
	}
	setCookie(w, r, sessionCookie, id, int(auth.SessionLifetime.Seconds()))
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, langCookie, sess.User.Language, 365*24*3600)
	http.Redirect(w, r, safeNext(next, homeOf(sess.User.Role)), http.StatusSeeOther)
}

func (c *Console) logout(rq *request) error {
	if ck, err := rq.r.Cookie(sessionCookie); err == nil {
		if err := c.cfg.Users.Logout(rq.ctx(), ck.Value); err != nil {
			return err
		}
	}
	setCookie(rq.w, rq.r, sessionCookie, "", -1)
	http.Redirect(rq.w, rq.r, "/console/login", http.StatusSeeOther)
	return nil
}

// setTimeZone records the zone the user reads times in ("" for the
// default) and goes back to the page the form was on.
func (c *Console) setTimeZone(rq *request) error {
	zone, next := strings.TrimSpace(rq.r.PostFormValue("zone")), safeNext(rq.r.PostFormValue("next"), "/console/")
	if err := auth.CheckTimeZone(zone); err != nil {
		setFlash(rq, "error", translate(rq.lang, "tz.unknown", zone))
		http.Redirect(rq.w, rq.r, next, http.StatusSeeOther)
		return nil
	}
	if err := c.cfg.Users.SetTimeZone(rq.ctx(), rq.sess.User.Username, zone); err != nil {
		return err
	}
	setFlash(rq, "ok", translate(rq.lang, "tz.saved"))
	http.Redirect(rq.w, rq.r, next, http.StatusSeeOther)
	return nil
}

// switchLanguage changes the language: the user's preference when logged
// in (with the session's CSRF token), the cookie before.
func (c *Console) switchLanguage(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var fe *httpx.FieldError
	var tooBig *http.MaxBytesError
	if err := r.ParseForm(); errors.As(err, &tooBig) {
		http.Error(w, translate(c.anonymousLanguage(r), "err.badform"), http.StatusRequestEntityTooLarge)
		return
	} else if errors.As(httpx.CheckForm(r.PostForm, nil), &fe) {
		http.Error(w, translate(c.anonymousLanguage(r), "err.field", fe.Field), http.StatusBadRequest)
		return
	}
	lang, next, token := r.PostFormValue("lang"), r.PostFormValue("next"), r.PostFormValue("csrf")
	if !knownLanguage(lang) {
		http.Error(w, "unknown language", http.StatusBadRequest)
		return
	}
	ok := false
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if s, err := c.cfg.Users.Session(r.Context(), ck.Value, c.cfg.Now()); err == nil {
			if subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) != 1 {
				http.Error(w, translate(s.User.Language, "err.csrf"), http.StatusForbidden)
				return
			}
			if err := c.cfg.Users.SetLanguage(r.Context(), s.User.ID, lang); err != nil {
				http.Error(w, translate(lang, "err.unavailable"), http.StatusServiceUnavailable)
				return
			}
			ok = true
		}
	}
	if !ok {
		ck, err := r.Cookie(loginCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(token)) != 1 {
			http.Error(w, translate(lang, "err.csrf"), http.StatusForbidden)
			return
		}
	}
	setCookie(w, r, langCookie, lang, 365*24*3600)
	http.Redirect(w, r, safeNext(next, "/console/"), http.StatusSeeOther)
}
