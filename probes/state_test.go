package probes

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// run feeds a sequence of outcomes (one letter each: o ok, d degraded,
// f failed, m misconfigured) through Step and returns the states shown after
// each probe, the outages opened/closed and the events.
func run(t *testing.T, p Policy, seq string, mod func(i int, o *Observation)) (states []State, opened, closed int, events []string) {
	t.Helper()
	st := Status{State: StateUnknown}
	outage := false
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for i, c := range seq {
		o := Observation{At: t0.Add(time.Duration(i) * 10 * time.Second), OutageOpen: outage}
		switch c {
		case 'o':
			o.Outcome = OK
		case 'd':
			o.Outcome = Degraded
		case 'f':
			o.Outcome = Failed
		case 'm':
			o.Outcome = Misconfigured
		}
		if mod != nil {
			mod(i, &o)
		}
		d := Step(st, o, p)
		if d.OpenOutage {
			if outage {
				t.Fatalf("probe %d: opened an outage while one is open", i)
			}
			outage = true
			opened++
		}
		if d.CloseOutage {
			if !outage {
				t.Fatalf("probe %d: closed an outage that is not open", i)
			}
			outage = false
			closed++
		}
		if d.Transition != nil && (d.Transition.From != st.State || d.Transition.To != d.Next.State) {
			t.Fatalf("probe %d: transition %+v does not match %s -> %s", i, d.Transition, st.State, d.Next.State)
		}
		events = append(events, d.Events...)
		st = d.Next
		states = append(states, st.State)
	}
	return
}

func short(states []State) string {
	abbrev := map[State]string{StateUp: "U", StateDegraded: "G", StateDown: "D", StateUnreachable: "R",
		StateMisconfigured: "M", StateMaintenance: "W", StateUnknown: "?"}
	var b strings.Builder
	for _, s := range states {
		b.WriteString(abbrev[s])
	}
	return b.String()
}

func TestStep(t *testing.T) {
	p := Policy{FailuresToDown: 3, SuccessesToUp: 2, FlapTransitions: 4, FlapWindow: 5 * time.Minute}
	tests := []struct {
		name           string
		seq            string
		mod            func(i int, o *Observation)
		want           string
		opened, closed int
		events         []string
	}{
		{name: "first good probe is up", seq: "oo", want: "UU"},
		{name: "down only after 3 consecutive failures", seq: "offfff", want: "UUUDDD", opened: 1},
		{name: "failures interrupted by a success never go down", seq: "offoffo", want: "UUUUUUU"},
		{name: "recovery needs 2 successes", seq: "offfofoo", want: "UUUDDDDU", opened: 1, closed: 1},
		{name: "slow answers are degraded at once", seq: "odo", want: "UGU"},
		{name: "unknown device failing from the start goes down", seq: "fff", want: "??D", opened: 1},
		{name: "rejection is misconfigured at once, no outage", seq: "omo", want: "UMU", events: []string{EventMisconfigured}},
		{name: "misconfigured answer closes an open outage", seq: "offfm", want: "UUUDM", opened: 1, closed: 1, events: []string{EventMisconfigured}},
		{name: "gateway down: unreachable, no outage", seq: "offff",
			mod: func(i int, o *Observation) { o.GatewayDown = true }, want: "UUURR"},
		{name: "down then gateway lost: unreachable, outage kept open", seq: "offfff",
			mod: func(i int, o *Observation) { o.GatewayDown = i >= 4 }, want: "UUUDRR", opened: 1},
		{name: "maintenance: probed, shown, no outage", seq: "offffo",
			mod: func(i int, o *Observation) { o.InMaintenance = true }, want: "WWWWWW"},
		{name: "outage from before the window is not dropped", seq: "offfffoo",
			mod: func(i int, o *Observation) { o.InMaintenance = i >= 4 }, want: "UUUDDDDW", opened: 1, closed: 1},
		{name: "still failing when the window ends: down, outage opens", seq: "offfff",
			mod: func(i int, o *Observation) { o.InMaintenance = i <= 3 }, want: "WWWWDD", opened: 1},
		{name: "reboot seen from a lower uptime", seq: "ooo",
			mod: func(i int, o *Observation) {
				o.Uptime = []time.Duration{time.Hour, time.Hour + 10*time.Second, 5 * time.Second}[i]
			},
			want: "UUU", events: []string{EventRebooted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			states, opened, closed, events := run(t, p, tt.seq, tt.mod)
			if got := short(states); got != tt.want {
				t.Errorf("states = %s, want %s", got, tt.want)
			}
			if opened != tt.opened || closed != tt.closed {
				t.Errorf("outages opened/closed = %d/%d, want %d/%d", opened, closed, tt.opened, tt.closed)
			}
			if !slices.Equal(events, tt.events) {
				t.Errorf("events = %v, want %v", events, tt.events)
			}
		})
	}
}

// A device flapping at every probe raises one flapping event, not one per
// flap, and its outage stays as it was while it flaps.
func TestStepFlapping(t *testing.T) {
	p := Policy{FailuresToDown: 1, SuccessesToUp: 1, FlapTransitions: 4, FlapWindow: 5 * time.Minute}
	seq := strings.Repeat("of", 20) // 40 probes, 10 s apart: a change every probe
	_, opened, closed, events := run(t, p, seq, nil)
	if n := count(events, EventFlappingStarted); n != 1 {
		t.Fatalf("flapping_started events = %d, want 1 (events %v)", n, events)
	}
	// Before detection: down, up, down (3 transitions, 2 outages opened and 1 closed).
	if opened != 2 || closed != 1 {
		t.Errorf("outages opened/closed = %d/%d, want 2/1 before flapping was detected", opened, closed)
	}
	// Then stable for a whole window: flapping stops, and the outage opened
	// before is closed since the device is up.
	seq += strings.Repeat("o", 40)
	states, opened, closed, events := run(t, p, seq, nil)
	if count(events, EventFlappingStopped) != 1 || count(events, EventFlappingStarted) != 1 {
		t.Fatalf("events = %v", events)
	}
	if opened != closed || states[len(states)-1] != StateUp {
		t.Errorf("after flapping stops: opened %d closed %d, last state %s", opened, closed, states[len(states)-1])
	}
}

func count(events []string, kind string) int {
	n := 0
	for _, e := range events {
		if e == kind {
			n++
		}
	}
	return n
}
