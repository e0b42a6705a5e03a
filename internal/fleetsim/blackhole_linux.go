package fleetsim

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// darken makes a listening socket complete no more handshakes, without
// root or a firewall: its accept queue is shrunk to the minimum (listen
// again with a backlog of 0, which Linux allows on a listening socket)
// and filled by our own connections, which nobody accepts. Linux then
// drops every new SYN (the "listen overflow" of a hung server), so a
// prober's connect times out as it would against a host that vanished or
// a firewall that drops — never "refused", never connected. It returns
// the connections that fill the queue; closing them and the listener
// undoes it.
func darken(l net.Listener) ([]net.Conn, error) {
	tl, ok := l.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("blackhole: %T is not a TCP listener", l)
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("blackhole: %w", err)
	}
	var lerr error
	if err := raw.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil {
		return nil, fmt.Errorf("blackhole: %w", err)
	}
	if lerr != nil {
		return nil, fmt.Errorf("blackhole: shrink the accept queue: %w", lerr)
	}
	// Fill the queue until a connect goes unanswered: one connection on
	// today's kernels, none when SYN cookies are off (the queue of
	// half-open connections is then already full), a few at most.
	var fillers []net.Conn
	for range maxFillers {
		c, err := net.DialTimeout("tcp", l.Addr().String(), fillerTimeout)
		if err == nil {
			fillers = append(fillers, c)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fillers, nil
		}
		closeAll(fillers)
		return nil, fmt.Errorf("blackhole: fill the accept queue: %w", err)
	}
	closeAll(fillers)
	return nil, fmt.Errorf("blackhole: %d connections did not fill the accept queue of %s", maxFillers, l.Addr())
}

const (
	maxFillers    = 8
	fillerTimeout = 250 * time.Millisecond
)

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
