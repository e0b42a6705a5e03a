package probes

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gosnmp/gosnmp"
	"gopkg.in/yaml.v3"
)

// Trap effects, as written in the rules file.
const (
	TrapInterfaceDown = "interface_down"
	TrapInterfaceUp   = "interface_up"
	TrapReboot        = "reboot"
	TrapSet           = "set"
	TrapClear         = "clear"
	TrapRecord        = "record"
)

//go:embed trap_rules.yaml
var defaultTrapRules []byte

// TrapRules maps trap OIDs to effects. The first matching rule decides.
type TrapRules struct {
	Rules []TrapRule `yaml:"rules"`
}

// TrapRule is one line of the rules file.
type TrapRule struct {
	Name string `yaml:"name"`
	OID  string `yaml:"oid"`
	// Varbind narrows the rule to traps carrying a varbind under Prefix
	// whose value (an OID or a string) is Value.
	Varbind   *TrapVarbindMatch `yaml:"varbind"`
	Effect    string            `yaml:"effect"`
	Condition string            `yaml:"condition"`
	Degrade   bool              `yaml:"degrade"`
	Severity  int               `yaml:"severity"`
	Text      TrapText          `yaml:"text"`
}

// TrapVarbindMatch is a rule's varbind condition.
type TrapVarbindMatch struct {
	Prefix string `yaml:"prefix"`
	Value  string `yaml:"value"`
}

// TrapText is a condition's wording for people.
type TrapText struct {
	ES string `yaml:"es"`
	EN string `yaml:"en"`
}

// DefaultTrapRules are the embedded rules (trap_rules.yaml).
func DefaultTrapRules() *TrapRules {
	r, err := ParseTrapRules(defaultTrapRules)
	if err != nil {
		panic("probes: embedded trap rules: " + err.Error())
	}
	return r
}

var (
	oidPattern       = regexp.MustCompile(`^(\.\d+)+$`)
	conditionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

// ParseTrapRules reads a rules file strictly: unknown keys, unknown effects,
// malformed OIDs and effects missing what they need are errors naming the
// rule.
func ParseTrapRules(data []byte) (*TrapRules, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var r TrapRules
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("trap rules: %w", err)
	}
	if len(r.Rules) == 0 {
		return nil, errors.New("trap rules: no rules")
	}
	names := map[string]bool{}
	var errs []error
	for i, rule := range r.Rules {
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("trap rules: rule %d (%s): %s", i+1, rule.Name, fmt.Sprintf(format, a...)))
		}
		if rule.Name == "" {
			fail("no name")
		} else if names[rule.Name] {
			fail("name used twice")
		}
		names[rule.Name] = true
		if !oidPattern.MatchString(rule.OID) {
			fail("oid %q: want a dotted OID with a leading dot", rule.OID)
		}
		if v := rule.Varbind; v != nil && (!oidPattern.MatchString(v.Prefix) || v.Value == "") {
			fail("varbind: want a dotted prefix with a leading dot and a value")
		}
		switch rule.Effect {
		case TrapSet, TrapClear:
			if !conditionPattern.MatchString(rule.Condition) {
				fail("condition %q: want lower-case letters, digits and _", rule.Condition)
			}
		case TrapInterfaceDown, TrapInterfaceUp, TrapReboot, TrapRecord:
			if rule.Condition != "" {
				fail("a condition is only for set and clear")
			}
		default:
			fail("effect %q: want interface_down, interface_up, reboot, set, clear or record", rule.Effect)
		}
		if rule.Severity != 0 && (rule.Effect != TrapSet || rule.Severity < 1 || rule.Severity > 4) {
			fail("severity: 1 to 4, and only with effect set")
		}
		if rule.Degrade && rule.Effect != TrapSet && rule.Effect != TrapInterfaceDown {
			fail("degrade: only with effect set or interface_down")
		}
		if rule.Effect == TrapSet && (rule.Text.ES == "" || rule.Text.EN == "") {
			fail("text: a condition is worded in es and en")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &r, nil
}

// Oids of SNMPv2-MIB the trap PDU carries first.
const (
	oidSnmpTrapOID = ".1.3.6.1.6.3.1.1.4.1.0"
	// v1 generic traps 0-5 become these OIDs (RFC 3584 §3.1).
	oidSnmpTraps = ".1.3.6.1.6.3.1.1.5"
)

// trapOID returns the trap's identity: snmpTrapOID.0 for v2c and v3, and
// for v1 the RFC 3584 translation of generic/specific trap.
func trapOID(p *gosnmp.SnmpPacket) string {
	if p.Version == gosnmp.Version1 {
		if p.GenericTrap >= 0 && p.GenericTrap < 6 {
			return fmt.Sprintf("%s.%d", oidSnmpTraps, p.GenericTrap+1)
		}
		return fmt.Sprintf("%s.0.%d", strings.TrimSuffix(normaliseOID(p.Enterprise), ".0"), p.SpecificTrap)
	}
	for _, v := range p.Variables {
		if normaliseOID(v.Name) == oidSnmpTrapOID {
			return normaliseOID(pduString(v))
		}
	}
	return ""
}

func normaliseOID(s string) string {
	if s == "" || strings.HasPrefix(s, ".") {
		return s
	}
	return "." + s
}

// Match returns the first rule for the trap, or nil.
func (r *TrapRules) Match(oid string, vars []gosnmp.SnmpPDU) *TrapRule {
	return r.match(oid, trapVarbinds(vars))
}

func (r *TrapRules) match(oid string, vars []TrapVarbind) *TrapRule {
	for i := range r.Rules {
		rule := &r.Rules[i]
		if rule.OID != oid {
			continue
		}
		if rule.Varbind == nil || varbindMatches(rule.Varbind, vars) {
			return rule
		}
	}
	return nil
}

func varbindMatches(m *TrapVarbindMatch, vars []TrapVarbind) bool {
	for _, v := range vars {
		name := v.OID
		if !textTypes[v.Type] || (name != m.Prefix && !strings.HasPrefix(name, m.Prefix+".")) {
			continue
		}
		val := v.Value
		if v.Type == gosnmp.ObjectIdentifier.String() {
			val = normaliseOID(val)
		}
		if val == m.Value {
			return true
		}
	}
	return false
}
