package probes

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
)

// heartbeatLog is an in-memory HeartbeatLog: the prober's judgement of
// silence is tested here; the PostgreSQL store and the HTTP route are tested
// against the real database in engine_test.go (TestHeartbeats).
type heartbeatLog struct {
	last time.Time
	seen bool
	err  error
}

func (l *heartbeatLog) LastHeartbeat(context.Context, string) (time.Time, bool, error) {
	return l.last, l.seen, l.err
}

func (l *heartbeatLog) RecordHeartbeat(_ context.Context, _ string, at time.Time, _ string) error {
	l.last, l.seen = at, true
	return nil
}

func TestHeartbeatProbe(t *testing.T) {
	started := time.Date(2026, 11, 13, 22, 0, 0, 0, time.UTC)
	device := assets.Device{ID: "ris", Heartbeat: &assets.HeartbeatEndpoint{Grace: 90 * time.Second}}
	tests := []struct {
		name    string
		log     heartbeatLog
		now     time.Duration // after started
		want    Outcome
		details string
	}{
		{"never spoke, still within grace from start", heartbeatLog{}, 60 * time.Second, OK, "heartbeat 1m0s ago"},
		{"never spoke, grace over", heartbeatLog{}, 91 * time.Second, Failed, "no heartbeat ever received (grace 1m30s)"},
		{"spoke recently", heartbeatLog{last: started.Add(5 * time.Minute), seen: true}, 6 * time.Minute, OK, "heartbeat 1m0s ago"},
		{"silent past grace", heartbeatLog{last: started.Add(5 * time.Minute), seen: true}, 7 * time.Minute, Failed,
			"no heartbeat for 2m0s (grace 1m30s), last at 2026-11-13T22:05:00Z"},
		// A heartbeat from before monitoring began (a restart of Vigía) does
		// not make the device late at once: the grace counts from the start.
		{"last heartbeat before monitoring started", heartbeatLog{last: started.Add(-time.Hour), seen: true}, 60 * time.Second, OK, "heartbeat 1m0s ago"},
		// Our own database failing says nothing about the device.
		{"log unavailable", heartbeatLog{err: errors.New("connection refused")}, time.Hour, Unknown, "heartbeat not checked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClockAt(started.Add(tc.now))
			log := tc.log
			p := &Heartbeat{Log: &log, Clock: clock, Started: started}
			r := p.Probe(context.Background(), device)
			if r.Outcome != tc.want || !strings.Contains(r.Detail, tc.details) || r.Prober != "heartbeat" {
				t.Fatalf("Probe = %+v; want %s with %q", r, tc.want, tc.details)
			}
		})
	}
	if (&Heartbeat{}).Applies(assets.Device{}) || !(&Heartbeat{}).Applies(device) {
		t.Fatal("Applies must follow the device's heartbeat endpoint")
	}
}
