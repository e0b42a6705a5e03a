package fleetsim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadPortRange(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content  string
		lo, hi         int
		wantErr, unsup bool
	}{
		{"debian default", "32768\t60999\n", 32768, 60999, false, false},
		{"widened", "1024 65535\n", 1024, 65535, false, false},
		{"reversed", "60999 32768\n", 0, 0, true, false},
		{"garbage", "lots\n", 0, 0, true, false},
		{"missing", "", 0, 0, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name)
			if tc.content != "" {
				if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			lo, hi, err := readPortRange(file)
			if (err != nil) != tc.wantErr || errors.Is(err, errors.ErrUnsupported) != tc.unsup || lo != tc.lo || hi != tc.hi {
				t.Fatalf("got %d-%d, %v", lo, hi, err)
			}
		})
	}
	if _, err := os.Stat(ephemeralRangeFile); err == nil {
		if lo, hi, err := EphemeralPorts(); err != nil || lo > hi {
			t.Fatalf("this machine's range: %d-%d, %v", lo, hi, err)
		}
	}
}
