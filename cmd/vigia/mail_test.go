package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/imaptest"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// The mailbox flags are checked before anything starts.
func TestServeIMAPFlags(t *testing.T) {
	for _, tc := range []struct {
		url, password, want string
	}{
		{"http://soporte@mail.example/INBOX", "pw", "imap (STARTTLS) or imaps"},
		{"imaps://soporte:hunter2@mail.example/INBOX", "pw", "not in the URL"},
		{"imaps://mail.example/INBOX", "pw", "USER@HOST"},
		{"imaps://soporte@mail.example/INBOX", "", "needs VIGIA_IMAP_PASSWORD"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Setenv("VIGIA_IMAP_PASSWORD", tc.password)
			code, _, errs := runCLI(t, "serve", "--listen", "127.0.0.1:0", "--imap-url", tc.url)
			if code == 0 || !strings.Contains(errs, tc.want) || strings.Contains(errs, "hunter2") {
				t.Fatalf("exit %d: %s", code, errs)
			}
		})
	}
}

// `vigia serve --imap-url` against a real Dovecot: a hospital's message
// becomes a ticket and its sender gets the acknowledgement through the SMTP
// relay; the IMAP password appears in no output.
func TestServeReadsMailbox(t *testing.T) {
	imap := imaptest.Start(t)
	mail := smtptest.Start(t, smtptest.Options{})
	url := pgtest.URL(t)
	bin := buildVigia(t)
	pwFile := filepath.Join(t.TempDir(), "imap.password")
	if err := os.WriteFile(pwFile, []byte(imaptest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIA_IMAP_PASSWORD_FILE", pwFile)
	p := startServe(t, bin, "--database-url", url, "--import", "../../examples/inventory.yaml", "--probe=false",
		"--listen", "127.0.0.1:"+strconv.Itoa(testpeer.FreePort(t)), "--smtp-addr", mail.Addr, "--smtp-from", "soporte@vigia.test",
		"--imap-url", "imap://"+imaptest.User+"@"+imap.Addr+"/INBOX", "--imap-poll", "1s")
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	imap.Append(t, "INBOX", time.Now().Add(-time.Minute), []byte(strings.ReplaceAll(`From: Luis Quispe <luis.quispe@miraflores.example>
Subject: El RIS no imprime
Message-ID: <serve-1@miraflores.example>

Desde el turno de la tarde.
`, "\n", "\r\n")))
	waitUntil(t, "the ticket from the e-mail", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets WHERE source = 'email' AND customer_id = 'cmf'`) == 1
	})
	var number string
	if err := conn.Get(&number, `SELECT number FROM tickets`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the acknowledgement", 30*time.Second, func() bool {
		msgs, _ := mail.Messages()
		for _, m := range msgs {
			if len(m.To) == 1 && m.To[0] == "luis.quispe@miraflores.example" && strings.Contains(m.Subject, "["+number+"]") {
				return true
			}
		}
		return false
	})
	if n, _ := imap.Count(t, "Archive"); n != 1 {
		t.Errorf("Archive holds %d, want the message", n)
	}
	p.kill9()
	if out := p.out.String(); strings.Contains(out, imaptest.Password) || !strings.Contains(out, "<secret>") {
		t.Errorf("the output shows the IMAP password, or not as <secret>:\n%s", tail(out, 3000))
	}
}
