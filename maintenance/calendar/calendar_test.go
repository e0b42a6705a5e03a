package calendar

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustCal(t testing.TB, cfg Config) *Calendar {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Calendars shaped like the contract presets, plus a DST one.
var (
	limaSplit = Config{Zone: "America/Lima", Holidays: []string{"PE"},
		Hours: map[string][]string{"mon-fri": {"08:00-12:00", "14:00-18:00"}}}
	bogota8x5 = Config{Zone: "America/Bogota", Holidays: []string{"CO"},
		Hours: map[string][]string{"mon-fri": {"08:00-18:00"}}}
	mexico9to6 = Config{Zone: "America/Mexico_City", Holidays: []string{"MX"},
		Hours: map[string][]string{"mon-fri": {"09:00-18:00"}}}
	// New York changes to EDT on Sunday 8 March 2026 (02:00 → 03:00) and
	// back to EST on Sunday 1 November 2026 (02:00 → 01:00).
	newYorkNights = Config{Zone: "America/New_York",
		Hours: map[string][]string{"mon-sun": {"00:00-04:00"}}}
)

func ts(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestIsWorkingAndNext(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		at      string
		working bool
		next    string
	}{
		{"lima morning", limaSplit, "2026-03-02T09:00:00-05:00", true, "2026-03-02T09:00:00-05:00"},
		{"lima lunch break", limaSplit, "2026-03-02T12:00:00-05:00", false, "2026-03-02T14:00:00-05:00"},
		{"lima last second of the morning", limaSplit, "2026-03-02T11:59:59-05:00", true, "2026-03-02T11:59:59-05:00"},
		{"lima friday close is not working", limaSplit, "2026-03-06T18:00:00-05:00", false, "2026-03-09T08:00:00-05:00"},
		{"lima fiestas patrias tue-wed 2026", limaSplit, "2026-07-27T19:00:00-05:00", false, "2026-07-30T08:00:00-05:00"},
		{"lima given in UTC", limaSplit, "2026-03-02T13:30:00Z", true, "2026-03-02T13:30:00Z"},
		{"bogota easter thursday+friday", bogota8x5, "2026-04-01T18:30:00-05:00", false, "2026-04-06T08:00:00-05:00"},
		{"bogota emiliani monday", bogota8x5, "2026-01-09T17:00:00-05:00", true, "2026-01-09T17:00:00-05:00"},
		{"bogota emiliani monday is closed", bogota8x5, "2026-01-12T10:00:00-05:00", false, "2026-01-13T08:00:00-05:00"},
		{"mexico benito juarez monday", mexico9to6, "2026-03-13T18:00:00-06:00", false, "2026-03-17T09:00:00-06:00"},
		{"new york spring-forward night", newYorkNights, "2026-03-08T03:30:00-04:00", true, "2026-03-08T03:30:00-04:00"},
		{"new york after hours", newYorkNights, "2026-03-08T04:00:00-04:00", false, "2026-03-09T00:00:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCal(t, tt.cfg)
			at := ts(t, tt.at)
			if got := c.IsWorking(at); got != tt.working {
				t.Errorf("IsWorking = %v, want %v", got, tt.working)
			}
			if got, want := c.Next(at), ts(t, tt.next); !got.Equal(want) {
				t.Errorf("Next = %s, want %s", got.In(c.Location()).Format(time.RFC3339), tt.next)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	type p = [2]string
	tests := []struct {
		name   string
		cfg    Config
		from   string
		add    time.Duration
		pauses []p
		want   string // RFC3339, or "paused <left>"
	}{
		{"split shift skips lunch", limaSplit, "2026-03-02T11:30:00-05:00", time.Hour, nil, "2026-03-02T14:30:00-05:00"},
		{"used up at end of morning", limaSplit, "2026-03-02T11:00:00-05:00", time.Hour, nil, "2026-03-02T12:00:00-05:00"},
		{"used up at friday close stays friday", limaSplit, "2026-03-06T16:00:00-05:00", 2 * time.Hour, nil, "2026-03-06T18:00:00-05:00"},
		{"one minute more goes to monday", limaSplit, "2026-03-06T16:00:00-05:00", 2*time.Hour + time.Minute, nil, "2026-03-09T08:01:00-05:00"},
		{"zero is next working instant", limaSplit, "2026-03-07T10:00:00-05:00", 0, nil, "2026-03-09T08:00:00-05:00"},
		{"over fiestas patrias", limaSplit, "2026-07-27T17:00:00-05:00", 3 * time.Hour, nil, "2026-07-30T10:00:00-05:00"},
		// 36 business hours from Friday 1 May 2026 (holiday) 10:00: clock
		// starts Mon 4 May 08:00; 8 h a day → Mon..Thu = 32 h, then 4 h Fri.
		{"36h from a holiday", limaSplit, "2026-05-01T10:00:00-05:00", 36 * time.Hour, nil, "2026-05-08T12:00:00-05:00"},
		{"pause spanning lunch", limaSplit, "2026-03-02T10:00:00-05:00", 3 * time.Hour,
			[]p{{"2026-03-02T11:00:00-05:00", "2026-03-02T15:00:00-05:00"}}, "2026-03-02T17:00:00-05:00"},
		{"overlapping pauses merge", limaSplit, "2026-03-02T08:00:00-05:00", 2 * time.Hour,
			[]p{{"2026-03-02T09:00:00-05:00", "2026-03-02T10:00:00-05:00"}, {"2026-03-02T09:30:00-05:00", "2026-03-02T10:30:00-05:00"}},
			"2026-03-02T11:30:00-05:00"},
		{"open pause", limaSplit, "2026-03-02T08:00:00-05:00", 3 * time.Hour,
			[]p{{"2026-03-02T09:15:00-05:00", ""}}, "paused 1h45m0s"},
		{"pause before start ignored", limaSplit, "2026-03-02T08:00:00-05:00", time.Hour,
			[]p{{"2026-02-27T09:00:00-05:00", "2026-03-01T10:00:00-05:00"}}, "2026-03-02T09:00:00-05:00"},
		{"bogota 18h over holiday monday", bogota8x5, "2026-01-09T14:00:00-05:00", 18 * time.Hour, nil, "2026-01-14T12:00:00-05:00"},
		// 4 working hours from 00:00 on the spring-forward Sunday are 3 real
		// hours that night (02:00–03:00 does not exist) + 1 h Monday.
		{"dst spring forward", newYorkNights, "2026-03-08T00:00:00-05:00", 4 * time.Hour, nil, "2026-03-09T01:00:00-04:00"},
		{"dst spring forward exact", newYorkNights, "2026-03-08T00:00:00-05:00", 3 * time.Hour, nil, "2026-03-08T04:00:00-04:00"},
		// The fall-back night has 5 real hours (01:00–02:00 happens twice).
		{"dst fall back", newYorkNights, "2026-11-01T00:00:00-04:00", 5 * time.Hour, nil, "2026-11-01T04:00:00-05:00"},
		{"24/7 wall clock over dst", Config{Zone: "America/New_York", Always: true}, "2026-03-07T12:00:00-05:00", 24 * time.Hour, nil, "2026-03-08T13:00:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCal(t, tt.cfg)
			var ps []Interval
			for _, x := range tt.pauses {
				iv := Interval{From: ts(t, x[0])}
				if x[1] != "" {
					iv.To = ts(t, x[1])
				}
				ps = append(ps, iv)
			}
			ps, err := NormalizePauses(ps)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Add(ts(t, tt.from), tt.add, ps)
			if strings.HasPrefix(tt.want, "paused ") {
				if !r.Paused || r.Left.String() != strings.TrimPrefix(tt.want, "paused ") || !r.At.IsZero() {
					t.Errorf("Add = %+v, want %s", r, tt.want)
				}
				return
			}
			if r.Paused || !r.At.Equal(ts(t, tt.want)) {
				t.Errorf("Add = %s (paused %v), want %s", r.At.In(c.Location()).Format(time.RFC3339), r.Paused, tt.want)
			}
			// Between is Add's inverse whenever the result is not paused.
			if got := c.Between(ts(t, tt.from), r.At, ps); got != tt.add && tt.add > 0 {
				t.Errorf("Between(from, Add) = %s, want %s", got, tt.add)
			}
		})
	}
}

func TestAddAllMatchesAdd(t *testing.T) {
	c := mustCal(t, limaSplit)
	from := ts(t, "2026-07-24T11:00:00-05:00")
	ps := []Interval{{From: ts(t, "2026-07-24T15:00:00-05:00"), To: ts(t, "2026-07-27T09:00:00-05:00")}}
	ds := []time.Duration{0, time.Hour, 5 * time.Hour, 5 * time.Hour, 9 * time.Hour, 40 * time.Hour}
	out := make([]Result, len(ds))
	c.AddAll(from, ds, ps, out)
	for i, d := range ds {
		if one := c.Add(from, d, ps); one != out[i] {
			t.Errorf("AddAll[%d] (%s) = %+v, Add = %+v", i, d, out[i], one)
		}
	}
}

func TestBetween(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		a, b string
		want time.Duration
	}{
		{"lima one day", limaSplit, "2026-03-02T00:00:00-05:00", "2026-03-03T00:00:00-05:00", 8 * time.Hour},
		{"lima week with two holidays", limaSplit, "2026-07-27T00:00:00-05:00", "2026-08-01T00:00:00-05:00", 3 * 8 * time.Hour},
		{"reversed is zero", limaSplit, "2026-03-03T00:00:00-05:00", "2026-03-02T00:00:00-05:00", 0},
		{"dst day has 23 hours", Config{Zone: "America/New_York", Always: true}, "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00", 23 * time.Hour},
		{"all-day hours on dst day", Config{Zone: "America/New_York", Hours: map[string][]string{"sun": {"00:00-24:00"}}},
			"2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00", 25 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCal(t, tt.cfg)
			if got := c.Between(ts(t, tt.a), ts(t, tt.b), nil); got != tt.want {
				t.Errorf("Between = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAddDays(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		from string
		n    int
		want string
	}{
		{"mexico one day", mexico9to6, "2026-03-10T10:15:00-06:00", 1, "2026-03-11T10:15:00-06:00"},
		{"mexico over weekend", mexico9to6, "2026-03-06T17:00:00-06:00", 1, "2026-03-09T17:00:00-06:00"},
		{"mexico over weekend and benito juarez", mexico9to6, "2026-03-13T09:30:00-06:00", 2, "2026-03-18T09:30:00-06:00"},
		{"mexico christmas 2026 friday", mexico9to6, "2026-12-23T12:00:00-06:00", 3, "2026-12-29T12:00:00-06:00"},
		{"bogota over easter", bogota8x5, "2026-04-01T15:00:00-05:00", 1, "2026-04-06T15:00:00-05:00"},
		{"zero days", bogota8x5, "2026-04-01T15:00:00-05:00", 0, "2026-04-01T15:00:00-05:00"},
		{"new york keeps wall clock across dst", newYorkNights, "2026-03-07T01:00:00-05:00", 1, "2026-03-08T01:00:00-05:00"},
		{"new york keeps wall clock after dst", newYorkNights, "2026-03-07T03:30:00-05:00", 2, "2026-03-09T03:30:00-04:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCal(t, tt.cfg)
			if got := c.AddDays(ts(t, tt.from), tt.n); !got.Equal(ts(t, tt.want)) {
				t.Errorf("AddDays = %s, want %s", got.Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestExtraClosedAndOpenDays(t *testing.T) {
	cfg := bogota8x5
	cfg.Closed = []string{"2026-12-24", "2026-12-31"}
	cfg.Open = []OpenDay{{Date: "2026-12-19", Hours: []string{"08:00-12:00"}}, {Date: "2026-12-08"}}
	c := mustCal(t, cfg)
	tests := []struct {
		at      string
		working bool
	}{
		{"2026-12-24T10:00:00-05:00", false}, // extra closed Thursday
		{"2026-12-31T10:00:00-05:00", false},
		{"2026-12-19T11:00:00-05:00", true}, // extra working Saturday morning
		{"2026-12-19T13:00:00-05:00", false},
		{"2026-12-08T17:00:00-05:00", true}, // holiday opened with the standard hours
		{"2026-12-23T10:00:00-05:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			if got := c.IsWorking(ts(t, tt.at)); got != tt.working {
				t.Errorf("IsWorking = %v, want %v", got, tt.working)
			}
		})
	}
	// 4 h from Wed 23 Dec 16:00: 2 h that day, Thu 24 closed, Fri 25 Navidad,
	// so the last 2 h fall on Mon 28 Dec.
	if got, want := c.Add(ts(t, "2026-12-23T16:00:00-05:00"), 4*time.Hour, nil).At, ts(t, "2026-12-28T10:00:00-05:00"); !got.Equal(want) {
		t.Errorf("Add over closed days = %s, want %s", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no zone", Config{}, "calendar: zone is required"},
		{"bad zone", Config{Zone: "Mars/Olympus"}, `calendar: zone "Mars/Olympus"`},
		{"no hours", Config{Zone: "UTC"}, ErrNoWorkingTime.Error()},
		{"bad day", Config{Zone: "UTC", Hours: map[string][]string{"lun": {"08:00-12:00"}}}, `bad day "lun"`},
		{"bad interval", Config{Zone: "UTC", Hours: map[string][]string{"mon": {"12:00-08:00"}}}, `bad interval "12:00-08:00"`},
		{"overlap", Config{Zone: "UTC", Hours: map[string][]string{"mon": {"08:00-12:00", "11:00-13:00"}}}, "overlap"},
		{"day twice", Config{Zone: "UTC", Hours: map[string][]string{"mon-fri": {"08:00-12:00"}, "fri": {"08:00-12:00"}}}, "fri given twice"},
		{"unknown country", Config{Zone: "UTC", Holidays: []string{"XX"}, Hours: map[string][]string{"mon": {"08:00-12:00"}}}, `country "XX"`},
		{"bad closed date", Config{Zone: "UTC", Closed: []string{"24/12/2026"}, Hours: map[string][]string{"mon": {"08:00-12:00"}}}, `bad date "24/12/2026"`},
		{"24/7 with hours", Config{Zone: "UTC", Always: true, Hours: map[string][]string{"mon": {"08:00-12:00"}}}, "24/7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestNormalizePauses(t *testing.T) {
	a := ts(t, "2026-03-02T09:00:00-05:00")
	_, err := NormalizePauses([]Interval{{From: a, To: a.Add(-time.Minute)}})
	if !errors.Is(err, ErrPause) {
		t.Fatalf("reversed pause: err = %v, want ErrPause", err)
	}
	got, err := NormalizePauses([]Interval{
		{From: a.Add(5 * time.Hour)},                       // open, swallows the last
		{From: a, To: a.Add(time.Hour)},                    // touches the next
		{From: a.Add(time.Hour), To: a.Add(2 * time.Hour)}, //
		{From: a.Add(3 * time.Hour), To: a.Add(3 * time.Hour)},
		{From: a.Add(6 * time.Hour), To: a.Add(7 * time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Interval{{From: a, To: a.Add(2 * time.Hour)}, {From: a.Add(5 * time.Hour)}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("NormalizePauses = %v, want %v", got, want)
	}
}

func TestString(t *testing.T) {
	c := mustCal(t, limaSplit)
	if got, want := c.String(), "mon-fri 08:00-12:00,14:00-18:00 America/Lima, holidays PE"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	c = mustCal(t, Config{Zone: "UTC", Hours: map[string][]string{"mon-fri": {"09:00-17:00"}, "sat": {"09:00-13:00"}}})
	if got, want := c.String(), "mon-fri 09:00-17:00; sat 09:00-13:00 UTC"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// The per-year holiday cache is filled lazily; concurrent first use of the
// same calendar must agree (and be clean under -race).
func TestConcurrentUse(t *testing.T) {
	c := mustCal(t, limaSplit)
	from := ts(t, "2031-07-27T17:00:00-05:00") // a year nobody has asked for yet
	want := c.Add(from, 3*time.Hour, nil).At
	c = mustCal(t, limaSplit)
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			got := c.Add(from, 3*time.Hour, nil).At
			if !got.Equal(want) {
				errs <- got.String()
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Errorf("concurrent Add = %s, want %s", e, want)
		}
	}
}

func TestWorking(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		a, b string
		want []string
	}{
		{"bogota friday noon to tuesday over a holiday Monday", bogota8x5, "2026-11-13T12:00:00-05:00", "2026-11-17T10:00:00-05:00",
			[]string{"2026-11-13T12:00:00-05:00/2026-11-13T18:00:00-05:00", "2026-11-17T08:00:00-05:00/2026-11-17T10:00:00-05:00"}},
		{"lima split day", limaSplit, "2026-03-02T00:00:00-05:00", "2026-03-03T00:00:00-05:00",
			[]string{"2026-03-02T08:00:00-05:00/2026-03-02T12:00:00-05:00", "2026-03-02T14:00:00-05:00/2026-03-02T18:00:00-05:00"}},
		{"24/7 is the whole range", Config{Zone: "America/Bogota", Always: true}, "2026-03-01T00:00:00-05:00", "2026-04-01T00:00:00-05:00",
			[]string{"2026-03-01T00:00:00-05:00/2026-04-01T00:00:00-05:00"}},
		{"empty range", bogota8x5, "2026-03-03T00:00:00-05:00", "2026-03-02T00:00:00-05:00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCal(t, tt.cfg)
			var got []string
			for _, iv := range c.Working(ts(t, tt.a), ts(t, tt.b)) {
				got = append(got, iv.From.In(c.Location()).Format(time.RFC3339)+"/"+iv.To.In(c.Location()).Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Working = %q, want %q", got, tt.want)
			}
		})
	}
}
