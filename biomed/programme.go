package biomed

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// File is a biomedical programme file (`vigia biomed import FILE`):
// maintenance programmes per manufacturer and model or per device, and the
// devices the customer flagged for calibration.
type File struct {
	Programmes  []Programme       `yaml:"programmes" json:"programmes"`
	Calibration []CalibrationFlag `yaml:"calibration" json:"calibration"`
}

// Programme is the manufacturer's maintenance book for a model, or for
// one device (Device set), which then replaces the model's programme.
type Programme struct {
	ID           string `yaml:"id" json:"id"`
	Manufacturer string `yaml:"manufacturer" json:"manufacturer,omitempty"`
	Model        string `yaml:"model" json:"model,omitempty"`
	Device       string `yaml:"device" json:"device,omitempty"`
	// Starts anchors the interval tasks (YYYY-MM-DD).
	Starts string `yaml:"starts" json:"starts"`
	// Source names the book, e.g. "Service manual rev. C, chapter 7".
	Source string `yaml:"source" json:"source,omitempty"`
	Tasks  []Task `yaml:"tasks" json:"tasks"`
}

// Task is one maintenance task of a programme. Exactly one of EveryMonths,
// Schedule and EveryUsage says when it falls due.
type Task struct {
	ID          string   `yaml:"id" json:"id"`
	Title       Text     `yaml:"title" json:"title"`
	EveryMonths int      `yaml:"every_months" json:"every_months,omitempty"`
	Schedule    string   `yaml:"schedule" json:"schedule,omitempty"`
	EveryUsage  *Usage   `yaml:"every_usage" json:"every_usage,omitempty"`
	Duration    string   `yaml:"duration" json:"duration"`
	LeadDays    *int     `yaml:"lead_days" json:"lead_days,omitempty"`
	Skills      []string `yaml:"skills" json:"skills,omitempty"`
	Checklist   []string `yaml:"checklist" json:"checklist,omitempty"`
	rule        Rule
	minutes     int
}

// Text is a text in Spanish and English.
type Text struct {
	ES string `yaml:"es" json:"es"`
	EN string `yaml:"en" json:"en"`
}

// In returns the text in lang (Spanish unless "en").
func (t Text) In(lang string) string {
	if lang == "en" {
		return t.EN
	}
	return t.ES
}

// Usage is a usage interval: the task falls due each Amount of Counter
// (tube hours, exam counts) recorded since the last work order.
type Usage struct {
	Counter string  `yaml:"counter" json:"counter"`
	Amount  float64 `yaml:"amount" json:"amount"`
}

// CalibrationFlag marks a measuring device for calibration.
type CalibrationFlag struct {
	Device      string `yaml:"device" json:"device"`
	EveryMonths int    `yaml:"every_months" json:"every_months"`
	FirstDue    string `yaml:"first_due" json:"first_due"`
}

// DefaultLeadDays is how long before its due day a work order opens.
const DefaultLeadDays = 14

