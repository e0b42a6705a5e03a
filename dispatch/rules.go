package dispatch

import (
	"bytes"
	_ "embed"
	"fmt"

	"gopkg.in/yaml.v3"
)

//go:embed billing.yaml
var billingYAML []byte

// Rules are the billing data: currencies, list prices, per-event minimums
// and the hour-bank warning threshold.
type Rules struct {
	Currencies          map[string]string `yaml:"currencies"`
	HourPriceCents      map[string]int64  `yaml:"hour_price_cents"`
	MinimumHours        map[string]int    `yaml:"minimum_hours"`
	HourBankWarnPercent int               `yaml:"hour_bank_warn_percent"`
}

// LoadRules reads and checks billing rules.
func LoadRules(data []byte) (Rules, error) {
	var r Rules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("dispatch: billing rules: %w", err)
	}
	if r.MinimumHours["default"] < 1 {
		return r, fmt.Errorf("dispatch: billing rules: minimum_hours.default must be at least 1")
	}
	if r.HourBankWarnPercent < 1 || r.HourBankWarnPercent > 100 {
		return r, fmt.Errorf("dispatch: billing rules: hour_bank_warn_percent must be 1 to 100")
	}
	for country, cur := range r.Currencies {
		if _, ok := r.HourPriceCents[cur]; !ok {
			return r, fmt.Errorf("dispatch: billing rules: no hour price for %s (%s)", cur, country)
		}
	}
	return r, nil
}

// DefaultRules are the embedded rules.
func DefaultRules() Rules {
	r, err := LoadRules(billingYAML)
	if err != nil {
		panic(err) // embedded data: any test catches a broken file
	}
	return r
}

// currency of a customer's country (USD when the rules do not name it).
func (r Rules) currency(country string) string {
	if c, ok := r.Currencies[country]; ok {
		return c
	}
	return "USD"
}

// minimum is the per-event minimum of an activity, in whole hours.
func (r Rules) minimum(activity string) int {
	if m, ok := r.MinimumHours[activity]; ok {
		return m
	}
	return r.MinimumHours["default"]
}
