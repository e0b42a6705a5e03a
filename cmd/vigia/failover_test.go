package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/fleetsim"
	"github.com/vigia-noc/vigia/internal/pgserver"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// The primary PostgreSQL dies during an outage storm and its synchronous
// standby is promoted: `vigia serve`, given both sockets in one
// target_session_attrs=read-write URL, reconnects by itself; every outage
// and ticket committed before the kill is there after, none twice, and
// probing resumes within the lease period.
func TestPostgresFailoverDuringStorm(t *testing.T) {
	const leaseTTL = 3 * time.Second
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		os.Chmod(d, 0o755) // the postgres user must reach its data directories
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary, err := pgserver.Open(filepath.Join(dir, "a"), pgserver.Options{})
	if err != nil {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	standby, err := pgserver.Open(filepath.Join(dir, "b"), pgserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Remove(context.Background()); standby.Remove(context.Background()) })
	if _, err := primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := primary.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	if err := standby.StandbyOf(ctx, primary, "standby"); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := primary.WaitForStandby(ctx, "standby"); err != nil {
		t.Fatal(err)
	}

	f := startFleet(t, 40, 4, time.Second, 1)
	url := pgserver.FailoverURL("vigia", primary, standby)
	listen := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	startServe(t, buildVigia(t), "--database-url", url, "--import", f.inventory, "--listen", listen,
		"--log-level", "warn", "--lease-ttl", leaseTTL.String())
	conn, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "all devices up", 60*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM device_states WHERE state = 'up'`) == len(f.devices)
	})

	// The storm in two waves, one device of every site each: the first is
	// ticketed before the kill, the second is being confirmed as it happens.
	var down []string
	wave := func() {
		perSite := map[string]bool{}
		for _, d := range f.devices {
			if !d.Gateway && !perSite[d.Site] && !slicesContain(down, d.ID) {
				perSite[d.Site] = true
				down = append(down, d.ID)
				if err := f.sim.Down(d.ID, fleetsim.Refuse); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	wave()
	waitUntil(t, "the first wave's tickets", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) == len(down)
	})
	wave()
	time.Sleep(1200 * time.Millisecond)
	type row struct {
		Kind string `db:"kind"`
		ID   int64  `db:"id"`
		Key  string `db:"key"`
	}
	snapshot := func() []row {
		var rows []row
		if err := conn.Select(&rows, `SELECT 'outage' AS kind, id, device_id AS key FROM outages
			UNION ALL SELECT 'ticket', id, coalesce(auto_key, '') FROM tickets ORDER BY 1, 2`); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	before := snapshot()
	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	// Longer than the lease period: the leases have expired when the
	// standby takes over, so vigia must claim them again.
	time.Sleep(leaseTTL + time.Second)
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()

	ready := func() bool {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// Probing resumes: the shard leases are held again in the promoted
	// database within the lease period, and a device that goes dark now is
	// detected within the usual bound (interval × (retries + 1) + 2 s).
	waitUntil(t, "the probe leases renewed on the promoted standby", 2*leaseTTL, func() bool {
		return count(t, conn, `SELECT count(*) FROM probe_leases WHERE owner IS NOT NULL AND expires_at > $1`, promoted.Add(leaseTTL)) == 64
	})
	resumed := time.Since(promoted)
	if resumed > leaseTTL {
		t.Errorf("probe leases held again %s after the promotion, want within the lease period %s", resumed, leaseTTL)
	}
	waitUntil(t, "/readyz ready on the promoted standby", 10*time.Second, ready)
	waitUntil(t, "the second wave's tickets", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) == len(down)
	})
	committed := len(down)
	darkAt := time.Now()
	wave()
	waitUntil(t, "the third wave's tickets", 30*time.Second, func() bool {
		return count(t, conn, `SELECT count(*) FROM tickets`) == len(down)
	})
	var last time.Time
	if err := conn.Get(&last, `SELECT max(started_at) FROM outages WHERE device_id = ANY($1)`, pq.Array(down[committed:])); err != nil {
		t.Fatal(err)
	}
	if bound := time.Second*2 + 2*time.Second; last.Sub(darkAt) > bound {
		t.Errorf("after the failover a device dark at %s was declared down at %s, bound %s", darkAt, last, bound)
	}
	time.Sleep(2 * time.Second) // every chance for a duplicate to appear

	after := map[row]bool{}
	for _, r := range snapshot() {
		after[r] = true
	}
	for _, r := range before {
		if !after[r] {
			t.Errorf("%s %d (%s) committed before the kill is gone after the failover", r.Kind, r.ID, r.Key)
		}
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM outages`:                                  len(down),
		`SELECT count(DISTINCT device_id) FROM outages`:                 len(down),
		`SELECT count(*) FROM tickets`:                                  len(down),
		`SELECT count(DISTINCT auto_key) FROM tickets`:                  len(down),
		`SELECT count(*) FROM device_events WHERE kind = 'device_down'`: len(down),
		`SELECT count(*) FROM device_states WHERE state = 'down'`:       len(down),
	} {
		if n := count(t, conn, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	kinds := map[string]int{}
	for _, r := range before {
		kinds[r.Kind]++
	}
	t.Logf("%d outages and %d tickets committed before the kill, %d of each after; leases held again %s after the promotion",
		kinds["outage"], kinds["ticket"], len(down), resumed.Round(time.Millisecond))
}
