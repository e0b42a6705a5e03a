package probes

import (
	"slices"
	"time"
)

// State is what Vigía believes about a device.
type State string

// The states of a device.
const (
	StateUp            State = "up"
	StateDegraded      State = "degraded"      // answering, but slow or nearly full
	StateDown          State = "down"          // confirmed not answering: an outage
	StateUnreachable   State = "unreachable"   // not answering because its site's gateway is down
	StateMisconfigured State = "misconfigured" // answering but refusing us: a configuration fault
	StateMaintenance   State = "maintenance"   // inside a maintenance window: probed, raises nothing
	StateUnknown       State = "unknown"       // not probed yet
)

// States lists every state, for metrics.
var States = []State{StateUp, StateDegraded, StateDown, StateUnreachable, StateMisconfigured, StateMaintenance, StateUnknown}

// good reports whether the device is answering.
func (s State) good() bool { return s == StateUp || s == StateDegraded }

// bad reports whether the device is not answering.
func (s State) bad() bool { return s == StateDown || s == StateUnreachable }

// Policy holds the thresholds of the state machine.
type Policy struct {
	// FailuresToDown consecutive failures declare a device down (retries + 1).
	FailuresToDown int
	// SuccessesToUp consecutive successes bring a down device back up.
	SuccessesToUp int
	// FlapTransitions good/bad transitions within FlapWindow make a device
	// flapping; it stops flapping after a whole FlapWindow without one.
	FlapTransitions int
	FlapWindow      time.Duration
}

// DefaultPolicy is used when a device says nothing else.
var DefaultPolicy = Policy{FailuresToDown: 4, SuccessesToUp: 2, FlapTransitions: 6, FlapWindow: 10 * time.Minute}

// Status is the persisted state of one device and the counters behind it.
type Status struct {
	State             State
	Since             time.Time
	Failures          int // consecutive failed probes
	Successes         int // consecutive good probes
	Flapping          bool
	RecentTransitions []time.Time // good/bad transitions inside the flap window
	LastUptime        time.Duration
	LastDetail        string
	LastProbeAt       time.Time
	// WorklistFailing: the worklist was failing at the last probe that
	// checked it; worklist_failing and worklist_restored mark its changes.
	WorklistFailing bool
}

// Observation is one combined probe result, with the context the state
// machine needs.
type Observation struct {
	At      time.Time
	Outcome Outcome
	Detail  string
	Uptime  time.Duration // zero when unknown
	// InMaintenance: the device is inside a maintenance window now.
	InMaintenance bool
	// GatewayDown: the device's site has lost its uplink, so a failure
	// means unreachable, not down.
	GatewayDown bool
	// OutageOpen: an outage of this device is open (from before).
	OutageOpen bool
	// Worklist is what the worklist check said, when it got an answer
	// (true: failing); nil when the device has none or did not answer.
	Worklist *bool
}

// Event kinds published for the ticketing stage.
const (
	EventDeviceDown      = "device_down"
	EventDeviceUp        = "device_up"
	EventSiteDown        = "site_down"
	EventSiteUp          = "site_up"
	EventFlappingStarted = "flapping_started"
	EventFlappingStopped = "flapping_stopped"
	EventMisconfigured   = "misconfigured"
	EventRebooted        = "rebooted"
	// A worklist started failing (query failed, or empty when expected),
	// and was answered right again.
	EventWorklistFailing  = "worklist_failing"
	EventWorklistRestored = "worklist_restored"
)

// Decision is what one observation changes.
type Decision struct {
	Next Status
	// Transition is set when the state changed.
	Transition *Transition
	// OpenOutage and CloseOutage ask the store to open or end the device's
	// outage (which publishes device_down / device_up).
	OpenOutage, CloseOutage bool
	// Events without an outage: flapping, misconfigured, rebooted.
	Events []string
}

// Transition is a change of state.
type Transition struct {
	From, To State
	At       time.Time
}

