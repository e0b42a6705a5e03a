package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/fleetsim"
	"github.com/vigia-noc/vigia/internal/pgserver"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/smtptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// fleet is a generated, running simulated fleet and its inventory file.
type fleet struct {
	sim       *fleetsim.Simulator
	inventory string
	devices   []fleetsim.Device
}

// startFleet generates n devices over sites and serves them on a port range
// below the kernel's ephemeral range (so free-port tests never collide).
// Benchmarks and other tests on the machine may hold much of that range:
// a taken range is skipped, up to 20 times.
func startFleet(t *testing.T, n, sites int, interval time.Duration, retries int) *fleet {
	t.Helper()
	for attempt := 0; ; attempt++ {
		base := 10000 + rand.IntN(22000-n)
		inv, err := fleetsim.Generate(fleetsim.GenerateOptions{Devices: n, BasePort: base, Sites: sites, Customer: "sim",
			ProbeInterval: interval, ProbeRetries: retries})
		if err != nil {
			t.Fatal(err)
		}
		file, err := assets.ParseFile("fleet.yaml", inv, parseOptions())
		if err != nil {
			t.Fatal(err)
		}
		plan := fleetsim.FromInventory(file)
		sim, err := fleetsim.New(plan.Devices, fleetsim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Start(); err != nil {
			sim.Close()
			if attempt < 20 {
				continue // a port of the range is taken: try another range
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		path := filepath.Join(t.TempDir(), "fleet.yaml")
		if err := os.WriteFile(path, inv, 0o644); err != nil {
			t.Fatal(err)
		}
		return &fleet{sim: sim, inventory: path, devices: plan.Devices}
	}
}

func count(t *testing.T, conn *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.Get(&n, q, args...); err != nil {
		return -1
	}
	return n
}

// kill -9 of one of two instances during an alert storm: the survivor
// finishes the work; no outage lost, no ticket or e-mail duplicated.
func TestKill9DuringAlertStorm(t *testing.T) {
	f := startFleet(t, 120, 6, time.Second, 1)
	mail := smtptest.Start(t, smtptest.Options{})
	url := pgtest.URL(t)
	bin := buildVigia(t)
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if code, out, errs := runCLI(t, "import", "--database-url", url, f.inventory); code != 0 {
		t.Fatalf("import: %s %s", out, errs)
	}
	conn.MustExec(`UPDATE customers SET notify_email = 'noc@sim.example'`)
	args := func(name string) []string {
		return []string{"--database-url", url, "--listen", "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t)),
			"--smtp-addr", mail.Addr, "--instance-id", name, "--lease-ttl", "3s", "--log-level", "warn"}
	}
	a := startServe(t, bin, args("a")...)
	startServe(t, bin, args("b")...)
	waitUntil(t, "all devices up", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'up'`) == len(f.devices)
	})
	// Both must share the shards before one is killed. The second instance
	// takes its share at its next lease round, which a loaded machine may
	// delay past the moment every device is up.
	waitUntil(t, "both instances hold leases", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(DISTINCT owner) FROM probe_leases WHERE expires_at > now()`) == 2
	})

	// The storm: 5 devices of every site go dark at once (never a gateway).
	var down []string
	perSite := map[string]int{}
	for _, d := range f.devices {
		if !d.Gateway && perSite[d.Site] < 5 {
			perSite[d.Site]++
			down = append(down, d.ID)
			if err := f.sim.Down(d.ID, fleetsim.Refuse); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(1500 * time.Millisecond)
	a.kill9()

	waitUntil(t, "every outage and ticket", 90*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) == len(down)
	})
	mail.Wait(t, len(down), 60*time.Second)
	time.Sleep(3 * time.Second) // every chance for a duplicate to appear
	for _, q := range []string{
		`SELECT count(*) FROM outages`,
		`SELECT count(DISTINCT device_id) FROM outages`,
		`SELECT count(*) FROM tickets`,
		`SELECT count(*) FROM device_events WHERE kind = 'device_down'`,
	} {
		if n := count(t, conn, q); n != len(down) {
			t.Errorf("%s = %d, want %d", q, n, len(down))
		}
	}
	msgs, _ := mail.Messages()
	if len(msgs) != len(down) {
		t.Errorf("e-mails = %d, want %d (one per ticket)", len(msgs), len(down))
	}
	subjects := map[string]bool{}
	for _, m := range msgs {
		if subjects[m.Subject] {
			t.Errorf("duplicate e-mail %q", m.Subject)
		}
		subjects[m.Subject] = true
	}
	if n := count(t, conn, `SELECT count(*) FROM probe_leases WHERE owner = 'b' AND expires_at > now()`); n != 64 {
		t.Errorf("the survivor holds %d of 64 shards", n)
	}
}

// PostgreSQL restarted while devices go down: Vigía keeps probing, reports
// not ready, and the outages land once the database is back.
func TestDatabaseRestartWhileDevicesGoDown(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755) // the postgres user must reach its data directory
	}
	cluster, err := pgserver.Open(filepath.Join(dir, "pg"), pgserver.Options{})
	if err != nil {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	ctx := context.Background()
	if _, err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cluster.Stop(context.Background()) })
	if err := cluster.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	url := cluster.URL("vigia")
	f := startFleet(t, 12, 1, time.Second, 1)
	bin := buildVigia(t)
	listen := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	// The database stays down longer than the probe leases last, as in a
	// real restart of a loaded server.
	startServe(t, bin, "--database-url", url, "--import", f.inventory, "--listen", listen, "--log-level", "warn", "--lease-ttl", "3s")
	conn, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "all devices up", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'up'`) == len(f.devices)
	})
	ready := func() int {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if ready() != http.StatusOK {
		t.Fatal("not ready before the restart")
	}

	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	var down []string
	darkAt := time.Now()
	for _, d := range f.devices {
		if !d.Gateway && len(down) < 3 {
			down = append(down, d.ID)
			f.sim.Down(d.ID, fleetsim.Refuse)
		}
	}
	waitUntil(t, "/readyz to report not ready", 15*time.Second, func() bool { return ready() == http.StatusServiceUnavailable })
	before := failedProbes(listen)
	time.Sleep(4 * time.Second)
	if after := failedProbes(listen); after <= before {
		t.Errorf("no probes while the database was down (failed probes %d -> %d)", before, after)
	}

	restartAt := time.Now()
	if _, err := cluster.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "/readyz ready again", 30*time.Second, func() bool { return ready() == http.StatusOK })
	waitUntil(t, "the outages to land", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM outages WHERE device_id = ANY(string_to_array($1, ','))`, strings.Join(down, ",")) == len(down)
	})
	waitUntil(t, "their tickets", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) == len(down)
	})
	// Every instant is the failing probe's, from while the database was
	// down, not the commit's after it came back: the outage's start, its
	// transition and event, the deciding probe in the evidence, and the
	// ticket's opening (where the SLA clock starts).
	bound := time.Second*time.Duration(1+1) + 2*time.Second // interval × (retries + 1) + 2 s
	for _, id := range down {
		t.Run(id, func(t *testing.T) {
			var got struct {
				Started    time.Time `db:"started_at"`
				Transition time.Time `db:"transition_at"`
				Event      time.Time `db:"event_at"`
				Opened     time.Time `db:"opened_at"`
				Probe      string    `db:"probe_at"`
				Outcome    string    `db:"outcome"`
			}
			err := conn.Get(&got, `SELECT o.started_at, tr.at AS transition_at, e.at AS event_at, tk.opened_at,
					tr.evidence->'probes'->-1->>'at' AS probe_at, tr.evidence->'probes'->-1->>'outcome' AS outcome
				FROM outages o
				JOIN device_transitions tr ON tr.device_id = o.device_id AND tr.to_state = 'down'
				JOIN device_events e ON e.outage_id = o.id AND e.kind = 'device_down'
				JOIN ticket_outages x ON x.outage_id = o.id JOIN tickets tk ON tk.id = x.ticket_id
				WHERE o.device_id = $1`, id)
			if err != nil {
				t.Fatal(err)
			}
			probe, err := time.Parse(time.RFC3339Nano, got.Probe)
			if err != nil || got.Outcome != "failed" {
				t.Fatalf("deciding probe %q %q: %v", got.Probe, got.Outcome, err)
			}
			if !got.Started.Equal(probe) || !got.Transition.Equal(probe) || !got.Event.Equal(probe) || !got.Opened.Equal(probe) {
				t.Errorf("failing probe at %s; outage started %s, transition %s, event %s, ticket opened %s",
					probe, got.Started, got.Transition, got.Event, got.Opened)
			}
			if got.Started.Before(darkAt) || got.Started.After(darkAt.Add(bound)) || !got.Started.Before(restartAt) {
				t.Errorf("outage started %s: the device went dark at %s (bound %s), the database came back at %s",
					got.Started, darkAt, bound, restartAt)
			}
		})
	}
}

