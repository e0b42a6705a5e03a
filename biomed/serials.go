package biomed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// SerialSpec is one entry of an alert's serials: a serial, or a range
// {"from": "VX200", "to": "VX299"}.
type SerialSpec struct {
	Serial   string `json:"serial,omitempty"`
	From, To string `json:"-"`
}

// MarshalJSON writes a serial as a string and a range as an object, the
// alert file's own shape.
func (s SerialSpec) MarshalJSON() ([]byte, error) {
	if s.From != "" {
		return json.Marshal(map[string]string{"from": s.From, "to": s.To})
	}
	return json.Marshal(s.Serial)
}

// UnmarshalJSON reads a string or a {"from", "to"} object.
func (s *SerialSpec) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &s.Serial)
	}
	var r struct {
		From string `json:"from"`
		To   string `json:"to"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("a serial is a string or {\"from\": …, \"to\": …}: %w", err)
	}
	s.From, s.To = r.From, r.To
	return nil
}

// splitSerial cuts a serial into its prefix and its trailing digits.
func splitSerial(s string) (prefix, digits string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}

func normSerial(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// Check validates the entry: a range's bounds share their prefix, end in
// digits and are in order.
func (s SerialSpec) Check() error {
	if s.From == "" && s.To == "" {
		if strings.TrimSpace(s.Serial) == "" || len(s.Serial) > 100 {
			return fmt.Errorf("a serial must be 1 to 100 characters")
		}
		return nil
	}
	fp, fd := splitSerial(normSerial(s.From))
	tp, td := splitSerial(normSerial(s.To))
	switch {
	case len(s.From) > 100 || len(s.To) > 100:
		return fmt.Errorf("serial range %s–%s: bounds of at most 100 characters", s.From, s.To)
	case fd == "" || td == "":
		return fmt.Errorf("serial range %s–%s: both bounds must end in digits", s.From, s.To)
	case fp != tp:
		return fmt.Errorf("serial range %s–%s: bounds with different prefixes", s.From, s.To)
	case number(fd).Cmp(number(td)) > 0:
		return fmt.Errorf("serial range %s–%s: from is after to", s.From, s.To)
	}
	return nil
}

func number(digits string) *big.Int {
	n, _ := new(big.Int).SetString(digits, 10)
	return n
}

// Matches reports whether serial is the entry's serial or lies in its
// range: the same prefix (case-insensitive) and a numeric suffix between
// the bounds, whatever its leading zeros.
func (s SerialSpec) Matches(serial string) bool {
	serial = normSerial(serial)
	if serial == "" {
		return false
	}
	if s.From == "" {
		return serial == normSerial(s.Serial)
	}
	fp, fd := splitSerial(normSerial(s.From))
	_, td := splitSerial(normSerial(s.To))
	p, d := splitSerial(serial)
	if p != fp || d == "" {
		return false
	}
	n := number(d)
	return n.Cmp(number(fd)) >= 0 && n.Cmp(number(td)) <= 0
}

// sameName compares manufacturers and models: case-insensitive, spaces
// trimmed and runs of spaces as one.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.FieldsFunc(a, unicode.IsSpace), " "), strings.Join(strings.FieldsFunc(b, unicode.IsSpace), " "))
}

// Affects reports whether a device of manufacturer, model and serial is
// affected by an alert: same manufacturer; one of its models (no models:
// every model); one of its serials (no serials: every serial).
func (a AlertInput) Affects(manufacturer, model, serial string) bool {
	if !sameName(a.Manufacturer, manufacturer) {
		return false
	}
	if len(a.Models) > 0 {
		found := false
		for _, m := range a.Models {
			found = found || sameName(m, model)
		}
		if !found {
			return false
		}
	}
	if len(a.Serials) == 0 {
		return true
	}
	for _, s := range a.Serials {
		if s.Matches(serial) {
			return true
		}
	}
	return false
}
