package assets

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Secret holds a credential (SNMP community or passphrase, heartbeat
// token). It prints, marshals and logs as "<secret>", so it cannot leak by
// accident; Reveal is the one deliberate way to read it.
//
// In the inventory file a secret is written inline, or as a reference:
//
//	community: public                       # inline
//	community: {file: /etc/vigia/snmp.txt}  # first line of a file
//	community: {env: SNMP_COMMUNITY}        # an environment variable
type Secret struct{ value string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the secret's value, for the code that must use it.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether no secret was given.
func (s Secret) IsZero() bool { return s.value == "" }

func (s Secret) String() string                { return "<secret>" }
func (s Secret) GoString() string              { return "<secret>" }
func (s Secret) MarshalJSON() ([]byte, error)  { return json.Marshal(s.String()) }
func (s Secret) MarshalYAML() (any, error)     { return s.String(), nil }
func (s Secret) MarshalText() ([]byte, error)  { return []byte(s.String()), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, "<secret>") }

// UnmarshalYAML resolves inline values and file/env references. Errors are
// reported as yaml type errors so the importer lists them with their line
// beside every other mistake in the file.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	fail := func(format string, a ...any) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, a...)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		s.value = n.Value
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fail("a secret reference has exactly one key, file or env")
		}
		key, val := n.Content[0], n.Content[1]
		if val.Kind != yaml.ScalarNode || val.Value == "" {
			return fail("secret %s: want a non-empty string", key.Value)
		}
		switch key.Value {
		case "file":
			b, err := os.ReadFile(val.Value)
			if err != nil {
				// The path is not secret; the content would be.
				return fail("secret file: %v", err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			s.value = strings.TrimRight(first, "\r")
			if s.value == "" {
				return fail("secret file %s is empty", val.Value)
			}
		case "env":
			v, ok := os.LookupEnv(val.Value)
			if !ok || v == "" {
				return fail("secret env: environment variable %s is not set", val.Value)
			}
			s.value = v
		default:
			return fail("unknown key %q in a secret reference (want file or env)", key.Value)
		}
		return nil
	default:
		return fail("a secret is a string or {file: PATH} or {env: NAME}")
	}
}
