// Command latency measures, for devices taken down one at a time, how long
// Vigía takes from the device going dark to (a) the device's `down` row,
// (b) its ticket row, and (c) the ticket's e-mail leaving the outbox and
// reaching an SMTP server. bench/latency.sh starts the processes (private
// PostgreSQL, `vigia simulate fleet`, `vigia serve`, an aiosmtpd sink that
// logs each message's arrival) and runs it; it prints a Markdown section.
//
// Every instant measured here is read on this machine's wall clock, by this
// program, except where a table says otherwise: t0 is when the simulator
// answered the take-down (from then on the port refuses connections); the
// ticket row is first *seen* by polling the tickets table every -poll
// (default 50 ms), so the figure is an upper bound by at most one poll
// interval (tickets.opened_at is not usable: it is the outage's start, by
// design, for the SLA clock); the SMTP arrival is the sink's time.time()
// when aiosmtpd accepted DATA.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
)

type config struct {
	dbURL, controlURL, smtpLog string
	samples                    int
	spacing, poll, bound       time.Duration
	upTimeout, settle, tail    time.Duration
	seed                       uint64
}

func main() {
	var c config
	flag.StringVar(&c.dbURL, "db", "", "PostgreSQL `URL` of vigia serve")
	flag.StringVar(&c.controlURL, "control", "", "control API base `URL` of vigia simulate fleet")
	flag.StringVar(&c.smtpLog, "smtp-log", "", "`file` where the SMTP sink appends one JSON line per message")
	flag.IntVar(&c.samples, "samples", 80, "devices taken down, one per site")
	flag.DurationVar(&c.spacing, "spacing", 2*time.Second, "time between two take-downs")
	flag.DurationVar(&c.poll, "poll", 50*time.Millisecond, "how often the tickets and outbox tables are polled")
	flag.DurationVar(&c.bound, "bound", 32*time.Second, "detection bound: interval × (retries + 1) + 2 s")
	flag.DurationVar(&c.upTimeout, "up-timeout", 5*time.Minute, "give up when the fleet is not all up after this long")
	flag.DurationVar(&c.settle, "settle", 20*time.Second, "wait this long after all are up")
	flag.DurationVar(&c.tail, "tail", 3*time.Minute, "after the last take-down, wait at most this long for the last e-mail")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the choice of devices")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench latency:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench latency: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

type device struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	Gateway bool   `json:"gateway"`
	State   string `json:"state"`
}

type sample struct {
	id                  string
	t0                  time.Time // take-down answered
	downRow             time.Time // device_transitions.at of the down row (vigia's clock, same machine)
	ticketSeen          time.Time // first poll that saw the ticket row
	ticketID            int64
	number              string
	openedAt            time.Time
	outboxSent          time.Time // outbox.sent_at (vigia's clock)
	smtpAt              time.Time // the sink's arrival time
	outboxSeen          time.Time // first poll that saw sent_at set
	ticketErr, emailErr string
}

