package probes

import (
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// testWindows returns a parser of Bogotá times and two compiled windows: a
// one-off one on a device and a weekly one on a site.
func testWindows(t *testing.T) (local func(string) time.Time, oneOff, weekly *Window) {
	bogota, _ := time.LoadLocation("America/Bogota")
	local = func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, bogota)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	oneOff = &Window{Scope: "device", ScopeID: "ct", StartsAt: local("2026-11-24 08:00"), EndsAt: local("2026-11-24 10:00")}
	// Every Sunday 02:00-04:00 Bogotá, during December 2026.
	weekly = &Window{Scope: "site", ScopeID: "s1", StartsAt: local("2026-12-01 00:00"), EndsAt: local("2027-01-01 00:00"),
		Cron: "0 2 * * 0", TimeZone: "America/Bogota", Duration: 2 * time.Hour}
	for _, w := range []*Window{oneOff, weekly} {
		if err := w.compile(); err != nil {
			t.Fatal(err)
		}
	}
	return local, oneOff, weekly
}

func TestWindowActive(t *testing.T) {
	local, oneOff, weekly := testWindows(t)
	tests := []struct {
		name string
		w    *Window
		at   time.Time
		want bool
	}{
		{"one-off: before", oneOff, local("2026-11-24 07:59"), false},
		{"one-off: at start", oneOff, local("2026-11-24 08:00"), true},
		{"one-off: inside", oneOff, local("2026-11-24 09:30"), true},
		{"one-off: at end (exclusive)", oneOff, local("2026-11-24 10:00"), false},
		{"weekly: Sunday 02:00 sharp", weekly, local("2026-12-06 02:00"), true},
		{"weekly: Sunday 03:59", weekly, local("2026-12-06 03:59"), true},
		{"weekly: Sunday 04:00", weekly, local("2026-12-06 04:00"), false},
		{"weekly: Sunday 01:59", weekly, local("2026-12-06 01:59"), false},
		{"weekly: Monday 02:30", weekly, local("2026-12-07 02:30"), false},
		{"weekly: the Sunday before the range", weekly, local("2026-11-29 02:30"), false},
		{"weekly: the last Sunday inside", weekly, local("2026-12-27 03:00"), true},
		{"weekly: in UTC terms (07:30Z is 02:30 Bogotá)", weekly, time.Date(2026, 12, 13, 7, 30, 0, 0, time.UTC), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Active(tt.at); got != tt.want {
				t.Errorf("Active(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
	ct := assets.Device{ID: "ct", SiteID: "s1", CustomerID: "c1"}
	other := assets.Device{ID: "mr", SiteID: "s2", CustomerID: "c1"}
	if !oneOff.Covers(ct) || oneOff.Covers(other) || !weekly.Covers(ct) || weekly.Covers(other) {
		t.Error("Covers does not follow the window's scope")
	}
	bad := []*Window{
		{Scope: "device", ScopeID: "x", StartsAt: local("2026-11-24 10:00"), EndsAt: local("2026-11-24 08:00")},
		{Scope: "building", ScopeID: "x", StartsAt: local("2026-11-24 08:00"), EndsAt: local("2026-11-24 10:00")},
		{Scope: "site", ScopeID: "x", StartsAt: local("2026-11-24 08:00"), EndsAt: local("2026-12-24 10:00"), Cron: "every sunday", Duration: time.Hour},
		{Scope: "site", ScopeID: "x", StartsAt: local("2026-11-24 08:00"), EndsAt: local("2026-12-24 10:00"), Cron: "0 2 * * 0"},
	}
	for i, w := range bad {
		if err := w.compile(); err == nil {
			t.Errorf("bad window %d accepted", i)
		}
	}
}

func TestWindowSpans(t *testing.T) {
	local, oneOff, weekly := testWindows(t)
	bogota := local("2026-01-01 00:00").Location()
	tests := []struct {
		name     string
		w        *Window
		from, to string
		want     []string
	}{
		{"one-off inside the period", oneOff, "2026-11-01 00:00", "2026-12-01 00:00", []string{"2026-11-24 08:00/10:00"}},
		{"one-off clipped by the period", oneOff, "2026-11-24 09:00", "2026-11-24 09:30", []string{"2026-11-24 09:00/09:30"}},
		{"one-off outside", oneOff, "2026-11-25 00:00", "2026-11-26 00:00", nil},
		{"weekly over December", weekly, "2026-11-01 00:00", "2027-02-01 00:00",
			[]string{"2026-12-06 02:00/04:00", "2026-12-13 02:00/04:00", "2026-12-20 02:00/04:00", "2026-12-27 02:00/04:00"}},
		{"weekly occurrence running at the period's start", weekly, "2026-12-13 03:00", "2026-12-14 00:00", []string{"2026-12-13 03:00/04:00"}},
		{"weekly occurrence cut by the period's end", weekly, "2026-12-20 00:00", "2026-12-20 02:30", []string{"2026-12-20 02:00/02:30"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range tt.w.Spans(local(tt.from), local(tt.to)) {
				got = append(got, s.From.In(bogota).Format("2006-01-02 15:04")+"/"+s.To.In(bogota).Format("15:04"))
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("Spans = %q, want %q", got, tt.want)
			}
		})
	}
}
