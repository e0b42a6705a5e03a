package probes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

const collectorInventory = `
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: sa
        name: Sede A
        kind: hospital
        devices:
          - {id: a1, name: RIS A, kind: ris, tcp: {host: 10.0.0.1, port: 104}, probe: {interval: 60s, retries: 1}}
          - {id: a2, name: PACS A, kind: pacs, snmp: {host: 10.0.0.2, version: v2c, community: s3cret}, probe: {interval: 60s, retries: 1}}
      - id: sb
        name: Sede B
        kind: hospital
        devices:
          - {id: b1, name: RIS B, kind: ris, tcp: {host: 10.0.1.1, port: 104}, probe: {interval: 60s, retries: 1}}
`

type collectorHarness struct {
	*harness
	clock *clockwork.FakeClock
	col   Collector
	token string
}

// newCollectorHarness: an engine whose site sa is probed by a collector,
// on a fake clock (ingest decides from the results' instants).
func newCollectorHarness(t *testing.T) *collectorHarness {
	t.Helper()
	conn := pgtest.DB(t)
	as := assets.NewStore(conn)
	f, err := assets.ParseFile("test.yaml", []byte(collectorInventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := as.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	h := &collectorHarness{harness: &harness{t: t, db: conn, assets: as, store: NewStore(conn)}, clock: clock}
	h.cfg = Config{Clock: clock, SuccessesToUp: 2, FlapTransitions: 6, FlapWindow: time.Minute}
	h.token, _, err = h.store.CreateCollector(ctx, "col-a", "c1", []string{"sa"}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.restart()
	if h.col, err = h.store.AuthenticateCollector(ctx, h.token, clock.Now()); err != nil {
		t.Fatal(err)
	}
	return h
}

func check(seq int64, device string, outcome Outcome, at time.Time) RemoteCheck {
	return RemoteCheck{Seq: seq, Device: device, Results: []Result{{Prober: "tcp", Outcome: outcome, At: at, Detail: string(outcome)}}}
}

func (h *collectorHarness) ingest(checks ...RemoteCheck) IngestSummary {
	h.t.Helper()
	sum, err := h.engine.Ingest(context.Background(), h.col, checks)
	if err != nil {
		h.t.Fatalf("Ingest: %v", err)
	}
	return sum
}

func TestCollectorCreateIsScopedToTheCustomersSites(t *testing.T) {
	h := newCollectorHarness(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, customer string
		sites          []string
		want           string
	}{
		{"another customer's site", "c1", []string{"nope"}, `no active site "nope" of customer "c1"`},
		{"a site with a collector", "c1", []string{"sa"}, `site "sa" already has a collector`},
		{"no site", "c1", nil, "at least one site"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := h.store.CreateCollector(ctx, "x", tc.customer, tc.sites, h.clock.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := h.store.AuthenticateCollector(ctx, h.token+"x", h.clock.Now()); !errors.Is(err, ErrUnknownCollector) {
		t.Errorf("a wrong token: %v", err)
	}
	if n := h.count(`SELECT count(*) FROM collectors WHERE token_sha256 = $1`, hashCollectorToken(h.token)); n != 1 {
		t.Errorf("the token's hash is stored %d times", n)
	}
	if n := h.count(`SELECT count(*) FROM collectors WHERE encode(token_sha256, 'escape') LIKE '%' || $1 || '%'`, h.token[10:30]); n != 0 {
		t.Errorf("the token is stored in clear")
	}
}

func TestCollectorConfigHoldsItsSitesWithSecrets(t *testing.T) {
	h := newCollectorHarness(t)
	cfg, err := h.store.CollectorConfigFor(context.Background(), h.assets, h.col, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Devices) != 2 || cfg.Devices[0].ID != "a1" || cfg.Devices[1].ID != "a2" {
		t.Fatalf("devices %+v", cfg.Devices)
	}
	if s := cfg.Devices[1].SNMP; s == nil || s.Community != "s3cret" || cfg.Devices[1].Device().SNMP.Community.Reveal() != "s3cret" {
		t.Errorf("the collector needs the community in clear: %+v", s)
	}
	again, _ := h.store.CollectorConfigFor(context.Background(), h.assets, h.col, nil)
	if again.Version != cfg.Version || len(cfg.Version) != 32 {
		t.Errorf("version %q then %q", cfg.Version, again.Version)
	}
	h.db.MustExec(`UPDATE devices SET probe_interval_seconds = 30 WHERE id = 'a1'`)
	changed, _ := h.store.CollectorConfigFor(context.Background(), h.assets, h.col, nil)
	if changed.Version == cfg.Version {
		t.Error("a changed device keeps the version")
	}
}

func TestIngestDecidesAtTheObservedInstantsOnce(t *testing.T) {
	h := newCollectorHarness(t)
	t0 := h.clock.Now().Add(-10 * time.Minute) // queued while the uplink was down
	batch := []RemoteCheck{
		check(1, "a1", OK, t0),
		check(2, "a1", OK, t0.Add(time.Minute)),
		check(3, "a1", Failed, t0.Add(2*time.Minute)),
		check(4, "a1", Failed, t0.Add(2*time.Minute+20*time.Second)),
		check(5, "a1", OK, t0.Add(3*time.Minute)),
		check(6, "a1", OK, t0.Add(4*time.Minute)),
	}
	if sum := h.ingest(batch...); sum.Applied != 6 || sum.Duplicates != 0 || sum.LastSeq != 6 {
		t.Errorf("first push: %+v", sum)
	}
	// The same batch again (its answer lost), then out of order halves.
	if sum := h.ingest(batch...); sum.Applied != 0 || sum.Duplicates != 6 {
		t.Errorf("second push: %+v", sum)
	}
	if sum := h.ingest(batch[3:]...); sum.Applied != 0 || sum.Duplicates != 3 {
		t.Errorf("third push: %+v", sum)
	}
	var o struct {
		Started time.Time  `db:"started_at"`
		Ended   *time.Time `db:"ended_at"`
	}
	if err := h.db.Get(&o, `SELECT started_at, ended_at FROM outages WHERE device_id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	if !o.Started.Equal(t0.Add(2*time.Minute+20*time.Second)) || o.Ended == nil || !o.Ended.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("outage %s – %v, want the collector's instants", o.Started, o.Ended)
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM outages`:                                               1,
		`SELECT count(*) FROM device_events WHERE kind = 'device_down'`:              1,
		`SELECT count(*) FROM device_events WHERE kind = 'device_up'`:                1,
		`SELECT count(*) FROM device_transitions WHERE device_id = 'a1'`:             3, // unknown→up, up→down, down→up
		`SELECT count(*) FROM collector_results`:                                     6,
		`SELECT count(*) FROM device_events WHERE detail ? 'collector'`:              2,
		`SELECT last_seq FROM collectors`:                                            6,
		`SELECT results_applied FROM collectors`:                                     6,
		`SELECT count(*) FROM device_states WHERE device_id = 'b1'`:                  0,
		`SELECT count(*) FROM device_states WHERE device_id = 'a1' AND state = 'up'`: 1,
	} {
		if n := h.count(q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	if st, _ := h.engine.Status("a1"); st.State != StateUp || !st.Since.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("memory: %+v", st)
	}
	// A gap is counted as results the collector's queue dropped.
	if sum := h.ingest(check(10, "a1", OK, t0.Add(5*time.Minute))); sum.Missing != 3 || sum.Applied != 1 {
		t.Errorf("after a gap: %+v", sum)
	}
}

// A crash mid-ingest (here: the database refusing the batch's last row)
// applies nothing of the batch; the batch pushed again applies it all once.
func TestIngestIsAllOrNothing(t *testing.T) {
	h := newCollectorHarness(t)
	h.db.MustExec(`CREATE FUNCTION fail_seq() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.seq = 4 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`)
	h.db.MustExec(`CREATE TRIGGER fail_seq BEFORE INSERT ON collector_results FOR EACH ROW EXECUTE FUNCTION fail_seq()`)
	t0 := h.clock.Now().Add(-time.Minute)
	batch := []RemoteCheck{check(1, "a1", OK, t0), check(2, "a1", Failed, t0.Add(10*time.Second)),
		check(3, "a1", Failed, t0.Add(20*time.Second)), check(4, "a2", OK, t0.Add(30*time.Second))}
	if _, err := h.engine.Ingest(context.Background(), h.col, batch); err == nil {
		t.Fatal("the injected failure did not fail the batch")
	}
	for _, q := range []string{`SELECT count(*) FROM collector_results`, `SELECT count(*) FROM device_states`,
		`SELECT count(*) FROM outages`, `SELECT count(*) FROM device_transitions`, `SELECT last_seq FROM collectors`} {
		if n := h.count(q); n != 0 {
			t.Errorf("after a failed batch %s = %d", q, n)
		}
	}
	if st, ok := h.engine.Status("a1"); ok && st.State != StateUnknown {
		t.Errorf("memory moved without the database: %+v", st)
	}
	h.db.MustExec(`DROP TRIGGER fail_seq ON collector_results`)
	if sum := h.ingest(batch...); sum.Applied != 4 {
		t.Errorf("pushed again: %+v", sum)
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'a1' AND started_at = $1`, t0.Add(20*time.Second)); n != 1 {
		t.Errorf("outage at the third result's instant: %d", n)
	}
}

func TestCollectorLossMarksDevicesUnknownOnce(t *testing.T) {
	h := newCollectorHarness(t)
	t0 := h.clock.Now()
	h.ingest(check(1, "a1", OK, t0), check(2, "a2", Failed, t0), check(3, "a2", Failed, t0.Add(time.Second)))
	h.clock.Advance(2 * time.Minute)
	if n, err := h.engine.MarkLostCollectors(context.Background(), 3*time.Minute); err != nil || n != 0 {
		t.Fatalf("within the grace: %d %v", n, err)
	}
	h.clock.Advance(2 * time.Minute)
	lostAt := h.clock.Now()
	for range 2 {
		if _, err := h.engine.MarkLostCollectors(context.Background(), 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.count(`SELECT count(*) FROM device_events WHERE kind = 'monitoring_lost'`); n != 1 {
		t.Errorf("%d monitoring_lost events", n)
	}
	if n := h.count(`SELECT count(*) FROM device_states WHERE state = 'unknown' AND since = $1`, lostAt); n != 2 {
		t.Errorf("%d devices unknown since the loss", n)
	}
	// a2's outage stays open: nobody knows it ended. No device event.
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'a2' AND ended_at IS NULL`); n != 1 {
		t.Errorf("a2's outage: %d open", n)
	}
	if n := h.count(`SELECT count(*) FROM device_events WHERE kind IN ('device_down', 'device_up')`); n != 1 {
		t.Errorf("device events: %d", n)
	}
	// Back: its first request ends the loss; results from during the
	// silence decide; a2 still down opens no second outage.
	if _, err := h.store.AuthenticateCollector(context.Background(), h.token, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n := h.count(`SELECT count(*) FROM device_states WHERE state = 'unknown'`); n != 2 {
		t.Errorf("before any result, %d devices unknown, want 2", n)
	}
	h.ingest(check(4, "a2", Failed, lostAt.Add(-time.Minute)), check(5, "a1", OK, lostAt.Add(-time.Minute)))
	for q, want := range map[string]int{
		`SELECT count(*) FROM device_events WHERE kind = 'monitoring_restored'`:         1,
		`SELECT count(*) FROM collectors WHERE lost_at IS NULL`:                         1,
		`SELECT count(*) FROM outages`:                                                  1,
		`SELECT count(*) FROM device_states WHERE device_id = 'a2' AND state = 'down'`:  1,
		`SELECT count(*) FROM device_states WHERE device_id = 'a1' AND state = 'up'`:    1,
		`SELECT count(*) FROM device_events WHERE kind IN ('device_down', 'device_up')`: 1,
	} {
		if n := h.count(q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
}

func TestValidCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ok := func() RemoteCheck { return check(1, "a1", OK, now) }
	for _, tc := range []struct {
		name   string
		mutate func(*RemoteCheck)
		want   string
	}{
		{"valid", func(*RemoteCheck) {}, ""},
		{"zero seq", func(c *RemoteCheck) { c.Seq = 0 }, "seq must be positive"},
		{"no device", func(c *RemoteCheck) { c.Device = "" }, "device"},
		{"NUL in device", func(c *RemoteCheck) { c.Device = "a\x001" }, "device"},
		{"no results", func(c *RemoteCheck) { c.Results = nil }, "1 to 16 results"},
		{"unknown outcome", func(c *RemoteCheck) { c.Results[0].Outcome = "great" }, `outcome "great"`},
		{"invalid UTF-8 detail", func(c *RemoteCheck) { c.Results[0].Detail = "\xff" }, "detail"},
		{"no instant", func(c *RemoteCheck) { c.Results[0].At = time.Time{} }, "instant"},
		{"from the future", func(c *RemoteCheck) { c.Results[0].At = now.Add(time.Hour) }, "ahead of the NOC's clock"},
		{"negative duration", func(c *RemoteCheck) { c.Results[0].Duration = -1 }, "not negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mutate(&c)
			err := validCheck(c, now)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// The collector API's scope is the inventory's: a device added since the
// engine's last sync is applied, one retired is skipped without refusing
// its neighbours, another site's device refuses the batch.
func TestCollectorAPIScope(t *testing.T) {
	h := newCollectorHarness(t)
	api := &CollectorAPI{Store: h.store, Engine: h.engine, Devices: h.assets, Clock: h.clock, Log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(checks ...RemoteCheck) (int, IngestSummary) {
		t.Helper()
		body, _ := json.Marshal(ResultBatch{Checks: checks})
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/collector/results", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sum IngestSummary
		json.NewDecoder(resp.Body).Decode(&sum)
		return resp.StatusCode, sum
	}
	at := h.clock.Now().Add(-time.Second)
	// a3 appears in site sa after the engine's sync.
	h.db.MustExec(`INSERT INTO devices (id, customer_id, site_id, name, kind, tcp_host, tcp_port, probe_interval_seconds, probe_retries, created_at, updated_at)
		SELECT 'a3', customer_id, site_id, 'RIS 3', kind, tcp_host, tcp_port, probe_interval_seconds, probe_retries, created_at, updated_at FROM devices WHERE id = 'a1'`)
	h.db.MustExec(`UPDATE devices SET retired_at = now() WHERE id = 'a2'`)
	code, sum := post(check(1, "a1", OK, at), check(2, "a3", OK, at), check(3, "a2", OK, at), check(4, "ghost", OK, at))
	if code != http.StatusOK || sum.Applied != 2 || sum.Skipped != 2 || sum.LastSeq != 4 || sum.Missing != 0 {
		t.Errorf("answer %d %+v", code, sum)
	}
	if n := h.count(`SELECT count(*) FROM device_states WHERE device_id IN ('a1', 'a3') AND state = 'up'`); n != 2 {
		t.Errorf("%d of a1, a3 up", n)
	}
	if code, _ := post(check(5, "b1", Failed, at), check(6, "a1", OK, at)); code != http.StatusForbidden {
		t.Errorf("a batch naming site sb's device: %d", code)
	}
	if n := h.count(`SELECT results_refused FROM collectors`); n != 1 {
		t.Errorf("refused counted %d", n)
	}
	if n := h.count(`SELECT count(*) FROM collector_results WHERE seq >= 5`); n != 0 {
		t.Errorf("the refused batch applied %d results", n)
	}
}

func TestRevokedCollectorFreesItsSites(t *testing.T) {
	h := newCollectorHarness(t)
	ctx := context.Background()
	if !h.engine.Remote(assets.Device{SiteID: "sa"}) {
		t.Fatal("site sa is not remote")
	}
	if err := h.store.RevokeCollector(ctx, h.col.ID, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.store.RevokeCollector(ctx, h.col.ID, h.clock.Now()); err == nil {
		t.Error("revoked twice")
	}
	if _, err := h.store.AuthenticateCollector(ctx, h.token, h.clock.Now()); !errors.Is(err, ErrUnknownCollector) {
		t.Errorf("a revoked token authenticates: %v", err)
	}
	if _, err := h.engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if h.engine.Remote(assets.Device{SiteID: "sa"}) {
		t.Error("site sa is still remote")
	}
	if _, _, err := h.store.CreateCollector(ctx, "col-a2", "c1", []string{"sa"}, h.clock.Now()); err != nil {
		t.Errorf("a new collector for the freed site: %v", err)
	}
	h.clock.Advance(time.Hour)
	if n, _ := h.engine.MarkLostCollectors(ctx, time.Minute); n != 1 {
		t.Errorf("%d collectors lost, want only the new silent one", n)
	}
}

// A NOC down longer than the grace heard no collector: back, it gives them
// the grace again before declaring any lost.
func TestNOCRestartGivesCollectorsTheirGrace(t *testing.T) {
	h := newCollectorHarness(t)
	ctx := context.Background()
	h.ingest(check(1, "a1", OK, h.clock.Now()))
	h.clock.Advance(10 * time.Minute) // the NOC was down
	h.restart()
	if n, err := h.engine.MarkLostCollectors(ctx, 3*time.Minute); err != nil || n != 0 {
		t.Fatalf("right after the restart: %d lost, %v", n, err)
	}
	h.clock.Advance(3*time.Minute + time.Second)
	if n, err := h.engine.MarkLostCollectors(ctx, 3*time.Minute); err != nil || n != 1 {
		t.Fatalf("a grace after the restart: %d lost, %v", n, err)
	}
}
