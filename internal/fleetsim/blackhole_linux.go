package fleetsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
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
	// The kernel says how full the queue is: no guessing from timeouts.
	queue := func() (length, limit uint32, err error) {
		cerr := raw.Control(func(fd uintptr) { length, limit, err = acceptQueue(fd) })
		return length, limit, errors.Join(cerr, err)
	}
	var fillers []net.Conn
	fail := func(err error) ([]net.Conn, error) {
		closeAll(fillers)
		return nil, fmt.Errorf("blackhole: fill the accept queue of %s: %w", l.Addr(), err)
	}
	for range maxFillers {
		length, limit, err := queue()
		if err != nil {
			return fail(err)
		}
		if length > limit {
			return fillers, nil
		}
		c, err := net.DialTimeout("tcp", l.Addr().String(), fillerTimeout)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// No handshake at all (SYN cookies off: the queue of
			// half-open connections is full at a backlog of 0): dark.
			return fillers, nil
		}
		if err != nil {
			return fail(err)
		}
		fillers = append(fillers, c)
		// The connection lands in the queue as its handshake ends, on
		// loopback before or just after Dial returns.
		for deadline := time.Now().Add(fillerTimeout); ; time.Sleep(time.Millisecond) {
			if n, _, err := queue(); err != nil || n > length || time.Now().After(deadline) {
				break
			}
		}
	}
	return fail(fmt.Errorf("%d connections did not fill it", maxFillers))
}

const (
	maxFillers    = 8
	fillerTimeout = 2 * time.Second
)

// acceptQueue reads a listening socket's accept queue length and limit
// from TCP_INFO, where Linux reports them as tcpi_unacked and tcpi_sacked
// (struct tcp_info: eight one-byte fields, then rto, ato, snd_mss,
// rcv_mss, unacked, sacked as 32-bit words).
func acceptQueue(fd uintptr) (length, limit uint32, err error) {
	var info [104]byte
	size := uint32(len(info))
	if _, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0); errno != 0 {
		return 0, 0, fmt.Errorf("TCP_INFO: %w", errno)
	}
	if size < 32 {
		return 0, 0, fmt.Errorf("TCP_INFO: %d bytes", size)
	}
	return binary.NativeEndian.Uint32(info[24:]), binary.NativeEndian.Uint32(info[28:]), nil
}
