// Package probes turns the inventory into scheduled checks and decides each
// device's state: up, degraded, down, unreachable, misconfigured,
// maintenance or unknown.
//
// Each kind of check is a Prober in its own file (dicom.go, snmp.go,
// tcp.go, heartbeat.go); registration is a plain map from kind to prober.
package probes

import (
	"context"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// Outcome is what one probe run concluded.
type Outcome string

const (
	// OK: the device answered normally.
	OK Outcome = "ok"
	// Degraded: it answered, but slowly, or a resource is nearly full.
	Degraded Outcome = "degraded"
	// Failed: no answer (refused, timeout, silence): counts towards down.
	Failed Outcome = "failed"
	// Misconfigured: it answered but refused us (wrong AE title, wrong SNMP
	// credentials): a configuration fault, never an outage.
	Misconfigured Outcome = "misconfigured"
	// Unknown: the prober could not judge (our own database did not
	// answer): the device's state and counters stay as they were.
	Unknown Outcome = "unknown"
)

// Result is the outcome of one probe run with its evidence.
type Result struct {
	Prober  string  `json:"prober"`
	Outcome Outcome `json:"outcome"`
	// At is when the result came in: what it decides (a transition, an
	// outage, their events) carries this instant, however late it is
	// committed.
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
	// Detail is the evidence for people: "connection refused",
	// "association rejected: called AE title not recognized", "rtt 3ms".
	Detail string `json:"detail"`
	// Uptime is the agent's sysUpTime when the prober reads one (SNMP): a
	// value lower than the previous run's means the device rebooted.
	Uptime time.Duration `json:"uptime_ns,omitempty"`
	// Facts carries prober-specific readings (interfaces down, storage use)
	// shown as evidence on transitions.
	Facts map[string]string `json:"facts,omitempty"`
	// WorklistFailing: the worklist query answered wrong or empty when
	// items were expected (Outcome is Degraded); the ticketing stage opens
	// a "worklist failing" ticket while it lasts.
	WorklistFailing bool `json:"worklist_failing,omitempty"`
}

// Prober checks one aspect of a device. Implementations are safe for
// concurrent use by the scheduler's workers (each call owns its own
// connection or client).
type Prober interface {
	// Applies reports whether the device has the endpoint this prober needs.
	Applies(d assets.Device) bool
	// Probe runs one check, honouring ctx's deadline.
	Probe(ctx context.Context, d assets.Device) Result
}
