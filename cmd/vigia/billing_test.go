package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// billingFixture is a database with dispatch's test inventory and a month
// of billable work for the customer andes; it returns the database URL.
func billingFixture(t *testing.T) string {
	t.Helper()
	url := pgtest.URL(t)
	ctx := context.Background()
	conn, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := os.ReadFile(filepath.Join("..", "..", "dispatch", "testdata", "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := assets.ParseFile("inventory.yaml", raw, assets.ParseOptions{KnownPolicy: func(n string) bool {
		_, err := sla.Presets().Lookup(n)
		return err == nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	bogota, _ := time.LoadLocation("America/Bogota")
	at := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, bogota) }
	inv := assets.NewStore(conn)
	if _, err := inv.Import(ctx, file, at(1, 1, 0), false); err != nil {
		t.Fatal(err)
	}
	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	store := dispatch.NewStore(conn, inv, tickets)
	noc := auth.NOCActor("ana")
	// The ventilator is in no contract: its work is billable (seed 000 §5).
	tk, err := tickets.Create(ctx, auth.Actor{Name: "ana", Role: "noc"}, maintenance.CreateInput{CustomerID: "andes",
		DeviceIDs: []string{"andes-vent"}, Severity: 3, Title: "Alarma del ventilador"}, at(9, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	q, err := store.ProposeQuote(ctx, noc, dispatch.QuoteInput{TicketID: tk.ID, Hours: 3, HourPriceCents: 20000000}, at(9, 1, 9))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.DecideQuote(ctx, noc, q.ID, true, at(9, 1, 10)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		activity   string
		start, end time.Time
	}{
		{"update", at(9, 2, 9), at(9, 2, 10)},      // 1 h, the update minimum makes it 3 h
		{"diagnosis", at(9, 15, 9), at(9, 15, 11)}, // 2 h
		{"diagnosis", at(10, 1, 9), at(10, 1, 10)}, // October
	} {
		if _, err := store.RecordWork(ctx, noc, dispatch.WorkInput{TicketID: tk.ID, Kind: "remote", Activity: w.activity,
			StartedAt: w.start, EndedAt: w.end}, w.end); err != nil {
			t.Fatal(err)
		}
	}
	return url
}

func TestBillingReportCommand(t *testing.T) {
	url := billingFixture(t)
	cases := []struct {
		name     string
		args     []string
		wantCode int
		check    func(t *testing.T, out, errOut string)
	}{
		{"csv", []string{"--customer", "andes", "--month", "2026-09"}, 0, func(t *testing.T, out, _ string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 5 || !strings.HasPrefix(lines[0], "section,") || !strings.HasPrefix(lines[1], "line,2026-09-02") ||
				!strings.Contains(lines[1], ",3,200000.00,600000.00,COP,device_not_listed,false") ||
				!strings.Contains(lines[3], "total,2026-09,,,\"2 lines, 0 unquoted\",,,1000000.00,COP") {
				t.Fatalf("csv:\n%s", out)
			}
		}},
		{"json", []string{"--customer", "andes", "--month", "2026-09", "--format", "json"}, 0, func(t *testing.T, out, _ string) {
			var rep dispatch.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Lines) != 2 || rep.TotalCents != 100000000 || rep.Work.BillableMinutes != 180 || rep.Lines[0].Quantity != 3 {
				t.Fatalf("report = %+v", rep)
			}
		}},
		{"another month", []string{"--customer", "andes", "--month", "2026-10", "--format", "json"}, 0, func(t *testing.T, out, _ string) {
			if !strings.Contains(out, `"total_cents": 20000000`) {
				t.Fatalf("october:\n%s", out)
			}
		}},
		{"a customer with an hour bank", []string{"--customer", "impera", "--month", "2026-09"}, 0, func(t *testing.T, out, _ string) {
			if !strings.Contains(out, "hour_bank,impera-poliza,2026-03-01,2026-12-31,10,0,0,10,false,false") {
				t.Fatalf("bank row missing:\n%s", out)
			}
		}},
		{"unknown customer", []string{"--customer", "nobody", "--month", "2026-09"}, 1, func(t *testing.T, _, errOut string) {
			if !strings.Contains(errOut, "no customer nobody") {
				t.Fatalf("stderr: %s", errOut)
			}
		}},
		{"bad month", []string{"--customer", "andes", "--month", "2026-13"}, 2, nil},
		{"bad format", []string{"--customer", "andes", "--month", "2026-09", "--format", "xml"}, 2, nil},
		{"no customer", []string{"--month", "2026-09"}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"billing", "report", "--database-url", url}, c.args...)
			if code := run(context.Background(), args, &out, &errOut); code != c.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, c.wantCode, errOut.String())
			}
			if c.check != nil {
				c.check(t, out.String(), errOut.String())
			}
		})
	}
}
