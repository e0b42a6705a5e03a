package mailintake

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/imaptest"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// Two customers: a seed 001 clinic in Lima (it-support-pe, split shift)
// and a Colombian one whose contact writes in English.
const inventory = `customers:
  - id: clinica
    name: Clínica San Martín
    country: PE
    time_zone: America/Lima
    notify_email: noc@clinica.example.pe
    contacts:
      - {name: Ana Quispe, email: ana@clinica.example.pe, role: jefa de TI}
    email_domains: [clinica.example.pe]
    sites:
      - id: clinica-lima
        name: Sede Lima
        kind: hospital
        devices:
          - {id: clinica-pacs, name: PACS, kind: pacs, tcp: {host: 127.0.0.1, port: 9}}
    contracts:
      - {id: clinica-ti, sla_policy: it-support-pe, devices: all, start: 2026-01-01, end: 2027-12-31}
  - id: beta
    name: Beta Salud
    country: CO
    time_zone: America/Bogota
    contacts:
      - {name: Bob Smith, email: bob@beta.example.co, language: en}
    sites:
      - id: beta-main
        name: Beta
        kind: hospital
        devices:
          - {id: beta-pacs, name: PACS, kind: pacs, tcp: {host: 127.0.0.1, port: 9}}
    contracts:
      - {id: beta-k, sla_policy: imaging-8x5, devices: all, start: 2026-01-01, end: 2027-12-31}
`

type harness struct {
	db     *sqlx.DB
	imap   *imaptest.Server
	smtp   *smtptest.Server
	intake *Intake
	reader *Reader
	sender *notify.Sender
	now    time.Time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, pgtest.DB(t), imaptest.Start(t))
}

