package intake

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance/sweeps"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestNotificationsGolden runs automatic tickets of a Spanish and an
// English customer through their whole life (opened, solved, every
// pre-closure contact, closed) and compares every e-mail with
// testdata/notifications.golden. No two e-mails of one ticket to one
// address may carry the same body, nor may the solved notice be followed
// by a contact repeating it.
func TestNotificationsGolden(t *testing.T) {
	f := newFixture(t)
	f.db.MustExec(`UPDATE customers SET notify_email = 'it@beta.example, director@beta.example' WHERE id = 'beta'`)
	f.db.MustExec(`UPDATE sites SET name = 'Site B' WHERE id = 'beta-main'`)
	ctx := context.Background()
	h := time.Hour
	// acme (es, seed 000): a site named "Sede Norte" and a device; beta
	// (en, seed 003): a device down twice before its solution holds.
	site := f.outage(t, "site", "acme", "acme-north", "acme-north-gw", []string{"acme-north-us", "acme-north-mr"}, monday15)
	dev := f.outage(t, "device", "acme", "acme-main", "acme-ct", nil, monday15.Add(time.Minute))
	ris := f.outage(t, "device", "beta", "beta-main", "beta-ris", nil, monday15.Add(2*time.Minute))
	f.consume(t)
	f.end(t, site, monday15.Add(h))
	f.end(t, dev, monday15.Add(h))
	f.end(t, ris, monday15.Add(h))
	f.consume(t)
	ris2 := f.outage(t, "device", "beta", "beta-main", "beta-ris", nil, monday15.Add(h+time.Minute))
	f.consume(t)
	f.end(t, ris2, monday15.Add(h+2*time.Minute))
	// And beta's whole site, still dark when the test ends.
	f.outage(t, "site", "beta", "beta-main", "", []string{"beta-ris"}, monday15.Add(3*h))
	f.consume(t)
	sweeper := sweeps.NewPreClosureSweeper(f.store, quiet)
	for at := monday15; at.Before(monday15.Add(60 * h)); at = at.Add(h) {
		if _, err := sweeper.RunDue(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM tickets WHERE status = 'closed'`); n != 3 {
		t.Fatalf("%d of 3 tickets closed by the protocol", n)
	}

	// The solved notice is the protocol's first contact: nothing else goes
	// to the same address about the same ticket at the same instant.
	if n := f.count(t, `SELECT count(*) FROM outbox a JOIN outbox b ON a.ticket_id = b.ticket_id AND a.recipient = b.recipient
		AND a.created_at = b.created_at AND a.id < b.id`); n != 0 {
		t.Errorf("%d pairs of e-mails sent together to one address about one ticket", n)
	}
	rows, err := f.db.Query(`SELECT t.number, o.event_key, o.recipient, o.subject, o.body FROM outbox o JOIN tickets t ON t.id = o.ticket_id
		WHERE o.channel = 'email' ORDER BY t.number, o.recipient, o.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out strings.Builder
	seen := map[string]string{} // ticket, recipient, body -> event
	for rows.Next() {
		var number, key, to, subject, body string
		if err := rows.Scan(&number, &key, &to, &subject, &body); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "== %s to %s\nSubject: %s\n%s\n", key, to, subject, body)
		k := number + "\x00" + to + "\x00" + body
		if prev, dup := seen[k]; dup {
			t.Errorf("%s and %s send %s the same body:\n%s", prev, key, to, body)
		}
		seen[k] = key
		if strings.Contains(strings.ToLower(subject+body), "sede sede") {
			t.Errorf("%s: a doubled word in %q / %q", key, subject, body)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/notifications.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("e-mails differ from %s (go test -run %s -update to accept):\n%s", golden, t.Name(), out.String())
	}
}
