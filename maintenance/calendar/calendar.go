// Package calendar answers business-time questions for support contracts:
// is this instant working time, when does working time resume, what instant
// is N working hours (or N business days) after t, and how much working time
// lies between two instants — with time zones, split shifts, national
// holidays, per-calendar closed/open days, and pauses.
//
// It walks working intervals, never minutes, so a due-time computation costs
// a few microseconds whatever the target.
package calendar

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the zone database travels with the binary
)

// Config is the data form of a calendar (YAML in policy files).
type Config struct {
	// Zone is an IANA time zone name, e.g. America/Bogota.
	Zone string `yaml:"zone" json:"zone"`
	// Always makes a 24/7 calendar: every instant is working time and
	// holidays do not apply.
	Always bool `yaml:"always,omitempty" json:"always,omitempty"`
	// Holidays are ISO country codes whose public holidays close the day.
	Holidays []string `yaml:"holidays,omitempty" json:"holidays,omitempty"`
	// Hours maps weekdays ("mon", "tue"…, or a range "mon-fri") to working
	// intervals "HH:MM-HH:MM" in local wall-clock time; "24:00" ends a day.
	Hours map[string][]string `yaml:"hours,omitempty" json:"hours,omitempty"`
	// Closed are extra non-working dates (YYYY-MM-DD), e.g. a company day off.
	Closed []string `yaml:"closed,omitempty" json:"closed,omitempty"`
	// Open are extra working dates; they win over weekends and holidays.
	Open []OpenDay `yaml:"open,omitempty" json:"open,omitempty"`
}

// OpenDay is an extra working date. Without Hours it works the hours of the
// calendar's first working weekday (Monday in every preset).
type OpenDay struct {
	Date  string   `yaml:"date" json:"date"`
	Hours []string `yaml:"hours,omitempty" json:"hours,omitempty"`
}

// Interval is a span of instants [From, To). A zero To means still open
// (a pause that has not ended yet).
type Interval struct {
	From, To time.Time
}

// Open reports whether the interval has no end yet.
func (iv Interval) Open() bool { return iv.To.IsZero() }

// span is a working interval of one local day, in seconds after midnight.
type span struct{ from, to int }

const daySeconds = 24 * 60 * 60

// Day kinds cached per year, so the walk does one lookup per day.
const (
	dayNormal uint8 = iota
	dayClosed
	dayOpen
)

type yearInfo struct{ kind [367]uint8 } // indexed by YearDay (1..366)

// Calendar is immutable after New and safe for concurrent use.
type Calendar struct {
	loc       *time.Location
	always    bool
	week      [7][]span
	std       []span // hours of an extra open day without its own hours
	countries []*country
	closed    map[Date]bool
	open      map[Date][]span
	years     sync.Map // int → *yearInfo
	cfg       Config
}

// ErrNoWorkingTime means a calendar has no working hours on any weekday.
var ErrNoWorkingTime = errors.New("calendar: no working hours on any weekday")

// maxIdleDays bounds a search for working time: a valid calendar never has
// ten years without a working day, so hitting it means a broken calendar
// (e.g. every working day listed as closed) rather than a slow one.
const maxIdleDays = 3660

var dayKeys = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Always247 returns a 24/7 calendar in loc.
func Always247(loc *time.Location) *Calendar {
	return &Calendar{loc: loc, always: true, cfg: Config{Zone: loc.String(), Always: true}}
}

