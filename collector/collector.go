// Package collector is `vigia collect`: a small process inside a
// hospital's network that probes its sites' devices with the same probers
// as the NOC, and pushes the raw results upstream. The NOC decides states;
// the collector only observes, numbers and delivers.
//
// Results wait in an on-disk queue (queue.go) until the NOC has applied
// them, so a lost uplink delays them but loses none, and the NOC records
// what happened at the instants the collector saw it.
package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/probes"
)

// Config is what a collector needs. Zero durations take the defaults noted.
type Config struct {
	Upstream *url.URL // the NOC's base URL
	Token    string
	Client   *http.Client
	Queue    *Queue
	Probers  map[string]probes.Prober // the probers; the heartbeat prober is added here
	Clock    clockwork.Clock
	Log      *slog.Logger
	Registry prometheus.Registerer
	// ConfigEvery: how often the device list is asked again (default 30 s;
	// an unchanged list costs a 304).
	ConfigEvery time.Duration
	// PushEvery: how often queued results are pushed when the last push
	// emptied the queue (default 1 s).
	PushEvery time.Duration
	// BatchChecks and BatchBytes bound one push (defaults 1000 checks and
	// 1 MiB of JSON before gzip).
	BatchChecks int
	BatchBytes  int
	// Concurrency bounds the checks running at once (default 256).
	Concurrency int
	// Traps, when set, is the UDP socket the site's SNMP traps and
	// informs arrive on, and TrapEngineID this receiver's SNMPv3 engine ID
	// (empty: the listener's default).
	Traps        net.PacketConn
	TrapEngineID string
}

// Collector probes its devices and forwards the results.
type Collector struct {
	cfg     Config
	metrics *metrics

	mu       sync.Mutex
	version  string
	devices  map[string]*runner
	byToken  map[string]string // heartbeat token hash (hex) -> device id
	hbMu     sync.Mutex
	lastBeat map[string]time.Time
	started  time.Time
	sem      chan struct{}
	running  sync.WaitGroup
	traps    *probes.TrapListener // nil without Config.Traps
}

// runner is one device's probing loop.
type runner struct {
	device probes.RemoteDevice
	stop   context.CancelFunc
	done   chan struct{}
	now    chan struct{} // a check at once (a trap came)
}

// New prepares a collector.
func New(cfg Config) (*Collector, error) {
	if cfg.Upstream == nil || cfg.Token == "" || cfg.Queue == nil {
		return nil, errors.New("collector: upstream, token and queue are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: time.Minute}
	}
	if cfg.ConfigEvery <= 0 {
		cfg.ConfigEvery = 30 * time.Second
	}
	if cfg.PushEvery <= 0 {
		cfg.PushEvery = time.Second
	}
	if cfg.BatchChecks <= 0 {
		cfg.BatchChecks = 1000
	}
	cfg.BatchChecks = min(cfg.BatchChecks, probes.MaxBatchChecks)
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 1 << 20
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	c := &Collector{cfg: cfg, devices: map[string]*runner{}, byToken: map[string]string{}, lastBeat: map[string]time.Time{},
		started: cfg.Clock.Now(), sem: make(chan struct{}, cfg.Concurrency)}
	probers := map[string]probes.Prober{}
	for k, v := range cfg.Probers {
		probers[k] = v
	}
	probers["heartbeat"] = &probes.Heartbeat{Log: c, Clock: cfg.Clock, Started: c.started}
	// The worklist is queried on site and judged at the NOC, which holds
	// the contract calendars: an empty one is reported raw.
	probers[probes.WorklistProber] = &probes.Worklist{Clock: cfg.Clock, Hours: c, Raw: true}
	c.cfg.Probers = probers
	c.metrics = newMetrics(cfg.Registry, cfg.Queue, cfg.Clock)
	if cfg.Traps != nil {
		var err error
		if c.traps, err = c.newTrapListener(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run fetches the configuration (retrying until it has one: without it
// there is nothing to probe), then probes, refreshes and pushes until ctx
// ends.
func (c *Collector) Run(ctx context.Context) error {
	for {
		err := c.refresh(ctx)
		if err == nil {
			break
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return err
		}
		c.cfg.Log.Warn("no configuration from the NOC yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-c.cfg.Clock.After(5 * time.Second):
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.pushLoop(ctx) })
	if c.traps != nil {
		wg.Go(func() { c.serveTraps(ctx, c.cfg.Traps) })
	}
	for {
		select {
		case <-ctx.Done():
			c.stopAll()
			wg.Wait()
			return nil
		case <-c.cfg.Clock.After(c.cfg.ConfigEvery):
		}
		if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			var perm *permanentError
			if errors.As(err, &perm) {
				c.stopAll()
				wg.Wait()
				return err
			}
			c.cfg.Log.Warn("configuration not refreshed; keeping the current one", "err", err)
		}
	}
}

// permanentError is an answer that retrying will not change (a revoked
// token).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func (c *Collector) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u := c.cfg.Upstream.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("User-Agent", "vigia-collector")
	return req, nil
}

// refresh asks the NOC for the device list and applies it if it changed.
func (c *Collector) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := c.request(ctx, http.MethodGet, "/api/v1/collector/config", nil)
	if err != nil {
		return fmt.Errorf("collector: config request: %w", err)
	}
	c.mu.Lock()
	if c.version != "" {
		req.Header.Set("If-None-Match", `"`+c.version+`"`)
	}
	c.mu.Unlock()
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("collector: config: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return &permanentError{fmt.Errorf("collector: the NOC refuses this collector's token (revoked?)")}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("collector: config: %s", resp.Status)
	}
	var cfg struct {
		probes.CollectorConfig
		LastSeq int64 `json:"last_seq"`
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 64<<20))
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("collector: config: %w", err)
	}
	c.cfg.Queue.SetFloor(cfg.LastSeq)
	c.apply(ctx, cfg.CollectorConfig)
	if c.traps != nil {
		// The senders a trap is accepted from are the new configuration's.
		if err := c.traps.Sync(ctx); err != nil {
			c.cfg.Log.Warn("trap listener not synced with the configuration", "err", err)
		}
	}
	return nil
}

