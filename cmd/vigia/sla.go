package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

func init() {
	register(command{
		name:    "sla",
		summary: "SLA due times and policy presets (due, policies)",
		run:     runSLA,
	})
}

var slaSubcommands = []struct{ name, summary string }{
	{"due", "print response/resolution due, warning and escalation instants of a ticket"},
	{"policies", "list the SLA policies with their contract text"},
}

func runSLA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprintf(w, "Usage: vigia sla SUBCOMMAND [flags]\n\nSubcommands:\n")
		for _, s := range slaSubcommands {
			fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
		}
		fmt.Fprintf(w, "\nRun 'vigia sla SUBCOMMAND --help' for its flags.\n")
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "due":
		return runSLADue(args[1:], stdout, stderr)
	case "policies":
		return runSLAPolicies(args[1:], stdout, stderr)
	}
	return usageError("unknown subcommand %q (want due or policies)", args[0])
}

// repeated collects a flag given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// loadPolicies returns the presets, preceded by the policies of file when
// one is given (so a contract file can override a preset by name).
func loadPolicies(file string) ([]*sla.Set, error) {
	sets := []*sla.Set{sla.Presets()}
	if file == "" {
		return sets, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageError("policies file: %v", err)
	}
	defer f.Close()
	extra, err := sla.Load(f)
	if err != nil {
		return nil, usageError("%s: %v", file, err)
	}
	return append([]*sla.Set{extra}, sets...), nil
}

func lookupPolicy(sets []*sla.Set, name string) (sla.Policy, error) {
	var firstErr error
	for _, s := range sets {
		p, err := s.Lookup(name)
		if err == nil {
			return p, nil
		}
		if firstErr == nil || len(sets) == 1 {
			firstErr = err
		}
	}
	if len(sets) > 1 {
		var names []string
		for _, s := range sets {
			for _, p := range s.Policies() {
				names = append(names, p.Name)
			}
		}
		return sla.Policy{}, fmt.Errorf("%w %q (have %s)", sla.ErrUnknownPolicy, name, strings.Join(names, ", "))
	}
	return sla.Policy{}, firstErr
}

func parseInstant(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC3339 instant (e.g. 2026-03-02T09:00:00-05:00)", what, s)
	}
	return t, nil
}

// parsePause reads FROM,TO; an empty TO is a pause still running.
func parsePause(s string) (calendar.Interval, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return calendar.Interval{}, fmt.Errorf("--pause %q: want FROM,TO (TO may be empty for a running pause)", s)
	}
	from, err := parseInstant("--pause start", a)
	if err != nil {
		return calendar.Interval{}, err
	}
	iv := calendar.Interval{From: from}
	if strings.TrimSpace(b) != "" {
		if iv.To, err = parseInstant("--pause end", b); err != nil {
			return calendar.Interval{}, err
		}
		if iv.To.Before(iv.From) {
			return calendar.Interval{}, fmt.Errorf("--pause %q: ends before it starts", s)
		}
	}
	return iv, nil
}

func parseChange(s string) (sla.SeverityChange, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return sla.SeverityChange{}, fmt.Errorf("--severity-change %q: want AT,N", s)
	}
	at, err := parseInstant("--severity-change", a)
	if err != nil {
		return sla.SeverityChange{}, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(b))
	if err != nil {
		return sla.SeverityChange{}, fmt.Errorf("--severity-change %q: severity %q is not a number", s, b)
	}
	return sla.SeverityChange{At: at, Severity: n}, nil
}

