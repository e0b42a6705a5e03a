package calendar

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The rules are data, not code: a law change is a one-line edit to this file.
//
//go:embed holidays.yaml
var holidaysYAML []byte

// Date is a civil date with no time zone: a holiday is a day, not an instant.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("calendar: bad date %q (want YYYY-MM-DD)", s)
	}
	return DateOf(t), nil
}

// DateOf returns the civil date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Weekday of the date in the proleptic Gregorian calendar.
func (d Date) Weekday() time.Weekday { return d.utc().Weekday() }

// AddDays moves the date by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.utc().AddDate(0, 0, n)) }

func (d Date) utc() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// Holiday is one public holiday as observed (after any move to Monday).
type Holiday struct {
	Date    Date
	Name    string
	Country string
}

type holidayRule struct {
	Name    string `yaml:"name"`
	Kind    string `yaml:"kind"`
	Month   int    `yaml:"month"`
	Day     int    `yaml:"day"`
	Offset  int    `yaml:"offset"`
	Weekday string `yaml:"weekday"`
	Nth     int    `yaml:"nth"`
	From    int    `yaml:"from"`
	Until   int    `yaml:"until"`
	Every   int    `yaml:"every"`
	Base    int    `yaml:"base"`

	weekday time.Weekday
}

type country struct {
	Code  string        `yaml:"-"`
	Name  string        `yaml:"name"`
	Law   string        `yaml:"law"`
	Rules []holidayRule `yaml:"rules"`
}

var countries = mustLoadCountries(holidaysYAML)

func mustLoadCountries(data []byte) map[string]*country {
	cs, err := loadCountries(data)
	if err != nil {
		// The file is embedded: a bad rule is a build defect, caught by any test.
		panic(err)
	}
	return cs
}

var weekdayNames = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday,
	"saturday": time.Saturday,
}

func loadCountries(data []byte) (map[string]*country, error) {
	var raw map[string]*country
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("calendar: holiday rules: %w", err)
	}
	for code, c := range raw {
		c.Code = code
		for i := range c.Rules {
			r := &c.Rules[i]
			switch r.Kind {
			case "fixed", "fixed_monday":
				if r.Month < 1 || r.Month > 12 || r.Day < 1 || r.Day > 31 {
					return nil, fmt.Errorf("calendar: %s %q: bad month/day", code, r.Name)
				}
			case "easter", "easter_monday":
			case "nth_weekday":
				wd, ok := weekdayNames[r.Weekday]
				if !ok || r.Month < 1 || r.Month > 12 || r.Nth == 0 || r.Nth > 5 || r.Nth < -1 {
					return nil, fmt.Errorf("calendar: %s %q: bad nth_weekday rule", code, r.Name)
				}
				r.weekday = wd
			default:
				return nil, fmt.Errorf("calendar: %s %q: unknown kind %q", code, r.Name, r.Kind)
			}
			if r.Every < 0 || (r.Every > 0 && r.Base == 0) {
				return nil, fmt.Errorf("calendar: %s %q: every needs a base year", code, r.Name)
			}
		}
	}
	return raw, nil
}

// Countries lists the country codes that have holiday rules.
func Countries() []string {
	out := make([]string, 0, len(countries))
	for c := range countries {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Holidays lists the public holidays of country in year, sorted by date.
func Holidays(countryCode string, year int) ([]Holiday, error) {
	c, ok := countries[strings.ToUpper(countryCode)]
	if !ok {
		return nil, fmt.Errorf("calendar: no holiday rules for country %q (have %s)", countryCode, strings.Join(Countries(), ", "))
	}
	return c.holidays(year), nil
}

func (c *country) holidays(year int) []Holiday {
	var out []Holiday
	easter := Easter(year)
	for _, r := range c.Rules {
		if (r.From != 0 && year < r.From) || (r.Until != 0 && year > r.Until) {
			continue
		}
		if r.Every > 0 && ((year-r.Base)%r.Every+r.Every)%r.Every != 0 {
			continue
		}
		var d Date
		switch r.Kind {
		case "fixed":
			d = Date{year, time.Month(r.Month), r.Day}
		case "fixed_monday":
			d = nextMonday(Date{year, time.Month(r.Month), r.Day})
		case "easter":
			d = easter.AddDays(r.Offset)
		case "easter_monday":
			d = nextMonday(easter.AddDays(r.Offset))
		case "nth_weekday":
			d = nthWeekday(year, time.Month(r.Month), r.weekday, r.Nth)
		}
		out = append(out, Holiday{Date: d, Name: r.Name, Country: c.Code})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Date.utc().Before(out[j].Date.utc()) })
	return out
}

// nextMonday returns d when it is a Monday, else the Monday after it.
func nextMonday(d Date) Date {
	return d.AddDays((int(time.Monday) - int(d.Weekday()) + 7) % 7)
}

func nthWeekday(year int, m time.Month, wd time.Weekday, nth int) Date {
	if nth < 0 {
		last := Date{year, m + 1, 0}.AddDays(0) // day 0 of next month normalises to the last day
		return last.AddDays(-((int(last.Weekday()) - int(wd) + 7) % 7))
	}
	first := Date{year, m, 1}
	return first.AddDays((int(wd)-int(first.Weekday())+7)%7 + 7*(nth-1))
}

// Easter returns Western (Gregorian) Easter Sunday of year, by the
// anonymous Gregorian algorithm (Meeus/Jones/Butcher).
func Easter(year int) Date {
	a := year % 19
	b, c := year/100, year%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return Date{year, time.Month(month), day}
}
