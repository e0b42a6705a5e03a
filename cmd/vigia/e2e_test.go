package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/sweeps"
)

// buildVigia compiles this command once per test binary.
func buildVigia(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigia")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// vigiaProcess is a `vigia serve` child process.
type vigiaProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *strings.Builder
}

func startServe(t *testing.T, bin string, args ...string) *vigiaProcess {
	t.Helper()
	return startProc(t, bin, append([]string{"serve"}, args...)...)
}

// startProc runs `vigia ARGS…` as a child killed at the end of the test.
func startProc(t *testing.T, bin string, args ...string) *vigiaProcess {
	t.Helper()
	p := &vigiaProcess{cmd: exec.Command(bin, args...), done: make(chan struct{}), out: &strings.Builder{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			t.Logf("vigia %s output:\n%s", strings.Join(args, " "), tail(p.out.String(), 6000))
		}
	})
	return p
}

// kill9 ends the process as a crash would: no shutdown code runs.
func (p *vigiaProcess) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The whole flow against real peers: Orthanc (the PACS) stops while
// PostgreSQL is unreachable, Vigía opens exactly one Sev 1 ticket from the
// failing probe's instant with the right response due and one e-mail per
// address reaches the SMTP server; a kill -9 and restart during the outage
// changes neither; Orthanc back solves the ticket, and the pre-closure
// protocol closes it on a driven clock, every e-mail distinct.
func TestOutageToTicketEndToEnd(t *testing.T) {
	orthanc := orthanctest.Start(t, "HSR_PACS")
	mail := smtptest.Start(t, smtptest.Options{})
	url := pgtest.URL(t)
	bin := buildVigia(t)

	inventory := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(inventory, fmt.Appendf(nil, `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    notify_email: noc@sanrafael.example, pacs@sanrafael.example
    sites:
      - id: hsr-central
        name: Sede Central
        kind: hospital
        devices:
          - id: hsr-pacs
            name: PACS central
            kind: pacs
            role: core
            dicom: {host: 127.0.0.1, port: %d, called_ae: HSR_PACS}
            probe: {interval: 1s, retries: 1}
    contracts:
      - id: hsr-2026
        sla_policy: imaging-8x5
        devices: all
        start: 2026-01-01
        end: 2030-12-31
        activated: 2026-01-02
`, orthanc.Port), 0o644); err != nil {
		t.Fatal(err)
	}
	listen := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	args := []string{"--database-url", url, "--import", inventory, "--listen", listen, "--smtp-addr", mail.Addr,
		"--smtp-from", "vigia@noc.example", "--log-level", "debug"}
	vigia := startServe(t, bin, args...)

	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	scalar := func(q string) string {
		var s string
		if err := conn.Get(&s, q); err != nil {
			return ""
		}
		return s
	}
	waitUntil(t, "the PACS to be up", 30*time.Second, func() bool {
		return scalar(`SELECT state FROM device_states WHERE device_id = 'hsr-pacs'`) == "up"
	})
	if resp, err := http.Get("http://" + listen + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %v %v", resp, err)
	}

	// The PACS dies while PostgreSQL is unreachable (as in a restart):
	// Vigía confirms the outage without it and writes it when it is back.
	pg := pgtest.NewOutage(t, url)
	pg.Down()
	before := failedProbes(listen)
	orthanc.Stop()
	stoppedAt := time.Now()
	waitUntil(t, "the outage confirmed without the database", 30*time.Second, func() bool { return failedProbes(listen) >= before+3 })
	time.Sleep(2 * time.Second)
	backAt := time.Now()
	pg.Up()
	waitUntil(t, "a ticket", 30*time.Second, func() bool { return scalar(`SELECT count(*) FROM tickets`) == "1" })
	var tk struct {
		Severity   int       `db:"severity"`
		Billable   bool      `db:"billable"`
		Opened     time.Time `db:"opened_at"`
		ResponseAt time.Time `db:"response_due_at"`
	}
	if err := conn.Get(&tk, `SELECT severity, billable, opened_at, response_due_at FROM tickets`); err != nil {
		t.Fatal(err)
	}
	pol, _ := sla.Presets().Lookup("imaging-8x5")
	want, err := pol.Due(sla.Input{Opened: tk.Opened, Severity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tk.Severity != 1 || tk.Billable || !tk.ResponseAt.Equal(want.Response.Due) {
		t.Errorf("ticket: sev %d billable %v response due %s; want sev 1, covered, due %s", tk.Severity, tk.Billable, tk.ResponseAt, want.Response.Due)
	}
	// The ticket opens when the probes saw the PACS fail: the outage's
	// start, the deciding probe's instant and the SLA clock's start agree.
	var outage struct {
		Started time.Time `db:"started_at"`
		Probe   string    `db:"probe_at"`
	}
	if err := conn.Get(&outage, `SELECT o.started_at, tr.evidence->'probes'->-1->>'at' AS probe_at FROM outages o
		JOIN device_transitions tr ON tr.device_id = o.device_id AND tr.to_state = 'down' WHERE o.device_id = 'hsr-pacs'`); err != nil {
		t.Fatal(err)
	}
	if probe, err := time.Parse(time.RFC3339Nano, outage.Probe); err != nil || !outage.Started.Equal(probe) || !tk.Opened.Equal(probe) {
		t.Errorf("failing probe at %s (%v), outage started %s, ticket opened %s", outage.Probe, err, outage.Started, tk.Opened)
	}
	if outage.Started.Before(stoppedAt) || !outage.Started.Before(backAt) {
		t.Errorf("outage started %s: Orthanc stopped at %s, the database came back at %s", outage.Started, stoppedAt, backAt)
	}
	msgs := mail.Wait(t, 2, 30*time.Second)
	if !strings.Contains(msgs[0].Body, "PACS central") || !strings.Contains(msgs[0].Body, "Sede Central") ||
		!slicesContain(msgs[0].To, "noc@sanrafael.example") && !slicesContain(msgs[0].To, "pacs@sanrafael.example") {
		t.Errorf("e-mail to %v:\n%s", msgs[0].To, msgs[0].Body)
	}

	// Crash and restart while the PACS is still down, once the e-mail is
	// recorded as sent. (A kill between the SMTP server's acceptance and
	// that commit would send it again, with the same Message-ID, so the
	// receiver can drop it: SMTP offers no exactly-once.)
	waitUntil(t, "the e-mail recorded as sent", 30*time.Second, func() bool {
		return scalar(`SELECT count(*) FROM outbox WHERE channel = 'email' AND sent_at IS NULL`) == "0"
	})
	vigia.kill9()
	vigia = startServe(t, bin, args...)
	// The new process must have probed the dead PACS several times.
	waitUntil(t, "failed probes after the restart", 30*time.Second, func() bool {
		return failedProbes(listen) >= 3
	})
	time.Sleep(2 * time.Second) // and had time to (wrongly) open and send anything twice
	if n := scalar(`SELECT count(*) FROM tickets`); n != "1" {
		t.Errorf("tickets after kill -9 and restart = %s, want 1", n)
	}
	if n := scalar(`SELECT count(*) FROM outages`); n != "1" {
		t.Errorf("outages after kill -9 and restart = %s, want 1", n)
	}
	if got, _ := mail.Messages(); len(got) != 2 {
		t.Errorf("e-mails after kill -9 and restart = %d, want 2 (one per address)", len(got))
	}

	orthanc.StartAgain()
	waitUntil(t, "the ticket solved", 30*time.Second, func() bool { return scalar(`SELECT status FROM tickets`) == "solved" })
	vigia.kill9()

	// The pre-closure protocol (seed 000: calls, then e-mails, then closed
	// as accepted) on a driven clock.
	store := maintenance.NewStore(sqlx.NewDb(conn.DB, "postgres"), assets.NewStore(conn), maintenance.Options{})
	sweeper := sweeps.NewPreClosureSweeper(store, nil)
	solved, _ := time.Parse(time.RFC3339Nano, scalar(`SELECT to_json(solved_at)#>>'{}' FROM tickets`))
	if _, err := sweeper.RunDue(context.Background(), solved.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, reason := scalar(`SELECT status FROM tickets`), scalar(`SELECT close_reason FROM tickets`); st != "closed" || reason != "accepted_no_answer" {
		t.Errorf("after the protocol: %s (%s), want closed as accepted_no_answer", st, reason)
	}

	// Every e-mail of the ticket's life through the real SMTP server: one
	// per event and address, no two alike for one address — the solved
	// notice is the protocol's first call, not followed by a copy of it.
	sender := notify.NewSender(sqlx.NewDb(conn.DB, "postgres"),
		&notify.SMTP{Addr: mail.Addr, From: "vigia@noc.example", Timeout: 10 * time.Second}, nil, slog.New(slog.DiscardHandler))
	if _, err := sender.SendDue(context.Background(), solved.Add(49*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var events []string
	if err := conn.Select(&events, `SELECT DISTINCT event_key FROM outbox WHERE channel = 'email' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	// opened, solved (with the first call), 2 more calls, 2 e-mails, closed.
	if len(events) != 7 || slicesContain(events, "ticket:VG-2026-000001:contact:1:1") {
		t.Errorf("notification events %v, want 7 and no contact 1 (it is the solved notice)", events)
	}
	all := mail.Wait(t, 2*len(events), 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	all, _ = mail.Messages()
	if len(all) != 2*len(events) {
		t.Errorf("%d e-mails for %d events to 2 addresses", len(all), len(events))
	}
	perEvent := map[string]int{}
	bodies := map[string]string{}
	for _, m := range all {
		to := strings.Join(m.To, ",")
		perEvent[to+" "+m.Header.Get("Message-Id")]++
		if prev, dup := bodies[to+"\x00"+m.Body]; dup {
			t.Errorf("%s got the same body twice (%q and %q):\n%s", to, prev, m.Subject, m.Body)
		}
		bodies[to+"\x00"+m.Body] = m.Subject
	}
	for k, n := range perEvent {
		if n != 1 {
			t.Errorf("%s: %d e-mails", k, n)
		}
	}
}

// failedProbes reads vigia_probe_runs_total{prober="dicom",result="failed"}.
func failedProbes(listen string) int {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, `vigia_probe_runs_total{prober="dicom",result="failed"} `); ok {
			n, _ := strconv.Atoi(rest)
			return n
		}
	}
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
