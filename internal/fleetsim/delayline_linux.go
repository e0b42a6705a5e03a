package fleetsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tunName is the TUN device's name pattern; the kernel picks the number.
const tunName = "vigiasim%d"

// openTUN checks that nothing routes rng yet, makes a TUN device, gives it
// the client address with rng's prefix (which routes rng into it) and the
// server address, and brings it up. The device is not persistent: it goes
// with its last file descriptor, so a process killed with -9 leaves
// nothing behind either.
func openTUN(rng netip.Prefix, client, server netip.Addr) (string, io.ReadWriteCloser, error) {
	if err := checkUnrouted(rng); err != nil {
		return "", nil, err
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return "", nil, fmt.Errorf("%w: open /dev/net/tun: %w", ErrDelayLineUnavailable, err)
	}
	ifr, err := unix.NewIfreq(tunName)
	if err != nil {
		unix.Close(fd)
		return "", nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return "", nil, fmt.Errorf("%w: making a TUN device needs root or CAP_NET_ADMIN: %w", ErrDelayLineUnavailable, err)
		}
		return "", nil, fmt.Errorf("%w: make a TUN device: %w", ErrDelayLineUnavailable, err)
	}
	// From here on the TUN device exists: its file is what removes it.
	dev := os.NewFile(uintptr(fd), "/dev/net/tun") // non-blocking: Close ends a Read
	name := ifr.Name()
	if err := setUpTUN(name, rng, client, server); err != nil {
		dev.Close()
		return "", nil, fmt.Errorf("fleetsim: delay line %s: %w", name, err)
	}
	return name, dev, nil
}

func setUpTUN(name string, rng netip.Prefix, client, server netip.Addr) error {
	// No IPv6 on it: its router solicitations would only be stray packets.
	os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint32(maxPacket)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("set MTU: %w", err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("read flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up: %w", err)
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	if err := addAddress(iface.Index, client, rng.Bits()); err != nil {
		return fmt.Errorf("add %s/%d: %w", client, rng.Bits(), err)
	}
	if err := addAddress(iface.Index, server, 32); err != nil {
		return fmt.Errorf("add %s/32: %w", server, err)
	}
	return nil
}

// checkUnrouted fails with ErrRangeRouted when a route of any table (the
// local table's included: an address of the machine) overlaps rng. A
// default route does not count: rng is more specific.
func checkUnrouted(rng netip.Prefix) error {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETROUTE, syscall.AF_INET)
	if err != nil {
		return fmt.Errorf("fleetsim: delay line: read the routes: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return fmt.Errorf("fleetsim: delay line: read the routes: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWROUTE || len(m.Data) < syscall.SizeofRtMsg {
			continue
		}
		rt := (*syscall.RtMsg)(unsafe.Pointer(&m.Data[0]))
		if rt.Dst_len == 0 {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		var dst netip.Addr
		table, oif := uint32(rt.Table), ""
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.RTA_DST:
				dst, _ = netip.AddrFromSlice(a.Value)
			case unix.RTA_TABLE:
				if len(a.Value) == 4 {
					table = binary.NativeEndian.Uint32(a.Value)
				}
			case syscall.RTA_OIF:
				if len(a.Value) == 4 {
					if iface, err := net.InterfaceByIndex(int(binary.NativeEndian.Uint32(a.Value))); err == nil {
						oif = " dev " + iface.Name
					}
				}
			}
		}
		if !dst.IsValid() {
			continue
		}
		if p := netip.PrefixFrom(dst, int(rt.Dst_len)); p.Overlaps(rng) {
			return fmt.Errorf("%w: %s is routed%s (table %d); choose another range with --delay-line or remove that route", ErrRangeRouted, p, oif, table)
		}
	}
	return nil
}

// addAddress adds an IPv4 address to an interface over rtnetlink, as
// `ip addr add A/BITS dev IFACE` does; a prefix shorter than 32 routes it
// into the interface.
func addAddress(index int, a netip.Addr, bits int) error {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	a4 := a.As4()
	// struct ifaddrmsg, then IFA_LOCAL and IFA_ADDRESS (both the address:
	// no peer), each an rtattr of 8 bytes.
	body := []byte{unix.AF_INET, byte(bits), 0, unix.RT_SCOPE_UNIVERSE, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	for _, typ := range []uint16{unix.IFA_LOCAL, unix.IFA_ADDRESS} {
		attr := make([]byte, 8)
		binary.NativeEndian.PutUint16(attr[0:], 8)
		binary.NativeEndian.PutUint16(attr[2:], typ)
		copy(attr[4:], a4[:])
		body = append(body, attr...)
	}
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_NEWADDR)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	binary.NativeEndian.PutUint32(msg[8:], 1) // sequence number
	msg = append(msg, body...)
	if err := unix.Sendto(s, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil {
		return err
	}
	// The answer is an NLMSG_ERROR whose error is 0 for success.
	if n < unix.NLMSG_HDRLEN+4 || binary.NativeEndian.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected rtnetlink answer (%d bytes)", n)
	}
	if e := int32(binary.NativeEndian.Uint32(buf[unix.NLMSG_HDRLEN:])); e != 0 {
		return unix.Errno(-e)
	}
	return nil
}
