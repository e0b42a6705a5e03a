package maintenance

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/vigia-noc/vigia/internal/auth"
)

// Attachments are added, listed and read in a customer's scope: another
// customer's ticket or attachment is ErrNotFound, exactly like a missing
// one, and so is what sits on a ticket the customer may not see.
func TestAttachmentsInScope(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	noc := auth.NOCActor("ana")
	open := func(customer, device, title string) Ticket {
		t.Helper()
		tk, err := f.store.Create(ctx, noc, CreateInput{CustomerID: customer, DeviceIDs: []string{device}, Severity: 3, Title: title,
			Description: "x"}, monday15)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	acmeTicket, betaTicket := open("acme", "acme-ct", "CT"), open("beta", "beta-ris", "RIS")
	acme, beta := Scope{CustomerID: "acme"}, Scope{CustomerID: "beta"}
	shot := Attachment{Name: "pantalla.png", ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\nacme")}

	if err := f.store.AddAttachments(ctx, beta, acmeTicket.ID, "beta", []Attachment{shot}, monday15); !errors.Is(err, ErrNotFound) {
		t.Fatalf("beta attaching to acme's ticket: %v, want ErrNotFound", err)
	}
	if err := f.store.AddAttachments(ctx, acme, acmeTicket.ID, "acme-user", []Attachment{shot}, monday15); err != nil {
		t.Fatal(err)
	}
	if n := f.count(t, `SELECT count(*) FROM ticket_attachments`); n != 1 {
		t.Fatalf("%d attachments stored, want 1 (the refused one stored nothing)", n)
	}

	list, err := f.store.Attachments(ctx, acme, acmeTicket.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("acme's list: %v %v", list, err)
	}
	a := list[0]
	if a.TicketID != acmeTicket.ID || a.CustomerID != "acme" || a.Filename != "pantalla.png" || a.Size != len(shot.Data) ||
		a.UploadedBy != "acme-user" || !a.CreatedAt.Equal(monday15) || a.Data != nil || a.VisitID != nil {
		t.Fatalf("listed %+v", a)
	}
	if other, err := f.store.Attachments(ctx, beta, acmeTicket.ID); err != nil || len(other) != 0 {
		t.Fatalf("beta lists acme's attachments: %v %v", other, err)
	}

	for _, c := range []struct {
		name   string
		sc     Scope
		ticket string
		found  bool
	}{
		{"staff, any ticket", Scope{}, "", true},
		{"its customer", acme, "", true},
		{"its customer, by ticket id", acme, itoa(acmeTicket.ID), true},
		{"its customer, by ticket number", acme, acmeTicket.Number, true},
		{"another customer", beta, "", false},
		{"another customer, naming its own ticket", beta, itoa(betaTicket.ID), false},
		{"staff, naming another ticket", Scope{}, itoa(betaTicket.ID), false},
		{"staff, naming a missing ticket", Scope{}, "VG-1999-000001", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.store.Attachment(ctx, c.sc, c.ticket, a.ID)
			if c.found != (err == nil) || (!c.found && !errors.Is(err, ErrNotFound)) {
				t.Fatalf("%v, want found %v", err, c.found)
			}
			if c.found && (!bytes.Equal(got.Data, shot.Data) || got.SafeContentType() != "image/png") {
				t.Fatalf("read %d bytes as %s", len(got.Data), got.SafeContentType())
			}
		})
	}
	if _, err := f.store.Attachment(ctx, Scope{}, "", a.ID+1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing attachment: %v", err)
	}

	// The NOC's own incident is hidden from the customer, with what is on it.
	f.db.MustExec(`UPDATE tickets SET noc_only = true WHERE id = $1`, acmeTicket.ID)
	if _, err := f.store.Attachment(ctx, acme, "", a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an attachment of a NOC-only ticket read by the customer: %v", err)
	}
	if _, err := f.store.Attachment(ctx, Scope{}, "", a.ID); err != nil {
		t.Fatalf("staff reading it: %v", err)
	}
}

func TestSafeContentType(t *testing.T) {
	for ct, want := range map[string]string{"image/png": "image/png", "image/jpeg": "image/jpeg",
		"text/html; charset=utf-8": "application/octet-stream", "image/svg+xml": "application/octet-stream", "": "application/octet-stream"} {
		if got := (StoredAttachment{ContentType: ct}).SafeContentType(); got != want {
			t.Errorf("%q served as %q, want %q", ct, got, want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