// 2 000 devices of one site go dark at once: one site ticket, none per
// device, within the detection bound (interval × (retries + 1) + 2 s).
func TestAlertStormOneSite(t *testing.T) {
	const n, retries = 2000, 1
	interval := 5 * time.Second
	f := startFleet(t, n, 1, interval, retries)
	url := pgtest.URL(t)
	bin := buildVigia(t)
	startServe(t, bin, "--database-url", url, "--import", f.inventory, "--listen", "127.0.0.1:"+strconv.Itoa(testpeer.FreePort(t)),
		"--log-level", "warn", "--probe-concurrency", "512")
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "all devices up", 120*time.Second, func() bool {
		up := count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'up'`)
		if up != n {
			var states []string
			conn.Select(&states, `SELECT state || ' ' || count(*) FROM device_states GROUP BY state`)
			t.Logf("states: %v", states)
		}
		return up == n
	})
	site := f.devices[0].Site
	darkAt := time.Now()
	if err := f.sim.SiteDown(site, fleetsim.Refuse); err != nil {
		t.Fatal(err)
	}
	bound := interval*time.Duration(retries+1) + 2*time.Second
	waitUntil(t, "the site ticket", 2*bound+30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) >= 1
	})
	var started time.Time
	if err := conn.Get(&started, `SELECT started_at FROM outages WHERE kind = 'site'`); err != nil {
		t.Fatalf("no site outage: %v", err)
	}
	if took := started.Sub(darkAt); took > bound {
		t.Errorf("site incident declared %s after the site went dark, bound %s", took, bound)
	}
	// Every device's own check must see the dark site; on a loaded machine
	// checks start late, so wait for them (bounded) rather than sleeping one
	// interval, then count everything at once.
	waitUntil(t, "every device behind the site unreachable", 2*bound+30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'unreachable'`) >= n-1
	})
	for q, want := range map[string]int{
		`SELECT count(*) FROM outages`:                                   1,
		`SELECT count(*) FROM outages WHERE kind = 'site'`:               1,
		`SELECT count(*) FROM tickets`:                                   1,
		`SELECT count(*) FROM device_events WHERE kind = 'device_down'`:  0,
		`SELECT cardinality(affected_device_ids) FROM outages`:           n - 1,
		`SELECT count(*) FROM device_states WHERE state = 'unreachable'`: n - 1,
	} {
		if got := count(t, conn, q); got != want {
			var states []string
			conn.Select(&states, `SELECT state || ' ' || count(*) FROM device_states GROUP BY state`)
			t.Errorf("%s = %d, want %d (states %v)", q, got, want, states)
		}
	}
	fmt.Fprintf(os.Stderr, "alert storm: site incident after %s (bound %s)\n", started.Sub(darkAt).Round(time.Millisecond), bound)
}

