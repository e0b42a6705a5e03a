package sla

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// Input is what a ticket store knows about a ticket's clock.
type Input struct {
	Opened   time.Time
	Severity int // severity at opening
	// Pauses stop the clock (waiting on the customer, a manufacturer, parts…).
	// A pause with a zero To is still running. Order and overlaps do not
	// matter: pauses are merged.
	Pauses []calendar.Interval
	// Changes are later severity changes, in any order.
	Changes []SeverityChange
}

// SeverityChange re-prioritises a ticket at an instant.
type SeverityChange struct {
	At       time.Time
	Severity int
}

// Schedule is the SLA of a ticket at its current severity.
type Schedule struct {
	Policy   string
	Severity int // the current severity (after the last change)
	Opened   time.Time
	// Start is the first working instant at or after Opened: business and
	// business-day clocks count from here, wall-clock ones from Opened (or
	// either from a grace restart, see Clock).
	Start      time.Time
	Response   Clock
	Resolution Clock
}

// Clock is one target's state.
type Clock struct {
	// Defined is false when the policy sets no such target for the severity.
	Defined bool
	Target  Target
	// From is the instant the clock counts from: Schedule.Opened for a
	// wall-clock target, Schedule.Start otherwise; after a grace restart,
	// the change itself (wall clock) or the working instant at or after it.
	From time.Time
	// Due is the deadline; zero when not Defined or while Paused.
	Due time.Time
	// Paused means an open pause holds the clock: there is no due instant,
	// only Remaining (elapsed time for wall counts, working time for
	// business and business-day counts).
	Paused    bool
	Remaining time.Duration
	// Warning is the early-warning instant (zero if none or not reached
	// before a running pause).
	Warning time.Time
	// Escalations are the instants the ticket moves up a level.
	Escalations []Escalation
	// Grace is set when a severity change found the new target already
	// used up: the clock restarted at the change with the full new target.
	Grace bool
}

// Escalation is the instant a ticket must move to Level.
type Escalation struct {
	Level int
	At    time.Time
}

// Breached reports whether at is past the due instant. Meeting the target
// exactly at Due is not a breach; a paused or undefined clock never is.
func (c Clock) Breached(at time.Time) bool {
	return c.Defined && !c.Due.IsZero() && at.After(c.Due)
}

// ErrInput marks a bad Input (unknown severity, change before opening…).
var ErrInput = errors.New("sla: bad input")