func run(ctx context.Context, c config) error {
	db, err := sql.Open("postgres", c.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)

	var devs []device
	if err := getJSON(ctx, c.controlURL+"/devices", &devs); err != nil {
		return err
	}
	// One modality per site (never a gateway or the core PACS): a device
	// alone down in its site is a device outage with its own ticket.
	bySite := map[string][]string{}
	var sites []string
	for _, d := range devs {
		if d.Gateway || strings.Contains(d.ID, "-pacs-") {
			continue
		}
		if bySite[d.Site] == nil {
			sites = append(sites, d.Site)
		}
		bySite[d.Site] = append(bySite[d.Site], d.ID)
	}
	r := rand.New(rand.NewPCG(c.seed, 8))
	r.Shuffle(len(sites), func(i, j int) { sites[i], sites[j] = sites[j], sites[i] })
	if c.samples > len(sites) {
		return fmt.Errorf("%d samples but only %d sites", c.samples, len(sites))
	}
	var chosen []string
	for _, s := range sites[:c.samples] {
		ids := bySite[s]
		chosen = append(chosen, ids[r.IntN(len(ids))])
	}

	logf("waiting for all %d devices up", len(devs))
	deadline := time.Now().Add(c.upTimeout)
	for {
		var up, total int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE state = 'up'), count(*) FROM device_states`).Scan(&up, &total); err != nil {
			return err
		}
		if up == len(devs) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d devices up after %s", up, len(devs), c.upTimeout)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	var preTickets int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM tickets`).Scan(&preTickets); err != nil {
		return err
	}
	logf("all up; %d tickets before; settling %s", preTickets, c.settle)
	if err := sleep(ctx, c.settle); err != nil {
		return err
	}
	load0 := loadAvg()

	samples := make([]*sample, len(chosen))
	byKey := map[string]*sample{}
	for i, id := range chosen {
		samples[i] = &sample{id: id}
		byKey["device:"+id] = samples[i]
	}
	smtp := &smtpTail{path: c.smtpLog}

	// The take-downs run in their own goroutine; this one polls.
	downErr := make(chan error, 1)
	go func() {
		for i, s := range samples {
			if err := post(ctx, c.controlURL+"/devices/"+s.id+"/down"); err != nil {
				downErr <- err
				return
			}
			s.t0 = time.Now()
			if i < len(samples)-1 && sleep(ctx, c.spacing) != nil {
				downErr <- ctx.Err()
				return
			}
		}
		downErr <- nil
	}()

	started := time.Now()
	downsDone := false
	var maxLoad float64
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	end := started.Add(time.Duration(len(samples))*c.spacing + c.tail)
	for time.Now().Before(end) {
		select {
		case err := <-downErr:
			if err != nil {
				return fmt.Errorf("take down: %w", err)
			}
			downsDone = true
		default:
		}
		now := time.Now()
		if err := pollTickets(ctx, db, keys, byKey, now); err != nil {
			return err
		}
		if err := pollOutbox(ctx, db, samples, now); err != nil {
			return err
		}
		if err := smtp.read(samples); err != nil {
			return err
		}
		if l := loadAvg1(); l > maxLoad {
			maxLoad = l
		}
		if downsDone && allDone(samples) {
			break
		}
		if err := sleep(ctx, c.poll); err != nil {
			return err
		}
	}
	if err := downRows(ctx, db, samples); err != nil {
		return err
	}
	report(c, samples, len(devs), load0, loadAvg(), maxLoad)
	return nil
}

func allDone(ss []*sample) bool {
	for _, s := range ss {
		if s.t0.IsZero() || s.smtpAt.IsZero() || s.outboxSent.IsZero() {
			return false
		}
	}
	return true
}

