package sla

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// dueCase is one row of testdata/due_cases.json, the table shared with the
// `vigia sla due` test in cmd/vigia. Expected instants were worked out by
// hand (the "why" of each row says how), never copied from the code.
type dueCase struct {
	Name         string    `json:"name"`
	Why          string    `json:"why"`
	PoliciesFile string    `json:"policies_file"`
	Policy       string    `json:"policy"`
	Severity     int       `json:"severity"`
	Opened       string    `json:"opened"`
	Pauses       []string  `json:"pauses"`  // FROM,TO (empty TO: running)
	Changes      []string  `json:"changes"` // AT,N
	Start        string    `json:"start"`
	Response     wantClock `json:"response"`
	Resolution   wantClock `json:"resolution"`
}

// wantClock: an empty Due means "no target"; "paused 3h0m0s" a running pause.
type wantClock struct {
	Due         string   `json:"due"`
	Warning     string   `json:"warning"`
	Escalations []string `json:"escalations"` // "LEVEL RFC3339"
	Grace       bool     `json:"grace"`
}

func loadCases(t *testing.T) []dueCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "due_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []dueCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func render(c Clock, loc *time.Location) wantClock {
	w := wantClock{Grace: c.Grace}
	switch {
	case !c.Defined:
		return w
	case c.Paused:
		w.Due = "paused " + c.Remaining.String()
	default:
		w.Due = c.Due.In(loc).Format(time.RFC3339)
	}
	if !c.Warning.IsZero() {
		w.Warning = c.Warning.In(loc).Format(time.RFC3339)
	}
	for _, e := range c.Escalations {
		w.Escalations = append(w.Escalations, strconv.Itoa(e.Level)+" "+e.At.In(loc).Format(time.RFC3339))
	}
	return w
}

func equalClock(a, b wantClock) bool {
	return a.Due == b.Due && a.Warning == b.Warning && a.Grace == b.Grace && slices.Equal(a.Escalations, b.Escalations)
}

func TestDueTable(t *testing.T) {
	cases := loadCases(t)
	if len(cases) < 40 {
		t.Fatalf("only %d cases; the table must keep at least 40", len(cases))
	}
	presets := Presets()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			set := presets
			if tc.PoliciesFile != "" {
				f, err := os.Open(filepath.Join("testdata", tc.PoliciesFile))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if set, err = Load(f); err != nil {
					t.Fatal(err)
				}
			}
			p, err := set.Lookup(tc.Policy)
			if err != nil {
				t.Fatal(err)
			}
			in := Input{Opened: mustTime(t, tc.Opened), Severity: tc.Severity}
			for _, s := range tc.Pauses {
				a, b, _ := strings.Cut(s, ",")
				iv := calendar.Interval{From: mustTime(t, a)}
				if b != "" {
					iv.To = mustTime(t, b)
				}
				in.Pauses = append(in.Pauses, iv)
			}
			for _, s := range tc.Changes {
				a, b, _ := strings.Cut(s, ",")
				n, _ := strconv.Atoi(b)
				in.Changes = append(in.Changes, SeverityChange{At: mustTime(t, a), Severity: n})
			}
			s, err := p.Due(in)
			if err != nil {
				t.Fatal(err)
			}
			loc := p.Calendar().Location()
			if got := s.Start.In(loc).Format(time.RFC3339); got != tc.Start {
				t.Errorf("start = %s, want %s", got, tc.Start)
			}
			if got := render(s.Response, loc); !equalClock(got, tc.Response) {
				t.Errorf("response = %+v\n            want %+v (%s)", got, tc.Response, tc.Why)
			}
			if got := render(s.Resolution, loc); !equalClock(got, tc.Resolution) {
				t.Errorf("resolution = %+v\n              want %+v (%s)", got, tc.Resolution, tc.Why)
			}
		})
	}
}

func TestBreached(t *testing.T) {
	p, err := Presets().Lookup("imaging-8x5")
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Due(Input{Opened: mustTime(t, "2026-03-05T10:00:00-05:00"), Severity: 3})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   string
		want bool
	}{
		{"2026-03-06T17:59:59-05:00", false},
		{"2026-03-06T18:00:00-05:00", false}, // meeting the target at the due instant is on time
		{"2026-03-06T18:00:01-05:00", true},
		{"2026-03-09T08:00:00-05:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			if got := s.Response.Breached(mustTime(t, tt.at)); got != tt.want {
				t.Errorf("Breached = %v, want %v", got, tt.want)
			}
			if s.Resolution.Breached(mustTime(t, tt.at)) {
				t.Error("a clock without target must never be breached")
			}
		})
	}
	paused, err := p.Due(Input{Opened: mustTime(t, "2026-03-05T10:00:00-05:00"), Severity: 3,
		Pauses: []calendar.Interval{{From: mustTime(t, "2026-03-05T11:00:00-05:00")}}})
	if err != nil {
		t.Fatal(err)
	}
	if paused.Response.Breached(mustTime(t, "2027-01-01T00:00:00-05:00")) {
		t.Error("a paused clock must never be breached")
	}
}