// New builds a calendar from its data form.
func New(cfg Config) (*Calendar, error) {
	if cfg.Zone == "" {
		return nil, errors.New("calendar: zone is required")
	}
	loc, err := time.LoadLocation(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("calendar: zone %q: %w", cfg.Zone, err)
	}
	c := &Calendar{loc: loc, always: cfg.Always, cfg: cfg}
	if cfg.Always {
		if len(cfg.Hours)+len(cfg.Holidays)+len(cfg.Closed)+len(cfg.Open) > 0 {
			return nil, errors.New("calendar: an always-open (24/7) calendar takes no hours, holidays, closed or open days")
		}
		return c, nil
	}
	var seen [7]bool
	for key, ivs := range cfg.Hours {
		days, err := parseDayKey(key)
		if err != nil {
			return nil, err
		}
		spans, err := parseSpans(ivs)
		if err != nil {
			return nil, fmt.Errorf("calendar: hours %q: %w", key, err)
		}
		for _, d := range days {
			if seen[d] {
				return nil, fmt.Errorf("calendar: hours: %s given twice", strings.ToLower(d.String()[:3]))
			}
			seen[d] = true
			c.week[d] = spans
		}
	}
	for d := time.Monday; ; d = (d + 1) % 7 {
		if len(c.week[d]) > 0 {
			c.std = c.week[d]
			break
		}
		if d == time.Sunday {
			return nil, ErrNoWorkingTime
		}
	}
	for _, code := range cfg.Holidays {
		co, ok := countries[strings.ToUpper(code)]
		if !ok {
			return nil, fmt.Errorf("calendar: no holiday rules for country %q (have %s)", code, strings.Join(Countries(), ", "))
		}
		c.countries = append(c.countries, co)
	}
	c.closed = map[Date]bool{}
	for _, s := range cfg.Closed {
		d, err := ParseDate(s)
		if err != nil {
			return nil, err
		}
		c.closed[d] = true
	}
	c.open = map[Date][]span{}
	for _, od := range cfg.Open {
		d, err := ParseDate(od.Date)
		if err != nil {
			return nil, err
		}
		sp := c.std
		if len(od.Hours) > 0 {
			if sp, err = parseSpans(od.Hours); err != nil {
				return nil, fmt.Errorf("calendar: open day %s: %w", od.Date, err)
			}
		}
		c.open[d] = sp
	}
	return c, nil
}

func parseDayKey(key string) ([]time.Weekday, error) {
	k := strings.ToLower(strings.TrimSpace(key))
	from, to, isRange := strings.Cut(k, "-")
	a, ok1 := dayKeys[from]
	b, ok2 := a, true
	if isRange {
		b, ok2 = dayKeys[to]
	}
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("calendar: hours: bad day %q (want mon…sun or a range like mon-fri)", key)
	}
	var out []time.Weekday
	for d := a; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == b {
			return out, nil
		}
	}
}

