package fleetsim

import (
	"encoding/binary"
	"errors"
)

// IP protocol numbers the delay line readdresses.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

var errNotIPv4 = errors.New("not an IPv4 packet")

// readdress gives an IPv4 packet new source and destination addresses and
// mends its checksums incrementally (RFC 1624): the IP header's, and the
// TCP or UDP one, whose pseudo-header holds the addresses. Only the
// difference is summed, so a segment's payload is never read, and a first
// fragment is mended without the rest of its datagram. An ICMP error
// carries the start of the packet it answers, sent the other way: that
// one is readdressed too (source and destination swapped), and the ICMP
// checksum, which covers it, summed again.
func readdress(p []byte, src, dst [4]byte) error {
	return readdressIP(p, src, dst, false)
}

// readdressIP does readdress; quoted is set for the packet an ICMP error
// quotes, which is cut short (its lengths say more than there is).
func readdressIP(p []byte, src, dst [4]byte, quoted bool) error {
	if len(p) < 20 || p[0]>>4 != 4 {
		return errNotIPv4
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if ihl < 20 || ihl > len(p) || !quoted && (total < ihl || total > len(p)) {
		return errNotIPv4
	}
	if !quoted {
		p = p[:total]
	}
	var old [8]byte
	copy(old[:], p[12:20])
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	mend(p[10:12], old[:], p[12:20])
	if binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 {
		return nil // a later fragment: no transport header
	}
	l4 := p[ihl:]
	switch p[9] {
	case protoTCP:
		if len(l4) >= 18 {
			mend(l4[16:18], old[:], p[12:20])
		}
	case protoUDP:
		// Zero is "no checksum"; a computed zero is sent as all ones.
		if len(l4) >= 8 && binary.BigEndian.Uint16(l4[6:8]) != 0 {
			mend(l4[6:8], old[:], p[12:20])
			if binary.BigEndian.Uint16(l4[6:8]) == 0 {
				binary.BigEndian.PutUint16(l4[6:8], 0xffff)
			}
		}
	case protoICMP:
		if quoted || len(l4) < 8+20 || !icmpError(l4[0]) {
			return nil
		}
		if err := readdressIP(l4[8:], dst, src, true); err != nil {
			return nil // not ours to judge: the kernel will
		}
		l4[2], l4[3] = 0, 0
		binary.BigEndian.PutUint16(l4[2:4], checksum(l4, 0))
	}
	return nil
}

// icmpError reports whether an ICMP type quotes the packet it answers:
// destination unreachable, source quench, redirect, time exceeded,
// parameter problem.
func icmpError(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}

// mend updates the checksum field sum for the 16-bit words of old
// replaced by those of new (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
func mend(sum []byte, old, new []byte) {
	acc := uint32(^binary.BigEndian.Uint16(sum))
	for i := 0; i+1 < len(old); i += 2 {
		acc += uint32(^binary.BigEndian.Uint16(old[i:]))
		acc += uint32(binary.BigEndian.Uint16(new[i:]))
	}
	binary.BigEndian.PutUint16(sum, ^fold(acc))
}

// checksum is the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial (a pseudo-header's).
func checksum(b []byte, initial uint32) uint16 {
	acc := initial
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return ^fold(acc)
}

func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}
