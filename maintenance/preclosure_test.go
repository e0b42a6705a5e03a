package maintenance

import (
	"testing"
	"time"
)

func TestPlanClosure(t *testing.T) {
	lima, _ := time.LoadLocation("America/Lima")
	mx, _ := time.LoadLocation("America/Mexico_City")
	type step struct {
		kind string
		due  time.Time
	}
	fri := time.Date(2026, 6, 5, 17, 0, 0, 0, bogota)
	tests := []struct {
		policy string
		solved time.Time
		want   []step
	}{
		{"imaging-8x5", fri, []step{
			{"call", fri}, {"call", fri.Add(3 * time.Hour)}, {"call", fri.Add(6 * time.Hour)},
			{"email", fri.Add(9 * time.Hour)}, {"email", fri.Add(21 * time.Hour)}, {"close", fri.Add(33 * time.Hour)}}},
		// Seed 001: business days of the Lima calendar; Monday 29 June 2026
		// is a Peruvian holiday (San Pedro y San Pablo).
		{"it-support-pe", time.Date(2026, 6, 26, 16, 0, 0, 0, lima), []step{
			{"contact", time.Date(2026, 6, 26, 16, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 30, 16, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 7, 1, 16, 0, 0, 0, lima)},
			{"end", time.Date(2026, 7, 2, 16, 0, 0, 0, lima)}}},
		// Solved on a Saturday: the first attempt waits for Monday's opening.
		{"it-support-pe", time.Date(2026, 6, 6, 11, 0, 0, 0, lima), []step{
			{"contact", time.Date(2026, 6, 8, 8, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 9, 8, 0, 0, 0, lima)},
			{"contact", time.Date(2026, 6, 10, 8, 0, 0, 0, lima)},
			{"end", time.Date(2026, 6, 11, 8, 0, 0, 0, lima)}}},
		{"hosting-mx", time.Date(2026, 6, 5, 12, 0, 0, 0, mx), []step{
			{"contact", time.Date(2026, 6, 5, 12, 0, 0, 0, mx)}, {"close", time.Date(2026, 6, 7, 12, 0, 0, 0, mx)}}},
		{"helpdesk-co", fri, []step{{"contact", fri}}},
	}
	for _, tc := range tests {
		t.Run(tc.policy+" "+tc.solved.Format(time.RFC3339), func(t *testing.T) {
			got := planClosure(policy(t, tc.policy), tc.solved)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Kind != tc.want[i].kind || !got[i].Due.Equal(tc.want[i].due) {
					t.Fatalf("step %d: %s %s, want %s %s", i, got[i].Kind, got[i].Due, tc.want[i].kind, tc.want[i].due)
				}
			}
		})
	}
}
