package fleetsim

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A delay line carries the packets between probers and simulated devices
// through a TUN device, so that a profile's round trip and loss apply to
// every packet, the TCP handshake included (which the kernel completes
// before any program sees a connection): Linux here has no netem.
//
// Its range (a prefix of 198.18.0.0/15, the benchmarking range of RFC
// 2544, never a real network) is routed into the TUN device. The range's
// first address is the client's: a prober connecting to device address D
// sends from it. The second is the server's, where the devices listen.
// Every other address is a device's. A packet from the client to D:p is
// held for half a round trip of D's profile (or dropped, at its loss
// rate), and written back from D to the server's D:p; the answer, from
// the server to D, comes back from D to the client the same way. Ports
// are kept, so no connection table is needed: the source address says
// which way a packet goes.
type DelayLine struct {
	prefix         netip.Prefix
	client, server [4]byte
	name           string
	dev            io.ReadWriteCloser
	log            *slog.Logger

	mu    sync.Mutex
	links map[[4]byte]*link
	next  netip.Addr // the next device address to hand out

	qmu  sync.Mutex
	q    packetQueue
	seq  uint64
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	pool sync.Pool

	closeOnce sync.Once
	forwarded atomic.Uint64
	lost      atomic.Uint64
	stray     atomic.Uint64
}

// DefaultDelayRange is where `vigia simulate fleet` puts devices behind
// the delay line unless told otherwise.
var DefaultDelayRange = netip.MustParsePrefix("198.18.0.0/16")

// benchmarkingRange is RFC 2544's: no real network uses it.
var benchmarkingRange = netip.MustParsePrefix("198.18.0.0/15")

// Errors of OpenDelayLine.
var (
	// ErrDelayLineUnavailable: no TUN device could be made (no root or
	// CAP_NET_ADMIN, no /dev/net/tun, not Linux). Profiles then apply at
	// the application level only.
	ErrDelayLineUnavailable = errors.New("fleetsim: delay line unavailable")
	// ErrRangeRouted: some route or address of the machine already covers
	// part of the range.
	ErrRangeRouted = errors.New("fleetsim: delay line range already routed")
)

// maxPacket is the TUN device's MTU, the largest packet read.
const maxPacket = 1500

// CheckDelayRange accepts an IPv4 prefix inside 198.18.0.0/15 with room
// for a few devices.
func CheckDelayRange(p netip.Prefix) error {
	if !p.Addr().Is4() || p.Bits() < benchmarkingRange.Bits() || p.Bits() > 28 || !benchmarkingRange.Contains(p.Addr()) {
		return fmt.Errorf("fleetsim: delay line range %s: want an IPv4 prefix from /15 to /28 inside %s, the benchmarking range", p, benchmarkingRange)
	}
	return nil
}

// OpenDelayLine makes the TUN device, routes range into it and starts
// carrying packets. It needs root or CAP_NET_ADMIN, else it returns
// ErrDelayLineUnavailable; a range already routed elsewhere is refused
// with ErrRangeRouted. Close removes the device and its routes; so does
// the kernel if the process dies.
func OpenDelayLine(rng netip.Prefix, log *slog.Logger) (*DelayLine, error) {
	if err := CheckDelayRange(rng); err != nil {
		return nil, err
	}
	rng = rng.Masked()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := rng.Addr().Next()
	server := client.Next()
	name, dev, err := openTUN(rng, client, server)
	if err != nil {
		return nil, err
	}
	l := newDelayLine(rng, client, server, name, dev, log)
	l.start()
	return l, nil
}

func newDelayLine(rng netip.Prefix, client, server netip.Addr, name string, dev io.ReadWriteCloser, log *slog.Logger) *DelayLine {
	return &DelayLine{prefix: rng, client: client.As4(), server: server.As4(), name: name, dev: dev, log: log,
		links: map[[4]byte]*link{}, next: server.Next(), wake: make(chan struct{}, 1), done: make(chan struct{}),
		pool: sync.Pool{New: func() any { return new([maxPacket]byte) }}}
}

// Range is the prefix routed into the delay line.
func (l *DelayLine) Range() netip.Prefix { return l.prefix }