func parseSpans(ivs []string) ([]span, error) {
	out := make([]span, 0, len(ivs))
	for _, iv := range ivs {
		a, b, ok := strings.Cut(iv, "-")
		if !ok {
			return nil, fmt.Errorf("bad interval %q (want HH:MM-HH:MM)", iv)
		}
		from, err1 := parseClock(a)
		to, err2 := parseClock(b)
		if err1 != nil || err2 != nil || from >= to {
			return nil, fmt.Errorf("bad interval %q (want HH:MM-HH:MM, start before end, up to 24:00)", iv)
		}
		out = append(out, span{from, to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from < out[j].from })
	for i := 1; i < len(out); i++ {
		if out[i].from < out[i-1].to {
			return nil, fmt.Errorf("intervals %v overlap", ivs)
		}
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad clock time %q", s)
	}
	return hh*3600 + mm*60, nil
}

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Config returns the data the calendar was built from.
func (c *Calendar) Config() Config { return c.cfg }

// IsAlways reports whether this is a 24/7 calendar.
func (c *Calendar) IsAlways() bool { return c.always }

// String describes the calendar in one line, e.g.
// "mon-fri 08:00-12:00,14:00-18:00 America/Lima, holidays PE".
func (c *Calendar) String() string {
	if c.always {
		return "24/7 " + c.loc.String()
	}
	var parts []string
	for i := 0; i < 7; {
		d := time.Weekday((i + 1) % 7) // Monday first
		j := i + 1
		for j < 7 && equalSpans(c.week[(j+1)%7], c.week[d]) {
			j++
		}
		if len(c.week[d]) > 0 {
			name := strings.ToLower(d.String()[:3])
			if j-1 > i {
				name += "-" + strings.ToLower(time.Weekday(j % 7).String()[:3])
			}
			var hs []string
			for _, s := range c.week[d] {
				hs = append(hs, clock(s.from)+"-"+clock(s.to))
			}
			parts = append(parts, name+" "+strings.Join(hs, ","))
		}
		i = j
	}
	s := strings.Join(parts, "; ") + " " + c.loc.String()
	if len(c.countries) > 0 {
		var cs []string
		for _, co := range c.countries {
			cs = append(cs, co.Code)
		}
		s += ", holidays " + strings.Join(cs, ",")
	}
	return s
}

func clock(sec int) string { return fmt.Sprintf("%02d:%02d", sec/3600, sec/60%60) }

func equalSpans(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Holidays lists the calendar's holidays in year (all its countries),
// with the extra closed dates named "closed".
func (c *Calendar) Holidays(year int) []Holiday {
	var out []Holiday
	for _, co := range c.countries {
		out = append(out, co.holidays(year)...)
	}
	for d := range c.closed {
		if d.Year == year {
			out = append(out, Holiday{Date: d, Name: "closed"})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date.utc().Before(out[j].Date.utc()) })
	return out
}

func (c *Calendar) year(y int) *yearInfo {
	if v, ok := c.years.Load(y); ok {
		return v.(*yearInfo)
	}
	yi := &yearInfo{}
	mark := func(d Date, k uint8) {
		if d.Year == y {
			yi.kind[d.utc().YearDay()] = k
		}
	}
	for _, co := range c.countries {
		for _, h := range co.holidays(y) {
			mark(h.Date, dayClosed)
		}
	}
	for d := range c.closed {
		mark(d, dayClosed)
	}
	for d := range c.open { // open days win over holidays and closed days
		mark(d, dayOpen)
	}
	v, _ := c.years.LoadOrStore(y, yi)
	return v.(*yearInfo)
}

// cursor walks local dates one by one without calling time.Date for the
// date arithmetic; time.Date is only used to turn wall-clock bounds into
// instants, which is what makes DST days come out as real elapsed time.
type cursor struct {
	c     *Calendar
	y     int
	m     time.Month
	d     int
	wd    time.Weekday
	yd    int
	yi    *yearInfo
	yiFor int
}

func (c *Calendar) cursorAt(t time.Time) cursor {
	lt := t.In(c.loc)
	y, m, d := lt.Date()
	return cursor{c: c, y: y, m: m, d: d, wd: lt.Weekday(), yd: lt.YearDay()}
}

func (cu *cursor) spans() []span {
	if cu.yi == nil || cu.yiFor != cu.y {
		cu.yi, cu.yiFor = cu.c.year(cu.y), cu.y
	}
	switch cu.yi.kind[cu.yd] {
	case dayClosed:
		return nil
	case dayOpen:
		return cu.c.open[Date{cu.y, cu.m, cu.d}]
	}
	return cu.c.week[cu.wd]
}

func (cu *cursor) at(sec int) time.Time {
	return time.Date(cu.y, cu.m, cu.d, 0, 0, sec, 0, cu.c.loc)
}

func (cu *cursor) advance() {
	cu.d++
	cu.yd++
	cu.wd = (cu.wd + 1) % 7
	if cu.d > daysIn(cu.m, cu.y) {
		cu.d = 1
		cu.m++
		if cu.m > time.December {
			cu.m = time.January
			cu.y++
			cu.yd = 1
		}
	}
}

func daysIn(m time.Month, y int) int {
	switch m {
	case time.April, time.June, time.September, time.November:
		return 30
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// forever stands for "no end" in a 24/7 walk.
var forever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// walker yields the working intervals at or after a lower bound, in order,
// clipped so none starts before the bound.
type walker struct {
	cu    cursor
	from  time.Time
	spans []span
	i     int
	idle  int
	done  bool
}

func (c *Calendar) walk(from time.Time) walker {
	w := walker{from: from}
	if c.always {
		return w
	}
	w.cu = c.cursorAt(from)
	w.spans = w.cu.spans()
	return w
}

func (w *walker) next() (s, e time.Time, ok bool) {
	if w.done {
		return time.Time{}, time.Time{}, false
	}
	if w.cu.c == nil { // 24/7: one interval without end
		w.done = true
		return w.from, forever, true
	}
	for {
		for w.i < len(w.spans) {
			sp := w.spans[w.i]
			w.i++
			e = w.cu.at(sp.to)
			if !e.After(w.from) {
				continue
			}
			s = w.cu.at(sp.from)
			if s.Before(w.from) {
				s = w.from
			}
			if s.Before(e) { // a span inside a DST gap can collapse to nothing
				w.idle = 0
				return s, e, true
			}
		}
		w.idle++
		if w.idle > maxIdleDays {
			w.done = true
			return time.Time{}, time.Time{}, false
		}
		w.cu.advance()
		w.spans, w.i = w.cu.spans(), 0
	}
}

// IsWorking reports whether t falls inside working time.
func (c *Calendar) IsWorking(t time.Time) bool {
	if c.always {
		return true
	}
	cu := c.cursorAt(t)
	for _, sp := range cu.spans() {
		if !t.Before(cu.at(sp.from)) && t.Before(cu.at(sp.to)) {
			return true
		}
	}
	return false
}

// Next returns the first working instant at or after t (t itself when it
// is working time). Working intervals are half-open, so Friday 18:00 on a
// calendar that closes at 18:00 moves to Monday's opening.
func (c *Calendar) Next(t time.Time) time.Time {
	w := c.walk(t)
	s, _, ok := w.next()
	if !ok {
		return time.Time{}
	}
	return s
}

// Result is the outcome of adding working time under pauses.
type Result struct {
	// At is the instant the added time is used up; zero while Paused.
	At time.Time
	// Paused means an open pause stops the clock before the time is used
	// up: there is no due instant, only Left.
	Paused bool
	// Left is the working time still to run when Paused.
	Left time.Duration
}

// Add returns the instant d of working time after t, not counting time in
// pauses. Time used up exactly at the end of a working interval falls due at
// that end (Friday 18:00, not Monday 08:00). Add(t, 0, nil) is Next(t).
func (c *Calendar) Add(t time.Time, d time.Duration, pauses []Interval) Result {
	var out [1]Result
	c.AddAll(t, []time.Duration{d}, pauses, out[:])
	return out[0]
}

// AddAll is Add for several durations in one walk: ds must be ascending and
// out as long as ds. It is how a schedule gets its warning, escalation and
// due instants for the price of one.
func (c *Calendar) AddAll(t time.Time, ds []time.Duration, pauses []Interval, out []Result) {
	c.consume(t, ds, pauses, false, out)
}

// AddStrict is Add except that time used up exactly at the end of a working
// interval falls due at the next working instant. It is how business-day
// targets extend over pauses: "same time on the next working day", not
// "closing time of this one".
func (c *Calendar) AddStrict(t time.Time, d time.Duration, pauses []Interval) Result {
	var out [1]Result
	c.consume(t, []time.Duration{d}, pauses, true, out[:])
	return out[0]
}

func (c *Calendar) consume(t time.Time, ds []time.Duration, pauses []Interval, strict bool, out []Result) {
	pauses = normalized(pauses)
	k := 0
	var used time.Duration
	w := c.walk(t)
	pi := 0
	for k < len(ds) {
		s, e, ok := w.next()
		if !ok {
			break
		}
		for s.Before(e) && k < len(ds) {
			for pi < len(pauses) && !pauses[pi].Open() && !pauses[pi].To.After(s) {
				pi++
			}
			if pi < len(pauses) && !pauses[pi].From.After(s) { // paused at s
				if pauses[pi].Open() {
					for ; k < len(ds); k++ {
						out[k] = Result{Paused: true, Left: ds[k] - used}
					}
					return
				}
				s = pauses[pi].To
				continue
			}
			end := e
			if pi < len(pauses) && pauses[pi].From.Before(e) {
				end = pauses[pi].From
			}
			n := end.Sub(s)
			for k < len(ds) {
				left := ds[k] - used
				if left < n || (!strict && left == n) {
					out[k] = Result{At: s.Add(left)}
					k++
					continue
				}
				break
			}
			used += n
			s = end
		}
	}
	for ; k < len(ds); k++ { // only for a calendar with no working time at all
		out[k] = Result{Left: ds[k] - used}
	}
}

// Between returns the working time in [a, b) outside pauses (0 if b ≤ a).
func (c *Calendar) Between(a, b time.Time, pauses []Interval) time.Duration {
	if !a.Before(b) {
		return 0
	}
	pauses = normalized(pauses)
	var total time.Duration
	w := c.walk(a)
	pi := 0
	for {
		s, e, ok := w.next()
		if !ok || !s.Before(b) {
			return total
		}
		if e.After(b) {
			e = b
		}
		for s.Before(e) {
			for pi < len(pauses) && !pauses[pi].Open() && !pauses[pi].To.After(s) {
				pi++
			}
			if pi < len(pauses) && !pauses[pi].From.After(s) {
				if pauses[pi].Open() {
					return total
				}
				s = pauses[pi].To
				continue
			}
			end := e
			if pi < len(pauses) && pauses[pi].From.Before(e) {
				end = pauses[pi].From
			}
			total += end.Sub(s)
			s = end
		}
	}
}

// Working returns the working intervals within [a, b), in order (one
// interval for a 24/7 calendar): the time a contract covers.
func (c *Calendar) Working(a, b time.Time) []Interval {
	var out []Interval
	if !a.Before(b) {
		return out
	}
	w := c.walk(a)
	for {
		s, e, ok := w.next()
		if !ok || !s.Before(b) {
			return out
		}
		if e.After(b) {
			e = b
		}
		out = append(out, Interval{From: s, To: e})
	}
}

// AddDays returns the same local wall-clock time as t on the nth working
// day after t's date (a working day is one with any working hours). n ≤ 0
// returns t. On a 24/7 calendar every day is a working day.
func (c *Calendar) AddDays(t time.Time, n int) time.Time {
	if n <= 0 {
		return t
	}
	lt := t.In(c.loc)
	if c.always {
		return lt.AddDate(0, 0, n)
	}
	cu := c.cursorAt(t)
	for idle := 0; n > 0; {
		cu.advance()
		if len(cu.spans()) > 0 {
			n--
			idle = 0
		} else if idle++; idle > maxIdleDays {
			return time.Time{}
		}
	}
	return time.Date(cu.y, cu.m, cu.d, lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), c.loc)
}

// IsWorkingDay reports whether date d has any working hours.
func (c *Calendar) IsWorkingDay(d Date) bool {
	if c.always {
		return true
	}
	t := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, c.loc)
	cu := c.cursorAt(t)
	return len(cu.spans()) > 0
}

// ErrPause reports a malformed pause list.
var ErrPause = errors.New("calendar: bad pause")

// NormalizePauses sorts pauses, drops empty ones and merges overlapping or
// touching ones; an open pause swallows everything after its start. A
// pause that ends before it starts is an error.
func NormalizePauses(ps []Interval) ([]Interval, error) {
	for _, p := range ps {
		if p.From.IsZero() {
			return nil, fmt.Errorf("%w: pause without a start", ErrPause)
		}
		if !p.Open() && p.To.Before(p.From) {
			return nil, fmt.Errorf("%w: pause ends (%s) before it starts (%s)", ErrPause,
				p.To.Format(time.RFC3339), p.From.Format(time.RFC3339))
		}
	}
	return normalized(ps), nil
}

// normalized is NormalizePauses for callers that validated already; it
// returns ps itself when it is already in shape, so the hot path does not
// allocate.
func normalized(ps []Interval) []Interval {
	ok := true
	for i, p := range ps {
		if (!p.Open() && !p.To.After(p.From)) || (i > 0 && (ps[i-1].Open() || !ps[i-1].To.Before(p.From))) {
			ok = false
			break
		}
	}
	if ok {
		return ps
	}
	sorted := make([]Interval, 0, len(ps))
	for _, p := range ps {
		if p.Open() || p.To.After(p.From) {
			sorted = append(sorted, p)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].From.Before(sorted[j].From) })
	out := sorted[:0]
	for _, p := range sorted {
		if n := len(out); n > 0 && (out[n-1].Open() || !out[n-1].To.Before(p.From)) {
			last := &out[n-1]
			if last.Open() {
				continue
			}
			if p.Open() || p.To.After(last.To) {
				last.To = p.To
			}
			continue
		}
		out = append(out, p)
	}
	return out
}
