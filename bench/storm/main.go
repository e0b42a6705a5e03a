// Command storm measures a regional storm (issue 21): every site of a
// simulated fleet loses its uplink within -spread, and Vigía must open one
// site ticket and send one e-mail per site, none per device — with a
// kill -9 of vigia serve in the middle. It runs its own SMTP sink (which
// stamps each message as it accepts it) and vigia serve (started again at
// once with the same instance id after the kill), takes the sites down
// through the simulator's control API, and reports dark → ticket row and
// dark → e-mail (p50/p99/max), duplicates and missing as Markdown rows.
// bench/storm.sh starts the simulator and PostgreSQL and runs it.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	netmail "net/mail"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/lib/pq"
)

func main() {
	vigiaBin := flag.String("vigia", "", "vigia `binary`")
	dbURL := flag.String("db", "", "PostgreSQL `URL`")
	control := flag.String("control", "", "the simulator's control API `URL`")
	listen := flag.String("listen", "127.0.0.1:9181", "vigia serve's listen `address`")
	serveLog := flag.String("serve-log", "serve.log", "where vigia serve's output goes")
	expect := flag.Int("expect", 0, "devices that must be up before the storm")
	spread := flag.Duration("spread", 10*time.Second, "every site goes dark within this long")
	killAfter := flag.Duration("kill-after", 5*time.Second, "kill -9 vigia serve this long after the first site goes dark (0: never)")
	mode := flag.String("mode", "refuse", "how the sites go dark: refuse or blackhole")
	limit := flag.Duration("limit", 5*time.Minute, "give up waiting for tickets and e-mails after this long")
	flag.Parse()
	ctx := context.Background()
	db, err := sql.Open("postgres", *dbURL)
	if err != nil {
		fail(err)
	}
	defer db.Close()

	sink, err := startSink()
	if err != nil {
		fail(err)
	}
	args := []string{"serve", "--database-url", *dbURL, "--listen", *listen, "--smtp-addr", sink.addr, "--instance-id", "bench-storm",
		"--log-level", "warn", "--probe-concurrency", "512"}
	logFile, err := os.OpenFile(*serveLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fail(err)
	}
	serve := func() *exec.Cmd {
		cmd := exec.Command(*vigiaBin, args...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// vigia serve dies with this helper, whatever ends it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		go cmd.Wait()
		return cmd
	}
	vigia := serve()
	defer func() { vigia.Process.Kill() }()
	waitReady(*listen, 2*time.Minute)
	logf("vigia serve %d ready; waiting for %d devices up", vigia.Process.Pid, *expect)
	deadline := time.Now().Add(10 * time.Minute)
	for count(ctx, db, `SELECT count(*) FROM device_states WHERE state = 'up'`) < *expect {
		if time.Now().After(deadline) {
			fail(fmt.Errorf("not every device up after 10 minutes"))
		}
		time.Sleep(2 * time.Second)
	}

	var sites []string
	resp, err := http.Get(*control + "/devices")
	if err != nil {
		fail(err)
	}
	var devices []struct {
		Site string `json:"site"`
	}
	json.NewDecoder(resp.Body).Decode(&devices)
	resp.Body.Close()
	for _, d := range devices {
		if !slices.Contains(sites, d.Site) {
			sites = append(sites, d.Site)
		}
	}
	rand.Shuffle(len(sites), func(i, j int) { sites[i], sites[j] = sites[j], sites[i] })
	logf("storm: %d sites dark within %s, kill -9 after %s", len(sites), *spread, *killAfter)

	// The tickets are watched from the first dark site on: each one's row
	// is stamped when first seen (every 200 ms).
	w := watchTickets(ctx, db)
	dark := map[string]time.Time{}
	var mu sync.Mutex
	first := time.Now()
	killed := make(chan struct{})
	go func() {
		if *killAfter <= 0 {
			close(killed)
			return
		}
		time.Sleep(*killAfter)
		vigia.Process.Signal(syscall.SIGKILL)
		logf("kill -9 of vigia serve %d", vigia.Process.Pid)
		vigia = serve()
		logf("vigia serve started again: %d", vigia.Process.Pid)
		close(killed)
	}()
	step := *spread / time.Duration(max(1, len(sites)))
	for i, s := range sites {
		time.Sleep(time.Until(first.Add(time.Duration(i) * step)))
		mu.Lock()
		dark[s] = time.Now()
		mu.Unlock()
		r, err := http.Post(*control+"/sites/"+s+"/down?mode="+*mode, "", nil)
		if err != nil || r.StatusCode != http.StatusOK {
			fail(fmt.Errorf("site %s down: %v %v", s, r, err))
		}
		r.Body.Close()
	}
	<-killed

	// Until every site has its ticket and its e-mail, or the limit.
	end := time.Now().Add(*limit)
	for time.Now().Before(end) && (w.seen() < len(sites) || sink.count() < len(sites)) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // every chance for a duplicate to appear
	w.stop()

	ticketSeen, numberSite := w.result()
	var toTicket, toMail, opened []float64
	for s, at := range ticketSeen {
		toTicket = append(toTicket, at.Sub(dark[s]).Seconds())
	}
	mailsPerSite := map[string]int{}
	unknownMail := 0
	for _, m := range sink.all() {
		site, ok := numberSite[m.ticket]
		if !ok {
			unknownMail++
			continue
		}
		mailsPerSite[site]++
		if mailsPerSite[site] == 1 {
			toMail = append(toMail, m.at.Sub(dark[site]).Seconds())
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT site_id, opened_at FROM tickets WHERE auto_key LIKE 'site:%'`)
	if err == nil {
		for rows.Next() {
			var site string
			var at time.Time
			if rows.Scan(&site, &at) == nil {
				opened = append(opened, at.Sub(dark[site]).Seconds())
			}
		}
		rows.Close()
	}
	dupMail := 0
	for _, n := range mailsPerSite {
		dupMail += n - 1
	}
	row := func(what, v string) { fmt.Printf("| %s | %s |\n", what, v) }
	row("sites dark", fmt.Sprintf("%d within %s (%s each, mode %s); kill -9 of vigia serve %s after the first", len(sites), *spread, step.Round(time.Millisecond), *mode, *killAfter))
	row("dark → deciding probe (ticket opened_at) p50 / p99 / max", dist(opened))
	row("dark → ticket row seen p50 / p99 / max", dist(toTicket))
	row("dark → e-mail accepted by the SMTP sink p50 / p99 / max", dist(toMail)+" (acceptance: p99 ≤ 45 s)")
	row("site tickets / duplicates / missing", fmt.Sprintf("%d / **%d** / **%d**", count(ctx, db, `SELECT count(*) FROM tickets WHERE auto_key LIKE 'site:%'`),
		count(ctx, db, `SELECT count(*) - count(DISTINCT site_id) FROM tickets WHERE auto_key LIKE 'site:%'`), len(sites)-len(ticketSeen)))
	row("device tickets (want 0)", fmt.Sprint(count(ctx, db, `SELECT count(*) FROM tickets WHERE auto_key NOT LIKE 'site:%'`)))
	row("e-mails / duplicates / missing / for other tickets", fmt.Sprintf("%d / **%d** / **%d** / %d", sink.count(), dupMail, len(sites)-len(mailsPerSite), unknownMail))
}

// watcher stamps site tickets when it first sees their rows.
type watcher struct {
	mu         sync.Mutex
	firstSeen  map[string]time.Time // by site
	numberSite map[string]string
	done       chan struct{}
	stopped    chan struct{}
}

func watchTickets(ctx context.Context, db *sql.DB) *watcher {
	w := &watcher{firstSeen: map[string]time.Time{}, numberSite: map[string]string{}, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(w.stopped)
		for {
			rows, err := db.QueryContext(ctx, `SELECT number, site_id FROM tickets WHERE auto_key LIKE 'site:%'`)
			if err == nil {
				now := time.Now()
				w.mu.Lock()
				for rows.Next() {
					var number, site string
					if rows.Scan(&number, &site) == nil {
						w.numberSite[number] = site
						if _, ok := w.firstSeen[site]; !ok {
							w.firstSeen[site] = now
						}
					}
				}
				w.mu.Unlock()
				rows.Close()
			}
			select {
			case <-w.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *watcher) seen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.firstSeen)
}

func (w *watcher) stop() { close(w.done); <-w.stopped }

func (w *watcher) result() (map[string]time.Time, map[string]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstSeen, w.numberSite
}

func dist(v []float64) string {
	if len(v) == 0 {
		return "—"
	}
	slices.Sort(v)
	p := func(q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v))))] }
	return fmt.Sprintf("%.1f s / **%.1f s** / %.1f s (%d)", p(0.5), p(0.99), v[len(v)-1], len(v))
}

func count(ctx context.Context, db *sql.DB, q string) int {
	var n int
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return -1
	}
	return n
}

func waitReady(addr string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if r, err := http.Get("http://" + addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	fail(fmt.Errorf("vigia serve not ready at %s after %s", addr, limit))
}

// ---- the SMTP sink ----

// mail is one accepted message: when, and the ticket number its subject
// names.
type mail struct {
	at     time.Time
	ticket string
}

type sink struct {
	addr string
	mu   sync.Mutex
	got  []mail
}

var ticketNumber = regexp.MustCompile(`\[(VG-\d{4}-\d+)\]`)

// startSink serves just enough SMTP for Vigía's sender (no STARTTLS, no
// AUTH offered) and stamps each message when its DATA ends.
func startSink() (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{addr: l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.session(c)
		}
	}()
	return s, nil
}

func (s *sink) session(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(line string) { w.WriteString(line + "\r\n"); w.Flush() }
	say("220 bench-storm sink")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 bench-storm")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go ahead")
			var data strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			m := mail{at: time.Now()}
			if msg, err := netmail.ReadMessage(strings.NewReader(data.String())); err == nil {
				subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
				if err != nil {
					subject = msg.Header.Get("Subject")
				}
				if x := ticketNumber.FindStringSubmatch(subject); x != nil {
					m.ticket = x[1]
				}
			}
			s.mu.Lock()
			s.got = append(s.got, m)
			s.mu.Unlock()
			say("250 2.0.0 accepted")
		case strings.HasPrefix(cmd, "QUIT"):
			say("221 bye")
			return
		default: // MAIL, RCPT, RSET, NOOP
			say("250 ok")
		}
	}
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *sink) all() []mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" bench-storm: "+format+"\n", a...)
}

func fail(err error) {
	logf("%v", err)
	os.Exit(1)
}
