// Package sla computes service-level due instants for support tickets:
// response and resolution targets per policy and severity, counted in
// business time, wall-clock time or business days, with pauses, severity
// changes, early warnings and escalation levels.
//
// It is pure: inputs are plain values (opened instant, severity, pauses,
// severity changes) and so are outputs. It never reads the clock; whoever
// asks "is it breached?" says at which instant.
//
// The rules, each pinned by a row of testdata/due_cases.json:
//   - A wall-clock target starts at the opening instant (the detection
//     instant of a probe ticket, the report instant of a person's): a
//     Friday 22:00 Sev 1 on an 8x5 contract with 9 wall-clock hours is due
//     Saturday 07:00. A business-time or business-day target starts at the
//     first working instant at or after opening (a Saturday report counts
//     from Monday 08:00).
//   - A target used up exactly at the end of a working interval is due at
//     that end (Friday 18:00, not Monday 08:00).
//   - Business-day targets fall due at the same local time on the Nth
//     working day. Pauses push them by the working time they hold.
//   - Paused time does not count; pauses are merged; a running pause leaves
//     no due instant, only the time remaining.
//   - A severity change keeps the original start and all pauses. If the new
//     target is already used up at the change, the clock restarts at the
//     change with the whole new target (grace), so a change never breaches
//     on the spot; breaches that happened before the change are the ticket
//     store's record, not recomputed here.
//   - Meeting a target at the due instant itself is on time.
package sla

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
	"gopkg.in/yaml.v3"
)

// The presets are contract data, reviewed like contracts, not Go literals.
//
//go:embed presets.yaml
var presetsYAML []byte

// Count says how a target's time is counted.
type Count string

const (
	// Business counts working time of the policy calendar.
	Business Count = "business"
	// Wall counts elapsed time from the opening instant itself, whatever
	// the calendar.
	Wall Count = "wall"
	// BusinessDays falls due at the same local time on the Nth working day.
	BusinessDays Count = "business_days"
)

// ClockRule says, for people, when each kind of target starts counting;
// `vigia sla policies` prints it above the policies.
const ClockRule = "Clocks: a wall-clock target starts at the opening instant (detection by a probe, or a person's report), " +
	"nights, weekends and holidays included; a business or business-day target starts at the first working instant at or after opening. " +
	"/ Relojes: un objetivo en horas corridas empieza en el instante de apertura (detección o reporte), también de noche, " +
	"fin de semana o festivo; uno en horas o días hábiles, en el primer instante hábil desde la apertura."

// Target is one contractual time limit.
type Target struct {
	Count Count `yaml:"count" json:"count"`
	// Within is the time allowed (0 = immediate). For BusinessDays see Days.
	Within time.Duration `yaml:"within" json:"within"`
	Days   int           `yaml:"days,omitempty" json:"days,omitempty"`
	// Warn is an early-warning mark, counted like Within (0 = none).
	Warn time.Duration `yaml:"warn,omitempty" json:"warn,omitempty"`
	// Levels is the time allowed at each escalation level; Within is their sum.
	Levels []time.Duration `yaml:"levels,omitempty" json:"levels,omitempty"`
	Note   string          `yaml:"note,omitempty" json:"note,omitempty"`
}

// String renders a target for people: "9h wall (warn 5h)", "1 business day".
func (t Target) String() string {
	if t.Count == BusinessDays {
		if t.Days == 1 {
			return "1 business day"
		}
		return fmt.Sprintf("%d business days", t.Days)
	}
	s := fmtDur(t.Within) + " " + string(t.Count)
	if t.Within == 0 {
		s = "immediate (0) " + string(t.Count)
	}
	if t.Warn > 0 {
		s += " (warn " + fmtDur(t.Warn) + ")"
	}
	if len(t.Levels) > 0 {
		s += " (levels"
		for _, l := range t.Levels {
			s += " " + fmtDur(l)
		}
		s += ")"
	}
	return s
}

// fmtDur prints 9h, 30m, 1h30m rather than Go's 9h0m0s.
func fmtDur(d time.Duration) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case d%time.Minute != 0:
		return d.String()
	case h > 0 && m > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case h > 0:
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dm", m)
}