var (
	idRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	counterRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

const dateLayout = "2006-01-02"

// ParseFile reads and validates a programme file strictly. Every problem
// is reported, not just the first.
func ParseFile(data []byte) (*File, error) {
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return nil, errors.New("biomed: the file must be UTF-8 text")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("biomed: %w", err)
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	seen := map[string]bool{}
	models := map[string]bool{}
	devices := map[string]bool{}
	for i := range f.Programmes {
		p := &f.Programmes[i]
		where := fmt.Sprintf("programmes[%d] (%s)", i, p.ID)
		if !idRE.MatchString(p.ID) {
			bad("%s: id must be lower-case letters, digits, '.', '_' or '-'", where)
		}
		if seen[p.ID] {
			bad("%s: id given twice", where)
		}
		seen[p.ID] = true
		switch {
		case p.Device != "" && (p.Manufacturer != "" || p.Model != ""):
			bad("%s: a device's programme names the device only (its manufacturer and model come from the inventory)", where)
		case p.Device != "" && !idRE.MatchString(p.Device):
			bad("%s: device %q is not an inventory id", where, p.Device)
		case p.Device == "" && (strings.TrimSpace(p.Manufacturer) == "" || strings.TrimSpace(p.Model) == ""):
			bad("%s: manufacturer and model are required (or a device)", where)
		case len(p.Manufacturer) > 200 || len(p.Model) > 200 || len(p.Source) > 500:
			bad("%s: manufacturer and model of at most 200 characters, source 500", where)
		}
		key := strings.ToLower(strings.Join(strings.Fields(p.Manufacturer), " ")) + "\x00" + strings.ToLower(strings.Join(strings.Fields(p.Model), " "))
		if p.Device != "" {
			if devices[p.Device] {
				bad("%s: device %s has two programmes", where, p.Device)
			}
			devices[p.Device] = true
		} else if models[key] {
			bad("%s: %s %s has two programmes", where, p.Manufacturer, p.Model)
		} else {
			models[key] = true
		}
		if _, err := time.Parse(dateLayout, p.Starts); err != nil {
			bad("%s: starts must be a date YYYY-MM-DD", where)
		}
		if len(p.Tasks) == 0 || len(p.Tasks) > 50 {
			bad("%s: 1 to 50 tasks", where)
		}
		taskIDs := map[string]bool{}
		for j := range p.Tasks {
			t := &p.Tasks[j]
			tw := fmt.Sprintf("%s task %q", where, t.ID)
			if !idRE.MatchString(t.ID) || taskIDs[t.ID] {
				bad("%s: task ids are unique lower-case ids", tw)
			}
			taskIDs[t.ID] = true
			if strings.TrimSpace(t.Title.ES) == "" || strings.TrimSpace(t.Title.EN) == "" || len(t.Title.ES) > 150 || len(t.Title.EN) > 150 {
				bad("%s: title needs es and en (at most 150 characters each)", tw)
			}
			kinds := 0
			if t.EveryMonths != 0 {
				kinds++
				if t.EveryMonths < 1 || t.EveryMonths > 120 {
					bad("%s: every_months must be 1 to 120", tw)
				}
				t.rule = Rule{EveryMonths: t.EveryMonths}
			}
			if t.Schedule != "" {
				kinds++
				r, err := ParseSchedule(t.Schedule)
				if err != nil {
					bad("%s: %v", tw, err)
				}
				t.rule = r
			}
			if t.EveryUsage != nil {
				kinds++
				if !counterRE.MatchString(t.EveryUsage.Counter) || !(t.EveryUsage.Amount > 0 && t.EveryUsage.Amount < 1e12) {
					bad("%s: every_usage needs a counter (e.g. tube_hours, exams) and a positive amount", tw)
				}
			}
			if kinds != 1 {
				bad("%s: exactly one of every_months, schedule and every_usage", tw)
			}
			d, err := time.ParseDuration(t.Duration)
			if err != nil || d < time.Minute || d > 24*time.Hour {
				bad("%s: duration must be like 90m or 2h (1 minute to 24 hours)", tw)
			}
			t.minutes = int(d / time.Minute)
			if t.LeadDays != nil && (*t.LeadDays < 0 || *t.LeadDays > 180) {
				bad("%s: lead_days must be 0 to 180", tw)
			}
			if len(t.Skills) > 20 || len(t.Checklist) > 100 {
				bad("%s: at most 20 skills and 100 checklist items", tw)
			}
			for _, c := range append(slices.Clone(t.Skills), t.Checklist...) {
				if strings.TrimSpace(c) == "" || len(c) > 300 {
					bad("%s: skills and checklist items are 1 to 300 characters", tw)
					break
				}
			}
		}
	}
	flagged := map[string]bool{}
	for i, c := range f.Calibration {
		where := fmt.Sprintf("calibration[%d] (%s)", i, c.Device)
		if !idRE.MatchString(c.Device) || flagged[c.Device] {
			bad("%s: device must be an inventory id, once", where)
		}
		flagged[c.Device] = true
		if c.EveryMonths < 1 || c.EveryMonths > 60 {
			bad("%s: every_months must be 1 to 60", where)
		}
		if _, err := time.Parse(dateLayout, c.FirstDue); err != nil {
			bad("%s: first_due must be a date YYYY-MM-DD", where)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("biomed: invalid programme file:\n  %s", strings.Join(problems, "\n  "))
	}
	return &f, nil
}

// leadDays is the task's lead time.
func (t Task) leadDays() int {
	if t.LeadDays != nil {
		return *t.LeadDays
	}
	return DefaultLeadDays
}

// compile prepares a task read back from the database.
func (t *Task) compile() error {
	switch {
	case t.EveryMonths > 0:
		t.rule = Rule{EveryMonths: t.EveryMonths}
	case t.Schedule != "":
		r, err := ParseSchedule(t.Schedule)
		if err != nil {
			return err
		}
		t.rule = r
	}
	d, err := time.ParseDuration(t.Duration)
	if err != nil {
		return err
	}
	t.minutes = int(d / time.Minute)
	return nil
}