func runSLADue(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sla due", "--policy NAME --severity N --opened RFC3339 [--pause FROM,TO]... [--severity-change AT,N]... [--json]", `
Print the SLA schedule of a ticket: response and resolution due instants (in
the policy's time zone, or "none"), warning and escalation instants. While a
pause is running (--pause FROM, with no end) there is no due instant, only
the time remaining.
Imprime los vencimientos de respuesta y solución de un ticket.`, stdout, stderr)
	policy := fs.String("policy", "", "policy name (see 'vigia sla policies')")
	severity := fs.Int("severity", 0, "severity at opening (1 = most severe)")
	opened := fs.String("opened", "", "opening instant, RFC3339")
	file := fs.String("policies", "", "extra policy file (YAML, presets format); its names win")
	asJSON := fs.Bool("json", false, "print JSON")
	var pauses, changes repeated
	fs.Var(&pauses, "pause", "clock pause FROM,TO (RFC3339; empty TO = still paused); repeatable")
	fs.Var(&changes, "severity-change", "severity change AT,N; repeatable")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *policy == "" || *opened == "" || *severity == 0 {
		return usageError("--policy, --severity and --opened are required")
	}
	sets, err := loadPolicies(*file)
	if err != nil {
		return err
	}
	p, err := lookupPolicy(sets, *policy)
	if err != nil {
		return usageError("%v", err)
	}
	in := sla.Input{Severity: *severity}
	if in.Opened, err = parseInstant("--opened", *opened); err != nil {
		return usageError("%v", err)
	}
	for _, s := range pauses {
		iv, err := parsePause(s)
		if err != nil {
			return usageError("%v", err)
		}
		in.Pauses = append(in.Pauses, iv)
	}
	for _, s := range changes {
		ch, err := parseChange(s)
		if err != nil {
			return usageError("%v", err)
		}
		in.Changes = append(in.Changes, ch)
	}
	sched, err := p.Due(in)
	if err != nil {
		return usageError("%v", err)
	}
	out := newDueOutput(p, sched)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	out.writeText(stdout)
	return nil
}

// dueOutput is the stable JSON form of a schedule; instants are RFC3339 in
// the policy's zone, absent ones null.
type dueOutput struct {
	Policy       string      `json:"policy"`
	Calendar     string      `json:"calendar"`
	Severity     int         `json:"severity"`
	SeverityName string      `json:"severity_name"`
	Opened       string      `json:"opened"`
	ClockStart   string      `json:"clock_start"`
	Response     clockOutput `json:"response"`
	Resolution   clockOutput `json:"resolution"`
}

type clockOutput struct {
	Defined     bool               `json:"defined"`
	Target      string             `json:"target,omitempty"`
	From        *string            `json:"from,omitempty"`
	Due         *string            `json:"due"`
	Paused      bool               `json:"paused"`
	Remaining   string             `json:"remaining,omitempty"`
	Warning     *string            `json:"warning"`
	Escalations []escalationOutput `json:"escalations"`
	Grace       bool               `json:"grace"`
}

type escalationOutput struct {
	Level int    `json:"level"`
	At    string `json:"at"`
}

func newDueOutput(p sla.Policy, s sla.Schedule) dueOutput {
	loc := p.Calendar().Location()
	sev, _ := p.Severity(s.Severity)
	return dueOutput{
		Policy:       p.Name,
		Calendar:     p.Calendar().String(),
		Severity:     s.Severity,
		SeverityName: sev.Name,
		Opened:       s.Opened.In(loc).Format(time.RFC3339),
		ClockStart:   s.Start.In(loc).Format(time.RFC3339),
		Response:     newClockOutput(s.Response, loc),
		Resolution:   newClockOutput(s.Resolution, loc),
	}
}

func newClockOutput(c sla.Clock, loc *time.Location) clockOutput {
	inst := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		s := t.In(loc).Format(time.RFC3339)
		return &s
	}
	o := clockOutput{Defined: c.Defined, Escalations: []escalationOutput{}}
	if !c.Defined {
		return o
	}
	o.Target, o.From, o.Due, o.Warning = c.Target.String(), inst(c.From), inst(c.Due), inst(c.Warning)
	o.Paused, o.Grace = c.Paused, c.Grace
	if c.Paused {
		o.Remaining = c.Remaining.String()
	}
	for _, e := range c.Escalations {
		o.Escalations = append(o.Escalations, escalationOutput{e.Level, e.At.In(loc).Format(time.RFC3339)})
	}
	return o
}

func (o dueOutput) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "policy:\t%s (%s)\n", o.Policy, o.Calendar)
	fmt.Fprintf(tw, "severity:\t%d %s\n", o.Severity, o.SeverityName)
	fmt.Fprintf(tw, "opened:\t%s\n", o.Opened)
	fmt.Fprintf(tw, "first working instant:\t%s\n", o.ClockStart)
	for _, c := range []struct {
		name string
		c    clockOutput
	}{{"response", o.Response}, {"resolution", o.Resolution}} {
		if !c.c.Defined {
			fmt.Fprintf(tw, "%s due:\tnone\n", c.name)
			continue
		}
		due := "none"
		switch {
		case c.c.Paused:
			due = "paused, " + c.c.Remaining + " remaining / en pausa, restan " + c.c.Remaining
		case c.c.Due != nil:
			due = *c.c.Due
		}
		fmt.Fprintf(tw, "%s target:\t%s\n", c.name, c.c.Target)
		if c.c.Grace {
			fmt.Fprintf(tw, "%s grace:\trestarted at %s after a severity change\n", c.name, *c.c.From)
		} else {
			fmt.Fprintf(tw, "%s counts from:\t%s\n", c.name, *c.c.From)
		}
		fmt.Fprintf(tw, "%s due:\t%s\n", c.name, due)
		if c.c.Warning != nil {
			fmt.Fprintf(tw, "%s warning:\t%s\n", c.name, *c.c.Warning)
		}
		for _, e := range c.c.Escalations {
			fmt.Fprintf(tw, "%s escalation level %d:\t%s\n", c.name, e.Level, e.At)
		}
	}
	tw.Flush()
}

func runSLAPolicies(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sla policies", "[--json] [--policies FILE]", `
List the SLA policies (presets, plus those of --policies FILE) with their
calendar, targets per severity, the contract text they come from and how it
is interpreted. Lista las políticas SLA con el texto del contrato.`, stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	file := fs.String("policies", "", "extra policy file (YAML, presets format)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	sets, err := loadPolicies(*file)
	if err != nil {
		return err
	}
	var all []sla.Policy
	for _, s := range sets {
		all = append(all, s.Policies()...)
	}
	if *asJSON {
		type policyJSON struct {
			sla.Policy
			CalendarText string `json:"calendar_text"`
		}
		out := make([]policyJSON, 0, len(all))
		for _, p := range all {
			out = append(out, policyJSON{p, p.Calendar().String()})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "%s\n", sla.ClockRule)
	for _, p := range all {
		fmt.Fprintln(stdout)
		writePolicy(stdout, p)
	}
	return nil
}

func writePolicy(w io.Writer, p sla.Policy) {
	fmt.Fprintf(w, "%s", p.Name)
	if p.Seed != "" {
		fmt.Fprintf(w, " (seed %s)", p.Seed)
	}
	fmt.Fprintf(w, "\n  calendar: %s — %s\n", p.CalendarName, p.Calendar())
	for _, s := range p.Severities {
		resp, resol := "none", "none"
		if s.Response != nil {
			resp = s.Response.String()
		}
		if s.Resolution != nil {
			resol = s.Resolution.String()
		}
		fmt.Fprintf(w, "  severity %d %s: response %s; resolution %s\n", s.Level, s.Name, resp, resol)
	}
	if p.Report != nil {
		fmt.Fprintf(w, "  report: %s\n", p.Report)
	}
	if a := p.Availability; a != nil {
		fmt.Fprintf(w, "  availability: degraded counts %g, unreachable counts %s", a.DegradedFactor,
			map[bool]string{true: "as down (uplink ours)", false: "not (uplink the customer's)"}[a.UplinkOurs])
		if a.Target > 0 {
			fmt.Fprintf(w, "; target %g", a.Target)
		}
		for _, c := range a.Credits {
			fmt.Fprintf(w, "; below %g credit %g%%", c.Below, c.CreditPercent)
		}
		fmt.Fprintln(w)
	}
	if p.PortalSeats > 0 {
		fmt.Fprintf(w, "  portal seats: %d\n", p.PortalSeats)
	}
	if c := p.Closure; c.Text != "" {
		fmt.Fprintf(w, "  closure: %s\n    (%s)\n", c.Text, c.Summary())
	}
	fmt.Fprintf(w, "  text: %s\n", p.Text)
	if p.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", p.Note)
	}
}