func newHarnessOn(t *testing.T, db *sqlx.DB, srv *imaptest.Server) *harness {
	t.Helper()
	h := wire(t, db, srv)
	h.smtp = smtptest.Start(t, smtptest.Options{})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h.sender = notify.NewSender(h.db, &notify.SMTP{Addr: h.smtp.Addr, From: "vigia@vigia.test", Timeout: 10 * time.Second}, nil, log)
	policies := sla.Presets()
	f, err := assets.ParseFile("inventory.yaml", []byte(inventory), assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := policies.Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := assets.NewStore(h.db).Import(context.Background(), f, h.now.Add(-60*24*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	return h
}

// wire builds the intake and the mailbox reader on a database and a server.
func wire(t *testing.T, db *sqlx.DB, srv *imaptest.Server) *harness {
	t.Helper()
	h := &harness{db: db, imap: srv, now: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	inv := assets.NewStore(h.db)
	tickets := maintenance.NewStore(h.db, inv, maintenance.Options{})
	h.intake = New(h.db, tickets, inv, func() time.Time { return h.now }, log)
	h.intake.RegisterMetrics(prometheus.NewRegistry())
	box, err := ParseMailbox("imap://"+srv.User+"@"+srv.Addr+"/INBOX", srv.Password, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	h.reader = &Reader{Box: box, Intake: h.intake, Poll: time.Second, Log: log}
	return h
}

// deliver appends raw to the INBOX, received at, and reads the mailbox.
func (h *harness) deliver(t *testing.T, at time.Time, raw string) {
	t.Helper()
	h.imap.Append(t, "INBOX", at, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err := h.reader.ReadOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := h.db.Get(&n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (h *harness) send(t *testing.T) {
	t.Helper()
	if _, err := h.sender.SendDue(context.Background(), h.now); err != nil {
		t.Fatal(err)
	}
}

func screenshot(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func withImage(t *testing.T, headers, text string) string {
	img := base64.StdEncoding.EncodeToString(screenshot(t))
	return headers + `MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

` + text + `
--b1
Content-Type: image/png
Content-Disposition: attachment; filename="pantalla.png"
Content-Transfer-Encoding: base64

` + img + `
--b1--
`
}

var lima, _ = time.LoadLocation("America/Lima")

func TestEmailIntake(t *testing.T) {
	h := newHarness(t)
	received := time.Date(2026, 11, 16, 9, 0, 0, 0, lima)
	var number string

	t.Run("new message from a known contact opens one ticket with the attachment", func(t *testing.T) {
		h.deliver(t, received, withImage(t, `From: Ana Quispe <Ana@Clinica.example.pe>
To: soporte@vigia.test
Subject: =?utf-8?q?El_visor_no_carga_estudios?=
Message-ID: <req-1@clinica.example.pe>
Date: Mon, 16 Nov 2026 09:00:00 -0500
`, "Desde esta mañana el visor no abre los estudios de TC."))
		var tk struct {
			Number, Customer, Source, Requester, Title, Description string
			Severity                                                int
			OpenedAt                                                time.Time `db:"opened_at"`
		}
		if err := h.db.Get(&tk, `SELECT number, customer_id AS customer, source, requester, title, description, severity, opened_at FROM tickets`); err != nil {
			t.Fatal(err)
		}
		number = tk.Number
		if tk.Customer != "clinica" || tk.Source != "email" || tk.Requester != "ana@clinica.example.pe" || tk.Title != "El visor no carga estudios" ||
			!strings.Contains(tk.Description, "no abre los estudios") || tk.Severity != 3 || !tk.OpenedAt.Equal(received) {
			t.Fatalf("ticket = %+v", tk)
		}
		if n := h.count(t, `SELECT count(*) FROM ticket_attachments WHERE filename = 'pantalla.png' AND content_type = 'image/png' AND customer_id = 'clinica'`); n != 1 {
			t.Fatalf("attachments = %d, want the screenshot", n)
		}
		if n := h.count(t, `SELECT count(*) FROM inbound_mail WHERE status = 'ticket' AND raw <> '' AND message_id = 'req-1@clinica.example.pe'`); n != 1 {
			t.Fatalf("raw message rows = %d", n)
		}
		if inbox, _ := h.imap.Count(t, "INBOX"); inbox != 0 {
			t.Fatalf("INBOX still holds %d", inbox)
		}
		if total, seen := h.imap.Count(t, "Archive"); total != 1 || seen != 1 {
			t.Fatalf("Archive holds %d (%d seen), want 1 seen", total, seen)
		}
	})

	var ackID string
	t.Run("the requester's acknowledgement carries the ticket number", func(t *testing.T) {
		h.send(t)
		msgs := h.smtp.Wait(t, 2, 10*time.Second)
		for _, m := range msgs {
			if len(m.To) == 1 && m.To[0] == "ana@clinica.example.pe" {
				if !strings.Contains(m.Subject, "["+number+"]") || !strings.Contains(m.Subject, "Recibimos su solicitud") {
					t.Fatalf("acknowledgement subject %q", m.Subject)
				}
				ackID = m.Header.Get("Message-Id")
			}
		}
		if ackID == "" {
			t.Fatalf("no acknowledgement to the requester among %d messages", len(msgs))
		}
	})

	comments := func() int {
		return h.count(t, `SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id WHERE t.number = $1 AND e.kind = 'comment'`, number)
	}
	t.Run("a reply by References is a comment", func(t *testing.T) {
		h.deliver(t, received.Add(time.Hour), `From: ana@clinica.example.pe
Subject: Re: ya funciona a medias
Message-ID: <reply-1@clinica.example.pe>
In-Reply-To: `+ackID+`
References: <req-1@clinica.example.pe> `+ackID+`

Ahora abre pero lento.
`)
		if n := h.count(t, `SELECT count(*) FROM tickets`); n != 1 {
			t.Fatalf("tickets = %d, want 1", n)
		}
		if comments() != 1 {
			t.Fatalf("comments = %d, want 1", comments())
		}
	})

	t.Run("a reply naming the number in the subject is a comment", func(t *testing.T) {
		h.deliver(t, received.Add(2*time.Hour), `From: otra.persona@clinica.example.pe
Subject: RE: [`+number+`] Recibimos su solicitud
Message-ID: <reply-2@clinica.example.pe>

Adjunto más detalles.
`)
		if n := h.count(t, `SELECT count(*) FROM tickets`); n != 1 || comments() != 2 {
			t.Fatalf("tickets = %d, comments = %d; want 1 and 2", n, comments())
		}
	})

	t.Run("another customer's ticket number is not attached there", func(t *testing.T) {
		h.deliver(t, received.Add(3*time.Hour), `From: Bob Smith <bob@beta.example.co>
Subject: About `+number+`: our CT
Message-ID: <b-1@beta.example.co>

Our CT cannot send.
`)
		if comments() != 2 {
			t.Fatalf("comments on %s = %d: another customer's message landed there", number, comments())
		}
		if n := h.count(t, `SELECT count(*) FROM tickets WHERE customer_id = 'beta' AND source = 'email'`); n != 1 {
			t.Fatalf("beta tickets = %d, want 1 (its own)", n)
		}
		if n := h.count(t, `SELECT count(*) FROM outbox WHERE recipient = 'bob@beta.example.co' AND subject LIKE '%We received your request%'`); n != 1 {
			t.Fatalf("English acknowledgements to bob = %d", n)
		}
	})

	t.Run("an unknown sender waits in the unmatched queue, unanswered", func(t *testing.T) {
		before := h.count(t, `SELECT count(*) FROM outbox`)
		h.deliver(t, received.Add(4*time.Hour), `From: stranger@example.org
Subject: Necesito soporte
Message-ID: <x-1@example.org>

Hola.
`)
		if n := h.count(t, `SELECT count(*) FROM inbound_mail WHERE status = 'unmatched' AND sender = 'stranger@example.org'`); n != 1 {
			t.Fatalf("unmatched = %d", n)
		}
		if after := h.count(t, `SELECT count(*) FROM outbox`); after != before {
			t.Fatalf("outbox grew from %d to %d for an unknown sender", before, after)
		}
		if n := h.count(t, `SELECT count(*) FROM tickets`); n != 2 {
			t.Fatalf("tickets = %d, want 2", n)
		}
	})

	t.Run("an auto-reply and a bounce are no tickets; the bounce marks the delivery", func(t *testing.T) {
		h.deliver(t, received.Add(5*time.Hour), `From: ana@clinica.example.pe
Subject: Fuera de la oficina
Auto-Submitted: auto-replied
Message-ID: <ooo-1@clinica.example.pe>

Estoy de vacaciones.
`)
		h.deliver(t, received.Add(5*time.Hour), `From: Mail Delivery System <MAILER-DAEMON@mx.clinica.example.pe>
To: vigia@vigia.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-1@mx.clinica.example.pe>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r1"

--r1
Content-Type: text/plain

The mail could not be delivered.
--r1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.clinica.example.pe

Final-Recipient: rfc822; ana@clinica.example.pe
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown
--r1
Content-Type: text/rfc822-headers

From: vigia@vigia.test
To: ana@clinica.example.pe
Message-ID: `+ackID+`

--r1--
`)
		if n := h.count(t, `SELECT count(*) FROM tickets`); n != 2 {
			t.Fatalf("tickets = %d, want 2", n)
		}
		if n := h.count(t, `SELECT count(*) FROM outbox WHERE message_id = $1 AND bounced_at IS NOT NULL AND bounce_reason LIKE '5.1.1%'`, ackID); n != 1 {
			t.Fatalf("bounced outbox rows = %d", n)
		}
		if n := h.count(t, `SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id WHERE t.number = $1 AND e.kind = 'delivery_failed'`, number); n != 1 {
			t.Fatalf("delivery_failed events = %d", n)
		}
		if n := h.count(t, `SELECT count(*) FROM inbound_mail WHERE status IN ('noise', 'bounce')`); n != 2 {
			t.Fatalf("noise and bounce rows = %d, want 2", n)
		}
		if comments() != 2 {
			t.Fatalf("the auto-reply became a comment")
		}
	})

	t.Run("the same message appended twice opens one ticket", func(t *testing.T) {
		raw := `From: ana@clinica.example.pe
Subject: Impresora de placas sin conexión
Message-ID: <twice@clinica.example.pe>

La impresora DRYVIEW no responde.
`
		h.imap.Append(t, "INBOX", received.Add(6*time.Hour), []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
		h.deliver(t, received.Add(6*time.Hour), raw)
		if n := h.count(t, `SELECT count(*) FROM tickets WHERE title = 'Impresora de placas sin conexión'`); n != 1 {
			t.Fatalf("tickets = %d, want 1", n)
		}
		if inbox, _ := h.imap.Count(t, "INBOX"); inbox != 0 {
			t.Fatalf("the duplicate stayed in the INBOX (%d)", inbox)
		}
		var m dto.Metric
		if err := h.intake.read.WithLabelValues("duplicate").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
			got := m.GetCounter().GetValue()
			t.Fatalf("vigia_mail_messages_total{status=\"duplicate\"} = %v, want 1", got)
		}
	})
}

// Seed 001: a request that arrives at 17:30 on a Friday in Lima has half
// an hour left that day; Sev 3 (24 business hours of 08–12/14–18) is due
// Wednesday 17:30 — counted from the server's receipt instant, not from
// when Vigía read the mailbox.
func TestResponseDueFromReceiptInstant(t *testing.T) {
	h := newHarness(t)
	friday := time.Date(2026, 11, 13, 17, 30, 0, 0, lima)
	h.now = time.Date(2026, 11, 16, 10, 0, 0, 0, lima) // read on Monday morning
	h.deliver(t, friday, `From: ana@clinica.example.pe
Subject: No se puede imprimir desde el RIS
Message-ID: <friday@clinica.example.pe>

Desde las 17:00.
`)
	var opened, due time.Time
	var policy string
	if err := h.db.QueryRow(`SELECT opened_at, response_due_at, sla_policy FROM tickets`).Scan(&opened, &due, &policy); err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 18, 17, 30, 0, 0, lima)
	if policy != "it-support-pe" || !opened.Equal(friday) || !due.Equal(want) {
		t.Fatalf("policy %s, opened %s, response due %s; want it-support-pe, %s, %s", policy, opened.In(lima), due.In(lima), friday, want)
	}
}

func ExampleParseMailbox() {
	m, _ := ParseMailbox("imaps://soporte@mail.example.org/INBOX", "secret", "Archive")
	fmt.Println(m, m.Addr, m.Implicit)
	fmt.Printf("%+v\n", m)
	// Output:
	// imaps://soporte@mail.example.org:993/INBOX (password <secret>) mail.example.org:993 true
	// imaps://soporte@mail.example.org:993/INBOX (password <secret>)
}

// kill -9 after the commit and before the \Seen flag: the message is
// still unseen in the INBOX, and reading it again after the restart finds
// its row and opens nothing twice.
func TestKill9AfterCommitBeforeSeen(t *testing.T) {
	url := pgtest.URL(t)
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := imaptest.Start(t)
	h := newHarnessOn(t, conn, srv)
	raw := strings.ReplaceAll(`From: ana@clinica.example.pe
Subject: Se cayó el enlace de la sede
Message-ID: <crash@clinica.example.pe>

Sin conexión desde las 8.
`, "\n", "\r\n")
	srv.Append(t, "INBOX", time.Date(2026, 11, 16, 8, 5, 0, 0, lima), []byte(raw))

	child := exec.Command(os.Args[0], "-test.run=^TestCrashingReader$", "-test.count=1")
	child.Env = append(os.Environ(), "MAILINTAKE_CRASH_DB="+url, "MAILINTAKE_CRASH_IMAP="+srv.Addr)
	out, err := child.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the reader was not killed after the commit: %v\n%s", err, out)
	}
	if n := h.count(t, `SELECT count(*) FROM tickets`); n != 1 {
		t.Fatalf("tickets after the crash = %d, want 1 (committed)", n)
	}
	if total, seen := srv.Count(t, "INBOX"); total != 1 || seen != 0 {
		t.Fatalf("INBOX after the crash: %d (%d seen), want the message unseen", total, seen)
	}

	if err := h.reader.ReadOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM tickets`:                                           1,
		`SELECT count(*) FROM inbound_mail`:                                      1,
		`SELECT count(*) FROM outbox WHERE recipient = 'ana@clinica.example.pe'`: 1,
	} {
		if n := h.count(t, q); n != want {
			t.Errorf("after the restart %s = %d, want %d", q, n, want)
		}
	}
	if total, seen := srv.Count(t, "Archive"); total != 1 || seen != 1 {
		t.Errorf("Archive after the restart: %d (%d seen), want 1 seen", total, seen)
	}
}

// TestCrashingReader is the child of TestKill9AfterCommitBeforeSeen: it
// reads the mailbox and kills itself with SIGKILL right after the commit.
func TestCrashingReader(t *testing.T) {
	url, addr := os.Getenv("MAILINTAKE_CRASH_DB"), os.Getenv("MAILINTAKE_CRASH_IMAP")
	if url == "" {
		t.Skip("run by TestKill9AfterCommitBeforeSeen")
	}
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	h := wire(t, conn, &imaptest.Server{Addr: addr, User: imaptest.User, Password: imaptest.Password})
	h.reader.afterCommit = func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	h.reader.ReadOnce(context.Background())
	t.Fatal("still alive after the commit")
}

// leaderSwitch is a Leader the test turns on.
type leaderSwitch struct{ on atomic.Bool }

func (l *leaderSwitch) IsLeader(context.Context) error {
	if l.on.Load() {
		return nil
	}
	return errors.New("not the leader")
}

// The running reader: nothing is read while another instance leads; once
// leading, a message appended later arrives through IDLE, well before the
// (long) poll interval.
func TestReaderRunsOnLeaderWithIdle(t *testing.T) {
	h := newHarness(t)
	lead := &leaderSwitch{}
	h.reader.Leader, h.reader.Poll = lead, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.reader.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	raw := func(id string) []byte {
		return []byte("From: ana@clinica.example.pe\r\nSubject: Mensaje " + id + "\r\nMessage-ID: <" + id + "@clinica.example.pe>\r\n\r\nTexto.\r\n")
	}
	h.imap.Append(t, "INBOX", time.Date(2026, 11, 16, 9, 0, 0, 0, lima), raw("first"))
	time.Sleep(1500 * time.Millisecond)
	if n := h.count(t, `SELECT count(*) FROM inbound_mail`); n != 0 {
		t.Fatalf("read %d messages without being the leader", n)
	}
	lead.on.Store(true)
	waitFor(t, "the first message, once leading", 15*time.Second, func() bool { return h.count(t, `SELECT count(*) FROM tickets`) == 1 })
	time.Sleep(300 * time.Millisecond) // the reader is idling now
	h.imap.Append(t, "INBOX", time.Date(2026, 11, 16, 9, 5, 0, 0, lima), raw("second"))
	waitFor(t, "the second message, through IDLE", 10*time.Second, func() bool { return h.count(t, `SELECT count(*) FROM tickets`) == 2 })
	waitFor(t, "the INBOX emptied", 5*time.Second, func() bool { n, _ := h.imap.Count(t, "INBOX"); return n == 0 })
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// STARTTLS and implicit TLS against Dovecot with a certificate the test
// made: an untrusted certificate stops the reader before it logs in, the
// trusted one lets it read.
func TestReaderTLS(t *testing.T) {
	srv := imaptest.StartTLS(t)
	h := newHarnessOn(t, pgtest.DB(t), srv)
	for i, url := range []string{"imap://" + srv.User + "@" + srv.Addr + "/INBOX", "imaps://" + srv.User + "@" + srv.TLSAddr + "/INBOX"} {
		t.Run(url, func(t *testing.T) {
			box, err := ParseMailbox(url, srv.Password, "Archive")
			if err != nil {
				t.Fatal(err)
			}
			srv.Append(t, "INBOX", time.Date(2026, 11, 16, 9, i, 0, 0, lima),
				[]byte(fmt.Sprintf("From: ana@clinica.example.pe\r\nSubject: TLS %d\r\nMessage-ID: <tls-%d@clinica.example.pe>\r\n\r\nx\r\n", i, i)))
			r := &Reader{Box: box, Intake: h.intake, Log: h.reader.Log}
			r.Box.TLS = &tls.Config{RootCAs: x509.NewCertPool()}
			if err := r.ReadOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("with an untrusted certificate: %v", err)
			}
			r.Box.TLS = &tls.Config{RootCAs: srv.CA}
			if err := r.ReadOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := h.count(t, `SELECT count(*) FROM tickets WHERE title = $1`, fmt.Sprintf("TLS %d", i)); n != 1 {
				t.Fatalf("tickets = %d", n)
			}
		})
	}
}

// A message the ticket rules cannot take (here a trigger refuses its
// ticket) is kept raw for the NOC, and the messages after it are read.
func TestPoisonMessageDoesNotBlockTheMailbox(t *testing.T) {
	h := newHarness(t)
	h.db.MustExec(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.title = 'veneno' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`)
	h.db.MustExec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
	at := time.Date(2026, 11, 16, 9, 0, 0, 0, lima)
	h.imap.Append(t, "INBOX", at, []byte("From: ana@clinica.example.pe\r\nSubject: veneno\r\nMessage-ID: <p1@clinica.example.pe>\r\n\r\nx\r\n"))
	h.deliver(t, at.Add(time.Minute), "From: ana@clinica.example.pe\nSubject: sano\nMessage-ID: <p2@clinica.example.pe>\n\ny\n")
	if n := h.count(t, `SELECT count(*) FROM tickets WHERE title = 'sano'`); n != 1 {
		t.Fatalf("the message after the poison: %d tickets", n)
	}
	var status, reason string
	if err := h.db.QueryRow(`SELECT status, reason FROM inbound_mail WHERE message_id = 'p1@clinica.example.pe'`).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != StatusUnparseable || strings.Contains(reason, "refused by the test") {
		t.Fatalf("poison message kept as %s (%q); want unparseable, without the database's words", status, reason)
	}
	if inbox, _ := h.imap.Count(t, "INBOX"); inbox != 0 {
		t.Fatalf("INBOX holds %d", inbox)
	}
}