func TestDueErrors(t *testing.T) {
	p, err := Presets().Lookup("helpdesk-co")
	if err != nil {
		t.Fatal(err)
	}
	opened := mustTime(t, "2026-03-02T09:00:00-05:00")
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no opening", Input{Severity: 1}, "no opening instant"},
		{"unknown severity", Input{Opened: opened, Severity: 9}, "policy helpdesk-co has no severity 9"},
		{"pause ends before start", Input{Opened: opened, Severity: 1,
			Pauses: []calendar.Interval{{From: opened.Add(time.Hour), To: opened}}}, "pause ends"},
		{"change before opening", Input{Opened: opened, Severity: 1,
			Changes: []SeverityChange{{At: opened.Add(-time.Minute), Severity: 2}}}, "before opening"},
		{"change to unknown severity", Input{Opened: opened, Severity: 1,
			Changes: []SeverityChange{{At: opened, Severity: 0}}}, "no severity 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Due(tt.in)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInput containing %q", err, tt.want)
			}
		})
	}
}

func TestPresetNamesAndData(t *testing.T) {
	var names []string
	for _, p := range Presets().Policies() {
		names = append(names, p.Name)
		if p.Text == "" || p.Calendar() == nil {
			t.Errorf("%s: every preset needs its seed text and a calendar", p.Name)
		}
	}
	want := []string{"imaging-8x5", "imaging-24x7", "it-support-pe", "helpdesk-co", "helpdesk-co-7x24", "hosting-mx", "desk-standard", "desk-premium"}
	if !slices.Equal(names, want) {
		t.Fatalf("presets = %v, want %v", names, want)
	}
	get := func(name string) Policy {
		p, err := Presets().Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if c := get("imaging-8x5").Closure; c.CallEvery != 3*time.Hour || c.CallFor != 9*time.Hour ||
		c.EmailEvery != 12*time.Hour || c.EmailFor != 24*time.Hour || c.Reopen || c.OnTimeout != "close_accepted" {
		t.Errorf("imaging-8x5 closure = %+v, want seed 000 §15 (3h×9h, 12h×24h, close accepted, no reopening)", c)
	}
	if c := get("hosting-mx").Closure; c.AutoCloseAfter != 48*time.Hour || !c.Reopen || c.ReopenWithinBusinessDays != 5 {
		t.Errorf("hosting-mx closure = %+v, want auto-close 48h, reopen within 5 business days", c)
	}
	if c := get("it-support-pe").Closure; c.ContactAttempts != 3 || c.AttemptsOn != "business_days" {
		t.Errorf("it-support-pe closure = %+v, want 3 attempts on business days", c)
	}
	if s, p := get("desk-standard").PortalSeats, get("desk-premium").PortalSeats; s != 2 || p != 5 {
		t.Errorf("portal seats standard/premium = %d/%d, want 2/5", s, p)
	}
	// Seed 000 §14: 72 business hours. Requested Fri 2026-03-06 12:00 in
	// Bogotá: 6h Fri + 10h × 6 days (Mon 9 … Mon 16 Mar, no holiday) + 6h
	// Tue 17 Mar = 72h → 14:00.
	due, ok := get("imaging-8x5").ReportDue(mustTime(t, "2026-03-06T12:00:00-05:00"))
	if want := mustTime(t, "2026-03-17T14:00:00-05:00"); !ok || !due.Equal(want) {
		t.Errorf("report due = %s, want %s", due, want)
	}
	if _, ok := get("helpdesk-co").ReportDue(mustTime(t, "2026-03-06T12:00:00-05:00")); ok {
		t.Error("helpdesk-co has no report deadline")
	}
}

func TestLoadInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid-*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no invalid policy files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// The first line of each file is "# want: <exact error>", with
			// "\n" standing for a line break in the message.
			first, _, _ := strings.Cut(string(data), "\n")
			want := strings.ReplaceAll(strings.TrimPrefix(first, "# want: "), `\n`, "\n")
			_, err = Load(strings.NewReader(string(data)))
			if err == nil || err.Error() != want {
				t.Errorf("Load err = %v\n               want %s", err, want)
			}
		})
	}
}

// TestWallClockPresetsHaveOffHoursCases: every preset with a wall-clock
// target keeps night, weekend and holiday rows in the shared table (the
// table `vigia sla due` is tested against too).
func TestWallClockPresetsHaveOffHoursCases(t *testing.T) {
	cases := loadCases(t)
	for _, p := range Presets().Policies() {
		wall := false
		for _, s := range p.Severities {
			for _, tg := range []*Target{s.Response, s.Resolution} {
				wall = wall || (tg != nil && tg.Count == Wall)
			}
		}
		if !wall {
			continue
		}
		for _, word := range []string{"night", "weekend", "holiday"} {
			found := false
			for _, c := range cases {
				found = found || (c.Policy == p.Name && c.PoliciesFile == "" && strings.Contains(c.Name, word))
			}
			if !found {
				t.Errorf("policy %s has wall-clock targets but no %q case in testdata/due_cases.json", p.Name, word)
			}
		}
	}
}
