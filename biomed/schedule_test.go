package biomed

import (
	"strings"
	"testing"
	"time"
)

// A year of due days on the customer's calendar, holidays included. The
// expected days were worked out by hand from the 2026 calendars:
// Colombia's moved holidays (Ley Emiliani) and Mexico's Monday holidays.
func TestScheduleOverAYear(t *testing.T) {
	from, to := date(2026, 1, 1), date(2026, 12, 31)
	tests := []struct {
		name, zone, country, schedule string
		every                         int
		anchor                        time.Time
		want                          []string
	}{
		{name: "first monday of each quarter, Bogotá", zone: "America/Bogota", country: "CO", schedule: "first monday of each quarter",
			// 5 Jan, 6 Apr (Easter Monday is no holiday in Colombia), 6 Jul, 5 Oct (Día de la Raza is the 12th).
			want: []string{"2026-01-05", "2026-04-06", "2026-07-06", "2026-10-05"}},
		{name: "day 1 of each month, Bogotá", zone: "America/Bogota", country: "CO", schedule: "day 1 of each month",
			// 1 Jan holiday → Fri 2; Sun 1 Feb → 2; Sun 1 Mar → 2; 1 May Labour Day (Fri) → Mon 4;
			// Sat 1 Aug → Mon 3; Sun 1 Nov → Mon 2 is All Saints' (moved) → Tue 3.
			want: []string{"2026-01-02", "2026-02-02", "2026-03-02", "2026-04-01", "2026-05-04", "2026-06-01",
				"2026-07-01", "2026-08-03", "2026-09-01", "2026-10-01", "2026-11-03", "2026-12-01"}},
		{name: "first monday of feb and nov, Mexico City", zone: "America/Mexico_City", country: "MX", schedule: "first monday of feb,nov",
			// Mon 2 Feb is Constitution Day → Tue 3; Mon 2 Nov is no federal holiday.
			want: []string{"2026-02-03", "2026-11-02"}},
		{name: "last friday of each half, Bogotá", zone: "America/Bogota", country: "CO", schedule: "last friday of each half",
			want: []string{"2026-01-30", "2026-07-31"}},
		{name: "every 6 months from 31 January", zone: "America/Bogota", country: "CO", every: 6, anchor: date(2026, 1, 31),
			// Sat 31 Jan → Mon 2 Feb; Fri 31 Jul.
			want: []string{"2026-02-02", "2026-07-31"}},
		{name: "every 4 months from an anchor before the year", zone: "America/Bogota", country: "CO", every: 4, anchor: date(2025, 11, 20),
			// 20 Mar (Fri), 20 Jul: Independence Day (Mon) → Tue 21, 20 Nov (Fri).
			want: []string{"2026-03-20", "2026-07-21", "2026-11-20"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := CustomerCalendar(tc.zone, tc.country)
			if err != nil {
				t.Fatal(err)
			}
			r := Rule{EveryMonths: tc.every}
			if tc.schedule != "" {
				if r, err = ParseSchedule(tc.schedule); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, d := range r.Days(cal, tc.anchor, from, to) {
				got = append(got, d.Format("2006-01-02"))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("due days\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, s := range []string{"", "monday", "fifth monday of each month", "first moonday of each month", "day 32 of each month",
		"day 0 of each month", "first monday of each week", "first monday in each month", "first monday of jan,foo"} {
		t.Run(s, func(t *testing.T) {
			if _, err := ParseSchedule(s); err == nil {
				t.Fatalf("%q accepted", s)
			}
		})
	}
}
