package probes

import (
	"context"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/snmptest"
)

// BenchmarkSNMPProbe measures one poll of a real net-snmp agent, as the
// engine runs it: sysUpTime and the ifTable, and on a PACS the
// hrStorageTable too. CPU and allocations per poll are what bound how many
// devices one core can watch (BENCHMARKS.md, SNMP capacity).
func BenchmarkSNMPProbe(b *testing.B) {
	agent := snmptest.Start(b)
	for _, c := range []struct {
		name string
		kind string
		ep   assets.SNMPEndpoint
	}{
		{"v2c/switch", "network", agent.V2c()},
		{"v2c/pacs", "pacs", agent.V2c()},
		{"v3/switch", "network", agent.V3()},
		{"v3/pacs", "pacs", agent.V3()},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := NewSNMPProber()
			d := assets.Device{ID: "bench-" + c.name, Kind: c.kind, SNMP: &c.ep}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r := p.Probe(ctx, d)
				cancel()
				if r.Outcome != OK && r.Outcome != Degraded {
					b.Fatalf("poll: %s: %s", r.Outcome, r.Detail)
				}
			}
		})
	}
}
