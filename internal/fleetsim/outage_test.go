package fleetsim

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseOutage(t *testing.T) {
	tests := []struct {
		in      string
		want    Outage
		wantErr string
	}{
		{"hsr-pacs@60s+5m", Outage{Device: "hsr-pacs", After: time.Minute, For: 5 * time.Minute, Mode: Refuse}, ""},
		{"ct@0s+1h30m", Outage{Device: "ct", For: 90 * time.Minute, Mode: Refuse}, ""},
		{"hsr-pacs+5m", Outage{}, "want DEVICE@AFTER+DURATION"},
		{"hsr-pacs@60s", Outage{}, "want DEVICE@AFTER+DURATION"},
		{"@1s+1s", Outage{}, "want DEVICE@AFTER+DURATION"},
		{"ct@soon+5m", Outage{}, `AFTER "soon"`},
		{"ct@-1s+5m", Outage{}, `AFTER "-1s"`},
		{"ct@1s+0s", Outage{}, `DURATION "0s"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOutage(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOutage: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseOutage = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestScheduledOutage(t *testing.T) {
	t.Parallel()
	addr := freeAddrs(t, 1)[0]
	var log logBuffer
	s := start(t, []Device{dicomDevice("pacs", "site", addr)}, Options{Logger: log.logger()})
	const after, dur = 150 * time.Millisecond, 300 * time.Millisecond
	t0 := time.Now()
	if err := s.Schedule(Outage{Device: "pacs", After: after, For: dur}); err != nil {
		t.Fatal(err)
	}
	if err := s.Schedule(Outage{Device: "nope", After: after, For: dur}); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("outage of an unknown device: %v", err)
	}
	if err := echo(addr, "AE_pacs", time.Second); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	eventually(t, 2*time.Second, "outage starts", func() bool { return refused(echo(addr, "AE_pacs", time.Second)) })
	// Polling adds up to 5 ms plus an echo; the timer itself may be late
	// on a loaded machine, never early.
	if down := time.Since(t0); down < after || down > after+400*time.Millisecond {
		t.Fatalf("down after %s, want %s", down, after)
	}
	eventually(t, 2*time.Second, "outage ends", func() bool { return echo(addr, "AE_pacs", time.Second) == nil })
	if up := time.Since(t0); up < after+dur || up > after+dur+400*time.Millisecond {
		t.Fatalf("up again after %s, want %s", up, after+dur)
	}
	// The line is written once the device is back, which an echo may
	// see first.
	lines := func() bool {
		out := log.String()
		return strings.Count(out, "device down") == 1 && strings.Count(out, "scheduled outage: device down") == 1 &&
			strings.Count(out, "device up") == 1 && strings.Count(out, "scheduled outage over: device up") == 1
	}
	eventually(t, time.Second, "one line when the outage begins and one when it ends", lines)

	// Closing cancels what is still scheduled.
	if err := s.Schedule(Outage{Device: "pacs", After: 50 * time.Millisecond, For: time.Second}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	time.Sleep(100 * time.Millisecond)
	if strings.Count(log.String(), "scheduled outage") != 2 {
		t.Fatalf("an outage fired after Close:\n%s", log.String())
	}
}
