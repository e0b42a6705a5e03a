package probes

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
)

// Metrics are the probes' Prometheus series, on the registry given.
type Metrics struct {
	deviceUp      *prometheus.GaugeVec
	deviceState   *prometheus.GaugeVec
	flapping      *prometheus.GaugeVec
	probeDuration *prometheus.HistogramVec
	probeRuns     *prometheus.CounterVec
	heartbeatSeen *prometheus.GaugeVec
	outagesOpen   *prometheus.GaugeVec
}

// NewMetrics registers the probes' metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	dev := []string{"customer", "site", "device", "kind"}
	m := &Metrics{
		deviceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_device_up",
			Help: "1 when the device answered its last probe, 0 when it did not."}, dev),
		deviceState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_device_state",
			Help: "1 for the device's current state (up, degraded, down, unreachable, misconfigured, maintenance, unknown)."},
			append(dev, "state")),
		flapping: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_device_flapping",
			Help: "1 while the device is flapping."}, dev),
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vigia_probe_duration_seconds",
			Help:    "How long each probe took, by prober.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"prober"}),
		probeRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_probe_runs_total",
			Help: "Probe runs by prober and result (ok, degraded, failed, misconfigured)."}, []string{"prober", "result"}),
		heartbeatSeen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_heartbeat_last_seen_timestamp_seconds",
			Help: "When the device's last heartbeat arrived (Unix time)."}, dev),
		outagesOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_outages_open",
			Help: "Open outages, by kind (device or site)."}, []string{"kind"}),
	}
	reg.MustRegister(m.deviceUp, m.deviceState, m.flapping, m.probeDuration, m.probeRuns, m.heartbeatSeen, m.outagesOpen)
	for _, k := range []string{"device", "site"} {
		m.outagesOpen.WithLabelValues(k)
	}
	return m
}

func labels(d assets.Device) []string { return []string{d.CustomerID, d.SiteID, d.ID, d.Kind} }

func (m *Metrics) observeResult(r Result) {
	m.probeDuration.WithLabelValues(r.Prober).Observe(r.Duration.Seconds())
	m.probeRuns.WithLabelValues(r.Prober, string(r.Outcome)).Inc()
}

func (m *Metrics) setState(d assets.Device, prev, next State, answered bool, flapping bool) {
	l := labels(d)
	up := 0.0
	if answered {
		up = 1
	}
	m.deviceUp.WithLabelValues(l...).Set(up)
	if prev != next && prev != "" {
		m.deviceState.DeleteLabelValues(append(l, string(prev))...)
	}
	m.deviceState.WithLabelValues(append(l, string(next))...).Set(1)
	f := 0.0
	if flapping {
		f = 1
	}
	m.flapping.WithLabelValues(l...).Set(f)
}

func (m *Metrics) forget(d assets.Device) {
	l := labels(d)
	m.deviceUp.DeleteLabelValues(l...)
	m.flapping.DeleteLabelValues(l...)
	m.heartbeatSeen.DeleteLabelValues(l...)
	for _, s := range States {
		m.deviceState.DeleteLabelValues(append(l, string(s))...)
	}
}
