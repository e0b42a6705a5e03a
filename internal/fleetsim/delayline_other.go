//go:build !linux

package fleetsim

import (
	"fmt"
	"io"
	"net/netip"
)

func openTUN(netip.Prefix, netip.Addr, netip.Addr) (string, io.ReadWriteCloser, error) {
	return "", nil, fmt.Errorf("%w: TUN devices are made on Linux only", ErrDelayLineUnavailable)
}
