package dispatch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os/exec"
	"strings"
	"testing"
	"time"

	ical "github.com/arran4/golang-ical"

	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// parsedCalendar is what testdata/parse_ics.py prints.
type parsedCalendar struct {
	Method    string   `json:"method"`
	Version   string   `json:"version"`
	Timezones []string `json:"timezones"`
	Events    []struct {
		UID        string   `json:"uid"`
		Sequence   int      `json:"sequence"`
		Status     string   `json:"status"`
		Location   string   `json:"location"`
		Summary    string   `json:"summary"`
		URL        string   `json:"url"`
		TZID       string   `json:"tzid"`
		EndTZID    string   `json:"end_tzid"`
		StartLocal string   `json:"start_local"`
		StartUTC   string   `json:"start_utc"`
		EndUTC     string   `json:"end_utc"`
		Attendees  []string `json:"attendees"`
	} `json:"events"`
}

// icalPython finds an interpreter with Debian's python3-icalendar.
func icalPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import icalendar").Run() == nil {
			return p
		}
	}
	testpeer.Missing(t, "python3 with icalendar", "apt-get install python3-icalendar")
	return ""
}

// parseICS runs the real parser on an iCalendar object.
func parseICS(t *testing.T, py string, ics []byte) parsedCalendar {
	t.Helper()
	cmd := exec.Command(py, "testdata/parse_ics.py")
	cmd.Stdin = bytes.NewReader(ics)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3-icalendar rejects the invitation: %v\n%s\n%s", err, stderr.String(), ics)
	}
	var c parsedCalendar
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("parse_ics.py: %v: %s", err, out)
	}
	if len(c.Events) != 1 {
		t.Fatalf("%d events in the invitation; want 1:\n%s", len(c.Events), ics)
	}
	return c
}

// calendarPart returns the text/calendar part of a captured message and
// its method parameter.
func calendarPart(t *testing.T, raw []byte) (ics []byte, method string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("dispatch e-mail is %s (%v); want multipart/mixed with the invitation", mt, err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			t.Fatal("no text/calendar part")
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, cp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if ct != "text/calendar" {
			continue
		}
		// multipart.Reader undoes quoted-printable only; base64 is ours.
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, p))
		if err != nil {
			t.Fatal(err)
		}
		return b, cp["method"]
	}
}

