package intake

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// TestOutboxRetries: a temporary SMTP failure and a failing webhook are
// retried with exponential backoff and delivered once; concurrent senders
// never deliver a row twice; an English-speaking customer gets English.
func TestOutboxRetries(t *testing.T) {
	secret := []byte("webhook-secret-0123456789")
	var mu sync.Mutex
	var hookBodies []map[string]any
	var hookCalls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if hookCalls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		ts, _ := strconv.ParseInt(r.Header.Get("X-Vigia-Timestamp"), 10, 64)
		if r.Header.Get("X-Vigia-Signature") != notify.Sign(secret, ts, body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		mu.Lock()
		hookBodies = append(hookBodies, m)
		mu.Unlock()
	}))
	defer hook.Close()

	f := newFixture(t, hook.URL)
	smtpd := smtptest.Start(t, smtptest.Options{FailFirst: 1})
	mk := func() *notify.Sender {
		return notify.NewSender(f.db, &notify.SMTP{Addr: smtpd.Addr, From: "noc@vigia.example", Timeout: 10 * time.Second},
			&notify.Webhooks{Secrets: map[string][]byte{hook.URL: secret}}, quiet)
	}
	ctx := context.Background()

	f.outage(t, "device", "beta", "beta-main", "beta-ris", nil, monday15)
	f.consume(t)
	if n := f.count(t, `SELECT count(*) FROM outbox`); n != 2 {
		t.Fatalf("%d outbox rows, want an e-mail and a webhook", n)
	}

	steps := []struct {
		at       time.Duration
		sent     int
		attempts string // e-mail, webhook
	}{
		{0, 0, "1 1"},                // both fail: 451 and 503
		{29 * time.Second, 0, "1 1"}, // backoff 30 s not over
		{30 * time.Second, 2, "2 2"},
		{time.Hour, 0, "2 2"},
	}
	for _, st := range steps {
		// Three senders at once, as three instances would.
		var wg sync.WaitGroup
		var total atomic.Int32
		for range 3 {
			wg.Go(func() {
				n, err := mk().SendDue(ctx, monday15.Add(st.at))
				if err != nil {
					t.Error(err)
				}
				total.Add(int32(n))
			})
		}
		wg.Wait()
		var attempts []string
		if err := f.db.Select(&attempts, `SELECT attempts::text FROM outbox ORDER BY channel`); err != nil {
			t.Fatal(err)
		}
		if int(total.Load()) != st.sent || strings.Join(attempts, " ") != st.attempts {
			t.Fatalf("at +%s: sent %d (want %d), attempts %v (want %s)", st.at, total.Load(), st.sent, attempts, st.attempts)
		}
	}
	var lastErr string
	f.db.Get(&lastErr, `SELECT last_error FROM outbox WHERE sent_at IS NULL`)
	if n := f.count(t, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Fatalf("%d unsent (%s)", n, lastErr)
	}
	msgs := smtpd.Wait(t, 1, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	if msgs, _ = smtpd.Messages(); len(msgs) != 1 {
		t.Fatalf("%d e-mails, want 1", len(msgs))
	}
	want := "We detected an outage of RIS at site Beta Main, ticket VG-2026-000001, Sev 1, response due 2026-06-02 14:00 (America/Mexico_City)."
	if !strings.Contains(msgs[0].Body, want) || msgs[0].Header.Get("Message-Id") == "" {
		t.Fatalf("e-mail:\n%s\nwant %q", msgs[0].Body, want)
	}
	if len(hookBodies) != 1 || hookBodies[0]["ticket"] != "VG-2026-000001" || hookBodies[0]["event"] != "ticket:VG-2026-000001:opened" {
		t.Fatalf("webhooks %v", hookBodies)
	}
}
