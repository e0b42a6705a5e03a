package notify

import (
	"strconv"
	"testing"
	"time"
)

func TestNameAfter(t *testing.T) {
	tests := []struct{ prefix, name, want string }{
		{"la sede", "Sede Norte", "la Sede Norte"},
		{"la sede", "Centro de Imágenes Norte", "la sede Centro de Imágenes Norte"},
		{"Sede", "Sede Norte", "Sede Norte"},
		{"Sede", "SEDE Norte", "SEDE Norte"},
		{"Sede", "Sedes Unidas", "Sede Sedes Unidas"},
		{"site", "Site B", "Site B"},
		{"site", "Beta Main", "site Beta Main"},
		{"Site", "", "Site"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix+"+"+tc.name, func(t *testing.T) {
			if got := nameAfter(tc.prefix, tc.name); got != tc.want {
				t.Errorf("nameAfter(%q, %q) = %q, want %q", tc.prefix, tc.name, got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	s := &Sender{Backoff: 30 * time.Second, MaxBackoff: time.Hour}
	tests := []struct {
		attempts int
		want     time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {7, 32 * time.Minute}, {8, time.Hour}, {50, time.Hour}}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.attempts), func(t *testing.T) {
			if got := s.backoff(tc.attempts); got != tc.want {
				t.Fatalf("backoff(%d) = %s, want %s", tc.attempts, got, tc.want)
			}
		})
	}
}
