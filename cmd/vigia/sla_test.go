package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// slaTestdata is the library's golden table, shared so that `vigia sla due`
// and sla.Policy.Due are held to the same hand-computed answers.
var slaTestdata = filepath.Join("..", "..", "maintenance", "sla", "testdata")

type slaCase struct {
	Name         string       `json:"name"`
	Why          string       `json:"why"`
	PoliciesFile string       `json:"policies_file"`
	Policy       string       `json:"policy"`
	Severity     int          `json:"severity"`
	Opened       string       `json:"opened"`
	Pauses       []string     `json:"pauses"`
	Changes      []string     `json:"changes"`
	Start        string       `json:"start"`
	Response     slaWantClock `json:"response"`
	Resolution   slaWantClock `json:"resolution"`
}

type slaWantClock struct {
	Due         string   `json:"due"`
	Warning     string   `json:"warning"`
	Escalations []string `json:"escalations"`
	Grace       bool     `json:"grace"`
}

func (c clockOutput) canonical() slaWantClock {
	w := slaWantClock{Grace: c.Grace}
	switch {
	case !c.Defined:
		return w
	case c.Paused:
		w.Due = "paused " + c.Remaining
	case c.Due != nil:
		w.Due = *c.Due
	}
	if c.Warning != nil {
		w.Warning = *c.Warning
	}
	for _, e := range c.Escalations {
		w.Escalations = append(w.Escalations, strconv.Itoa(e.Level)+" "+e.At)
	}
	return w
}

func equalWant(a, b slaWantClock) bool {
	return a.Due == b.Due && a.Warning == b.Warning && a.Grace == b.Grace && slices.Equal(a.Escalations, b.Escalations)
}

func runVigia(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSLADueTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(slaTestdata, "due_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []slaCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			args := []string{"sla", "due", "--policy", tc.Policy, "--severity", strconv.Itoa(tc.Severity), "--opened", tc.Opened, "--json"}
			if tc.PoliciesFile != "" {
				args = append(args, "--policies", filepath.Join(slaTestdata, tc.PoliciesFile))
			}
			for _, p := range tc.Pauses {
				args = append(args, "--pause", p)
			}
			for _, c := range tc.Changes {
				args = append(args, "--severity-change", c)
			}
			code, stdout, stderr := runVigia(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got dueOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("bad JSON %q: %v", stdout, err)
			}
			if got.ClockStart != tc.Start {
				t.Errorf("clock_start = %s, want %s", got.ClockStart, tc.Start)
			}
			if g := got.Response.canonical(); !equalWant(g, tc.Response) {
				t.Errorf("response = %+v\n            want %+v (%s)", g, tc.Response, tc.Why)
			}
			if g := got.Resolution.canonical(); !equalWant(g, tc.Resolution) {
				t.Errorf("resolution = %+v\n              want %+v (%s)", g, tc.Resolution, tc.Why)
			}
		})
	}
}

