package mailintake

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

// The NOC's queue: an unknown sender and an unparseable message wait
// there; assigning the first opens a ticket of the chosen customer at the
// receipt instant, discarding the second takes it out; a customer's token
// sees nothing of it.
func TestUnmatchedQueue(t *testing.T) {
	h := newHarness(t)
	received := time.Date(2026, 11, 17, 10, 0, 0, 0, lima)
	h.deliver(t, received, `From: residente@gmail.example
Subject: Tomógrafo no envía al PACS
Message-ID: <q-1@gmail.example>

Escribo desde mi correo personal.
`)
	h.deliver(t, received.Add(time.Minute), "this is not a message at all, no headers\r\n")

	mux := http.NewServeMux()
	NewAPI(h.intake, h.reader.Log).Register(mux)
	do := func(role, method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{Name: "marta", Role: role, CustomerID: map[bool]string{true: "clinica"}[role == auth.RoleCustomer]}))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := do(auth.RoleCustomer, "GET", "/api/v1/mail/unmatched", ""); code != http.StatusForbidden || strings.Contains(body, "residente") {
		t.Fatalf("customer token: %d %s", code, body)
	}
	code, body := do(auth.RoleNOC, "GET", "/api/v1/mail/unmatched", "")
	if code != http.StatusOK || !strings.Contains(body, "residente@gmail.example") || !strings.Contains(body, `"status": "unparseable"`) ||
		!strings.Contains(body, "Escribo desde mi correo personal") {
		t.Fatalf("NOC queue: %d %s", code, body)
	}
	var unmatched, unparseable int64
	h.db.Get(&unmatched, `SELECT id FROM inbound_mail WHERE status = 'unmatched'`)
	h.db.Get(&unparseable, `SELECT id FROM inbound_mail WHERE status = 'unparseable'`)
	path := func(id int64, action string) string {
		return "/api/v1/mail/unmatched/" + strconv.FormatInt(id, 10) + "/" + action
	}
	if code, body := do(auth.RoleNOC, "POST", path(unparseable, "assign"), `{"customer":"clinica"}`); code != http.StatusBadRequest {
		t.Fatalf("assigning an unparseable message: %d %s", code, body)
	}
	if code, body := do(auth.RoleNOC, "POST", path(unmatched, "assign"), `{"customer":"nobody"}`); code != http.StatusBadRequest {
		t.Fatalf("assigning to an unknown customer: %d %s", code, body)
	}
	if code, body := do(auth.RoleNOC, "POST", path(unmatched, "assign"), `{"customer":"clinica"}`); code != http.StatusCreated || !strings.Contains(body, "VG-2026-") {
		t.Fatalf("assign: %d %s", code, body)
	}
	var opened time.Time
	var customer, requester string
	if err := h.db.QueryRow(`SELECT opened_at, customer_id, requester FROM tickets`).Scan(&opened, &customer, &requester); err != nil {
		t.Fatal(err)
	}
	if !opened.Equal(received) || customer != "clinica" || requester != "residente@gmail.example" {
		t.Fatalf("assigned ticket: opened %s, %s, %s", opened, customer, requester)
	}
	if code, _ := do(auth.RoleNOC, "POST", path(unmatched, "assign"), `{"customer":"clinica"}`); code != http.StatusNotFound {
		t.Fatalf("assigning twice: %d, want 404", code)
	}
	if code, body := do(auth.RoleNOC, "POST", path(unparseable, "discard"), ""); code != http.StatusOK {
		t.Fatalf("discard: %d %s", code, body)
	}
	if q, err := h.intake.Queue(context.Background(), 10); err != nil || len(q) != 0 {
		t.Fatalf("queue after assign and discard: %v, %v", q, err)
	}
	if n := h.count(t, `SELECT count(*) FROM inbound_mail WHERE raw <> ''`); n != 2 {
		t.Fatalf("raw messages kept = %d, want 2", n)
	}
}
