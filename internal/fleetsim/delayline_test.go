package fleetsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// ipPacket builds an IPv4 packet from src to dst around a transport
// segment whose checksum field is at csumAt (-1: none), every checksum
// summed from scratch, independently of the code under test: the sum of
// all 16-bit words modulo 65535.
func ipPacket(proto byte, src, dst [4]byte, seg []byte, csumAt int) []byte {
	seg = bytes.Clone(seg)
	if csumAt >= 0 {
		seg[csumAt], seg[csumAt+1] = 0, 0
		pseudo := append(append(append([]byte{}, src[:]...), dst[:]...), 0, proto, byte(len(seg)>>8), byte(len(seg)))
		sum := scratchSum(append(pseudo, seg...))
		if proto == protoUDP && sum == 0 {
			sum = 0xffff
		}
		binary.BigEndian.PutUint16(seg[csumAt:], sum)
	}
	h := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(seg)))
	h = append(append(append(h, src[:]...), dst[:]...), seg...)
	binary.BigEndian.PutUint16(h[10:], scratchSum(h[:20]))
	return h
}

func scratchSum(b []byte) uint16 {
	if len(b)%2 == 1 {
		b = append(bytes.Clone(b), 0)
	}
	var s uint64
	for i := 0; i < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	s %= 0xffff
	return ^uint16(s)
}

// The checksums a readdressed packet carries are those of the same packet
// built with the new addresses from scratch.
func TestReaddressChecksums(t *testing.T) {
	a, b := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 3, 77}
	c, d := [4]byte{198, 18, 3, 77}, [4]byte{198, 18, 0, 2}
	// A SYN with options, and a segment with an odd-length payload.
	syn := []byte{0xc3, 0x50, 0x4e, 0x20, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0,
		2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 1, 2, 3, 0, 0, 0, 0, 1, 3, 3, 7}
	data := append([]byte{0x4e, 0x20, 0xc3, 0x50, 9, 9, 9, 9, 1, 1, 1, 1, 0x50, 0x18, 0x01, 0xf6, 0, 0, 0, 0}, []byte("A-ASSOCIATE-RQ…")...)
	udp := append([]byte{0xd4, 0x31, 0x00, 0xa1, 0, 0, 0, 0}, []byte("\x30\x29\x02\x01\x01\x04\x0dsim-community")...)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	for _, tc := range []struct {
		name   string
		proto  byte
		seg    []byte
		csumAt int
	}{
		{"tcp syn", protoTCP, syn, 16},
		{"tcp odd payload", protoTCP, data, 16},
		{"udp", protoUDP, udp, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ipPacket(tc.proto, a, b, tc.seg, tc.csumAt)
			if err := readdress(p, c, d); err != nil {
				t.Fatal(err)
			}
			if want := ipPacket(tc.proto, c, d, tc.seg, tc.csumAt); !bytes.Equal(p, want) {
				t.Fatalf("readdressed\n%x\nwant\n%x", p, want)
			}
		})
	}
	t.Run("udp without checksum", func(t *testing.T) {
		p := ipPacket(protoUDP, a, b, udp, -1)
		readdress(p, c, d)
		if want := ipPacket(protoUDP, c, d, udp, -1); !bytes.Equal(p, want) {
			t.Fatalf("readdressed\n%x\nwant\n%x", p, want)
		}
	})
	// Port unreachable from the server (d) to the device address (c),
	// quoting the datagram c sent d: it goes back to the client (a) from
	// the device (b), quoting what the client sent the device.
	t.Run("icmp port unreachable", func(t *testing.T) {
		icmp := func(from, to [4]byte, quoted []byte) []byte {
			m := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...)
			binary.BigEndian.PutUint16(m[2:], scratchSum(m))
			return ipPacket(protoICMP, from, to, m, -1)
		}
		p := icmp(d, c, ipPacket(protoUDP, c, d, udp, 6))
		if err := readdress(p, b, a); err != nil {
			t.Fatal(err)
		}
		if want := icmp(b, a, ipPacket(protoUDP, a, b, udp, 6)); !bytes.Equal(p, want) {
			t.Fatalf("readdressed\n%x\nwant\n%x", p, want)
		}
	})
	t.Run("not ipv4", func(t *testing.T) {
		if err := readdress([]byte{0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, c, d); err == nil {
			t.Fatal("an IPv6 packet readdressed")
		}
	})
}

// needDelayLine opens a delay line on rng for the test, or skips it (fails
// it in CI) when the machine cannot make one.
func needDelayLine(t *testing.T, rng string) *DelayLine {
	t.Helper()
	if os.Geteuid() != 0 {
		testpeer.Missing(t, "root (CAP_NET_ADMIN, for the delay line's TUN device)", "sudo go test ./internal/fleetsim")
	}
	dl, err := OpenDelayLine(netip.MustParsePrefix(rng), nil)
	if errors.Is(err, ErrDelayLineUnavailable) {
		testpeer.Missing(t, "a TUN device ("+err.Error()+")", "modprobe tun")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dl.Close() })
	return dl
}

