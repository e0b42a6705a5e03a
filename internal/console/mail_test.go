package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/mailintake"
)

// The NOC sees the unmatched mail and turns a message into a ticket of the
// customer it chooses; a hospital's user cannot see the queue.
func TestMailQueuePage(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	received := h.clock.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	out, err := h.mail.Process(context.Background(), mailintake.Envelope{Mailbox: "imap://soporte@mail.test:143/INBOX", UIDValidity: 1, UID: 7,
		Received: received, Raw: []byte("From: residente@correo.example\r\nSubject: Ecógrafo sin imagen\r\nMessage-ID: <m1@correo.example>\r\n\r\nEl ecógrafo de la sala 2 no muestra imagen.\r\n")})
	if err != nil || out.Status != mailintake.StatusUnmatched {
		t.Fatalf("process: %+v %v", out, err)
	}
	cust := h.client(t)
	cust.login("hsr", testPassword)
	if code, body := cust.get("/console/noc/mail"); code != http.StatusForbidden || strings.Contains(body, "residente") {
		t.Fatalf("a hospital's user at the mail queue: %d", code)
	}
	noc := h.client(t)
	noc.login("ana", testPassword)
	code, body := noc.get("/console/noc/mail")
	if code != http.StatusOK || !strings.Contains(body, "residente@correo.example") || !strings.Contains(body, "Ecógrafo sin imagen") ||
		!strings.Contains(body, "sala 2 no muestra imagen") {
		t.Fatalf("NOC mail queue: %d\n%s", code, body)
	}
	var id int64
	h.db.Get(&id, `SELECT id FROM inbound_mail`)
	path := "/console/noc/mail/" + strconv.FormatInt(id, 10)
	if code, _, _ := noc.post(path+"/assign", url.Values{"customer": {"hsr"}, "csrf": {""}}); code != http.StatusForbidden {
		t.Fatalf("assign without the CSRF token: %d", code)
	}
	if code, _, body := noc.post(path+"/assign", url.Values{"customer": {"hsr"}}); code != http.StatusSeeOther {
		t.Fatalf("assign: %d %s", code, body)
	}
	var customer, source string
	var opened time.Time
	if err := h.db.QueryRow(`SELECT customer_id, source, opened_at FROM tickets`).Scan(&customer, &source, &opened); err != nil {
		t.Fatal(err)
	}
	if customer != "hsr" || source != "email" || !opened.Equal(received) {
		t.Fatalf("assigned ticket: %s %s %s", customer, source, opened)
	}
	if _, body := noc.get("/console/noc/mail"); strings.Contains(body, "residente@correo.example") {
		t.Fatal("an assigned message is still in the queue")
	}
}
