package probes

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// TestTCPProbe runs the TCP prober against real sockets on localhost: a
// listener that accepts, a port that refuses, a peer too slow to count as
// healthy, and a context already expired.
func TestTCPProbe(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A port that was just free refuses connections.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	device := func(addr string) assets.Device {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		return assets.Device{ID: "gw", TCP: &assets.TCPEndpoint{Host: host, Port: p}}
	}
	tests := []struct {
		name    string
		prober  *TCP
		addr    string
		want    Outcome
		details string
	}{
		{"open port", &TCP{}, open.Addr().String(), OK, "open in"},
		{"refused", &TCP{}, closedAddr, Failed, "connection refused"},
		// Any real connect takes longer than a nanosecond.
		{"slower than the degraded bound", &TCP{Slow: time.Nanosecond}, open.Addr().String(), Degraded, "open in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := tc.prober.Probe(ctx, device(tc.addr))
			if r.Outcome != tc.want || !strings.Contains(r.Detail, tc.details) || r.Prober != "tcp" {
				t.Fatalf("Probe(%s) = %+v; want %s with %q", tc.addr, r, tc.want, tc.details)
			}
		})
	}

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // an expired deadline: the dial must not even start
		r := (&TCP{}).Probe(ctx, device(open.Addr().String()))
		if r.Outcome != Failed {
			t.Fatalf("Probe with an expired context = %+v; want failed", r)
		}
	})

	if (&TCP{}).Applies(assets.Device{}) || !(&TCP{}).Applies(device(closedAddr)) {
		t.Fatal("Applies must follow the device's tcp endpoint")
	}
}
