package probes

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// TCP checks that a port accepts connections, for gear with nothing better.
type TCP struct {
	// Slow marks a connect slower than this as degraded; zero disables.
	Slow time.Duration
}

// Applies reports whether the device has a TCP endpoint.
func (p *TCP) Applies(d assets.Device) bool { return d.TCP != nil }

// Probe connects and closes.
func (p *TCP) Probe(ctx context.Context, d assets.Device) Result {
	addr := net.JoinHostPort(d.TCP.Host, strconv.Itoa(d.TCP.Port))
	start := time.Now()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	r := Result{Prober: "tcp", Duration: time.Since(start)}
	if err != nil {
		r.Outcome, r.Detail = Failed, "tcp "+addr+": "+err.Error()
		return r
	}
	conn.Close()
	r.Outcome, r.Detail = OK, "tcp "+addr+" open in "+r.Duration.Round(time.Microsecond).String()
	if p.Slow > 0 && r.Duration > p.Slow {
		r.Outcome = Degraded
	}
	return r
}