// The dispatch e-mail reaches a real SMTP server with an invitation that
// Debian's python3-icalendar parses: METHOD:REQUEST, one UID per visit,
// the window in the site's zone, the site's address; a reschedule sends
// the same UID with a higher SEQUENCE, a cancellation METHOD:CANCEL. Each
// engineer reads it in their language.
func TestDispatchInvitation(t *testing.T) {
	py := icalPython(t)
	f := newFixture(t)
	ctx := context.Background()
	f.store.SetConsoleURL("https://vigia.example/")
	// Laura reads English; Mateo keeps Spanish.
	if _, err := f.store.PutEngineer(ctx, noc, "eng-bog", EngineerInput{Name: "Laura Bogotá", Email: "laura@vigia.example", HomeCity: "Bogotá",
		Biomedical: true, Modalities: []string{"MR"}, Calendar: CalendarSpec{Preset: "co-8x5"}, Language: "en"}, at(2026, 1, 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	tk := f.openTicket(t, "andes", []string{"andes-mr"}, 2, at(2026, 9, 7, 9, 0))
	now := at(2026, 9, 7, 11, 0)
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog", "eng-med"}}, now))
	smtpd := smtptest.Start(t, smtptest.Options{})
	sender := notify.NewSender(f.db, &notify.SMTP{Addr: smtpd.Addr, From: "noc@vigia.example"}, nil, quiet)
	sent := 0
	// deliver sends what is due and returns the engineers' new messages
	// (the customer is told of the ticket too).
	deliver := func() []smtptest.Message {
		t.Helper()
		n, err := sender.SendDue(ctx, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		sent += n
		var out []smtptest.Message
		for _, m := range smtpd.Wait(t, sent, 10*time.Second)[sent-n:] {
			if strings.HasSuffix(m.To[0], "@vigia.example") {
				out = append(out, m)
			}
		}
		return out
	}
	type expect struct {
		method     string
		sequence   int
		status     string
		start, end time.Time
		subject    map[string]string // recipient → words of the subject
	}
	check := func(t *testing.T, msgs []smtptest.Message, e expect) {
		t.Helper()
		if len(msgs) != 2 {
			t.Fatalf("%d messages; want one per engineer", len(msgs))
		}
		for _, m := range msgs {
			ics, method := calendarPart(t, m.Raw)
			if method != e.method {
				t.Errorf("Content-Type method=%s; want %s", method, e.method)
			}
			c := parseICS(t, py, ics)
			ev := c.Events[0]
			got := map[string]any{"METHOD": c.Method, "VERSION": c.Version, "UID": ev.UID, "SEQUENCE": ev.Sequence, "STATUS": ev.Status,
				"TZID": ev.TZID, "DTEND TZID": ev.EndTZID, "VTIMEZONE": strings.Join(c.Timezones, ","),
				"DTSTART": ev.StartUTC, "DTSTART local": ev.StartLocal, "DTEND": ev.EndUTC, "LOCATION": ev.Location,
				"attendees": len(ev.Attendees)}
			want := map[string]any{"METHOD": e.method, "VERSION": "2.0", "UID": "visit-" + itoa(v.ID) + "@vigia", "SEQUENCE": e.sequence,
				"STATUS": e.status, "TZID": "America/Bogota", "DTEND TZID": "America/Bogota", "VTIMEZONE": "America/Bogota",
				"DTSTART": e.start.UTC().Format("2006-01-02T15:04:05Z"), "DTSTART local": e.start.Format("2006-01-02T15:04:05"),
				"DTEND": e.end.UTC().Format("2006-01-02T15:04:05Z"), "LOCATION": "Clínica Bogotá, Calle 100, Bogotá",
				"attendees": 2}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: %s = %v; want %v", m.To[0], k, got[k], w)
				}
			}
			if e.method == "REQUEST" && ev.URL != "https://vigia.example/console/engineer/visits/"+itoa(v.ID) {
				t.Errorf("URL %q", ev.URL)
			}
			if words := e.subject[m.To[0]]; !strings.Contains(m.Subject, words) {
				t.Errorf("%s: subject %q lacks %q", m.To[0], m.Subject, words)
			}
		}
	}

	start, end := at(2026, 9, 8, 9, 0), at(2026, 9, 8, 11, 0)
	if _, err := f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled, WindowStart: &start, WindowEnd: &end}, now); err != nil {
		t.Fatal(err)
	}
	msgs := deliver()
	t.Run("request", func(t *testing.T) {
		check(t, msgs, expect{method: "REQUEST", sequence: 0, status: "CONFIRMED", start: start, end: end,
			subject: map[string]string{"laura@vigia.example": "Visit " + itoa(v.ID), "mateo@vigia.example": "Visita " + itoa(v.ID)}})
		for _, m := range msgs {
			body := textPart(t, m.Raw)
			lang := map[string][]string{"laura@vigia.example": {"Agreed window: 2026-09-08 09:00 (America/Bogota)", "Checklist", "Visit on your phone: https://vigia.example/console/engineer/visits/"},
				"mateo@vigia.example": {"Ventana acordada: 2026-09-08 09:00 (America/Bogota)", "Lista de chequeo", "Visita en el teléfono: https://vigia.example/console/engineer/visits/"}}
			for _, w := range lang[m.To[0]] {
				if !strings.Contains(body, w) {
					t.Errorf("%s: body lacks %q:\n%s", m.To[0], w, body)
				}
			}
		}
	})

	start, end = at(2026, 9, 8, 14, 0), at(2026, 9, 8, 16, 0)
	if _, err := f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled, WindowStart: &start, WindowEnd: &end}, now); err != nil {
		t.Fatal(err)
	}
	msgs = deliver()
	t.Run("reschedule", func(t *testing.T) {
		check(t, msgs, expect{method: "REQUEST", sequence: 1, status: "CONFIRMED", start: start, end: end,
			subject: map[string]string{"laura@vigia.example": "2026-09-08 14:00", "mateo@vigia.example": "2026-09-08 14:00"}})
	})

	if _, err := f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitCancelled, Note: "el cliente reprograma"}, now); err != nil {
		t.Fatal(err)
	}
	msgs = deliver()
	t.Run("cancel", func(t *testing.T) {
		check(t, msgs, expect{method: "CANCEL", sequence: 2, status: "CANCELLED", start: start, end: end,
			subject: map[string]string{"laura@vigia.example": "cancelled", "mateo@vigia.example": "cancelada"}})
	})
}

func textPart(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	p, err := multipart.NewReader(msg.Body, params["boundary"]).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A zone with daylight saving time: the VTIMEZONE carries both
// observances of the visit's year, so the parser places a summer and a
// winter window at the right UTC instants.
func TestInvitationTimezones(t *testing.T) {
	py := icalPython(t)
	for _, c := range []struct{ zone, local, utc string }{
		{"Europe/Madrid", "2026-07-15T10:00", "2026-07-15T08:00:00Z"},
		{"Europe/Madrid", "2026-12-15T10:00", "2026-12-15T09:00:00Z"},
		{"America/Lima", "2026-12-15T10:00", "2026-12-15T15:00:00Z"},
		{"America/Mexico_City", "2026-04-10T08:30", "2026-04-10T14:30:00Z"},
	} {
		t.Run(c.zone+" "+c.local, func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			start, err := time.ParseInLocation("2006-01-02T15:04", c.local, loc)
			if err != nil {
				t.Fatal(err)
			}
			inv := invitation{Method: ical.MethodRequest, UID: "visit-1@vigia", Start: start, End: start.Add(time.Hour), Zone: loc,
				Summary: "x", Location: "y", Stamp: start, Organizer: "noc@vigia"}
			got := parseICS(t, py, []byte(inv.String()))
			if ev := got.Events[0]; ev.StartUTC != c.utc || ev.TZID != c.zone {
				t.Fatalf("DTSTART %s (%s); want %s (%s)\n%s", ev.StartUTC, ev.TZID, c.utc, c.zone, inv.String())
			}
		})
	}
}
