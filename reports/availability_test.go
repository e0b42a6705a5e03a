package reports

import (
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
)

// TestMeasure pins the arithmetic of one device on hand-made spans: hours
// from t0, covered 0–10 and 20–30 (20 h).
func TestMeasure(t *testing.T) {
	h := func(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Hour))) }
	st := func(state string, a, b float64) probes.StateSpan {
		return probes.StateSpan{State: state, From: h(a), To: h(b)}
	}
	ex := func(kind string, a, b float64) exclusion {
		return exclusion{Exclusion{Kind: kind, Ref: "r"}, span{h(a), h(b)}}
	}
	half := &sla.Availability{DegradedFactor: 0.5}
	ours := &sla.Availability{DegradedFactor: 0.5, UplinkOurs: true}
	tests := []struct {
		name                      string
		rules                     *sla.Availability
		states                    []probes.StateSpan
		excl                      []exclusion
		down, excluded, available float64 // hours, hours, ratio
		exclusions                int
	}{
		{"all up", half, nil, nil, 0, 0, 1, 0},
		{"down outside covered time counts nothing", half, []probes.StateSpan{st("down", 10, 20)}, nil, 0, 0, 1, 0},
		{"down across the edge of covered time", half, []probes.StateSpan{st("down", 8, 22)}, nil, 4, 0, 0.8, 0},
		{"degraded counts by the factor", half, []probes.StateSpan{st("degraded", 0, 4)}, nil, 2, 0, 0.9, 0},
		{"degraded without availability rules counts nothing", nil, []probes.StateSpan{st("degraded", 0, 4)}, nil, 0, 0, 1, 0},
		{"unreachable: the hospital's uplink", half, []probes.StateSpan{st("unreachable", 0, 5)}, nil, 0, 0, 1, 0},
		{"unreachable: our uplink", ours, []probes.StateSpan{st("unreachable", 0, 5)}, nil, 5, 0, 0.75, 0},
		{"a window takes its covered part out", half, []probes.StateSpan{st("down", 0, 10)},
			[]exclusion{ex(ExcludedWindow, 5, 25)}, 5, 10, 0.5, 1},
		{"overlapping exclusions are counted once", half, []probes.StateSpan{st("down", 0, 2)},
			[]exclusion{ex(ExcludedWindow, 0, 4), ex(ExcludedCustomer, 2, 6)}, 0, 6, 1, 2},
		{"an exclusion outside covered time is not listed", half, nil, []exclusion{ex(ExcludedWindow, 12, 18)}, 0, 0, 1, 0},
		{"time before the first probe result is not counted", half, []probes.StateSpan{st("unknown", 0, 5), st("down", 5, 6), st("up", 6, 30)},
			nil, 1, 5, 0.933333, 1},
		{"everything excluded", half, []probes.StateSpan{st("down", 0, 30)}, []exclusion{ex(ExcludedWindow, 0, 30)}, 0, 20, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := sla.Policy{Name: "p", Availability: tc.rules}
			got := measure(assets.Device{ID: "d"}, assets.Contract{ID: "k"}, p, sp(0, 10, 20, 30), tc.states, tc.excl)
			if got.CoveredSeconds != 20*3600 || got.DowntimeSeconds != tc.down*3600 || got.ExcludedSeconds != tc.excluded*3600 ||
				got.Availability != tc.available || len(got.Exclusions) != tc.exclusions {
				t.Errorf("covered %g down %g excluded %g availability %g exclusions %d; want 72000 %g %g %g %d", got.CoveredSeconds,
					got.DowntimeSeconds, got.ExcludedSeconds, got.Availability, len(got.Exclusions), tc.down*3600, tc.excluded*3600, tc.available, tc.exclusions)
			}
		})
	}
}

// TestGroupTier: a contract adds its devices up and reaches the tier with
// the lowest threshold still above its availability.
func TestGroupTier(t *testing.T) {
	rules := &sla.Availability{Target: 0.98, Credits: []sla.CreditTier{{Below: 0.98, CreditPercent: 5}, {Below: 0.95, CreditPercent: 10}}}
	tests := []struct {
		name     string
		down     float64 // of 100 s counted
		met      bool
		credit   float64 // 0: none
		wantAvbl float64
	}{
		{"target met", 1, true, 0, 0.99},
		{"exactly the target is met", 2, true, 0, 0.98},
		{"first tier", 3, false, 5, 0.97},
		{"second tier", 6, false, 10, 0.94},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := []DeviceAvailability{{ContractID: "k", CoveredSeconds: 60, DowntimeSeconds: tc.down / 2},
				{ContractID: "k", CoveredSeconds: 50, ExcludedSeconds: 10, DowntimeSeconds: tc.down / 2}}
			g := group(ds, func(d DeviceAvailability) string { return d.ContractID }, func(string) (string, string, *sla.Availability) { return "", "p", rules })
			if len(g) != 1 || g[0].Availability != tc.wantAvbl || g[0].TargetMet == nil || *g[0].TargetMet != tc.met {
				t.Fatalf("%+v", g)
			}
			if (tc.credit == 0) != (g[0].CreditPercent == nil) || (g[0].CreditPercent != nil && *g[0].CreditPercent != tc.credit) {
				t.Errorf("credit %v, want %v", g[0].CreditPercent, tc.credit)
			}
		})
	}
}
