package sla

import (
	"testing"
	"time"

	"github.com/vigia-noc/vigia/maintenance/calendar"
)

// BenchmarkDue measures full schedules per second on the busiest preset:
// it-support-pe (split shift 08–12/14–18 Lima, Peruvian holidays), severity
// 4 (36 business hours ≈ a working week), with two pauses, one of them over
// a weekend, and opening instants spread over 2026–2027 so holiday weeks
// (Holy Week, Fiestas Patrias, 8–9 Dec) are walked too.
func BenchmarkDue(b *testing.B) {
	p, err := Presets().Lookup("it-support-pe")
	if err != nil {
		b.Fatal(err)
	}
	lima := p.Calendar().Location()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, lima)
	inputs := make([]Input, 1024)
	for i := range inputs {
		opened := base.Add(time.Duration(i) * 17 * time.Hour).Add(time.Duration(i%60) * time.Minute)
		inputs[i] = Input{
			Opened:   opened,
			Severity: 4,
			Pauses: []calendar.Interval{
				{From: opened.Add(3 * time.Hour), To: opened.Add(5 * time.Hour)},
				{From: opened.Add(50 * time.Hour), To: opened.Add(98 * time.Hour)},
			},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := p.Due(inputs[i%len(inputs)])
		if err != nil || s.Response.Due.IsZero() {
			b.Fatalf("Due: %v %+v", err, s.Response)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dues/s")
}

// BenchmarkDueEscalations is the desk-standard P4 schedule: response plus
// a 20-business-hour resolution with two escalation marks, on the Bogotá
// 8x5 calendar with Colombian holidays and one pause.
func BenchmarkDueEscalations(b *testing.B) {
	p, err := Presets().Lookup("desk-standard")
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, p.Calendar().Location())
	inputs := make([]Input, 1024)
	for i := range inputs {
		opened := base.Add(time.Duration(i) * 17 * time.Hour)
		inputs[i] = Input{Opened: opened, Severity: 4,
			Pauses: []calendar.Interval{{From: opened.Add(time.Hour), To: opened.Add(26 * time.Hour)}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Due(inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dues/s")
}
