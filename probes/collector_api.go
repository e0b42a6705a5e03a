package probes

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// Limits of one pushed batch, checked before anything is applied.
const (
	// MaxBatchBytes bounds a batch as sent (gzip) and MaxBatchChecks the
	// checks in it; a collector splits its queue to fit.
	MaxBatchBytes   = 4 << 20
	maxBatchPlain   = 32 << 20
	MaxBatchChecks  = 5000
	maxCheckResults = 16
	maxDetailBytes  = 4096
	// maxFutureSkew: a result stamped further ahead than this of the NOC's
	// clock is refused (a collector with a wrong clock would otherwise
	// write transitions in the future).
	maxFutureSkew = 5 * time.Minute
)

// ResultBatch is the body of POST /api/v1/collector/results.
type ResultBatch struct {
	Checks []RemoteCheck `json:"checks"`
}

// CollectorAPI serves the collectors' two routes. They authenticate with
// the collector's own token (not an API token): its sites bound what it
// reads and what it may report.
type CollectorAPI struct {
	Store   *Store
	Engine  *Engine
	Devices CollectorInventory
	Clock   clockwork.Clock
	Log     *slog.Logger
	refused *prometheus.CounterVec
	applied *prometheus.CounterVec
}

// Register adds the routes.
func (a *CollectorAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/collector/config", a.config)
	mux.HandleFunc("POST /api/v1/collector/results", a.results)
}

// RegisterMetrics exposes what collectors push and each one's contact and
// lag (read from the database at scrape time, so every instance agrees).
func (a *CollectorAPI) RegisterMetrics(reg prometheus.Registerer) {
	a.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_collector_results_refused_total",
		Help: "Results refused from collectors, by collector and reason (scope: a device outside its sites; invalid)."},
		[]string{"collector", "reason"})
	a.applied = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_collector_results_applied_total",
		Help: "Collector results applied by this instance (duplicates of a repeated batch excluded)."}, []string{"collector"})
	reg.MustRegister(a.refused, a.applied, &collectorGauges{store: a.Store, clock: a.Clock})
}

func (a *CollectorAPI) authenticate(w http.ResponseWriter, r *http.Request) (Collector, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" || len(token) > 200 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigia-collector"`)
		httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <the collector's token>")
		return Collector{}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	c, err := a.Store.AuthenticateCollector(ctx, token, a.Clock.Now())
	switch {
	case errors.Is(err, ErrUnknownCollector):
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigia-collector", error="invalid_token"`)
		httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "unknown or revoked collector token")
		return c, false
	case err != nil:
		a.Log.Warn("collector authentication", "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "cannot check the collector token right now")
		return c, false
	}
	return c, true
}

