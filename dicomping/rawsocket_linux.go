package dicomping

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawSocket reads and writes a plain TCP connection with raw read(2) and
// write(2) calls on its non-blocking socket, and waits for readiness and
// deadlines through the connection's own poller (syscall.RawConn), as
// net.Conn does.
//
// Why: net.Conn enters the runtime's system call state for every read and
// write, and the first such call after the process sat idle wakes the
// runtime's monitor thread (sysmon), which sleeps again at the next wait
// for the peer. An echo waits three times and paid up to three of these
// wake-ups; a non-blocking call cannot block, so it needs no system call
// state, and only the Close at the end still wakes sysmon. 5 % less CPU
// per echo on the 2-vCPU AMD EPYC VM of BENCHMARKS.md.
type rawSocket struct {
	conn *net.TCPConn
	rc   syscall.RawConn
	// State of the call in progress, and the callbacks given to rc, made
	// once: closures made per call would each be allocated.
	buf             []byte
	n               int
	errno           syscall.Errno
	readFD, writeFD func(fd uintptr) bool
}

// use makes s read and write conn, and returns it, or returns nil when
// conn is not a plain TCP connection. s may be reused after release.
func (s *rawSocket) use(conn net.Conn) io.ReadWriter {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s.conn, s.rc = tc, rc
	if s.readFD == nil {
		s.readFD, s.writeFD = s.readSome, s.writeAll
	}
	return s
}

// release drops the references to the connection.
func (s *rawSocket) release() { s.conn, s.rc, s.buf = nil, nil, nil }

// Read reads what the socket holds, up to len(p), waiting for data until
// the connection's read deadline.
func (s *rawSocket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.call("read", p)
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (s *rawSocket) readSome(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)))
		switch e {
		case 0:
			s.n = int(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller, then try again
		default:
			s.errno = e
		}
		return true
	}
}

// Write writes all of b, waiting for room in the socket buffer until the
// connection's write deadline.
func (s *rawSocket) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return s.call("write", b)
}

// call runs readSome or writeAll on b through the poller and words the
// outcome as net.Conn would.
func (s *rawSocket) call(op string, b []byte) (int, error) {
	s.buf, s.n, s.errno = b, 0, 0
	var err error
	if op == "write" {
		err = s.rc.Write(s.writeFD)
	} else {
		err = s.rc.Read(s.readFD)
	}
	n, errno := s.n, s.errno
	s.buf = nil
	switch {
	case err != nil:
		return n, s.opError(op, err)
	case errno != 0:
		return n, s.opError(op, os.NewSyscallError(op, errno))
	}
	return n, nil
}

func (s *rawSocket) writeAll(fd uintptr) bool {
	for s.n < len(s.buf) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.buf[s.n])), uintptr(len(s.buf)-s.n))
		switch e {
		case 0:
			s.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // socket buffer full: wait, then go on
		default:
			s.errno = e
			return true
		}
	}
	return true
}

// opError words an error as net.Conn's Read and Write would, so that
// callers and messages see no difference between the two paths.
func (s *rawSocket) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		// RawConn reports deadlines and closed connections as "raw-read" or
		// "raw-write".
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: err}
}
