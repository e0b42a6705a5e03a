package fleetsim

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Profile is how a simulated device answers across its network: a hospital
// network is not a loopback. A site's link (lan, wan, satellite) and the
// device's own slowness (slow-pacs) add up; see Combine.
type Profile struct {
	// Name is what the profile is called ("wan", "satellite+slow-pacs").
	Name string
	// MinRTT and MaxRTT bound the round trip the link adds to every
	// exchange (a request and its answer), drawn uniformly between them:
	// the jitter.
	MinRTT, MaxRTT time.Duration
	// Step is what the device itself takes to answer each request, e.g.
	// each step of a DICOM association on a loaded PACS.
	Step time.Duration
	// Loss is the probability that an exchange loses a packet. Over TCP
	// (DICOM, heartbeats) the answer then comes a retransmission timeout
	// later; over UDP (SNMP) it is lost and the poller must retry.
	Loss float64
}

// Profiles are the named profiles. lan adds nothing: loopback is faster
// than any LAN, and a LAN's fraction of a millisecond changes nothing the
// NOC measures.
var Profiles = map[string]Profile{
	"lan":       {Name: "lan"},
	"wan":       {Name: "wan", MinRTT: 20 * time.Millisecond, MaxRTT: 80 * time.Millisecond},
	"satellite": {Name: "satellite", MinRTT: 600 * time.Millisecond, MaxRTT: 650 * time.Millisecond},
	"slow-pacs": {Name: "slow-pacs", Step: 40 * time.Millisecond},
}

// minRTO is Linux's smallest TCP retransmission timeout: a lost segment
// costs at least this much.
const minRTO = 200 * time.Millisecond

// IsZero reports whether the profile adds nothing (lan, no loss).
func (p Profile) IsZero() bool { return p.MaxRTT == 0 && p.Step == 0 && p.Loss == 0 }

// Combine is a device with profile b behind a link with profile a: delays
// add up, and an exchange is lost if either loses it.
func Combine(a, b Profile) Profile {
	name := a.Name
	switch {
	case a.Name == "" || a.Name == "lan" && b.Name != "":
		name = b.Name
	case b.Name != "" && b.Name != "lan":
		name = a.Name + "+" + b.Name
	}
	return Profile{Name: name, MinRTT: a.MinRTT + b.MinRTT, MaxRTT: a.MaxRTT + b.MaxRTT, Step: a.Step + b.Step,
		Loss: 1 - (1-a.Loss)*(1-b.Loss)}
}

// ParseProfile reads "NAME[+NAME…]", e.g. "wan+slow-pacs".
func ParseProfile(s string) (Profile, error) {
	var p Profile
	for name := range strings.SplitSeq(s, "+") {
		q, ok := Profiles[strings.TrimSpace(name)]
		if !ok {
			return Profile{}, fmt.Errorf("fleetsim: unknown profile %q (want %s)", name, strings.Join(ProfileNames(), ", "))
		}
		p = Combine(p, q)
	}
	return p, nil
}

// ProfileNames lists the named profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// delay draws the time one exchange takes beyond loopback and whether a
// packet of it was lost (over TCP the delay then includes the
// retransmission).
func (p Profile) delay() (time.Duration, bool) {
	d := p.Step + p.MinRTT
	if span := p.MaxRTT - p.MinRTT; span > 0 {
		d += rand.N(span)
	}
	if p.Loss > 0 && rand.Float64() < p.Loss {
		return d + max(minRTO, 2*p.MaxRTT), true
	}
	return d, false
}

// Share is a profile given to a percentage of the sites or devices.
type Share struct {
	Profile Profile
	Percent float64
}

// Mix is how profiles are spread over a fleet: "lan:60,wan:35,satellite:5".
type Mix []Share

// ParseMix reads "PROFILE:PERCENT,…"; the percentages add up to 100 at
// most, and what is left gets no profile.
func ParseMix(s string) (Mix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m Mix
	total := 0.0
	for part := range strings.SplitSeq(s, ",") {
		name, pct, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			pct = "100"
		}
		p, err := ParseProfile(name)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
		if err != nil || v < 0 || v > 100 {
			return nil, fmt.Errorf("fleetsim: profile share %q is not a percentage", part)
		}
		total += v
		m = append(m, Share{p, v})
	}
	if total > 100.0001 {
		return nil, fmt.Errorf("fleetsim: profile shares %q add up to %g%%, over 100%%", s, total)
	}
	return m, nil
}

// ParseLoss reads a loss rate: "1%", "0.5%" or "0.01".
func ParseLoss(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if strings.HasSuffix(s, "%") {
		v /= 100
	}
	if err != nil || v < 0 || v >= 1 {
		return 0, fmt.Errorf("fleetsim: loss %q is not a rate from 0 to under 100%%", s)
	}
	return v, nil
}

// pick chooses the share of key: the same key always gets the same
// profile, and keys spread over the shares in their proportions.
func (m Mix) pick(key string) Profile {
	h := fnv.New32a()
	h.Write([]byte(key))
	x := float64(h.Sum32()%10000) / 100
	for _, s := range m {
		if x < s.Percent {
			return s.Profile
		}
		x -= s.Percent
	}
	return Profile{}
}

// AssignProfiles gives every device the profile of its site's link (from
// sites, by site id) combined with its own (from devices, by device id;
// only DICOM nodes and SNMP agents, the devices that do work to answer),
// and every exchange the loss rate loss on top.
func AssignProfiles(fleet []Device, sites, devices Mix, loss float64) {
	for i := range fleet {
		d := &fleet[i]
		p := sites.pick("site:" + d.Site)
		if d.DICOM != nil || d.SNMP != nil {
			p = Combine(p, devices.pick("device:"+d.ID))
		}
		if loss > 0 {
			p = Combine(p, Profile{Loss: loss})
		}
		if p.Name == "" && !p.IsZero() {
			p.Name = "lan"
		}
		d.Profile = p
	}
}

// profiledListener hands out connections that answer as the profile says.
type profiledListener struct {
	net.Listener
	p Profile
}

func (l profiledListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &profiledConn{Conn: c, p: l.p, fresh: true}, nil
}

// profiledConn delays each request it reads, once it has arrived, by one
// exchange of the profile: the server answers that much later, however
// many reads and writes a request and its answer take. A request is what
// is read after the last write.
type profiledConn struct {
	net.Conn
	p     Profile
	mu    sync.Mutex
	fresh bool // the next read starts a request
}

func (c *profiledConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	start := n > 0 && c.fresh
	if start {
		c.fresh = false
	}
	c.mu.Unlock()
	if start {
		d, _ := c.p.delay()
		time.Sleep(d)
	}
	return n, err
}

func (c *profiledConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.fresh = true
	c.mu.Unlock()
	return c.Conn.Write(b)
}
