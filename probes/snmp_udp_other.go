//go:build !linux

package probes

import (
	"errors"
	"net"
	"net/netip"
)

// reconnectUDP is Linux-only (see snmp_udp_linux.go): elsewhere every poll
// dials its own socket.
func reconnectUDP(*net.UDPConn, netip.AddrPort) error { return errors.ErrUnsupported }
