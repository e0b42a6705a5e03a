package probes

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// unspecified is the AF_UNSPEC address that dissolves a datagram socket's
// association (connect(2)).
var unspecified = syscall.RawSockaddr{Family: syscall.AF_UNSPEC}

// reconnectUDP points a connected UDP socket at another peer. It first
// dissolves the old association, which on Linux also releases the source
// address and port the kernel picked for it, so the new connect chooses
// them by the new route, exactly as for a new socket: a NOC server with a
// management interface per network still sends from the right one. The
// socket then receives only the new agent's datagrams and still reports a
// closed port, as gosnmp's own connected sockets do.
func reconnectUDP(conn *net.UDPConn, to netip.AddrPort) error {
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok || (local.IP.To4() != nil) != to.Addr().Is4() || to.Addr().Zone() != "" {
		return syscall.EAFNOSUPPORT // another family, or a scoped address: dial anew
	}
	var sa syscall.Sockaddr
	if to.Addr().Is4() {
		sa = &syscall.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}
	} else {
		sa = &syscall.SockaddrInet6{Port: int(to.Port()), Addr: to.Addr().As16()}
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		if _, _, errno := syscall.Syscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&unspecified)), unsafe.Sizeof(unspecified)); errno != 0 {
			cerr = errno
			return
		}
		cerr = syscall.Connect(int(fd), sa)
	})
	if err != nil {
		return err
	}
	return cerr
}