// Step applies one observation to a device's status. It is pure: all time
// comes from the observation, so tests are exact and instant.
func Step(prev Status, obs Observation, p Policy) Decision {
	next := prev
	next.LastProbeAt = obs.At
	next.LastDetail = obs.Detail
	var d Decision

	// The worklist's own events, apart from the device's state: a broker
	// answering C-ECHO with a dead worklist is degraded, and that is its
	// own ticket. Inside a maintenance window nothing is published; the
	// first probe after it publishes what still holds.
	if obs.Worklist != nil && !obs.InMaintenance && *obs.Worklist != prev.WorklistFailing {
		next.WorklistFailing = *obs.Worklist
		if next.WorklistFailing {
			d.Events = append(d.Events, EventWorklistFailing)
		} else {
			d.Events = append(d.Events, EventWorklistRestored)
		}
	}

	if obs.Uptime > 0 {
		if prev.LastUptime > 0 && obs.Uptime < prev.LastUptime {
			d.Events = append(d.Events, EventRebooted)
		}
		next.LastUptime = obs.Uptime
	}

	// The underlying state, before maintenance is taken into account.
	cur := prev.State
	if cur == StateMaintenance || cur == StateUnknown || cur == "" {
		cur = StateUnknown
	}
	var candidate State
	switch obs.Outcome {
	case Failed:
		next.Failures++
		next.Successes = 0
		candidate = cur
		if next.Failures >= p.FailuresToDown {
			candidate = StateDown
			if obs.GatewayDown {
				candidate = StateUnreachable
			}
		} else if cur == StateDown && obs.GatewayDown {
			candidate = StateUnreachable
		}
	case OK, Degraded:
		next.Successes++
		next.Failures = 0
		good := StateUp
		if obs.Outcome == Degraded {
			good = StateDegraded
		}
		candidate = good
		// Hysteresis: a device that was out comes back only after enough
		// consecutive good answers.
		if cur.bad() && next.Successes < p.SuccessesToUp {
			candidate = cur
		}
	case Misconfigured:
		next.Failures, next.Successes = 0, 0
		candidate = StateMisconfigured
	default:
		candidate = cur
	}
	if candidate == StateUnknown && prev.State == StateMaintenance {
		// Still inside the confirmation count after a window: keep showing it.
		candidate = StateMaintenance
	}

	// Flap detection counts good<->bad swings of the underlying state.
	window := obs.At.Add(-p.FlapWindow)
	next.RecentTransitions = slices.DeleteFunc(slices.Clone(prev.RecentTransitions), func(t time.Time) bool { return t.Before(window) })
	if (cur.good() && candidate.bad()) || (cur.bad() && candidate.good()) {
		next.RecentTransitions = append(next.RecentTransitions, obs.At)
	}
	wasFlapping := prev.Flapping
	switch {
	case !wasFlapping && p.FlapTransitions > 0 && len(next.RecentTransitions) >= p.FlapTransitions:
		next.Flapping = true
		d.Events = append(d.Events, EventFlappingStarted)
	case wasFlapping && len(next.RecentTransitions) == 0:
		next.Flapping = false
		d.Events = append(d.Events, EventFlappingStopped)
	}

	// What is shown: maintenance hides everything but an outage that was
	// already open (it is not silently dropped).
	shown := candidate
	if obs.InMaintenance && !(obs.OutageOpen && candidate.bad()) {
		shown = StateMaintenance
	}
	if shown != prev.State {
		next.State = shown
		next.Since = obs.At
		d.Transition = &Transition{From: prev.State, To: shown, At: obs.At}
		if shown == StateMisconfigured {
			d.Events = append(d.Events, EventMisconfigured)
		}
	}
	if next.State == "" {
		next.State = StateUnknown
	}

	// Outages change only when the device is not flapping (a flapping
	// device raised its one flapping event instead) and never open inside a
	// maintenance window or for an unreachable device (the site incident
	// covers it).
	if !next.Flapping {
		switch {
		case candidate == StateDown && !obs.OutageOpen && !obs.InMaintenance:
			d.OpenOutage = true
		case (candidate.good() || candidate == StateMisconfigured) && obs.OutageOpen:
			d.CloseOutage = true
		}
	}
	next.Successes = min(next.Successes, p.SuccessesToUp)
	next.Failures = min(next.Failures, p.FailuresToDown)
	d.Next = next
	return d
}
