package collector

import (
	"hash/fnv"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the collector's own series, served on its /metrics.
type metrics struct {
	probeRuns    *prometheus.CounterVec
	pushDuration *prometheus.HistogramVec
	refused      prometheus.Counter
	devices      prometheus.Gauge
	trapsQueued  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, q *Queue, clock clockwork.Clock) *metrics {
	m := &metrics{
		probeRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_collector_probe_runs_total",
			Help: "Probe runs on this collector by prober and result (ok, degraded, failed, misconfigured, unknown)."},
			[]string{"prober", "result"}),
		pushDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigia_collector_push_duration_seconds",
			Help:    "How long pushing one batch to the NOC took, by result (ok, refused, error).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"result"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigia_collector_results_refused_total",
			Help: "Queued results the NOC refused for good (and were dropped so later ones could pass)."}),
		devices: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigia_collector_devices",
			Help: "Devices this collector probes."}),
		trapsQueued: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigia_collector_traps_queued_total",
			Help: "SNMP traps of the site's devices queued for the NOC (those refused are in vigia_snmp_traps_received_total)."}),
	}
	stats := func() QueueStats { return q.Stats(clock.Now()) }
	reg.MustRegister(m.probeRuns, m.pushDuration, m.refused, m.devices, m.trapsQueued,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_collector_queue_depth",
			Help: "Results queued on disk, not yet applied at the NOC."}, func() float64 { return float64(stats().Depth) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_collector_queue_bytes",
			Help: "Bytes of the on-disk queue."}, func() float64 { return float64(stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_collector_queue_oldest_age_seconds",
			Help: "Age of the oldest result waiting in the queue (0 when empty)."}, func() float64 { return stats().Oldest.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "vigia_collector_queue_dropped_total",
			Help: "Results dropped, oldest first, because the queue outgrew its size or age bound."},
			func() float64 { return float64(stats().Dropped) }),
	)
	return m
}

// jitter spreads first checks over the interval, the same for a device on
// every start.
func jitter(id string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	if interval <= 0 {
		return 0
	}
	return time.Duration(h.Sum64() % uint64(interval))
}