// apply starts, restarts and stops device loops to match cfg.
func (c *Collector) apply(ctx context.Context, cfg probes.CollectorConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]probes.RemoteDevice{}
	c.byToken = map[string]string{}
	for _, d := range cfg.Devices {
		want[d.ID] = d
		if d.HeartbeatTokenHash != "" {
			c.byToken[d.HeartbeatTokenHash] = d.ID
		}
	}
	started := 0
	var stopped []*runner
	for id, r := range c.devices {
		if d, ok := want[id]; ok && reflect.DeepEqual(d, r.device) {
			continue
		}
		r.stop()
		delete(c.devices, id)
		stopped = append(stopped, r)
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, ok := c.devices[id]; ok {
			continue
		}
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		r := &runner{device: want[id], stop: stop, done: make(chan struct{}), now: make(chan struct{}, 1)}
		c.devices[id] = r
		c.running.Add(1)
		go func() {
			defer c.running.Done()
			defer close(r.done)
			c.probeLoop(rctx, r.device.Device(), r.now)
		}()
		started++
	}
	c.version = cfg.Version
	c.metrics.devices.Set(float64(len(c.devices)))
	c.cfg.Log.Info("configuration applied", "version", cfg.Version, "sites", cfg.Sites, "devices", len(c.devices),
		"started", started, "stopped", len(stopped))
	// A check in flight ends within its timeout; the lock is not held
	// meanwhile, so heartbeats keep being received.
	c.mu.Unlock()
	for _, r := range stopped {
		<-r.done
	}
	c.mu.Lock()
}

func (c *Collector) stopAll() {
	c.mu.Lock()
	for id, r := range c.devices {
		r.stop()
		delete(c.devices, id)
	}
	c.mu.Unlock()
	c.running.Wait()
}

// probeLoop checks a device every interval (its first check spread over
// the interval), retrying a failure sooner, as the NOC's scheduler does,
// so an outage is confirmed as fast behind a collector as in front.
func (c *Collector) probeLoop(ctx context.Context, d assets.Device, now <-chan struct{}) {
	interval := max(d.Probe.Interval, time.Second)
	clock := c.cfg.Clock
	wait := jitter(d.ID, interval)
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-clock.After(wait):
		case <-now:
		}
		outcome := c.check(ctx, d)
		if ctx.Err() != nil {
			return
		}
		wait = interval
		if outcome == probes.Failed {
			failures++
			if failures <= d.Probe.Retries {
				wait = probes.RetryDelay(d)
			}
		} else {
			failures = 0
		}
	}
}

// check runs every prober that applies and queues the check.
func (c *Collector) check(ctx context.Context, d assets.Device) probes.Outcome {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ""
	}
	defer func() { <-c.sem }()
	results := probes.ProbeDevice(ctx, c.cfg.Probers, d, c.cfg.Clock)
	worst := probes.OK
	for _, r := range results {
		c.metrics.probeRuns.WithLabelValues(r.Prober, string(r.Outcome)).Inc()
		if r.Outcome == probes.Failed {
			worst = probes.Failed
		}
	}
	if len(results) == 0 || ctx.Err() != nil {
		return ""
	}
	if _, err := c.cfg.Queue.Append(probes.RemoteCheck{Device: d.ID, Results: results}, c.cfg.Clock.Now()); err != nil {
		c.cfg.Log.Error("result not queued", "device", d.ID, "err", err)
	}
	return worst
}