func pollTickets(ctx context.Context, db *sql.DB, keys []string, byKey map[string]*sample, now time.Time) error {
	rows, err := db.QueryContext(ctx, `SELECT auto_key, id, number, opened_at FROM tickets WHERE auto_key = ANY ($1)`, pq.Array(keys))
	if err != nil {
		return fmt.Errorf("poll tickets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, number string
		var id int64
		var opened time.Time
		if err := rows.Scan(&key, &id, &number, &opened); err != nil {
			return err
		}
		s := byKey[key]
		if s == nil || !s.ticketSeen.IsZero() {
			continue
		}
		if s.t0.IsZero() {
			s.ticketErr = "ticket before take-down"
			continue
		}
		s.ticketSeen, s.ticketID, s.number, s.openedAt = now, id, number, opened
	}
	return rows.Err()
}

func pollOutbox(ctx context.Context, db *sql.DB, ss []*sample, now time.Time) error {
	var ids []int64
	for _, s := range ss {
		if s.ticketID != 0 && s.outboxSent.IsZero() {
			ids = append(ids, s.ticketID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := db.QueryContext(ctx, `SELECT ticket_id, min(sent_at) FROM outbox
		WHERE ticket_id = ANY ($1) AND channel = 'email' AND event_key LIKE 'ticket:%:opened' AND sent_at IS NOT NULL
		GROUP BY ticket_id`, pq.Array(ids))
	if err != nil {
		return fmt.Errorf("poll outbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var sent time.Time
		if err := rows.Scan(&id, &sent); err != nil {
			return err
		}
		for _, s := range ss {
			if s.ticketID == id && s.outboxSent.IsZero() {
				s.outboxSent, s.outboxSeen = sent, now
			}
		}
	}
	return rows.Err()
}

// downRows reads each sample's first `down` row after its take-down.
func downRows(ctx context.Context, db *sql.DB, ss []*sample) error {
	for _, s := range ss {
		if s.t0.IsZero() {
			continue
		}
		var at sql.NullTime
		if err := db.QueryRowContext(ctx, `SELECT min(at) FROM device_transitions WHERE device_id = $1 AND to_state = 'down' AND at >= $2`,
			s.id, s.t0.Add(-time.Second)).Scan(&at); err != nil {
			return err
		}
		if at.Valid {
			s.downRow = at.Time
		}
	}
	return nil
}

// smtpTail reads the sink's log: {"t": unix seconds, "message_id": ..., "to": [...]}.
type smtpTail struct {
	path string
	off  int64
}

func (t *smtpTail) read(ss []*sample) error {
	f, err := os.Open(t.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	if _, err := f.Seek(t.off, 0); err != nil {
		return err
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // a partial line is read again next time
		}
		t.off += int64(len(line))
		var m struct {
			T         float64 `json:"t"`
			MessageID string  `json:"message_id"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		// Message-ID: <ticket.VG-2026-000042.opened.RECIPIENT@vigia>
		for _, s := range ss {
			if s.number != "" && s.smtpAt.IsZero() && strings.Contains(m.MessageID, "ticket."+s.number+".opened.") {
				sec, frac := math.Modf(m.T)
				s.smtpAt = time.Unix(int64(sec), int64(frac*1e9))
			}
		}
	}
}

func report(c config, ss []*sample, devices int, load0, load1 string, maxLoad float64) {
	type col struct {
		name string
		get  func(s *sample) (time.Duration, bool)
	}
	since := func(f func(s *sample) time.Time) func(s *sample) (time.Duration, bool) {
		return func(s *sample) (time.Duration, bool) {
			t := f(s)
			if t.IsZero() || s.t0.IsZero() {
				return 0, false
			}
			return t.Sub(s.t0), true
		}
	}
	cols := []col{
		{"`down` row (device_transitions.at)", since(func(s *sample) time.Time { return s.downRow })},
		{"**ticket row seen** (polled every " + c.poll.String() + ")", since(func(s *sample) time.Time { return s.ticketSeen })},
		{"outbox `sent_at`", since(func(s *sample) time.Time { return s.outboxSent })},
		{"**e-mail received** by the SMTP sink", since(func(s *sample) time.Time { return s.smtpAt })},
	}
	w := func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	w("Fleet: %d devices (DICOM modalities and PACS, one TCP gateway per site), interval 10s, retries 2; %d modalities taken down (refused), one per site, one every %s. Bound for detection: %s at p99.", devices, len(ss), c.spacing, c.bound)
	w("")
	w("| from going dark to | samples | p50 | p99 | max | min | p99 ≤ %s |", c.bound)
	w("|---|---:|---:|---:|---:|---:|---|")
	for _, cl := range cols {
		var ds []time.Duration
		for _, s := range ss {
			if d, ok := cl.get(s); ok {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			w("| %s | 0 | — | — | — | — | — |", cl.name)
			continue
		}
		p99 := q(ds, .99)
		met := "yes"
		if p99 > c.bound {
			met = "**no**"
		}
		if len(ds) < len(ss) {
			met += fmt.Sprintf(" (%d missing)", len(ss)-len(ds))
		}
		w("| %s | %d | %s | %s | %s | %s | %s |", cl.name, len(ds), sec(q(ds, .5)), sec(p99), sec(q(ds, 1)), sec(q(ds, 0)), met)
	}
	var gapTicket, gapMail []time.Duration
	for _, s := range ss {
		if !s.downRow.IsZero() && !s.ticketSeen.IsZero() {
			gapTicket = append(gapTicket, s.ticketSeen.Sub(s.downRow))
		}
		if !s.ticketSeen.IsZero() && !s.smtpAt.IsZero() {
			gapMail = append(gapMail, s.smtpAt.Sub(s.ticketSeen))
		}
	}
	w("")
	if len(gapTicket) > 0 && len(gapMail) > 0 {
		w("Stages: `down` row → ticket row seen p50 %s, p99 %s (the outage consumer polls every 1 s); ticket row seen → e-mail received p50 %s, p99 %s (the outbox sender runs every 2 s).",
			sec(q(gapTicket, .5)), sec(q(gapTicket, .99)), sec(q(gapMail, .5)), sec(q(gapMail, .99)))
	}
	w("Load average (1, 5, 15 min) %s → %s; max 1-min %.2f.", load0, load1, maxLoad)
	for _, s := range ss {
		if s.ticketErr != "" {
			w("- %s: %s", s.id, s.ticketErr)
		}
	}
}

func q(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if p <= 0 {
		return s[0]
	}
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func sec(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

func getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func post(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func loadAvg1() float64 {
	var v float64
	fmt.Sscan(loadAvg(), &v)
	return v
}