// MarshalJSON writes durations as Go duration strings ("9h0m0s"), which
// people and jq can read, instead of nanoseconds.
func (t Target) MarshalJSON() ([]byte, error) {
	levels := make([]string, len(t.Levels))
	for i, l := range t.Levels {
		levels[i] = l.String()
	}
	return json.Marshal(struct {
		Count  Count    `json:"count"`
		Within string   `json:"within,omitempty"`
		Days   int      `json:"days,omitempty"`
		Warn   string   `json:"warn,omitempty"`
		Levels []string `json:"levels,omitempty"`
		Note   string   `json:"note,omitempty"`
		Text   string   `json:"text"`
	}{t.Count, durOrEmpty(t.Within, t.Count != BusinessDays), t.Days, durOrEmpty(t.Warn, false), levels, t.Note, t.String()})
}

// durOrEmpty renders d, or "" when it is zero and zero means "unset".
func durOrEmpty(d time.Duration, zeroMeaningful bool) string {
	if d == 0 && !zeroMeaningful {
		return ""
	}
	return d.String()
}

// Severity holds the targets of one severity level; nil means no target.
type Severity struct {
	Level      int     `yaml:"level" json:"level"`
	Name       string  `yaml:"name" json:"name"`
	Response   *Target `yaml:"response,omitempty" json:"response,omitempty"`
	Resolution *Target `yaml:"resolution,omitempty" json:"resolution,omitempty"`
}

// Closure is the pre-closure protocol of a policy, as data for whoever
// schedules the contacts.
type Closure struct {
	Text string `yaml:"text,omitempty" json:"text,omitempty"`
	// FirstContact is when the customer is first contacted ("at_solution").
	FirstContact string `yaml:"first_contact,omitempty" json:"first_contact,omitempty"`
	// Calls every CallEvery during CallFor, then e-mails every EmailEvery
	// during EmailFor (seed 000 §15).
	CallEvery  time.Duration `yaml:"call_every,omitempty" json:"call_every,omitempty"`
	CallFor    time.Duration `yaml:"call_for,omitempty" json:"call_for,omitempty"`
	EmailEvery time.Duration `yaml:"email_every,omitempty" json:"email_every,omitempty"`
	EmailFor   time.Duration `yaml:"email_for,omitempty" json:"email_for,omitempty"`
	// ContactAttempts on AttemptsOn ("business_days") — seed 001.
	ContactAttempts int    `yaml:"contact_attempts,omitempty" json:"contact_attempts,omitempty"`
	AttemptsOn      string `yaml:"attempts_on,omitempty" json:"attempts_on,omitempty"`
	// AutoCloseAfter in "awaiting confirmation" (seed 003).
	AutoCloseAfter time.Duration `yaml:"auto_close_after,omitempty" json:"auto_close_after,omitempty"`
	// OnTimeout is what happens when nobody answers ("close_accepted").
	OnTimeout string `yaml:"on_timeout,omitempty" json:"on_timeout,omitempty"`
	// Reopen within ReopenWithinBusinessDays of the solution (0 = no limit).
	Reopen                   bool `yaml:"reopen" json:"reopen"`
	ReopenWithinBusinessDays int  `yaml:"reopen_within_business_days,omitempty" json:"reopen_within_business_days,omitempty"`
}

// MarshalJSON writes durations as Go duration strings, like Target.
func (c Closure) MarshalJSON() ([]byte, error) {
	type plain Closure // no methods: avoids recursion
	return json.Marshal(struct {
		plain
		CallEvery      string `json:"call_every,omitempty"`
		CallFor        string `json:"call_for,omitempty"`
		EmailEvery     string `json:"email_every,omitempty"`
		EmailFor       string `json:"email_for,omitempty"`
		AutoCloseAfter string `json:"auto_close_after,omitempty"`
	}{plain(c), durOrEmpty(c.CallEvery, false), durOrEmpty(c.CallFor, false),
		durOrEmpty(c.EmailEvery, false), durOrEmpty(c.EmailFor, false), durOrEmpty(c.AutoCloseAfter, false)})
}

// Summary renders the protocol parameters in one line.
func (c Closure) Summary() string {
	var parts []string
	if c.FirstContact != "" {
		parts = append(parts, "first contact "+c.FirstContact)
	}
	if c.CallEvery > 0 {
		parts = append(parts, "call every "+fmtDur(c.CallEvery)+" for "+fmtDur(c.CallFor))
	}
	if c.EmailEvery > 0 {
		parts = append(parts, "e-mail every "+fmtDur(c.EmailEvery)+" for "+fmtDur(c.EmailFor))
	}
	if c.ContactAttempts > 0 {
		parts = append(parts, fmt.Sprintf("%d contact attempts on %s", c.ContactAttempts, c.AttemptsOn))
	}
	if c.AutoCloseAfter > 0 {
		parts = append(parts, "auto-close after "+fmtDur(c.AutoCloseAfter)+" awaiting confirmation")
	}
	if c.OnTimeout != "" {
		parts = append(parts, "then "+c.OnTimeout)
	}
	switch {
	case c.Reopen && c.ReopenWithinBusinessDays > 0:
		parts = append(parts, fmt.Sprintf("reopen within %d business days of the solution", c.ReopenWithinBusinessDays))
	case c.Reopen:
		parts = append(parts, "reopen allowed")
	default:
		parts = append(parts, "no reopening")
	}
	return strings.Join(parts, "; ")
}