func (a *CollectorAPI) config(w http.ResponseWriter, r *http.Request) {
	c, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var zoneOf func(assets.Device) string
	if hours := a.Engine.cfg.WorkingHours; hours != nil {
		now := a.Clock.Now()
		zoneOf = func(d assets.Device) string {
			local, _ := hours.WorkingTime(ctx, d, now)
			return local.Location().String()
		}
	}
	cfg, err := a.Store.CollectorConfigFor(ctx, a.Devices, c, zoneOf)
	if err != nil {
		a.Log.Warn("collector config", "collector", c.Name, "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "cannot build the configuration right now")
		return
	}
	etag := `"` + cfg.Version + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-store")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// The last sequence applied travels beside the configuration (outside
	// its version): a collector whose disk was replaced numbers on from it.
	httpx.JSON(w, http.StatusOK, struct {
		CollectorConfig
		LastSeq int64 `json:"last_seq"`
	}{cfg, c.LastSeq})
}

func (a *CollectorAPI) results(w http.ResponseWriter, r *http.Request) {
	c, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	batch, status, err := readBatch(w, r)
	if err != nil {
		a.countRefused(c, "invalid", 1)
		httpx.Fail(w, status, "invalid_batch", "%v", err)
		return
	}
	now := a.Clock.Now()
	ids := make([]string, 0, len(batch.Checks))
	for i, ch := range batch.Checks {
		if err := validCheck(ch, now); err != nil {
			a.countRefused(c, "invalid", 1)
			httpx.Fail(w, http.StatusBadRequest, "invalid_batch", "check %d (seq %d): %v", i, ch.Seq, err)
			return
		}
		ids = append(ids, ch.Device)
	}
	// A batch received is applied even if the collector goes away
	// meanwhile (it sends it again; the repeat changes nothing).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 60*time.Second)
	defer cancel()
	// The scope is the inventory's, not the engine's memory: a device added
	// since the engine's last sync is the collector's already (its
	// configuration came from the database), and one retired meanwhile is
	// skipped, not a reason to refuse its neighbours' results.
	sites, err := a.Store.activeDeviceSites(ctx, ids)
	if err != nil {
		a.Log.Warn("collector batch scope", "collector", c.Name, "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the batch was not applied; send it again")
		return
	}
	outside, unsynced := 0, false
	for _, ch := range batch.Checks {
		site, active := sites[ch.Device]
		switch {
		case !active:
		case !slices.Contains(c.Sites, site):
			outside++
		default:
			if _, known := a.Engine.remoteDevice(c, ch.Device); !known {
				unsynced = true
			}
		}
	}
	if outside == 0 && unsynced {
		if _, err := a.Engine.Sync(ctx); err != nil {
			a.Log.Warn("collector batch: inventory sync", "collector", c.Name, "err", err)
			httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the batch was not applied; send it again")
			return
		}
	}
	if outside > 0 {
		// Nothing of the batch is applied: a collector reports on its own
		// sites only, and a batch naming another's device is suspect whole.
		a.countRefused(c, "scope", outside)
		if err := a.Store.CountRefused(ctx, c.ID, outside); err != nil {
			a.Log.Warn("collector refusal not counted", "collector", c.Name, "err", err)
		}
		a.Log.Warn("collector batch refused: devices outside its sites", "collector", c.Name, "devices", outside)
		httpx.Fail(w, http.StatusForbidden, "forbidden", "%d results are for devices outside this collector's sites; nothing was applied", outside)
		return
	}
	sum, err := a.Engine.Ingest(ctx, c, batch.Checks)
	if err != nil {
		a.Log.Warn("collector batch not applied", "collector", c.Name, "checks", len(batch.Checks), "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the batch was not applied; send it again")
		return
	}
	if a.applied != nil {
		a.applied.WithLabelValues(c.Name).Add(float64(sum.Applied))
	}
	httpx.JSON(w, http.StatusOK, sum)
}

func (a *CollectorAPI) countRefused(c Collector, reason string, n int) {
	if a.refused != nil {
		a.refused.WithLabelValues(c.Name, reason).Add(float64(n))
	}
}

// readBatch reads a batch, gzip or plain, bounded before and after
// decompression, strictly (unknown fields are errors).
func readBatch(w http.ResponseWriter, r *http.Request) (ResultBatch, int, error) {
	var batch ResultBatch
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return batch, http.StatusUnsupportedMediaType, fmt.Errorf("send application/json, not %s", ct)
	}
	// Uncompressed, a batch is bound like any API body; gzip'd (what
	// collectors send) it may be larger as sent and much larger inside.
	limit := int64(httpx.MaxBody)
	if r.Header.Get("Content-Encoding") == "gzip" {
		limit = MaxBatchBytes
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch r.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return batch, http.StatusBadRequest, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, maxBatchPlain+1)
	case "", "identity":
	default:
		return batch, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: send gzip", r.Header.Get("Content-Encoding"))
	}
	data, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return batch, http.StatusRequestEntityTooLarge, fmt.Errorf("a batch is at most %d bytes as sent (gzip), %d plain", MaxBatchBytes, httpx.MaxBody)
	case err != nil:
		return batch, http.StatusBadRequest, fmt.Errorf("read: %w", err)
	case len(data) > maxBatchPlain:
		return batch, http.StatusRequestEntityTooLarge, fmt.Errorf("a batch is at most %d bytes uncompressed", maxBatchPlain)
	}
	// Decoded as every API body is: a refusal names the value's place.
	if err := httpx.DecodeBytes(data, &batch); err != nil {
		return batch, http.StatusBadRequest, err
	}
	if len(batch.Checks) == 0 || len(batch.Checks) > MaxBatchChecks {
		return batch, http.StatusBadRequest, fmt.Errorf("a batch has 1 to %d checks, not %d", MaxBatchChecks, len(batch.Checks))
	}
	return batch, 0, nil
}