// A site blackholed (powered off behind a dead link: nothing answers, not
// even with a refusal) is one site incident and one ticket, its devices
// unreachable, none with a ticket of its own.
func TestSiteBlackholeOneTicket(t *testing.T) {
	const n = 15
	f := startFleet(t, n, 1, time.Second, 1)
	url := pgtest.URL(t)
	bin := buildVigia(t)
	startServe(t, bin, "--database-url", url, "--import", f.inventory, "--listen", "127.0.0.1:"+strconv.Itoa(testpeer.FreePort(t)),
		"--log-level", "warn")
	conn, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "all devices up", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'up'`) == n
	})
	if err := f.sim.SiteDown(f.devices[0].Site, fleetsim.Blackhole); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the site ticket", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) >= 1
	})
	waitUntil(t, "every device unreachable", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'unreachable'`) == n-1
	})
	time.Sleep(3 * time.Second) // every device's check has seen the dark site again
	for q, want := range map[string]int{
		`SELECT count(*) FROM outages WHERE kind = 'site'`:                                                    1,
		`SELECT count(*) FROM outages WHERE kind = 'device'`:                                                  0,
		`SELECT count(*) FROM tickets`:                                                                        1,
		`SELECT count(*) FROM tickets WHERE auto_key LIKE 'site:%'`:                                           1,
		`SELECT count(*) FROM device_states WHERE state = 'unreachable'`:                                      n - 1,
		`SELECT count(*) FROM device_transitions WHERE evidence::text LIKE '%refused%' AND to_state = 'down'`: 0,
	} {
		if got := count(t, conn, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}