// Policy is one SLA policy: a calendar and targets per severity.
type Policy struct {
	Name         string     `yaml:"name" json:"name"`
	Seed         string     `yaml:"seed,omitempty" json:"seed,omitempty"`
	CalendarName string     `yaml:"calendar" json:"calendar"`
	Text         string     `yaml:"text" json:"text"`
	Note         string     `yaml:"note,omitempty" json:"note,omitempty"`
	Severities   []Severity `yaml:"severities" json:"severities"`
	// Report is the deadline for reports the customer asks for (seed 000 §14).
	Report      *Target `yaml:"report,omitempty" json:"report,omitempty"`
	Closure     Closure `yaml:"closure" json:"closure"`
	PortalSeats int     `yaml:"portal_seats,omitempty" json:"portal_seats,omitempty"`
	// Availability is how the contract counts uptime (nil: down time only,
	// no target).
	Availability *Availability `yaml:"availability,omitempty" json:"availability,omitempty"`

	cal  *calendar.Calendar
	wall *calendar.Calendar // 24/7 in the same zone, for Wall targets
}

// Availability is how a contract counts a device's uptime: in the policy
// calendar's working time (24/7 counts all), down time in full, degraded
// time times DegradedFactor, unreachable time only when the site uplink is
// the provider's.
type Availability struct {
	DegradedFactor float64 `yaml:"degraded_factor" json:"degraded_factor"`
	UplinkOurs     bool    `yaml:"uplink_ours" json:"uplink_ours"`
	// Target is the promised availability (0–1; 0 = none stated).
	Target float64 `yaml:"target,omitempty" json:"target,omitempty"`
	// Credits are the service credits owed below each threshold.
	Credits []CreditTier `yaml:"credits,omitempty" json:"credits,omitempty"`
	Note    string       `yaml:"note,omitempty" json:"note,omitempty"`
}

// CreditTier: availability below Below earns CreditPercent of the period's
// fee.
type CreditTier struct {
	Below         float64 `yaml:"below" json:"below"`
	CreditPercent float64 `yaml:"credit_percent" json:"credit_percent"`
}

// Tier returns the credit tier an availability reaches: the one with the
// lowest threshold still above it; ok is false when none applies.
func (a *Availability) Tier(availability float64) (CreditTier, bool) {
	var best CreditTier
	found := false
	if a == nil {
		return best, false
	}
	for _, c := range a.Credits {
		if availability < c.Below && (!found || c.Below < best.Below) {
			best, found = c, true
		}
	}
	return best, found
}

func (a *Availability) validate() error {
	if a == nil {
		return nil
	}
	if a.DegradedFactor < 0 || a.DegradedFactor > 1 {
		return fmt.Errorf("degraded_factor %v: want 0 to 1", a.DegradedFactor)
	}
	if a.Target < 0 || a.Target > 1 {
		return fmt.Errorf("target %v: want 0 to 1", a.Target)
	}
	for _, c := range a.Credits {
		if c.Below <= 0 || c.Below > 1 || c.CreditPercent <= 0 || c.CreditPercent > 100 {
			return fmt.Errorf("credit tier below %v, %v%%: want 0 < below ≤ 1 and 0 < credit_percent ≤ 100", c.Below, c.CreditPercent)
		}
	}
	return nil
}

// Calendar is the policy's business calendar.
func (p Policy) Calendar() *calendar.Calendar { return p.cal }

// Severity returns the targets of level n.
func (p Policy) Severity(n int) (Severity, bool) {
	for _, s := range p.Severities {
		if s.Level == n {
			return s, true
		}
	}
	return Severity{}, false
}

// Set is a loaded, validated collection of policies.
type Set struct {
	policies []Policy
}

// ErrUnknownPolicy is returned by Lookup-style callers for a missing name.
var ErrUnknownPolicy = errors.New("sla: unknown policy")