func TestSLADueText(t *testing.T) {
	code, stdout, stderr := runVigia(t, "sla", "due", "--policy", "desk-standard", "--severity", "1",
		"--opened", "2026-03-06T22:00:00Z", "--pause", "2026-03-09T13:00:00Z,")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// 22:00Z is 17:00 in Bogotá; the pause starts Mon 08:00 Bogotá, so the
	// response (due Fri 18:00) and level 2/3 are known, the resolution is not.
	for _, want := range []string{
		"policy:",
		"desk-standard (mon-fri 08:00-18:00 America/Bogota, holidays CO)",
		"first working instant:          2026-03-06T17:00:00-05:00",
		"response counts from:           2026-03-06T17:00:00-05:00",
		"response due:                   2026-03-06T18:00:00-05:00",
		"resolution due:                 paused, 1h0m0s remaining",
		"resolution escalation level 2:  2026-03-06T17:30:00-05:00",
		"resolution escalation level 3:  2026-03-06T18:00:00-05:00",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// Issue 16's example: a core PACS down on Friday 22:00 before a holiday
	// Monday is due Saturday 07:00, counted from the detection itself.
	code, stdout, _ = runVigia(t, "sla", "due", "--policy", "imaging-8x5", "--severity", "1", "--opened", "2026-11-13T22:00:00-05:00")
	for _, want := range []string{"first working instant:  2026-11-17T08:00:00-05:00", "response counts from:   2026-11-13T22:00:00-05:00",
		"response due:           2026-11-14T07:00:00-05:00"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("issue 16's example lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runVigia(t, "sla", "due", "--policy", "imaging-8x5", "--severity", "4", "--opened", "2026-03-02T09:00:00-05:00")
	if code != 0 || !strings.Contains(stdout, "response due:           none") || !strings.Contains(stdout, "resolution due:         none") {
		t.Errorf("severity without targets: exit %d\n%s", code, stdout)
	}
}

func TestSLABadInput(t *testing.T) {
	base := []string{"sla", "due", "--policy", "helpdesk-co", "--severity", "2", "--opened", "2026-03-02T09:00:00-05:00"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown policy", []string{"sla", "due", "--policy", "gold", "--severity", "1", "--opened", "2026-03-02T09:00:00-05:00"},
			`unknown policy "gold"`},
		{"bad opened", []string{"sla", "due", "--policy", "helpdesk-co", "--severity", "1", "--opened", "2026-03-02 09:00"},
			`--opened: "2026-03-02 09:00" is not an RFC3339 instant`},
		{"pause end before start", with("--pause", "2026-03-02T10:00:00-05:00,2026-03-02T09:00:00-05:00"), "ends before it starts"},
		{"pause without comma", with("--pause", "2026-03-02T10:00:00-05:00"), "want FROM,TO"},
		{"bad severity change", with("--severity-change", "2026-03-02T10:00:00-05:00,high"), `severity "high" is not a number`},
		{"change before opening", with("--severity-change", "2026-03-01T10:00:00-05:00,1"), "before opening"},
		{"unknown severity", []string{"sla", "due", "--policy", "helpdesk-co", "--severity", "7", "--opened", "2026-03-02T09:00:00-05:00"},
			"has no severity 7"},
		{"missing flags", []string{"sla", "due", "--policy", "helpdesk-co"}, "--policy, --severity and --opened are required"},
		{"unknown subcommand", []string{"sla", "breach"}, `unknown subcommand "breach"`},
		{"missing policies file", with("--policies", "/nonexistent/policies.yaml"), "policies file"},
		{"invalid policies file", with("--policies", filepath.Join(slaTestdata, "invalid-count.yaml")), `count "hours"`},
		{"unknown flag", with("--sev", "1"), "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runVigia(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stdout %q)", code, stdout)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q lacks %q", stderr, tt.want)
			}
		})
	}
}

func TestSLAHelp(t *testing.T) {
	code, stdout, _ := runVigia(t, "sla", "--help")
	if code != 0 || !strings.Contains(stdout, "due ") || !strings.Contains(stdout, "policies ") {
		t.Errorf("vigia sla --help: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runVigia(t, "sla"); code != 2 || !strings.Contains(stderr, "Subcommands:") {
		t.Errorf("vigia sla: exit %d, want 2 with the sub-command list\n%s", code, stderr)
	}
	code, stdout, _ = runVigia(t, "sla", "due", "--help")
	if code != 0 || !strings.Contains(stdout, "--severity-change") {
		t.Errorf("vigia sla due --help: exit %d\n%s", code, stdout)
	}
}

func TestSLAPolicies(t *testing.T) {
	code, stdout, stderr := runVigia(t, "sla", "policies")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"imaging-8x5 (seed 000)", "imaging-24x7 (seed 000)", "it-support-pe (seed 001)",
		"helpdesk-co (seed 002)", "helpdesk-co-7x24 (seed 002)", "hosting-mx (seed 003)",
		"desk-standard (seed 004)", "desk-premium (seed 004)",
		"severity 1 Crítico / Critical: response 9h wall (warn 5h); resolution none",
		"mon-fri 08:00-12:00,14:00-18:00 America/Lima, holidays PE",
		"severity 1 Prioridad 1 – Impacto crítico: response 1h business; resolution 2h business (levels 30m 30m 1h)",
		"response 1 business day",
		"portal seats: 5",
		"para cualquier tipo de contrato", // the seed quote behind the wall-clock reading
		"a wall-clock target starts at the opening instant",
		"a business or business-day target starts at the first working instant at or after opening",
		"(first contact at_solution; call every 3h for 9h; e-mail every 12h for 24h; then close_accepted; no reopening)",
		"auto-close after 48h awaiting confirmation; then close_accepted; reopen within 5 business days of the solution",
		"3 contact attempts on business_days",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("policies output lacks %q", want)
		}
	}
	code, stdout, stderr = runVigia(t, "sla", "policies", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ps []struct {
		Name        string `json:"name"`
		PortalSeats int    `json:"portal_seats"`
		Closure     struct {
			CallEvery string `json:"call_every"`
		} `json:"closure"`
		CalendarText string `json:"calendar_text"`
	}
	if err := json.Unmarshal([]byte(stdout), &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps) != 8 || ps[0].Name != "imaging-8x5" || ps[0].Closure.CallEvery != "3h0m0s" || ps[7].PortalSeats != 5 {
		t.Errorf("policies --json = %+v", ps)
	}
}
