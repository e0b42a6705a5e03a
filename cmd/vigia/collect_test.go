package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// tcpDevice is a device answering TCP connects on loopback; Down closes
// its listener (connects are refused), Up opens it again on the same port.
type tcpDevice struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func newTCPDevice(t *testing.T) *tcpDevice {
	d := &tcpDevice{t: t}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = ln.Addr().String()
	d.serve(ln)
	t.Cleanup(d.Down)
	return d
}

func (d *tcpDevice) port() int {
	_, p, _ := net.SplitHostPort(d.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (d *tcpDevice) serve(ln net.Listener) {
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (d *tcpDevice) Down() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
}

func (d *tcpDevice) Up() {
	d.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", d.addr); err == nil {
			d.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("device back on %s: %v", d.addr, err)
}

// linkProxy is a collector's uplink: a TCP proxy to the NOC that the test
// can cut (listener and every connection closed) and restore.
type linkProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func startLinkProxy(t *testing.T, target string) *linkProxy {
	p := &linkProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *linkProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *linkProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				in.Close()
				continue
			}
			p.track(in, true)
			p.track(out, true)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				dst.Close()
				src.Close()
				p.track(dst, false)
				p.track(src, false)
			}
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
}

func (p *linkProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *linkProxy) Restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("uplink back on %s: %v", p.addr, err)
}

// collectorSetup is one collector: its token, uplink and process.
type collectorSetup struct {
	name, token, tokenFile, dataDir, metrics string
	id                                       int64
	link                                     *linkProxy
	proc                                     *vigiaProcess
}

