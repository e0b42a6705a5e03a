package reports

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// sp builds spans from hour offsets: sp(1, 3, 5, 6) is [1h,3h) [5h,6h).
func sp(hours ...float64) []span {
	var out []span
	for i := 0; i+1 < len(hours); i += 2 {
		out = append(out, span{t0.Add(time.Duration(hours[i] * float64(time.Hour))), t0.Add(time.Duration(hours[i+1] * float64(time.Hour)))})
	}
	return out
}

func str(ss []span) string {
	var b []string
	for _, s := range ss {
		b = append(b, fmt.Sprintf("%g-%g", s.from.Sub(t0).Hours(), s.to.Sub(t0).Hours()))
	}
	return strings.Join(b, " ")
}

func TestSpans(t *testing.T) {
	tests := []struct {
		name string
		got  []span
		want string
	}{
		{"merge joins overlapping and touching, drops empty", merge(append(sp(5, 6, 1, 3, 2, 4, 4, 4.5), sp(7, 7)...)), "1-4.5 5-6"},
		{"intersect", intersect(sp(0, 10, 12, 20), sp(5, 13, 15, 16, 19, 30)), "5-10 12-13 15-16 19-20"},
		{"intersect disjoint", intersect(sp(0, 1), sp(2, 3)), ""},
		{"subtract inner and edges", subtract(sp(0, 10, 12, 20), sp(-1, 1, 4, 5, 9, 13, 19, 25)), "1-4 5-9 13-19"},
		{"subtract nothing", subtract(sp(0, 10), nil), "0-10"},
		{"subtract all", subtract(sp(2, 3), sp(0, 10)), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := str(tt.got); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
