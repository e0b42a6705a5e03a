package fleetsim

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Outage is a scheduled outage for demos: the device goes down After the
// schedule is made, stays down For, then comes back up.
type Outage struct {
	Device string
	After  time.Duration
	For    time.Duration
	Mode   Mode
}

func (o Outage) String() string {
	return fmt.Sprintf("%s@%s+%s", o.Device, o.After, o.For)
}

// ParseOutage reads DEVICE@AFTER+DURATION, e.g. "hsr-pacs@60s+5m".
func ParseOutage(s string) (Outage, error) {
	id, rest, ok1 := strings.Cut(s, "@")
	after, dur, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || id == "" {
		return Outage{}, fmt.Errorf("fleetsim: outage %q: want DEVICE@AFTER+DURATION, e.g. hsr-pacs@60s+5m", s)
	}
	o := Outage{Device: id, Mode: Refuse}
	var err error
	if o.After, err = time.ParseDuration(after); err != nil || o.After < 0 {
		return Outage{}, fmt.Errorf("fleetsim: outage %q: AFTER %q is not a duration (e.g. 60s)", s, after)
	}
	if o.For, err = time.ParseDuration(dur); err != nil || o.For <= 0 {
		return Outage{}, fmt.Errorf("fleetsim: outage %q: DURATION %q is not a positive duration (e.g. 5m)", s, dur)
	}
	return o, nil
}

// Schedule arranges an outage, counted from now. Its start and end are
// logged at Info, one line each. A control operation on the device in
// between wins until the outage's next step.
func (s *Simulator) Schedule(o Outage) error {
	if _, err := s.device(o.Device); err != nil {
		return err
	}
	if o.Mode == "" {
		o.Mode = Refuse
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	d := s.byID[o.Device]
	s.timers = append(s.timers, time.AfterFunc(o.After, func() {
		err := s.setAndLog(d, false, o.Mode, "scheduled outage", "for", o.For)
		if errors.Is(err, ErrClosed) {
			return // fired while shutting down
		}
		if err != nil {
			s.log.Warn("scheduled outage could not start", "device", o.Device, "error", err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.timers = append(s.timers, time.AfterFunc(o.For, func() {
			if err := s.setAndLog(d, true, Refuse, "scheduled outage over", "after", o.For); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("scheduled outage could not end", "device", o.Device, "error", err)
			}
		}))
	}))
	return nil
}
