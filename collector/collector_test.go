package collector

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/probes"
)

// A device on site sends its heartbeats to the collector, never to the
// NOC: the collector judges the silence and the NOC decides from its
// results. The NOC here is the real collector API on a real database.
func TestHeartbeatsReceivedOnSite(t *testing.T) {
	conn := pgtest.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := assets.NewStore(conn)
	f, err := assets.ParseFile("t.yaml", []byte(`
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede
        kind: hospital
        devices:
          - {id: agent, name: Monitor, kind: biomedical, heartbeat: {grace: 2s, token: agent-heartbeat-token-1}, probe: {interval: 1s, retries: 0}}
`), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	store := probes.NewStore(conn)
	token, _, err := store.CreateCollector(ctx, "on site", "c1", []string{"s1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	engine, err := probes.NewEngine(ctx, store, inv, probes.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	nocMux := http.NewServeMux()
	(&probes.CollectorAPI{Store: store, Engine: engine, Devices: inv, Clock: clockwork.NewRealClock(), Log: slog.New(slog.DiscardHandler)}).Register(nocMux)
	noc := httptest.NewServer(nocMux)
	defer noc.Close()

	q, err := OpenQueue(t.TempDir(), QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	up, _ := url.Parse(noc.URL)
	reg := prometheus.NewRegistry()
	c, err := New(Config{Upstream: up, Token: token, Queue: q, Registry: reg, PushEvery: 100 * time.Millisecond, ConfigEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	local := http.NewServeMux()
	c.HeartbeatAPI().Register(local)
	site := httptest.NewServer(local)
	defer site.Close()

	beat := func(token string) int {
		req, _ := http.NewRequest("POST", site.URL+"/api/v1/heartbeats/agent", strings.NewReader(`{"status":"ok"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	state := func() string {
		var s string
		conn.Get(&s, `SELECT state FROM device_states WHERE device_id = 'agent'`)
		return s
	}
	waitFor(t, "the configuration", func() bool { return beat("agent-heartbeat-token-1") == http.StatusAccepted })
	if code := beat("agent-heartbeat-token-2"); code != http.StatusUnauthorized {
		t.Errorf("an unknown heartbeat token: %d", code)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				beat("agent-heartbeat-token-1")
			}
		}
	}()
	waitFor(t, "the agent up at the NOC", func() bool { return state() == "up" })
	close(stop)
	waitFor(t, "the silent agent down at the NOC", func() bool { return state() == "down" })
	waitFor(t, "the queue drained", func() bool { return q.Stats(time.Now()).Depth == 0 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				got[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, k := range []string{"vigia_collector_probe_runs_total,heartbeat,failed", "vigia_collector_probe_runs_total,heartbeat,ok",
		"vigia_collector_push_duration_seconds,ok", "vigia_collector_devices"} {
		if got[k] < 1 {
			t.Errorf("%s = %v", k, got[k])
		}
	}
	for _, k := range []string{"vigia_collector_queue_depth", "vigia_collector_queue_oldest_age_seconds", "vigia_collector_queue_dropped_total"} {
		if v, ok := got[k]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", k, v, ok)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
