package biomed

import (
	"bytes"
	_ "embed" // the IEC 62353 limits
	"fmt"
	"math"
	"slices"

	"gopkg.in/yaml.v3"
)

//go:embed limits.yaml
var limitsYAML []byte

// Device classes and applied-part types (IEC 60601-1).
var (
	DeviceClasses = []string{"I", "II"}
	AppliedParts  = []string{"none", "B", "BF", "CF"}
	Methods       = []string{"direct", "alternative", "differential"}
	EarthCases    = []string{"detachable_cord", "fixed_cord", "no_cord", "cord_only"}
)

// Limits are the pass/fail limits of the electrical safety test, as data
// (limits.yaml, with its source).
type Limits struct {
	Version         string       `yaml:"version"`
	Source          string       `yaml:"source"`
	ProtectiveEarth []EarthLimit `yaml:"protective_earth"`
	Leakage         struct {
		Equipment   map[string]map[string]map[string]float64 `yaml:"equipment"`    // method → class → applied part → µA
		AppliedPart map[string]map[string]map[string]float64 `yaml:"applied_part"` // idem
	} `yaml:"leakage"`
	Insulation struct {
		Normative        bool               `yaml:"normative"`
		Note             string             `yaml:"note"`
		MainsToPE        map[string]float64 `yaml:"mains_to_pe"`        // class → MΩ
		MainsToEnclosure map[string]float64 `yaml:"mains_to_enclosure"` // class → MΩ
		AppliedPartToPE  map[string]float64 `yaml:"applied_part_to_pe"` // applied part → MΩ
	} `yaml:"insulation"`
}

// EarthLimit is the maximum protective earth resistance in one case.
type EarthLimit struct {
	Case   string  `yaml:"case"`
	MaxOhm float64 `yaml:"max_ohm"`
	Note   string  `yaml:"note"`
}

// ParseLimits reads limits strictly (unknown fields are errors).
func ParseLimits(data []byte) (*Limits, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var l Limits
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("biomed: limits: %w", err)
	}
	if l.Version == "" || l.Source == "" {
		return nil, fmt.Errorf("biomed: limits: version and source are required")
	}
	return &l, nil
}

// DefaultLimits are the embedded IEC 62353:2014 limits.
var DefaultLimits = func() *Limits {
	l, err := ParseLimits(limitsYAML)
	if err != nil {
		panic(err)
	}
	return l
}()

// Measurements are what the safety analyser read. A nil value was not
// measured.
type Measurements struct {
	// ProtectiveEarthOhm is the protective earth resistance (class I).
	ProtectiveEarthOhm *float64 `json:"protective_earth_ohm,omitempty"`
	// EarthCase says how it was measured (default detachable_cord).
	EarthCase            string   `json:"protective_earth_case,omitempty"`
	EquipmentLeakageUA   *float64 `json:"equipment_leakage_ua,omitempty"`
	AppliedPartLeakageUA *float64 `json:"applied_part_leakage_ua,omitempty"`
	InsulationMOhm       *float64 `json:"insulation_mohm,omitempty"`
}

// Check is one measurement against its limit.
type Check struct {
	Quantity string  `json:"quantity"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Limit is the maximum (Min false) or minimum (Min true); absent when
	// the data sets none: the value is recorded and passes.
	Limit     *float64 `json:"limit,omitempty"`
	Min       bool     `json:"min,omitempty"`
	Pass      bool     `json:"pass"`
	Normative bool     `json:"normative"`
}

// Evaluation is the verdict of a test: it fails when any check fails.
type Evaluation struct {
	Checks  []Check `json:"checks"`
	Passed  bool    `json:"passed"`
	Version string  `json:"limits_version"`
}

// Evaluate checks m against the limits for a device of class (I, II)
// with applied parts of type part (none, B, BF, CF), measured by method
// (direct, alternative, differential). Applied-part leakage has no
// differential method in IEC 62353: with it, the direct limits apply.
// A class I device needs its protective earth measured and every device
// its equipment leakage; BF and CF devices their applied-part leakage.
func (l *Limits) Evaluate(class, part, method string, m Measurements) (Evaluation, error) {
	switch {
	case !slices.Contains(DeviceClasses, class):
		return Evaluation{}, fmt.Errorf("device class %q: want I or II", class)
	case !slices.Contains(AppliedParts, part):
		return Evaluation{}, fmt.Errorf("applied part %q: want none, B, BF or CF", part)
	case !slices.Contains(Methods, method):
		return Evaluation{}, fmt.Errorf("method %q: want direct, alternative or differential", method)
	case class == "I" && m.ProtectiveEarthOhm == nil:
		return Evaluation{}, fmt.Errorf("a class I device needs protective_earth_ohm")
	case m.EquipmentLeakageUA == nil:
		return Evaluation{}, fmt.Errorf("equipment_leakage_ua is required")
	case (part == "BF" || part == "CF") && m.AppliedPartLeakageUA == nil:
		return Evaluation{}, fmt.Errorf("a type %s applied part needs applied_part_leakage_ua", part)
	}
	for _, v := range []*float64{m.ProtectiveEarthOhm, m.EquipmentLeakageUA, m.AppliedPartLeakageUA, m.InsulationMOhm} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 || *v > 1e9) {
			return Evaluation{}, fmt.Errorf("measurements must be numbers from 0 to 1e9")
		}
	}
	ev := Evaluation{Passed: true, Version: l.Version, Checks: []Check{}}
	add := func(c Check) {
		if c.Limit != nil {
			if c.Min {
				c.Pass = c.Value >= *c.Limit
			} else {
				c.Pass = c.Value <= *c.Limit
			}
		} else {
			c.Pass = true
		}
		ev.Passed = ev.Passed && c.Pass
		ev.Checks = append(ev.Checks, c)
	}
	if m.ProtectiveEarthOhm != nil && class == "I" {
		earth := m.EarthCase
		if earth == "" {
			earth = "detachable_cord"
		}
		i := slices.IndexFunc(l.ProtectiveEarth, func(e EarthLimit) bool { return e.Case == earth })
		if i < 0 {
			return Evaluation{}, fmt.Errorf("protective_earth_case %q: want one of %v", earth, EarthCases)
		}
		add(Check{Quantity: "protective_earth_resistance", Value: *m.ProtectiveEarthOhm, Unit: "ohm",
			Limit: ptr(l.ProtectiveEarth[i].MaxOhm), Normative: true})
	}
	add(Check{Quantity: "equipment_leakage", Value: *m.EquipmentLeakageUA, Unit: "uA",
		Limit: lookup(l.Leakage.Equipment, method, class, part), Normative: true})
	if m.AppliedPartLeakageUA != nil {
		apMethod := method
		if apMethod == "differential" {
			apMethod = "direct"
		}
		add(Check{Quantity: "applied_part_leakage", Value: *m.AppliedPartLeakageUA, Unit: "uA",
			Limit: lookup(l.Leakage.AppliedPart, apMethod, class, part), Normative: true})
	}
	if m.InsulationMOhm != nil {
		var limit *float64
		if v, ok := l.Insulation.MainsToPE[class]; ok {
			limit = &v
		} else if v, ok := l.Insulation.MainsToEnclosure[class]; ok {
			limit = &v
		}
		add(Check{Quantity: "insulation_resistance", Value: *m.InsulationMOhm, Unit: "Mohm", Limit: limit, Min: true,
			Normative: l.Insulation.Normative})
	}
	return ev, nil
}

func lookup(t map[string]map[string]map[string]float64, method, class, part string) *float64 {
	if v, ok := t[method][class][part]; ok {
		return &v
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