// pushLoop sends the queue's oldest checks every PushEvery, in batches
// until it is empty: one request carries what a period gathered, not one
// per check. A failed push is retried with backoff, the same batch again
// (the NOC applies each sequence number once).
func (c *Collector) pushLoop(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := c.cfg.PushEvery
		if backoff > 0 {
			wait = backoff
		}
		select {
		case <-ctx.Done():
			return
		case <-c.cfg.Clock.After(wait):
		}
		for ctx.Err() == nil {
			n, err := c.pushOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					backoff = min(max(2*backoff, time.Second), 30*time.Second)
					c.cfg.Log.Warn("push failed; results stay queued", "err", err, "retry_in", backoff)
				}
				break
			}
			backoff = 0
			if n == 0 {
				break
			}
		}
	}
}

// pushOnce pushes one batch and returns how many checks it carried.
func (c *Collector) pushOnce(ctx context.Context) (int, error) {
	batch, err := c.cfg.Queue.Batch(c.cfg.BatchChecks, c.cfg.BatchBytes)
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(probes.ResultBatch{Checks: batch}); err != nil {
		return 0, fmt.Errorf("collector: encode batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return 0, fmt.Errorf("collector: encode batch: %w", err)
	}
	if buf.Len() > probes.MaxBatchBytes && len(batch) > 1 {
		// Pathological details: push fewer next time round.
		c.cfg.BatchChecks = max(1, len(batch)/2)
		return 0, fmt.Errorf("collector: batch of %d bytes compressed is over the NOC's limit; halving", buf.Len())
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := c.request(pctx, http.MethodPost, "/api/v1/collector/results", &buf)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	start := time.Now()
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		c.metrics.pushDuration.WithLabelValues("error").Observe(time.Since(start).Seconds())
		return 0, fmt.Errorf("collector: push: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	last := batch[len(batch)-1].Seq
	switch {
	case resp.StatusCode == http.StatusOK:
		c.metrics.pushDuration.WithLabelValues("ok").Observe(time.Since(start).Seconds())
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusRequestEntityTooLarge || resp.StatusCode == http.StatusUnsupportedMediaType:
		// The NOC will never take this batch: holding it would stop every
		// later result behind it. It is dropped, counted and logged.
		c.metrics.pushDuration.WithLabelValues("refused").Observe(time.Since(start).Seconds())
		c.metrics.refused.Add(float64(len(batch)))
		c.cfg.Log.Error("the NOC refused a batch; dropping it", "status", resp.Status, "first_seq", batch[0].Seq,
			"last_seq", last, "answer", string(body))
	default:
		c.metrics.pushDuration.WithLabelValues("error").Observe(time.Since(start).Seconds())
		return 0, fmt.Errorf("collector: push: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := c.cfg.Queue.Ack(last); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// LastHeartbeat implements probes.HeartbeatLog from memory: heartbeats of
// the site's devices arrive here, on the hospital's network.
func (c *Collector) LastHeartbeat(ctx context.Context, deviceID string) (time.Time, bool, error) {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	t, ok := c.lastBeat[deviceID]
	return t, ok, nil
}

// RecordHeartbeat implements probes.HeartbeatLog.
func (c *Collector) RecordHeartbeat(ctx context.Context, deviceID string, at time.Time, remote string) error {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	if at.After(c.lastBeat[deviceID]) {
		c.lastBeat[deviceID] = at
	}
	return nil
}

// DeviceByHeartbeatToken implements probes.TokenLookup from the hashes
// the NOC sent (the tokens themselves are never sent anywhere).
func (c *Collector) DeviceByHeartbeatToken(ctx context.Context, token string) (assets.Device, error) {
	h := hex.EncodeToString(assets.HashToken(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byToken[h]
	if !ok {
		return assets.Device{}, assets.ErrNotFound
	}
	r, ok := c.devices[id]
	if !ok {
		return assets.Device{}, assets.ErrNotFound
	}
	return r.device.Device(), nil
}

// HeartbeatAPI is the local heartbeat receiver for the site's devices.
func (c *Collector) HeartbeatAPI() *probes.HeartbeatAPI {
	return &probes.HeartbeatAPI{Devices: c, Log: c, Clock: c.cfg.Clock}
}