// Due computes the schedule of a ticket. It reads no clock: the result
// depends on in alone, so a ticket store can recompute it whenever a pause
// or severity change is recorded.
//
// Wall-clock targets count from the opening instant (the contract's
// hours are "after the fact is known", whatever the calendar); business
// and business-day targets from the first working instant at or after it.
// Severity changes keep the original start and every pause. If the new
// severity's target is already used up at the change (its due would be at
// or before the change), the clock restarts at the change with the full new
// target (Clock.Grace) — re-prioritising never makes a ticket breach on the
// spot. Only the last change matters.
func (p Policy) Due(in Input) (Schedule, error) {
	if in.Opened.IsZero() {
		return Schedule{}, fmt.Errorf("%w: no opening instant", ErrInput)
	}
	if _, ok := p.Severity(in.Severity); !ok {
		return Schedule{}, fmt.Errorf("%w: policy %s has no severity %d", ErrInput, p.Name, in.Severity)
	}
	pauses, err := calendar.NormalizePauses(in.Pauses)
	if err != nil {
		return Schedule{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	sevNow := in.Severity
	var last *SeverityChange
	if len(in.Changes) > 0 {
		changes := append([]SeverityChange(nil), in.Changes...)
		sort.SliceStable(changes, func(i, j int) bool { return changes[i].At.Before(changes[j].At) })
		for _, ch := range changes {
			if ch.At.Before(in.Opened) {
				return Schedule{}, fmt.Errorf("%w: severity change at %s is before opening", ErrInput, ch.At.Format(time.RFC3339))
			}
			if _, ok := p.Severity(ch.Severity); !ok {
				return Schedule{}, fmt.Errorf("%w: policy %s has no severity %d", ErrInput, p.Name, ch.Severity)
			}
		}
		last = &changes[len(changes)-1]
		sevNow = last.Severity
	}
	sev, _ := p.Severity(sevNow)
	s := Schedule{Policy: p.Name, Severity: sevNow, Opened: in.Opened, Start: p.cal.Next(in.Opened)}
	s.Response = p.clockWithGrace(sev.Response, in.Opened, pauses, last)
	s.Resolution = p.clockWithGrace(sev.Resolution, in.Opened, pauses, last)
	return s, nil
}

// startAt is where target t starts counting for an event at at: the event
// itself for a wall-clock target, the first working instant at or after it
// otherwise.
func (p Policy) startAt(t *Target, at time.Time) time.Time {
	if t != nil && t.Count == Wall {
		return at
	}
	return p.cal.Next(at)
}

func (p Policy) clockWithGrace(t *Target, opened time.Time, pauses []calendar.Interval, change *SeverityChange) Clock {
	c := p.clock(t, p.startAt(t, opened), pauses)
	if change != nil && c.Defined && !c.Paused && !c.Due.After(change.At) {
		c = p.clock(t, p.startAt(t, change.At), pauses)
		c.Grace = true
	}
	return c
}

// clock runs target t from the working instant from.
func (p Policy) clock(t *Target, from time.Time, pauses []calendar.Interval) Clock {
	if t == nil {
		return Clock{}
	}
	c := Clock{Defined: true, Target: *t, From: from}
	if t.Count == BusinessDays {
		due := p.cal.AddDays(from, t.Days)
		if overlaps(pauses, from, due) {
			// Paused working time pushes the deadline by as much working
			// time; strict so that a deadline landing on closing time keeps
			// "next working day" semantics.
			r := p.cal.AddStrict(from, p.cal.Between(from, due, nil), pauses)
			c.Due, c.Paused, c.Remaining = r.At, r.Paused, r.Left
		} else {
			c.Due = due
		}
		return c
	}
	cal := p.cal
	if t.Count == Wall {
		cal = p.wall
	}
	// One walk computes warning, escalations and due: marks are ascending
	// because Warn < Within and levels add up to Within.
	var marks [8]time.Duration
	var res [8]calendar.Result
	n := 0
	if t.Warn > 0 {
		marks[n] = t.Warn
		n++
	}
	var sum time.Duration
	for i := 0; i+1 < len(t.Levels) && n < len(marks)-1; i++ {
		sum += t.Levels[i]
		marks[n] = sum
		n++
	}
	marks[n] = t.Within
	n++
	cal.AddAll(from, marks[:n], pauses, res[:n])
	i := 0
	if t.Warn > 0 {
		c.Warning = res[0].At
		i++
	}
	for lvl := 2; i < n-1; i, lvl = i+1, lvl+1 {
		if !res[i].Paused {
			c.Escalations = append(c.Escalations, Escalation{Level: lvl, At: res[i].At})
		}
	}
	due := res[n-1]
	c.Due, c.Paused, c.Remaining = due.At, due.Paused, due.Left
	return c
}

// overlaps reports whether any pause intersects [a, b).
func overlaps(pauses []calendar.Interval, a, b time.Time) bool {
	for _, p := range pauses {
		if p.From.Before(b) && (p.Open() || p.To.After(a)) {
			return true
		}
	}
	return false
}

// ReportDue is the deadline of a report requested at requested (seed 000
// §14); ok is false when the policy sets none.
func (p Policy) ReportDue(requested time.Time) (due time.Time, ok bool) {
	if p.Report == nil {
		return time.Time{}, false
	}
	c := p.clock(p.Report, p.startAt(p.Report, requested), nil)
	return c.Due, true
}
