package probes

import (
	"math"
	"testing"
	"time"
)

// fitStorage against lines whose end is known.
func TestFitStorage(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const size = 1000
	day := 24 * time.Hour
	// line: used at day i (i = 0..n-1).
	line := func(n int, used func(i int) int64) []storageSample {
		var s []storageSample
		for i := range n {
			s = append(s, storageSample{At: t0.Add(time.Duration(i) * day), Used: used(i), Size: size})
		}
		return s
	}
	tests := []struct {
		name    string
		samples []storageSample
		now     time.Time
		filling bool
		fullIn  time.Duration // when filling
		within  time.Duration
	}{
		{"10 a day from 500: full 50 days after the first sample", line(10, func(i int) int64 { return 500 + 10*int64(i) }),
			t0.Add(9 * day), true, 41 * day, time.Minute},
		{"noise around the same line", line(10, func(i int) int64 { return 500 + 10*int64(i) + []int64{3, -3}[i%2] }),
			t0.Add(9 * day), true, 41 * day, day},
		{"flat", line(10, func(int) int64 { return 700 }), t0.Add(9 * day), false, 0, 0},
		{"shrinking", line(10, func(i int) int64 { return 700 - 5*int64(i) }), t0.Add(9 * day), false, 0, 0},
		{"already full at the trend", line(10, func(i int) int64 { return 950 + 10*int64(i) }), t0.Add(9 * day), true, 0, time.Minute},
		{"one sample", line(1, func(int) int64 { return 10 }), t0, false, 0, 0},
		{"span under a day", []storageSample{{At: t0, Used: 1, Size: size}, {At: t0.Add(time.Hour), Used: 100, Size: size}},
			t0.Add(time.Hour), false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := fitStorage(tt.samples, tt.now, day)
			if f.Filling != tt.filling {
				t.Fatalf("filling %v (%+v), want %v", f.Filling, f, tt.filling)
			}
			if !tt.filling {
				return
			}
			if d := f.FullIn - tt.fullIn; math.Abs(d.Hours()) > tt.within.Hours() {
				t.Errorf("full in %s, want %s", f.FullIn, tt.fullIn)
			}
			if !f.FullAt.Equal(tt.now.Add(f.FullIn)) {
				t.Errorf("full at %s, want now + %s", f.FullAt, f.FullIn)
			}
		})
	}
}
