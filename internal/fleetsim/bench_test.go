package fleetsim

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// BenchmarkFleet10000 measures what 10 000 simulated devices cost: the
// time to parse the generated inventory and open every listener, and the
// memory and goroutines each device holds once idle.
//
//	go test -run '^$' -bench Fleet10000 -benchtime 1x ./internal/fleetsim
func BenchmarkFleet10000(b *testing.B) {
	const n = 10000
	soft, _, err := RaiseFileLimit()
	if err == nil && soft < n+fleetBenchFDMargin {
		b.Skipf("file descriptor limit %d is under the %d this needs", soft, n+fleetBenchFDMargin)
	}
	for b.Loop() {
		base := freeBlock(b, n)
		t0 := time.Now()
		data, err := Generate(GenerateOptions{Devices: n, BasePort: base, ProbeInterval: 10 * time.Second, ProbeRetries: 2})
		if err != nil {
			b.Fatal(err)
		}
		f, err := assets.ParseFile("fleet.yaml", data, assets.ParseOptions{})
		if err != nil {
			b.Fatal(err)
		}
		plan := FromInventory(f)
		data, f = nil, nil
		parsed := time.Since(t0)
		before := memNow()
		t1 := time.Now()
		s, err := New(plan.Devices, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		started := time.Since(t1)
		after := memNow()
		b.ReportMetric(parsed.Seconds(), "parse-s")
		b.ReportMetric(started.Seconds(), "start-s")
		b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/device")
		b.ReportMetric(float64(after.stack-before.stack)/n, "stack-B/device")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/n, "goroutines/device")
		t2 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.ReportMetric(time.Since(t2).Seconds(), "shutdown-s")
	}
}

const fleetBenchFDMargin = 64

type memSample struct{ heap, stack, goroutines uint64 }

func memNow() memSample {
	// Two collections: the first one's finalizers (listeners) run before
	// the second.
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heap: m.HeapAlloc, stack: m.StackInuse, goroutines: uint64(runtime.NumGoroutine())}
}