var validOutcomes = map[Outcome]bool{OK: true, Degraded: true, Failed: true, Misconfigured: true, Unknown: true}

// validCheck checks what a collector says before any of it is applied.
func validCheck(ch RemoteCheck, now time.Time) error {
	if ch.Seq <= 0 {
		return errors.New("seq must be positive")
	}
	if err := cleanText("device", ch.Device, 200); err != nil || ch.Device == "" {
		return fmt.Errorf("device: want 1 to 200 characters without NUL")
	}
	if ch.Trap != nil {
		if len(ch.Results) > 0 {
			return errors.New("a check carries results or a trap, not both")
		}
		return validTrap(*ch.Trap, now)
	}
	if len(ch.Results) == 0 || len(ch.Results) > maxCheckResults {
		return fmt.Errorf("a check has 1 to %d results", maxCheckResults)
	}
	for _, r := range ch.Results {
		if !validOutcomes[r.Outcome] {
			return fmt.Errorf("outcome %q: want ok, degraded, failed, misconfigured or unknown", r.Outcome)
		}
		if err := cleanText("prober", r.Prober, 64); err != nil {
			return err
		}
		if err := cleanText("detail", r.Detail, maxDetailBytes); err != nil {
			return err
		}
		if len(r.Facts) > 64 {
			return errors.New("at most 64 facts per result")
		}
		for k, v := range r.Facts {
			if cleanText("fact", k, 128) != nil || cleanText("fact", v, 1024) != nil {
				return errors.New("facts: keys up to 128 and values up to 1024 bytes, without NUL")
			}
		}
		if r.At.IsZero() || r.At.Year() < 2000 {
			return errors.New("every result has its instant (at)")
		}
		if r.At.After(now.Add(maxFutureSkew)) {
			return fmt.Errorf("result at %s is ahead of the NOC's clock (%s): check the collector's clock", r.At.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if r.Duration < 0 || r.Uptime < 0 {
			return errors.New("durations are not negative")
		}
	}
	return nil
}

func cleanText(what, s string, limit int) error {
	if len(s) > limit || strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return fmt.Errorf("%s: at most %d bytes of UTF-8 without NUL", what, limit)
	}
	return nil
}

// collectorGauges reads each collector's contact and lag at scrape time.
type collectorGauges struct {
	store *Store
	clock clockwork.Clock
}

var (
	collectorContactDesc = prometheus.NewDesc("vigia_collector_last_contact_timestamp_seconds",
		"When the collector last reached the NOC (Unix time).", []string{"collector", "customer"}, nil)
	collectorLagDesc = prometheus.NewDesc("vigia_collector_lag_seconds",
		"How far the collector's newest applied result is behind its last contact.", []string{"collector", "customer"}, nil)
	collectorLostDesc = prometheus.NewDesc("vigia_collector_lost",
		"1 while the collector is silent past its grace (monitoring lost).", []string{"collector", "customer"}, nil)
	collectorSeqDesc = prometheus.NewDesc("vigia_collector_last_sequence",
		"The highest result sequence number applied for the collector.", []string{"collector", "customer"}, nil)
)

func (g *collectorGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- collectorContactDesc
	ch <- collectorLagDesc
	ch <- collectorLostDesc
	ch <- collectorSeqDesc
}

func (g *collectorGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := g.store.Collectors(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(collectorContactDesc, err)
		return
	}
	for _, c := range cs {
		if c.LastContactAt != nil {
			ch <- prometheus.MustNewConstMetric(collectorContactDesc, prometheus.GaugeValue, float64(c.LastContactAt.UnixNano())/1e9, c.Name, c.CustomerID)
		}
		ch <- prometheus.MustNewConstMetric(collectorLagDesc, prometheus.GaugeValue, c.Lag().Seconds(), c.Name, c.CustomerID)
		lost := 0.0
		if c.LostAt != nil {
			lost = 1
		}
		ch <- prometheus.MustNewConstMetric(collectorLostDesc, prometheus.GaugeValue, lost, c.Name, c.CustomerID)
		ch <- prometheus.MustNewConstMetric(collectorSeqDesc, prometheus.GaugeValue, float64(c.LastSeq), c.Name, c.CustomerID)
	}
}
