package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// Two measuring sticks for dicomping.Echo, both doing its three exchanges
// (A-ASSOCIATE, C-ECHO, A-RELEASE) with PDUs built once in advance and
// answers checked only by their PDU type.
//
// The first (echo, bound_linux.go) is the lower bound of what a C-ECHO
// client can cost on this machine: a blocking socket and raw system calls.
// Nothing runs between the calls, and a blocked read is one sleep in the
// kernel with no scheduler, poller or timer of the Go runtime around it, so
// what it costs is what the kernel charges a client for the exchanges. It
// is a measuring stick, not a client: a real one must parse answers, honour
// a deadline at every step and not block a thread of a shared runtime.
// The second (netConnEcho) is the simplest Go client.
//
// sticks names them for the benchmark and for -loop.
//
// The PDUs are encoded here by hand, independently of package dicomping,
// from PS3.8 section 9.3 and PS3.7 section 9.3.5.

// boundClient holds the request PDUs for one called AE title.
type boundClient struct {
	sa syscall.RawSockaddrInet4
	// steps are the three exchanges: what is sent, and the PDU type that
	// must answer it (A-ASSOCIATE-AC, P-DATA-TF, A-RELEASE-RP).
	steps []step
	buf   [4096]byte
}

type step struct {
	rq   []byte
	want byte
}

func newBoundClient(addr, calledAE string) (*boundClient, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("lower-bound client needs an IPv4 address:port, got %q", addr)
	}
	c := &boundClient{sa: syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ap.Addr().As4()}}
	// sin_port is in network byte order.
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&c.sa.Port))[:], ap.Port())
	c.steps = []step{
		{boundAssociateRQ(calledAE, "BENCH"), 0x02},
		{boundEchoRQ(), 0x04},
		{[]byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0}, 0x06}, // A-RELEASE-RQ
	}
	return c, nil
}

func aeField(ae string) []byte {
	b := []byte("                ")
	copy(b, ae)
	return b
}

// item appends a PDU item or sub-item: type, reserved, 2-byte length.
func item(b []byte, typ byte, value []byte) []byte {
	b = append(b, typ, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(value)))
	return append(b, value...)
}

func boundAssociateRQ(called, calling string) []byte {
	var body []byte
	body = binary.BigEndian.AppendUint16(body, 1) // protocol version
	body = append(body, 0, 0)
	body = append(body, aeField(called)...)
	body = append(body, aeField(calling)...)
	body = append(body, make([]byte, 32)...)
	body = item(body, 0x10, []byte("1.2.840.10008.3.1.1.1"))
	pc := []byte{1, 0, 0, 0} // context ID 1
	pc = item(pc, 0x30, []byte("1.2.840.10008.1.1"))
	pc = item(pc, 0x40, []byte("1.2.840.10008.1.2"))
	pc = item(pc, 0x40, []byte("1.2.840.10008.1.2.1"))
	body = item(body, 0x20, pc)
	var ui []byte
	ui = item(ui, 0x51, binary.BigEndian.AppendUint32(nil, 16384))
	ui = item(ui, 0x52, []byte("1.2.826.0.1.3680043.10.1"))
	body = item(body, 0x50, ui)
	pdu := []byte{0x01, 0}
	pdu = binary.BigEndian.AppendUint32(pdu, uint32(len(body)))
	return append(pdu, body...)
}

// boundEchoRQ is a P-DATA-TF carrying a C-ECHO-RQ command set in Implicit
// VR Little Endian, as one last command fragment on context 1.
func boundEchoRQ() []byte {
	elem := func(b []byte, group, element uint16, value []byte) []byte {
		b = binary.LittleEndian.AppendUint16(b, group)
		b = binary.LittleEndian.AppendUint16(b, element)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(value)))
		return append(b, value...)
	}
	us := func(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
	var rest []byte
	rest = elem(rest, 0, 0x0002, []byte("1.2.840.10008.1.1\x00")) // affected SOP class, padded to even
	rest = elem(rest, 0, 0x0100, us(0x0030))                      // C-ECHO-RQ
	rest = elem(rest, 0, 0x0110, us(1))                           // message ID
	rest = elem(rest, 0, 0x0800, us(0x0101))                      // no data set
	cmd := elem(nil, 0, 0x0000, binary.LittleEndian.AppendUint32(nil, uint32(len(rest))))
	cmd = append(cmd, rest...)
	pdu := []byte{0x04, 0}
	pdu = binary.BigEndian.AppendUint32(pdu, uint32(len(cmd)+6))
	pdu = binary.BigEndian.AppendUint32(pdu, uint32(len(cmd)+2))
	pdu = append(pdu, 1, 0x03) // context 1, command, last fragment
	return append(pdu, cmd...)
}

// netConnEcho is the second measuring stick: the same exchanges, requests
// and checks as echo, but the way the simplest Go client would do them,
// dialling with Go's default Dialer and reading and writing through
// net.Conn, so that every wait for the peer goes through the runtime's
// poller and scheduler. No deadline, no parsing: what it costs above echo
// is what waiting the Go way costs, and any Go client that does not block
// a thread per association pays at least that.
func (c *boundClient) netConnEcho(addr string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, x := range c.steps {
		if _, err := conn.Write(x.rq); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, c.buf[:6]); err != nil {
			return err
		}
		if c.buf[0] != x.want {
			return fmt.Errorf("PDU type 0x%02x where 0x%02x was expected", c.buf[0], x.want)
		}
		n := int(binary.BigEndian.Uint32(c.buf[2:6]))
		if n > len(c.buf) {
			return fmt.Errorf("PDU of %d bytes", n)
		}
		if _, err := io.ReadFull(conn, c.buf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// sticks returns the measuring sticks against addr; -loop knows them by key.
func sticks(addr, calledAE string) ([]op, error) {
	c, err := newBoundClient(addr, calledAE)
	if err != nil {
		return nil, err
	}
	var list []op
	if boundSupported {
		list = append(list, op{"bound", "lower bound: same 3 exchanges, blocking raw system calls, no parsing", c.echo})
	}
	return append(list, op{"netconn", "same 3 exchanges through net.Conn, no parsing, no deadline", func() error { return c.netConnEcho(addr) }}), nil
}