// Presets returns the policies shipped with Vigía.
func Presets() *Set {
	s, err := Load(bytes.NewReader(presetsYAML))
	if err != nil {
		panic(err) // embedded data: any test catches a broken preset
	}
	return s
}

type fileFormat struct {
	Calendars map[string]calendar.Config `yaml:"calendars"`
	Policies  []Policy                   `yaml:"policies"`
}

// Load reads a policy file (the presets.yaml format), strictly: unknown
// fields, unknown calendars and inconsistent targets are errors.
func Load(r io.Reader) (*Set, error) {
	var f fileFormat
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("sla: policies: %w", err)
	}
	cals := map[string]*calendar.Calendar{}
	for name, cfg := range f.Calendars {
		c, err := calendar.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("sla: calendar %s: %w", name, err)
		}
		cals[name] = c
	}
	seen := map[string]bool{}
	for i := range f.Policies {
		p := &f.Policies[i]
		if p.Name == "" {
			return nil, fmt.Errorf("sla: policy #%d has no name", i+1)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("sla: policy %s defined twice", p.Name)
		}
		seen[p.Name] = true
		c, ok := cals[p.CalendarName]
		if !ok {
			return nil, fmt.Errorf("sla: policy %s: unknown calendar %q", p.Name, p.CalendarName)
		}
		p.cal, p.wall = c, calendar.Always247(c.Location())
		if len(p.Severities) == 0 {
			return nil, fmt.Errorf("sla: policy %s: no severities", p.Name)
		}
		levels := map[int]bool{}
		for j := range p.Severities {
			s := &p.Severities[j]
			if s.Level < 1 || levels[s.Level] {
				return nil, fmt.Errorf("sla: policy %s: severity level %d is missing, negative or repeated", p.Name, s.Level)
			}
			levels[s.Level] = true
			for _, t := range []*Target{s.Response, s.Resolution} {
				if err := t.validate(); err != nil {
					return nil, fmt.Errorf("sla: policy %s severity %d: %w", p.Name, s.Level, err)
				}
			}
		}
		sort.Slice(p.Severities, func(a, b int) bool { return p.Severities[a].Level < p.Severities[b].Level })
		if err := p.Report.validate(); err != nil {
			return nil, fmt.Errorf("sla: policy %s report: %w", p.Name, err)
		}
		if err := p.Availability.validate(); err != nil {
			return nil, fmt.Errorf("sla: policy %s availability: %w", p.Name, err)
		}
	}
	return &Set{policies: f.Policies}, nil
}

func (t *Target) validate() error {
	if t == nil {
		return nil
	}
	switch t.Count {
	case Business, Wall:
		if t.Days != 0 {
			return fmt.Errorf("days is only for count %s", BusinessDays)
		}
	case BusinessDays:
		if t.Days < 1 || t.Within != 0 || t.Warn != 0 || len(t.Levels) > 0 {
			return fmt.Errorf("count %s takes days ≥ 1 and no within, warn or levels", BusinessDays)
		}
		return nil
	default:
		return fmt.Errorf("count %q: want %s, %s or %s", t.Count, Business, Wall, BusinessDays)
	}
	if len(t.Levels) > 6 {
		return errors.New("at most 6 escalation levels")
	}
	if len(t.Levels) > 0 {
		var sum time.Duration
		for _, l := range t.Levels {
			if l <= 0 {
				return errors.New("escalation levels must be positive")
			}
			sum += l
		}
		if t.Within != 0 && t.Within != sum {
			return fmt.Errorf("within %s is not the sum of levels (%s)", t.Within, sum)
		}
		t.Within = sum
	}
	if t.Within < 0 || t.Warn < 0 || (t.Warn > 0 && t.Warn >= t.Within) {
		return fmt.Errorf("want 0 ≤ warn < within (warn %s, within %s)", t.Warn, t.Within)
	}
	return nil
}

// Policies lists the policies in file order.
func (s *Set) Policies() []Policy { return append([]Policy(nil), s.policies...) }

// Lookup finds a policy by name.
func (s *Set) Lookup(name string) (Policy, error) {
	for _, p := range s.policies {
		if p.Name == name {
			return p, nil
		}
	}
	names := make([]string, 0, len(s.policies))
	for _, p := range s.policies {
		names = append(names, p.Name)
	}
	return Policy{}, fmt.Errorf("%w %q (have %v)", ErrUnknownPolicy, name, names)
}