// newCollectorSetup creates the collector of a site (vigia collector
// create) with its token file under dir, and its uplink to the NOC.
func newCollectorSetup(t *testing.T, conn *sqlx.DB, url, dir, noc, site string) *collectorSetup {
	t.Helper()
	code, out, errs := runCLI(t, "collector", "create", "--database-url", url, "--customer", "hsr", "--site", site)
	if code != 0 {
		t.Fatalf("collector create: %s %s", out, errs)
	}
	c := &collectorSetup{name: site, token: strings.TrimSpace(out), dataDir: filepath.Join(dir, site),
		tokenFile: filepath.Join(dir, site+".token"), metrics: "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)),
		link: startLinkProxy(t, noc)}
	if !strings.HasPrefix(c.token, "vigia_col_") {
		t.Fatalf("collector create printed %q", out)
	}
	if err := conn.Get(&c.id, `SELECT collector_id FROM collector_sites WHERE site_id = $1`, site); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.tokenFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// start runs `vigia collect` (with more flags: extra).
func (c *collectorSetup) start(t *testing.T, bin string, extra ...string) {
	c.proc = startProc(t, bin, append([]string{"collect", "--upstream", "http://" + c.link.addr, "--token-file", c.tokenFile,
		"--data-dir", c.dataDir, "--listen", c.metrics, "--config-every", "2s", "--push-every", "200ms", "--log-level", "debug"}, extra...)...)
}

// waitNOC waits until the NOC's serve answers /readyz.
func waitNOC(t *testing.T, noc string) {
	t.Helper()
	waitUntil(t, "the NOC to answer", 30*time.Second, func() bool {
		resp, err := http.Get("http://" + noc + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
}

// metric reads one sample of a collector's /metrics.
func (c *collectorSetup) metric(name string) (float64, bool) {
	resp, err := http.Get("http://" + c.metrics + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// The acceptance of collectors, on loopback: a NOC `vigia serve`, two
// `vigia collect` for two sites behind uplinks the test cuts, devices the
// test takes down.
func TestCollectors(t *testing.T) {
	url := pgtest.URL(t)
	bin := buildVigia(t)
	a1, a2, b1 := newTCPDevice(t), newTCPDevice(t), newTCPDevice(t)
	dir := t.TempDir()
	inventory := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inventory, fmt.Appendf(nil, `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    sites:
      - id: site-a
        name: Sede Norte
        kind: hospital
        devices:
          - {id: a1, name: RIS Norte, kind: ris, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
          - {id: a2, name: Worklist Norte, kind: broker, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
      - id: site-b
        name: Sede Sur
        kind: hospital
        devices:
          - {id: b1, name: RIS Sur, kind: ris, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
`, a1.port(), a2.port(), b1.port()), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI(t, "import", "--database-url", url, inventory); code != 0 {
		t.Fatalf("import: %s %s", out, errs)
	}
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	noc := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	// The uplink cut lasts `cut` (VIGIA_TEST_UPLINK_CUT, 8 s by default; set
	// 60s for the literal case), the collectors' grace a little
	// longer: the cut is a delay, not a loss.
	cut := 8 * time.Second
	if v := os.Getenv("VIGIA_TEST_UPLINK_CUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 6*time.Second {
			t.Fatalf("VIGIA_TEST_UPLINK_CUT=%q: want a duration of at least 6s", v)
		}
		cut = d
	}
	grace := cut + 5*time.Second
	serveArgs := []string{"serve", "--database-url", url, "--listen", noc, "--collector-grace", grace.String(), "--log-level", "debug"}
	nocProc := startProc(t, bin, serveArgs...)
	cols := map[string]*collectorSetup{}
	for _, site := range []string{"site-a", "site-b"} {
		cols[site] = newCollectorSetup(t, conn, url, dir, noc, site)
	}
	colA, colB := cols["site-a"], cols["site-b"]

	t.Run("token file readable by others is refused", func(t *testing.T) {
		loose := filepath.Join(dir, "loose.token")
		if err := os.WriteFile(loose, []byte(colA.token), 0o640); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runCLI(t, "collect", "--upstream", "http://"+noc, "--token-file", loose, "--data-dir", filepath.Join(dir, "x"))
		if code != 2 || !strings.Contains(errs, "readable by group or others") {
			t.Errorf("exit %d: %s", code, errs)
		}
		code, _, errs = runCLI(t, "collect", "--upstream", "http://192.0.2.1:8080", "--token-file", colA.tokenFile, "--data-dir", filepath.Join(dir, "x"))
		if code != 2 || !strings.Contains(errs, "use https") {
			t.Errorf("plain http to a remote NOC: exit %d: %s", code, errs)
		}
	})

	waitNOC(t, noc)
	colA.start(t, bin)
	colB.start(t, bin)
	state := func(id string) string {
		var s string
		conn.Get(&s, `SELECT state FROM device_states WHERE device_id = $1`, id)
		return s
	}
	waitUntil(t, "every device up through its collector", 60*time.Second, func() bool {
		return state("a1") == "up" && state("a2") == "up" && state("b1") == "up"
	})
	if n := count(t, conn, `SELECT count(*) FROM device_transitions WHERE to_state = 'up' AND evidence ? 'collector'`); n != 3 {
		t.Errorf("%d up transitions carry their collector, want 3", n)
	}

	t.Run("config holds only the token's sites", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+noc+"/api/v1/collector/config", nil)
		req.Header.Set("Authorization", "Bearer "+colA.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Version string `json:"version"`
			Devices []struct {
				ID string `json:"id"`
			} `json:"devices"`
		}
		json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		if len(cfg.Devices) != 2 || cfg.Devices[0].ID != "a1" || cfg.Devices[1].ID != "a2" || resp.Header.Get("ETag") != `"`+cfg.Version+`"` {
			t.Errorf("config of site-a: %+v, ETag %s", cfg, resp.Header.Get("ETag"))
		}
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
			t.Errorf("unchanged config: %v %v", resp, err)
		}
	})

	t.Run("a token of site A posting a result of site B is refused", func(t *testing.T) {
		before := count(t, conn, `SELECT count(*) FROM collector_results WHERE device_id = 'b1'`)
		body := fmt.Sprintf(`{"checks":[{"seq":900000,"device":"b1","results":[{"prober":"tcp","outcome":"failed","at":%q,"detail":"forged"}]}]}`,
			time.Now().UTC().Format(time.RFC3339Nano))
		code, answer := postBatch(t, noc, colA.token, body)
		if code != http.StatusForbidden {
			t.Errorf("answer %d %s, want 403", code, answer)
		}
		if n := count(t, conn, `SELECT count(*) FROM collector_results WHERE device_id = 'b1'`); n < before {
			t.Errorf("b1 results went from %d to %d", before, n)
		}
		if n := count(t, conn, `SELECT count(*) FROM collector_results WHERE seq = 900000`); n != 0 {
			t.Errorf("the forged result was recorded")
		}
		if n := count(t, conn, `SELECT results_refused FROM collectors WHERE id = $1`, colA.id); n != 1 {
			t.Errorf("refused results counted %d, want 1", n)
		}
		if state("b1") != "up" {
			t.Errorf("b1 is %s", state("b1"))
		}
		if code, _ := postBatch(t, noc, "vigia_col_forged", body); code != http.StatusUnauthorized {
			t.Errorf("forged token: %d", code)
		}
	})

	t.Run("a device down behind collector A opens one ticket at its start", func(t *testing.T) {
		downAt := time.Now()
		a1.Down()
		waitUntil(t, "a ticket for a1", 30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key = 'device:a1'`) == 1
		})
		var o struct {
			Started time.Time `db:"started_at"`
			Opened  time.Time `db:"opened_at"`
		}
		if err := conn.Get(&o, `SELECT o.started_at, t.opened_at FROM outages o JOIN ticket_outages x ON x.outage_id = o.id
			JOIN tickets t ON t.id = x.ticket_id WHERE o.device_id = 'a1'`); err != nil {
			t.Fatal(err)
		}
		if o.Started.Before(downAt) || o.Started.After(downAt.Add(5*time.Second)) || !o.Opened.Equal(o.Started) {
			t.Errorf("down at %s: outage started %s, ticket opened %s", downAt, o.Started, o.Opened)
		}
		a1.Up()
		waitUntil(t, "a1's outage to end", 30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM outages WHERE device_id = 'a1' AND ended_at IS NULL`) == 0
		})
	})

	t.Run("uplink cut while a device goes down and back: true start and end, one ticket", func(t *testing.T) {
		colA.link.Cut()
		cutAt := time.Now()
		time.Sleep(time.Second)
		downAt := time.Now()
		a2.Down()
		time.Sleep(4 * time.Second) // confirmed down on site, unseen at the NOC
		upAt := time.Now()
		a2.Up()
		time.Sleep(time.Until(cutAt.Add(cut))) // confirmed up again on site, the link still cut
		if n := count(t, conn, `SELECT count(*) FROM outages WHERE device_id = 'a2'`); n != 0 {
			t.Fatalf("the NOC saw a2's outage through a cut uplink (%d)", n)
		}
		restoredAt := time.Now()
		if restoredAt.Sub(cutAt) > grace-time.Second {
			t.Fatalf("the cut lasted %s, past the grace: this is not the case under test", restoredAt.Sub(cutAt))
		}
		colA.link.Restore()
		waitUntil(t, "a2's outage replayed", 30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM outages WHERE device_id = 'a2' AND ended_at IS NOT NULL`) == 1
		})
		var o struct {
			Started time.Time `db:"started_at"`
			Ended   time.Time `db:"ended_at"`
		}
		if err := conn.Get(&o, `SELECT started_at, ended_at FROM outages WHERE device_id = 'a2'`); err != nil {
			t.Fatal(err)
		}
		if o.Started.Before(downAt) || o.Started.After(downAt.Add(3*time.Second)) || o.Ended.Before(upAt) || o.Ended.After(restoredAt) {
			t.Errorf("down %s, up %s, link back %s: outage %s – %s", downAt, upAt, restoredAt, o.Started, o.Ended)
		}
		waitUntil(t, "a2's ticket", 30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key = 'device:a2' AND status = 'solved'`) == 1
		})
		if n := count(t, conn, `SELECT count(*) FROM tickets WHERE 'a2' = ANY (device_ids)`); n != 1 {
			t.Errorf("%d tickets for a2, want 1", n)
		}
		// The ticket opens at the outage's true start, and its timeline
		// says the result came through the collector, received later.
		var ev struct {
			Opened   time.Time `db:"opened_at"`
			Via      string    `db:"via"`
			Received string    `db:"received"`
		}
		if err := conn.Get(&ev, `SELECT t.opened_at, e.data->'detail'->>'collector' AS via, e.data->'detail'->>'received_at' AS received
			FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id AND e.kind = 'opened' WHERE t.auto_key = 'device:a2'`); err != nil {
			t.Fatal(err)
		}
		received, _ := time.Parse(time.RFC3339Nano, ev.Received)
		if !ev.Opened.Equal(o.Started) || ev.Via != "site-a" || received.Before(restoredAt) {
			t.Errorf("ticket opened %s (outage %s), via %q, received %s (link back %s)", ev.Opened, o.Started, ev.Via, ev.Received, restoredAt)
		}
		if n := count(t, conn, `SELECT count(*) FROM device_events WHERE kind = 'monitoring_lost'`); n != 0 {
			t.Errorf("a cut shorter than the grace raised %d monitoring_lost", n)
		}
	})

	t.Run("collector A killed: one monitoring-lost ticket for the NOC, devices unknown", func(t *testing.T) {
		deviceTickets := count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key LIKE 'device:%'`)
		colA.proc.kill9()
		a1.Down() // nobody can see it now: no device ticket may follow
		waitUntil(t, "monitoring lost", grace+30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key = $1`, fmt.Sprintf("collector:%d", colA.id)) == 1
		})
		time.Sleep(3 * time.Second)
		var tk struct {
			Title   string `db:"title"`
			NOCOnly bool   `db:"noc_only"`
			Number  string `db:"number"`
		}
		if err := conn.Get(&tk, `SELECT title, noc_only, number FROM tickets WHERE auto_key LIKE 'collector:%'`); err != nil {
			t.Fatal(err)
		}
		if !tk.NOCOnly || !strings.Contains(tk.Title, "Sede Norte") {
			t.Errorf("monitoring-lost ticket: %+v", tk)
		}
		if s1, s2 := state("a1"), state("a2"); s1 != "unknown" || s2 != "unknown" {
			t.Errorf("behind the lost collector: a1 %s, a2 %s; want unknown", s1, s2)
		}
		if state("b1") != "up" {
			t.Errorf("b1 behind collector B is %s", state("b1"))
		}
		if n := count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key LIKE 'device:%'`); n != deviceTickets {
			t.Errorf("device tickets went from %d to %d", deviceTickets, n)
		}
		if n := count(t, conn, `SELECT count(*) FROM device_events WHERE kind = 'monitoring_lost'`); n != 1 {
			t.Errorf("%d monitoring_lost events", n)
		}
		// The hospital does not see the NOC's own ticket.
		code, out, errs := runCLI(t, "token", "create", "--database-url", url, "--role", "customer", "--customer", "hsr")
		if code != 0 {
			t.Fatalf("token: %s", errs)
		}
		req, _ := http.NewRequest("GET", "http://"+noc+"/api/v1/tickets", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.Contains(string(b), tk.Number) || !strings.Contains(string(b), "device:a2") {
			t.Errorf("the customer's ticket list (%d) shows the NOC-only ticket or not its own:\n%s", resp.StatusCode, b)
		}

		// Back: the replayed results decide; a1 is really down.
		colA.start(t, bin)
		waitUntil(t, "monitoring restored", grace+30*time.Second, func() bool {
			return count(t, conn, `SELECT count(*) FROM tickets WHERE auto_key LIKE 'collector:%' AND status = 'closed' AND close_reason = 'resolved'`) == 1
		})
		waitUntil(t, "a1 down, a2 up", 30*time.Second, func() bool { return state("a1") == "down" && state("a2") == "up" })
		a1.Up()
		waitUntil(t, "a1 up", 30*time.Second, func() bool { return state("a1") == "up" })
	})

	t.Run("kill -9 of a collector mid-push and of the NOC mid-ingest lose and repeat nothing", func(t *testing.T) {
		// Kills at varied instants against pushes every 200 ms: some land
		// mid-push, mid-append or mid-ingest.
		for i := range 3 {
			a2.Down()
			time.Sleep(time.Duration(700+300*i) * time.Millisecond)
			colA.proc.kill9()
			colA.start(t, bin)
			if i == 1 {
				nocProc.kill9()
				time.Sleep(500 * time.Millisecond)
				nocProc = startProc(t, bin, serveArgs...)
			}
			time.Sleep(2 * time.Second)
			a2.Up()
			time.Sleep(time.Second)
		}
		// Then caught in the act: collector A's rows are slowed down so a
		// batch takes seconds to apply; A is killed while the NOC applies
		// its batch (the NOC commits, A never hears it), then the NOC is
		// killed while it applies the replay (the transaction dies).
		conn.MustExec(fmt.Sprintf(`CREATE FUNCTION slow_ingest() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.collector_id = %d THEN PERFORM pg_sleep(0.3); END IF; RETURN NEW; END $$`, colA.id))
		conn.MustExec(`CREATE TRIGGER slow_ingest BEFORE INSERT ON collector_results FOR EACH ROW EXECUTE FUNCTION slow_ingest()`)
		ingesting := func() bool {
			return count(t, conn, `SELECT count(*) FROM pg_stat_activity WHERE xact_start IS NOT NULL AND query LIKE 'INSERT INTO collector_results%'`) > 0
		}
		colA.link.Cut()
		time.Sleep(3 * time.Second) // a backlog of several checks
		colA.link.Restore()
		waitUntil(t, "collector A's batch being applied", 30*time.Second, ingesting)
		colA.proc.kill9()
		colA.start(t, bin)
		waitUntil(t, "the replay being applied", 30*time.Second, ingesting)
		nocProc.kill9()
		conn.MustExec(`DROP TRIGGER slow_ingest ON collector_results`)
		conn.MustExec(`DROP FUNCTION slow_ingest()`)
		nocProc = startProc(t, bin, serveArgs...)

		settled := func(c *collectorSetup) bool {
			depth, ok := c.metric("vigia_collector_queue_depth")
			return ok && depth == 0
		}
		waitUntil(t, "both queues empty and a2 up", 60*time.Second, func() bool {
			return settled(colA) && settled(colB) && state("a2") == "up"
		})
		for _, c := range []*collectorSetup{colA, colB} {
			var st struct {
				Last    int64 `db:"last_seq"`
				Missing int64 `db:"results_missing"`
				Applied int64 `db:"results_applied"`
				Rows    int64 `db:"rows"`
				Max     int64 `db:"max"`
			}
			if err := conn.Get(&st, `SELECT last_seq, results_missing, results_applied,
				(SELECT count(*) FROM collector_results WHERE collector_id = c.id) AS rows,
				(SELECT COALESCE(max(seq), 0) FROM collector_results WHERE collector_id = c.id) AS max
				FROM collectors c WHERE id = $1`, c.id); err != nil {
				t.Fatal(err)
			}
			// Every number from 1 to the last applied exactly once: none
			// lost (a gap), none twice (the primary key), none skipped.
			if st.Missing != 0 || st.Rows != st.Last || st.Max != st.Last || st.Applied != st.Last || st.Last < 20 {
				t.Errorf("collector %s: %+v", c.name, st)
			}
		}
		checkTransitions(t, conn, "a2")
		checkTransitions(t, conn, "a1")
		if n := count(t, conn, `SELECT count(*) FROM outages o WHERE NOT EXISTS (SELECT 1 FROM ticket_outages x WHERE x.outage_id = o.id)`); n != 0 {
			t.Errorf("%d outages without their ticket", n)
		}
	})
}

// checkTransitions verifies a device's history in the order it was
// written: each transition leaves the state the previous one entered (a
// result applied twice, or one lost, would break the chain), and outages
// are at most one per transition to down. (By instant the chain may
// interleave: results replayed after a collector's loss predate it.)
func checkTransitions(t *testing.T, conn *sqlx.DB, device string) {
	t.Helper()
	var rows []struct {
		From string    `db:"from_state"`
		To   string    `db:"to_state"`
		At   time.Time `db:"at"`
	}
	if err := conn.Select(&rows, `SELECT from_state, to_state, at FROM device_transitions WHERE device_id = $1 ORDER BY id`, device); err != nil {
		t.Fatal(err)
	}
	downs := 0
	for i, r := range rows {
		if r.From == r.To || (i > 0 && rows[i-1].To != r.From) {
			t.Errorf("%s: transition %d %s→%s at %s does not follow %v", device, i, r.From, r.To, r.At, rows[max(i-1, 0)])
		}
		if r.To == "down" {
			downs++
		}
	}
	if n := count(t, conn, `SELECT count(*) FROM outages WHERE device_id = $1`, device); n > downs || n == 0 {
		t.Errorf("%s: %d outages for %d transitions to down", device, n, downs)
	}
}

func postBatch(t *testing.T, noc, token, body string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(body))
	zw.Close()
	req, _ := http.NewRequest("POST", "http://"+noc+"/api/v1/collector/results", &buf)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
