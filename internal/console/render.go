package console

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/mailintake"
	"github.com/vigia-noc/vigia/maintenance"
)

// flash is a one-time message shown after a redirect.
type flash struct {
	Kind string // ok or error
	Text string
}

// setFlash leaves a message for the next page, in a short-lived cookie.
func setFlash(rq *request, kind, text string) {
	setCookie(rq.w, rq.r, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(kind+"\n"+text)), 60)
}

func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil || r.Header.Get(liveHeader) != "" {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r)})
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return nil
	}
	kind, text, ok := strings.Cut(string(raw), "\n")
	if !ok || (kind != "ok" && kind != "error") || len(text) > 2000 {
		return nil
	}
	return &flash{Kind: kind, Text: text}
}

// view is what every template receives as dot.
type view struct {
	Lang    string
	User    *auth.User
	CSRF    string
	Title   string
	Flash   *flash
	Data    any
	Path    string
	Refresh int // milliseconds between live reloads
	Zone    string
	loc     *time.Location
	now     time.Time
}

// T translates key into the page's language.
func (v view) T(key string, args ...any) string { return translate(v.Lang, key, args...) }

// Zones are the time zones the console suggests (any IANA name is
// accepted): those of the region the NOCs serve, and UTC.
func (view) Zones() []string { return suggestedZones }

var suggestedZones = []string{"America/Bogota", "America/Lima", "America/Guayaquil", "America/Caracas", "America/Panama",
	"America/Mexico_City", "America/Santiago", "America/Argentina/Buenos_Aires", "America/Sao_Paulo", "America/Montevideo",
	"America/La_Paz", "America/Asuncion", "America/Costa_Rica", "America/Guatemala", "America/Santo_Domingo",
	"America/New_York", "Europe/Madrid", "UTC"}

// Other is the language the switch offers.
func (v view) Other() string {
	if v.Lang == "es" {
		return "en"
	}
	return "es"
}

// When formats an instant in the reader's zone.
func (v view) When(t any) string {
	switch x := t.(type) {
	case time.Time:
		if x.IsZero() {
			return "—"
		}
		return x.In(v.loc).Format("2006-01-02 15:04")
	case *time.Time:
		if x == nil {
			return "—"
		}
		return v.When(*x)
	}
	return "—"
}

// Until says how far an instant is from now: "in 2h 5m" or "overdue by 10m".
func (v view) Until(t *time.Time) string {
	if t == nil {
		return v.T("ticket.nodue")
	}
	d := t.Sub(v.now)
	if d < 0 {
		return v.T("ticket.overdue", human(-d))
	}
	return v.T("ticket.in", human(d))
}

// Ago says how long ago an instant was.
func (v view) Ago(t time.Time) string { return human(v.now.Sub(t)) }

// Overdue reports whether t is past.
func (v view) Overdue(t *time.Time) bool { return t != nil && t.Before(v.now) }

// human writes a duration as days, hours and minutes.
func human(d time.Duration) string {
	d = d.Round(time.Minute)
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		return fmt.Sprintf("%dm", m)
	}
}

var funcs = template.FuncMap{
	"add":  func(a, b int) int { return a + b },
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"safeDataURL": func(s string) template.URL {
		// Only PNG data URLs (drawn signatures, checked by dispatch) are
		// trusted as image sources.
		if strings.HasPrefix(s, "data:image/png;base64,") {
			return template.URL(s)
		}
		return ""
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"query": func(kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q.Encode()
	},
}

// render writes page name; a live request gets only its "live" fragment.
func (c *Console) render(rq *request, status int, name, title string, data any) {
	t := c.pages[name]
	v := view{Lang: rq.lang, CSRF: rq.sess.CSRF, Title: title, Flash: rq.flash, Data: data, Path: rq.r.URL.RequestURI(),
		Refresh: int(c.cfg.Refresh / time.Millisecond), loc: rq.loc, now: rq.now}
	if v.loc == nil {
		v.loc = c.cfg.Location
	}
	// "Local" tells a reader nothing: name the zone by its abbreviation.
	if v.Zone = v.loc.String(); v.Zone == "Local" {
		v.Zone = rq.now.In(v.loc).Format("MST (-07:00)")
	}
	if rq.sess.User.ID != 0 {
		u := rq.sess.User
		v.User = &u
	}
	tmpl := "layout"
	if rq.r.Header.Get(liveHeader) != "" && t.Lookup("live") != nil {
		tmpl = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, v); err != nil {
		c.cfg.Log.Error("console: render", "page", name, "err", err)
		http.Error(rq.w, translate(rq.lang, "err.internal"), http.StatusInternalServerError)
		return
	}
	rq.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.w.WriteHeader(status)
	rq.w.Write(buf.Bytes())
}

// fail renders the error page with a translated message.
func (c *Console) fail(rq *request, status int, key string, args ...any) {
	c.failText(rq, status, translate(rq.lang, key, args...))
}

func (c *Console) failText(rq *request, status int, text string) {
	if rq.r.Header.Get(liveHeader) != "" {
		http.Error(rq.w, text, status)
		return
	}
	c.render(rq, status, "error", translate(rq.lang, "err.title"), map[string]any{"Message": text, "Status": status})
}

// failErr maps a domain error to a page: not found and forbidden are
// translated; refusals and invalid input carry the domain's own message,
// which names the rule (the reopening window, a seat limit).
func (c *Console) failErr(rq *request, err error) {
	var fe *httpx.FieldError
	switch {
	case errors.Is(err, maintenance.ErrNotFound), errors.Is(err, dispatch.ErrNotFound), errors.Is(err, assets.ErrNotFound),
		errors.Is(err, errNotFound):
		c.fail(rq, http.StatusNotFound, "err.notfound")
	case errors.Is(err, maintenance.ErrForbidden), errors.Is(err, dispatch.ErrForbidden):
		c.fail(rq, http.StatusForbidden, "err.forbidden")
	case errors.As(err, &fe):
		c.fail(rq, http.StatusBadRequest, "err.field", fe.Field)
	case isUserError(err):
		c.failText(rq, http.StatusUnprocessableEntity, userMessage(err))
	default:
		c.cfg.Log.Error("console", "path", rq.r.URL.Path, "err", err)
		c.fail(rq, http.StatusInternalServerError, "err.internal")
	}
}

var errNotFound = errors.New("console: not found")

// isUserError reports whether err is the user's to fix (shown as is).
func isUserError(err error) bool {
	for _, e := range []error{maintenance.ErrInvalid, maintenance.ErrConflict, maintenance.ErrRefused,
		dispatch.ErrInvalid, dispatch.ErrConflict, dispatch.ErrRefused, errBadUpload, mailintake.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// userMessage strips the package prefix from a domain error.
func userMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"maintenance: ", "dispatch: ", "mailintake: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// afterAction redirects back to a page with the outcome of a form: a
// user's mistake is shown there rather than on an error page.
func (c *Console) afterAction(rq *request, to string, err error, okText string) error {
	if err != nil {
		if !isUserError(err) {
			return err
		}
		setFlash(rq, "error", userMessage(err))
	} else {
		setFlash(rq, "ok", okText)
	}
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
	return nil
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
