//go:build !linux

package fleetsim

import (
	"errors"
	"net"
)

// darken is implemented on Linux only (see blackhole_linux.go).
func darken(net.Listener) ([]net.Conn, error) {
	return nil, errors.New("blackhole: simulated on Linux only; use mode=refuse")
}