// Device is the name of the TUN device ("vigiasim0").
func (l *DelayLine) Device() string { return l.name }

// Server is the local address the devices behind the line listen on.
func (l *DelayLine) Server() netip.Addr { return netip.AddrFrom4(l.server) }

// link is the way to one device address: its profile's round trip and
// loss, and when the last packet each way leaves the line.
type link struct {
	p Profile
	// last keeps each direction in order: with jitter, a packet drawn
	// a shorter delay than the one before it waits for that one, as on a
	// real link (which jitters, but does not reorder a connection).
	last [2]time.Time
}

// Add gives a device an address behind the line, with the round trip and
// loss of profile p (its Step is the simulator's to add).
func (l *DelayLine) Add(p Profile) (netip.Addr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.next
	// Skip the .0 and .255 of every /24: some tools take them for a
	// network or broadcast address.
	for a.IsValid() && l.prefix.Contains(a) && (a.As4()[3] == 0 || a.As4()[3] == 255) {
		a = a.Next()
	}
	if !a.IsValid() || !l.prefix.Contains(a) {
		return netip.Addr{}, fmt.Errorf("fleetsim: delay line range %s is full (%d devices)", l.prefix, len(l.links))
	}
	l.next = a.Next()
	// A profile's loss is per exchange (a request and its answer, as the
	// simulator applies it without the line): each packet is lost at the
	// rate that loses one of two that often.
	l.links[a.As4()] = &link{p: Profile{Name: p.Name, MinRTT: p.MinRTT, MaxRTT: p.MaxRTT, Loss: 1 - math.Sqrt(1-p.Loss)}}
	return a, nil
}

// hasLink reports whether p has something for the delay line to do.
func (p Profile) hasLink() bool { return p.MaxRTT > 0 || p.Loss > 0 }

// Place puts every device that listens somewhere and whose profile has a
// round trip or loss behind the line: each gets an address of its own
// (Device.NetAddr), its endpoints listen on the line's server address
// with their ports, and the simulator adds only the profile's Step. It
// returns the hosts to write in the inventory, by device id. Heartbeats
// go to Vigía, not through the line: they keep their delays.
func (l *DelayLine) Place(devices []Device) (map[string]string, error) {
	hosts := map[string]string{}
	server := l.Server().String()
	rehost := func(addr string) string {
		_, port, _ := net.SplitHostPort(addr)
		return net.JoinHostPort(server, port)
	}
	for i := range devices {
		d := &devices[i]
		if !d.Profile.hasLink() || d.DICOM == nil && d.TCP == "" && d.SNMP == nil {
			continue
		}
		a, err := l.Add(d.Profile)
		if err != nil {
			return nil, err
		}
		d.NetAddr = a
		if d.DICOM != nil {
			x := *d.DICOM
			x.Addr = rehost(x.Addr)
			d.DICOM = &x
		}
		if d.TCP != "" {
			d.TCP = rehost(d.TCP)
		}
		if d.SNMP != nil {
			x := *d.SNMP
			x.Addr = rehost(x.Addr)
			d.SNMP = &x
		}
		hosts[d.ID] = a.String()
	}
	return hosts, nil
}

// Stats counts the packets the line carried, lost on purpose, and
// dropped as not its own (another address, not IPv4).
func (l *DelayLine) Stats() (forwarded, lost, stray uint64) {
	return l.forwarded.Load(), l.lost.Load(), l.stray.Load()
}

// Close stops the line and removes its device, addresses and routes.
func (l *DelayLine) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.dev.Close() // ends the read; the kernel removes the device
		l.wg.Wait()
		f, lost, stray := l.Stats()
		l.log.Info("delay line closed", "device", l.name, "range", l.prefix, "forwarded", f, "lost", lost, "stray", stray)
	})
	if err != nil {
		return fmt.Errorf("fleetsim: close delay line %s: %w", l.name, err)
	}
	return nil
}

func (l *DelayLine) start() {
	l.wg.Add(2)
	go l.read()
	go l.write()
}

