package biomed

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// Rule is when a task falls due: every N months from an anchor, or a
// calendar rule such as "first monday of each quarter". A due day that is
// not a working day of the customer's calendar (a weekend or a public
// holiday of its country) moves to the next working day.
type Rule struct {
	EveryMonths int
	// Calendar rule: Nth (1..4, or -1 for last) Weekday of each month in
	// Months, or Day (1..31, clamped to the month's end) of each of them.
	Nth     int
	Weekday time.Weekday
	Day     int
	Months  []time.Month
}

var ordinals = map[string]int{"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

var monthNames = map[string]time.Month{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
	"sep": 9, "oct": 10, "nov": 11, "dec": 12}

// ParseSchedule reads a calendar rule:
//
//	first|second|third|fourth|last WEEKDAY of MONTHS
//	day N of MONTHS
//
// where MONTHS is "each month", "each quarter" (January, April, July,
// October), "each half" (January, July), "each year" (January) or a list
// such as "jan,apr,jul,oct" ("every" may replace "each").
func ParseSchedule(s string) (Rule, error) {
	words := strings.Fields(strings.ToLower(strings.TrimSpace(s)))
	bad := func() (Rule, error) {
		return Rule{}, fmt.Errorf(`schedule %q: want "first|second|third|fourth|last WEEKDAY of MONTHS" or "day N of MONTHS"`, s)
	}
	if len(words) < 4 || words[2] != "of" {
		return bad()
	}
	var r Rule
	if words[0] == "day" {
		n, err := strconv.Atoi(words[1])
		if err != nil || n < 1 || n > 31 {
			return bad()
		}
		r.Day = n
	} else {
		nth, ok := ordinals[words[0]]
		wd, ok2 := weekdays[words[1]]
		if !ok || !ok2 {
			return bad()
		}
		r.Nth, r.Weekday = nth, wd
	}
	months := strings.Join(words[3:], " ")
	switch strings.TrimPrefix(strings.TrimPrefix(months, "each "), "every ") {
	case "month":
		r.Months = []time.Month{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	case "quarter":
		r.Months = []time.Month{1, 4, 7, 10}
	case "half":
		r.Months = []time.Month{1, 7}
	case "year":
		r.Months = []time.Month{1}
	default:
		for _, m := range strings.Split(strings.ReplaceAll(months, " ", ""), ",") {
			mm, ok := monthNames[m]
			if !ok {
				return Rule{}, fmt.Errorf("schedule %q: unknown month %q (jan…dec)", s, m)
			}
			if !slices.Contains(r.Months, mm) {
				r.Months = append(r.Months, mm)
			}
		}
		slices.Sort(r.Months)
	}
	return r, nil
}

// date is a calendar day at midnight UTC: days, not instants.
func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// addMonths is d n months later, clamped to the end of a shorter month.
func addMonths(d time.Time, n int) time.Time {
	first := date(d.Year(), d.Month()+time.Month(n), 1)
	last := first.AddDate(0, 1, -1).Day()
	return date(first.Year(), first.Month(), min(d.Day(), last))
}

// nominal lists the rule's days in [from, to] before any shift, anchored
// at anchor for interval rules.
func (r Rule) nominal(anchor, from, to time.Time) []time.Time {
	var out []time.Time
	if r.EveryMonths > 0 {
		for k := 0; ; k++ {
			d := addMonths(anchor, k*r.EveryMonths)
			if d.After(to) {
				break
			}
			if !d.Before(from) {
				out = append(out, d)
			}
		}
		return out
	}
	for m := date(from.Year(), from.Month(), 1); !m.After(to); m = m.AddDate(0, 1, 0) {
		if !slices.Contains(r.Months, m.Month()) {
			continue
		}
		var d time.Time
		last := m.AddDate(0, 1, -1)
		switch {
		case r.Day > 0:
			d = date(m.Year(), m.Month(), min(r.Day, last.Day()))
		case r.Nth > 0:
			d = m.AddDate(0, 0, (int(r.Weekday)-int(m.Weekday())+7)%7+7*(r.Nth-1))
			if d.After(last) {
				continue // no fifth weekday this month
			}
		default:
			d = last.AddDate(0, 0, -((int(last.Weekday()) - int(r.Weekday) + 7) % 7))
		}
		if !d.Before(from) && !d.After(to) {
			out = append(out, d)
		}
	}
	return out
}

// Days lists the due days of the rule whose nominal day falls in [from,
// to], each moved to the next working day of cal, in order, without
// repeats (two nominal days shifted onto the same day are one visit).
func (r Rule) Days(cal *calendar.Calendar, anchor, from, to time.Time) []time.Time {
	var out []time.Time
	for _, d := range r.nominal(anchor, from, to) {
		d = NextWorkingDay(cal, d)
		if len(out) == 0 || !out[len(out)-1].Equal(d) {
			out = append(out, d)
		}
	}
	return out
}

// NextWorkingDay is d itself when some of it is working time in cal, else
// the first later day that is.
func NextWorkingDay(cal *calendar.Calendar, d time.Time) time.Time {
	if cal == nil {
		return d
	}
	loc := cal.Location()
	next := cal.Next(time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc))
	if next.IsZero() {
		return d
	}
	y, m, day := next.In(loc).Date()
	return date(y, m, day)
}

// CustomerCalendar is a customer's working calendar for planning visits:
// Monday to Friday in its time zone, closed on its country's public
// holidays (a country without holiday rules: weekdays only).
func CustomerCalendar(zone, country string) (*calendar.Calendar, error) {
	cfg := calendar.Config{Zone: zone, Hours: map[string][]string{"mon-fri": {"08:00-18:00"}}}
	if slices.Contains(calendar.Countries(), strings.ToUpper(country)) {
		cfg.Holidays = []string{country}
	}
	return calendar.New(cfg)
}
