package calendar

import (
	"testing"
	"time"
)

// BenchmarkAdd: 36 working hours on the split-shift Lima calendar with
// Peruvian holidays and a weekend pause, from openings spread over two years.
func BenchmarkAdd(b *testing.B) {
	c := mustCal(b, limaSplit)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, c.Location())
	type job struct {
		from   time.Time
		pauses []Interval
	}
	jobs := make([]job, 1024)
	for i := range jobs {
		from := base.Add(time.Duration(i) * 17 * time.Hour)
		jobs[i] = job{from, []Interval{{From: from.Add(50 * time.Hour), To: from.Add(98 * time.Hour)}}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := jobs[i%len(jobs)]
		if r := c.Add(j.from, 36*time.Hour, j.pauses); r.At.IsZero() {
			b.Fatal("no due instant")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
}