// Behind the delay line, a profile reaches the packets: a plain TCP
// connect (which the kernel completes before the simulator sees it) takes
// one round trip of a WAN, an SNMP get too, a DICOM echo adds the PACS's
// slowness on top, and at 100 % loss a connect times out.
func TestDelayLine(t *testing.T) {
	const rng = "198.19.250.0/24"
	dl := needDelayLine(t, rng)
	wan := Profiles["wan"]
	ports := freeBlock(t, 5)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports+i) }
	fleet := []Device{
		{ID: "gw", Site: "a", TCP: addr(0), Profile: wan},
		{ID: "sw", Site: "a", SNMP: &SNMP{Addr: addr(1), Community: simCommunity}, Profile: wan},
		{ID: "dead-link", Site: "b", TCP: addr(2), Profile: Profile{Name: "cut", Loss: 1}},
		{ID: "pacs", Site: "a", DICOM: &DICOM{Addr: addr(3), AETitle: "PACS"}, Profile: Combine(wan, Profiles["slow-pacs"])},
		{ID: "near", Site: "c", TCP: addr(4), Profile: Profiles["lan"]},
	}
	hosts, err := dl.Place(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 4 || hosts["near"] != "" {
		t.Fatalf("placed %v; want every device but the lan one", hosts)
	}
	sim := start(t, fleet, Options{})
	at := func(id string, port int) string {
		st, err := sim.Device(id)
		if err != nil {
			t.Fatal(err)
		}
		if id != "near" && !netip.MustParsePrefix(rng).Contains(netip.MustParseAddr(st.Host)) {
			t.Fatalf("%s is at %q, outside %s", id, st.Host, rng)
		}
		return net.JoinHostPort(st.Host, strconv.Itoa(port))
	}
	timed := func(f func() error) (time.Duration, error) {
		start := time.Now()
		err := f()
		return time.Since(start), err
	}
	// Generous upper bounds: the machine is shared and loaded.
	const slack = 500 * time.Millisecond

	t.Run("tcp connect takes a round trip", func(t *testing.T) {
		for range 5 {
			took, err := timed(func() error { return dialWithin(at("gw", ports), 5*time.Second) })
			if err != nil || took < wan.MinRTT || took > wan.MaxRTT+slack {
				t.Errorf("connect took %s (%v), want %s to %s", took, err, wan.MinRTT, wan.MaxRTT)
			}
		}
		// The lan device is where it listens, at loopback speed.
		if took, err := timed(func() error { return dialWithin(at("near", ports+4), 5*time.Second) }); err != nil || took > 20*time.Millisecond+slack {
			t.Errorf("lan connect took %s (%v)", took, err)
		}
	})
	t.Run("snmp get takes a round trip", func(t *testing.T) {
		host, port := splitAddr(t, at("sw", ports+1))
		g := &gosnmp.GoSNMP{Target: host, Port: uint16(port), Community: simCommunity, Version: gosnmp.Version2c,
			Timeout: 5 * time.Second, Retries: 0}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		defer g.Conn.Close()
		for range 3 {
			var res *gosnmp.SnmpPacket
			took, err := timed(func() (err error) {
				res, err = g.Get([]string{".1.3.6.1.2.1.1.5.0"})
				return err
			})
			if err != nil || took < wan.MinRTT || took > wan.MaxRTT+slack {
				t.Fatalf("get took %s (%v), want %s to %s", took, err, wan.MinRTT, wan.MaxRTT)
			}
			if v, _ := res.Variables[0].Value.([]byte); string(v) != "sw" {
				t.Fatalf("sysName %q", res.Variables[0].Value)
			}
		}
	})
	t.Run("dicom echo adds the pacs's slowness to the link's", func(t *testing.T) {
		// Connect, association, echo, release: four round trips, three
		// steps of 40 ms.
		least := 4*wan.MinRTT + 3*Profiles["slow-pacs"].Step
		took, err := timed(func() error {
			_, err := dicomping.Echo(context.Background(), at("pacs", ports+3), dicomping.Options{CalledAETitle: "PACS", Timeout: 10 * time.Second})
			return err
		})
		if err != nil || took < least || took > 4*wan.MaxRTT+3*Profiles["slow-pacs"].Step+slack {
			t.Errorf("echo took %s (%v), want at least %s", took, err, least)
		}
	})
	t.Run("total loss times out", func(t *testing.T) {
		if err := dialWithin(at("dead-link", ports+2), time.Second); !timedOut(err) {
			t.Fatalf("connect through a cut link: %v, want a timeout", err)
		}
	})
	t.Run("a device down is refused across the line", func(t *testing.T) {
		if err := sim.Down("gw", Refuse); err != nil {
			t.Fatal(err)
		}
		defer sim.Up("gw")
		took, err := timed(func() error { return dialWithin(at("gw", ports), 5*time.Second) })
		if !errors.Is(err, errRefused) || took < wan.MinRTT {
			t.Fatalf("connect to a down device: %v after %s, want refused after a round trip", err, took)
		}
	})
	t.Run("an overlapping range is refused", func(t *testing.T) {
		_, err := OpenDelayLine(netip.MustParsePrefix("198.19.250.128/25"), nil)
		if !errors.Is(err, ErrRangeRouted) {
			t.Fatalf("second line over %s: %v, want ErrRangeRouted", rng, err)
		}
	})
	if f, lost, _ := dl.Stats(); f == 0 || lost == 0 {
		t.Errorf("stats: %d forwarded, %d lost", f, lost)
	}
	name := dl.Device()
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(name); err == nil {
		t.Errorf("%s still exists after Close", name)
	}
	// Its route went with it: the range can be had again.
	again := needDelayLine(t, rng)
	again.Close()
}

func TestCheckDelayRange(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"198.18.0.0/16", true},
		{"198.19.250.0/24", true},
		{"198.18.0.0/15", true},
		{"10.0.0.0/16", false},
		{"198.16.0.0/14", false},
		{"198.18.0.0/30", false},
		{"2001:db8::/64", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if err := CheckDelayRange(netip.MustParsePrefix(tc.in)); (err == nil) != tc.ok {
				t.Fatalf("CheckDelayRange(%s) = %v", tc.in, err)
			}
		})
	}
}
