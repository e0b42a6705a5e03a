package main

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"
)

// boundSupported tells whether the lower bound can be measured here.
const boundSupported = true

// echo runs one association: connect, the three exchanges, close.
func (c *boundClient) echo() error {
	fd, _, e := syscall.RawSyscall(syscall.SYS_SOCKET, syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if e != 0 {
		return fmt.Errorf("socket: %w", e)
	}
	defer syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	// A peer that stops answering must not hang the benchmark.
	tv := syscall.Timeval{Sec: 5}
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, uintptr(unsafe.Pointer(&tv)), unsafe.Sizeof(tv), 0)
	one := int32(1)
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
	if _, _, e := syscall.RawSyscall(syscall.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&c.sa)), unsafe.Sizeof(c.sa)); e != 0 {
		return fmt.Errorf("connect: %w", e)
	}
	for _, x := range c.steps {
		if _, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&x.rq[0])), uintptr(len(x.rq))); e != 0 {
			return fmt.Errorf("write: %w", e)
		}
		have, need := 0, 6
		for have < need {
			n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.buf[have])), uintptr(len(c.buf)-have))
			switch {
			case e == syscall.EINTR:
				continue
			case e != 0:
				return fmt.Errorf("read: %w", e)
			case n == 0:
				return fmt.Errorf("peer closed the connection awaiting PDU type 0x%02x", x.want)
			}
			have += int(n)
			if have >= 6 {
				need = 6 + int(binary.BigEndian.Uint32(c.buf[2:6]))
				if need > len(c.buf) {
					return fmt.Errorf("PDU of %d bytes", need)
				}
			}
		}
		if c.buf[0] != x.want {
			return fmt.Errorf("PDU type 0x%02x where 0x%02x was expected", c.buf[0], x.want)
		}
	}
	return nil
}