// read takes each packet the kernel routes into the line, readdresses it
// and queues it for when its delay is over.
func (l *DelayLine) read() {
	defer l.wg.Done()
	for {
		buf := l.pool.Get().(*[maxPacket]byte)
		n, err := l.dev.Read(buf[:])
		if err != nil {
			l.pool.Put(buf)
			select {
			case <-l.done:
			default:
				l.log.Error("delay line read failed; the line stops", "device", l.name, "error", err)
			}
			return
		}
		at, ok := l.route(buf[:n], time.Now())
		if !ok {
			l.pool.Put(buf)
			continue
		}
		l.qmu.Lock()
		l.seq++
		heap.Push(&l.q, queued{at: at, seq: l.seq, buf: buf, n: n})
		first := l.q[0].seq == l.seq
		l.qmu.Unlock()
		if first {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}
}

// route readdresses packet p for the way back into the kernel and says
// when it may go, or false when it goes nowhere (lost, or not ours).
func (l *DelayLine) route(p []byte, now time.Time) (time.Time, bool) {
	if len(p) < 20 || p[0]>>4 != 4 {
		l.stray.Add(1)
		return time.Time{}, false
	}
	src, dst := [4]byte(p[12:16]), [4]byte(p[16:20])
	var way int
	var to [4]byte
	switch src {
	case l.client:
		way, to = 0, l.server
	case l.server:
		way, to = 1, l.client
	default:
		l.stray.Add(1)
		return time.Time{}, false
	}
	l.mu.Lock()
	lk := l.links[dst]
	l.mu.Unlock()
	if lk == nil {
		l.stray.Add(1)
		return time.Time{}, false
	}
	if lk.p.Loss > 0 && rand.Float64() < lk.p.Loss {
		l.lost.Add(1)
		return time.Time{}, false
	}
	if readdress(p, dst, to) != nil {
		l.stray.Add(1)
		return time.Time{}, false
	}
	// Half a round trip each way: a connect (SYN there, SYN-ACK back)
	// takes one round trip of the profile.
	d := lk.p.MinRTT
	if span := lk.p.MaxRTT - lk.p.MinRTT; span > 0 {
		d += rand.N(span)
	}
	at := now.Add(d / 2)
	if at.Before(lk.last[way]) {
		at = lk.last[way]
	}
	lk.last[way] = at
	return at, true
}

// write sends each queued packet back into the kernel when its time comes.
func (l *DelayLine) write() {
	defer l.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []queued
	for {
		now := time.Now()
		wait := time.Hour
		l.qmu.Lock()
		for len(l.q) > 0 && !l.q[0].at.After(now) {
			due = append(due, heap.Pop(&l.q).(queued))
		}
		if len(l.q) > 0 {
			wait = l.q[0].at.Sub(now)
		}
		l.qmu.Unlock()
		for i, x := range due {
			if _, err := l.dev.Write(x.buf[:x.n]); err == nil {
				l.forwarded.Add(1)
			} else {
				l.stray.Add(1)
			}
			l.pool.Put(x.buf)
			due[i] = queued{}
		}
		due = due[:0]
		timer.Reset(wait) // since Go 1.23 a stale tick is dropped
		select {
		case <-l.done:
			return
		case <-l.wake:
		case <-timer.C:
		}
	}
}

// queued is a packet waiting for its time.
type queued struct {
	at  time.Time
	seq uint64 // equal times leave in arrival order
	buf *[maxPacket]byte
	n   int
}

// packetQueue is a min-heap of packets by time.
type packetQueue []queued

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *packetQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	old[len(old)-1] = queued{}
	*q = old[:len(old)-1]
	return x
}

// String describes the line for a log line or a message.
func (l *DelayLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prefix.String() + " on " + l.name + " (devices listen on " + l.Server().String() + ", " + strconv.Itoa(len(l.links)) + " addresses)"
}

// NeedsDelayLine reports whether some device that listens somewhere has a
// profile with a round trip or loss: what only a delay line carries to
// the TCP handshake.
func NeedsDelayLine(devices []Device) bool {
	for _, d := range devices {
		if d.Profile.hasLink() && (d.DICOM != nil || d.TCP != "" || d.SNMP != nil) {
			return true
		}
	}
	return false
}
