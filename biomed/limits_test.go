package biomed

import (
	"strings"
	"testing"
)

func f(v float64) *float64 { return &v }

// The limits of IEC 62353:2014 Table 2 (and 5.3.2 for the protective
// earth) by class and applied-part type, each side of every limit.
func TestEvaluateLimits(t *testing.T) {
	tests := []struct {
		name, class, part, method string
		m                         Measurements
		passed                    bool
		failed                    []string // quantities that fail
		err                       string
	}{
		{name: "class I BF direct, all within", class: "I", part: "BF", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.3), EquipmentLeakageUA: f(500), AppliedPartLeakageUA: f(5000)}, passed: true},
		{name: "class I earth just over 0.3 ohm", class: "I", part: "BF", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.31), EquipmentLeakageUA: f(100), AppliedPartLeakageUA: f(10)}, failed: []string{"protective_earth_resistance"}},
		{name: "class I earth without cord: 0.2 ohm", class: "I", part: "none", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.25), EarthCase: "no_cord", EquipmentLeakageUA: f(100)}, failed: []string{"protective_earth_resistance"}},
		{name: "class I cord alone: 0.1 ohm", class: "I", part: "none", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EarthCase: "cord_only", EquipmentLeakageUA: f(100)}, passed: true},
		{name: "class I direct equipment leakage 501 uA", class: "I", part: "B", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(501)}, failed: []string{"equipment_leakage"}},
		{name: "class I alternative equipment leakage 1000 uA", class: "I", part: "B", method: "alternative",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(1000)}, passed: true},
		{name: "class I alternative equipment leakage 1001 uA", class: "I", part: "CF", method: "alternative",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(1001), AppliedPartLeakageUA: f(50)}, failed: []string{"equipment_leakage"}},
		{name: "class II direct equipment leakage 100 uA", class: "II", part: "BF", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(100), AppliedPartLeakageUA: f(4999)}, passed: true},
		{name: "class II direct equipment leakage 101 uA", class: "II", part: "BF", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(101), AppliedPartLeakageUA: f(1)}, failed: []string{"equipment_leakage"}},
		{name: "class II alternative equipment leakage 500 uA", class: "II", part: "none", method: "alternative",
			m: Measurements{EquipmentLeakageUA: f(500)}, passed: true},
		{name: "class II differential 150 uA", class: "II", part: "none", method: "differential",
			m: Measurements{EquipmentLeakageUA: f(150)}, failed: []string{"equipment_leakage"}},
		{name: "BF applied part 5001 uA", class: "I", part: "BF", method: "alternative",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(5001)}, failed: []string{"applied_part_leakage"}},
		{name: "CF applied part 50 uA", class: "II", part: "CF", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(50)}, passed: true},
		{name: "CF applied part 51 uA", class: "II", part: "CF", method: "alternative",
			m: Measurements{EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(51)}, failed: []string{"applied_part_leakage"}},
		{name: "CF differential uses the direct applied-part limit", class: "I", part: "CF", method: "differential",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(60)}, failed: []string{"applied_part_leakage"}},
		{name: "type B applied part: no limit, recorded", class: "I", part: "B", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(9000)}, passed: true},
		{name: "several failures at once", class: "I", part: "CF", method: "direct",
			m:      Measurements{ProtectiveEarthOhm: f(1), EquipmentLeakageUA: f(900), AppliedPartLeakageUA: f(80)},
			failed: []string{"protective_earth_resistance", "equipment_leakage", "applied_part_leakage"}},
		{name: "class I insulation below 2 Mohm (not normative)", class: "I", part: "none", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EquipmentLeakageUA: f(10), InsulationMOhm: f(1.5)}, failed: []string{"insulation_resistance"}},
		{name: "class II insulation 7 Mohm", class: "II", part: "none", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(10), InsulationMOhm: f(7)}, passed: true},
		{name: "class I without earth measurement", class: "I", part: "BF", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(10), AppliedPartLeakageUA: f(10)}, err: "protective_earth_ohm"},
		{name: "CF without applied-part leakage", class: "II", part: "CF", method: "direct",
			m: Measurements{EquipmentLeakageUA: f(10)}, err: "applied_part_leakage_ua"},
		{name: "unknown class", class: "III", part: "BF", method: "direct", m: Measurements{EquipmentLeakageUA: f(1)}, err: "device class"},
		{name: "unknown applied part", class: "II", part: "X", method: "direct", m: Measurements{EquipmentLeakageUA: f(1)}, err: "applied part"},
		{name: "negative value", class: "II", part: "none", method: "direct", m: Measurements{EquipmentLeakageUA: f(-1)}, err: "0 to 1e9"},
		{name: "unknown earth case", class: "I", part: "none", method: "direct",
			m: Measurements{ProtectiveEarthOhm: f(0.1), EarthCase: "bare", EquipmentLeakageUA: f(1)}, err: "protective_earth_case"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DefaultLimits.Evaluate(tc.class, tc.part, tc.method, tc.m)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v; want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, c := range ev.Checks {
				if !c.Pass {
					failed = append(failed, c.Quantity)
				}
			}
			if ev.Passed != tc.passed || strings.Join(failed, ",") != strings.Join(tc.failed, ",") {
				t.Fatalf("passed %v, failed %v; want %v, %v (checks %+v)", ev.Passed, failed, tc.passed, tc.failed, ev.Checks)
			}
			if ev.Version != "iec62353-2014-table2-v1" {
				t.Fatalf("version %q", ev.Version)
			}
		})
	}
}

// The data file names its source, and unknown fields are refused.
func TestLimitsData(t *testing.T) {
	if !strings.Contains(DefaultLimits.Source, "IEC 62353:2014") {
		t.Fatalf("source %q", DefaultLimits.Source)
	}
	if DefaultLimits.Insulation.Normative {
		t.Fatal("insulation limits are not in IEC 62353 and must not be marked normative")
	}
	if _, err := ParseLimits([]byte("version: x\nsource: y\nbogus: 1\n")); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}
