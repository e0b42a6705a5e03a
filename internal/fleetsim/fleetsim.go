// Package fleetsim simulates a fleet of hospital imaging devices for
// demos, tests and benchmarks of the NOC: DICOM nodes answering C-ECHO,
// plain TCP services (routers, RIS, biomedical centrals) and agents that
// post heartbeats to Vigía.
//
// A device can be taken down and brought back up while the simulator runs,
// and a down device looks like a real outage to a prober: its listeners
// are closed (connection refused), or in Blackhole mode no handshake
// completes (the prober's connect times out, as with a host that vanished
// or a firewall that drops). Its heartbeats stop as well.
//
// The simulator costs one goroutine and one file descriptor per listening
// endpoint plus one goroutine per open connection: an idle device holds
// about 6 KiB (4 KiB of it the accept goroutine's stack; see
// BenchmarkFleet10000), so a single process serves tens of thousands.
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

// Device is one simulated device and what it serves.
type Device struct {
	ID   string
	Site string
	// Gateway marks the site's uplink: taking the site down takes it too.
	Gateway bool
	// DICOM, when not nil, is a Verification SCP to serve.
	DICOM *DICOM
	// TCP, when not empty, is a host:port where connections are accepted
	// and held until the peer closes. When it equals DICOM.Addr the DICOM
	// listener serves both checks.
	TCP string
	// Heartbeat, when not nil, makes the device post heartbeats to Vigía.
	Heartbeat *Heartbeat
	// SNMP, when not nil, is an SNMP agent to serve.
	SNMP *SNMP
	// Profile is how the device answers across its network: its site's
	// link and its own slowness (AssignProfiles). The zero value answers
	// at loopback speed.
	Profile Profile
	// NetAddr, when valid, is the address probers reach the device at
	// through a DelayLine (DelayLine.Place), which carries the profile's
	// round trip and loss packet by packet; its endpoints listen on the
	// line's server address, and the simulator adds only Profile.Step.
	NetAddr netip.Addr
}

// DICOM is a simulated DICOM node.
type DICOM struct {
	Addr    string // host:port
	AETitle string // the called AE title it answers to, exactly
	// Worklist, when not empty, is a folder of *.wl worklist files the
	// node answers modality worklist queries from (a broker or RIS).
	Worklist string
}

// Heartbeat is an agent posting POST /api/v1/heartbeats/{device}.
type Heartbeat struct {
	Token assets.Secret
	Every time.Duration
}

// Mode is how a down device fails.
type Mode string

const (
	// Refuse closes the device's listeners: connections are refused.
	Refuse Mode = "refuse"
	// Blackhole keeps the ports taken but completes no TCP handshake:
	// connects time out, as with a powered-off site behind a dead link or
	// a firewall that drops. Linux only.
	Blackhole Mode = "blackhole"
)

// ParseMode reads a mode name; empty means Refuse.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", Refuse:
		return Refuse, nil
	case Blackhole:
		return Blackhole, nil
	}
	return "", fmt.Errorf("fleetsim: unknown mode %q (want refuse or blackhole)", s)
}

// Errors of the control operations.
var (
	ErrUnknownDevice = errors.New("fleetsim: unknown device")
	ErrUnknownSite   = errors.New("fleetsim: unknown site")
	ErrClosed        = errors.New("fleetsim: simulator closed")
)

// MinFlapPeriod keeps a flapping device from spinning.
const MinFlapPeriod = 50 * time.Millisecond

// Options tune a Simulator; the zero value works.
type Options struct {
	// VigiaURL is where heartbeats go; empty means http://127.0.0.1:8080.
	VigiaURL string
	// Client posts the heartbeats; nil means one with a 5 s timeout.
	Client *http.Client
	// Logger receives state changes (Info) and heartbeat failures (Warn);
	// nil discards them.
	Logger *slog.Logger
	// DICOMTimeout bounds each wait for a PDU from a prober; zero means
	// 10 s, enough for any prober and short enough to shed stuck peers.
	DICOMTimeout time.Duration
}

// DefaultVigiaURL is where heartbeats go unless Options.VigiaURL says otherwise.
const DefaultVigiaURL = "http://127.0.0.1:8080"

// Simulator serves a fleet of devices. Create it with New, then Start it.
type Simulator struct {
	opts    Options
	log     *slog.Logger
	devices []*device
	byID    map[string]*device
	bySite  map[string][]*device
	sites   []string

	ctx    context.Context // cancelled by Close: heartbeats and flaps end
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	started bool
	closed  bool
	timers  []*time.Timer
}

// device is the running state of one Device.
type device struct {
	Device
	eps  []*endpoint
	wake chan struct{} // nudges the heartbeat loop when the device comes up

	mu         sync.Mutex
	up         bool
	mode       Mode          // how it fails while down
	flapStop   chan struct{} // closed to end the current flap
	flapPeriod time.Duration
}

// New checks the fleet: ids unique, every address served by one device
// only, AE titles valid, heartbeats with a token and a period.
func New(devices []Device, opts Options) (*Simulator, error) {
	if opts.VigiaURL == "" {
		opts.VigiaURL = DefaultVigiaURL
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if opts.DICOMTimeout <= 0 {
		opts.DICOMTimeout = 10 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Simulator{opts: opts, log: log, byID: map[string]*device{}, bySite: map[string][]*device{}, ctx: ctx, cancel: cancel}
	owner := map[string]string{} // address -> device id
	started := time.Now()
	claim := func(id, addr string) error {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(addr, "udp ")); err != nil {
			return fmt.Errorf("fleetsim: device %s: address %q: %w", id, addr, err)
		}
		if other, ok := owner[addr]; ok {
			return fmt.Errorf("fleetsim: devices %s and %s both serve %s", other, id, addr)
		}
		owner[addr] = id
		return nil
	}
	for _, dev := range devices {
		if dev.ID == "" {
			return nil, errors.New("fleetsim: a device has no id")
		}
		if _, dup := s.byID[dev.ID]; dup {
			return nil, fmt.Errorf("fleetsim: duplicate device id %q", dev.ID)
		}
		d := &device{Device: dev, up: true, mode: Refuse, wake: make(chan struct{}, 1)}
		// What the simulator adds itself: all of the profile, or behind a
		// delay line only the device's own slowness.
		own := dev.Profile
		if dev.NetAddr.IsValid() {
			own = Profile{Name: own.Name, Step: own.Step}
		}
		if x := dev.DICOM; x != nil {
			if err := dicomping.ValidateAETitle(x.AETitle); err != nil {
				return nil, fmt.Errorf("fleetsim: device %s: %w", dev.ID, err)
			}
			if err := claim(dev.ID, x.Addr); err != nil {
				return nil, err
			}
			d.eps = append(d.eps, &endpoint{addr: x.Addr, ae: x.AETitle, worklist: x.Worklist, timeout: opts.DICOMTimeout, profile: own})
		}
		if dev.TCP != "" && (dev.DICOM == nil || dev.TCP != dev.DICOM.Addr) {
			if err := claim(dev.ID, dev.TCP); err != nil {
				return nil, err
			}
			d.eps = append(d.eps, &endpoint{addr: dev.TCP})
		}
		if x := dev.SNMP; x != nil {
			// UDP ports are another space than TCP's.
			if err := claim(dev.ID, "udp "+x.Addr); err != nil {
				return nil, err
			}
			agent, err := newSNMPAgent(dev.ID, x, own, started)
			if err != nil {
				return nil, fmt.Errorf("fleetsim: device %s: %w", dev.ID, err)
			}
			d.eps = append(d.eps, &endpoint{addr: x.Addr, agent: agent})
		}
		if hb := dev.Heartbeat; hb != nil && (hb.Token.IsZero() || hb.Every <= 0) {
			return nil, fmt.Errorf("fleetsim: device %s: a heartbeat needs a token and a positive period", dev.ID)
		}
		s.devices = append(s.devices, d)
		s.byID[d.ID] = d
		if _, ok := s.bySite[d.Site]; !ok {
			s.sites = append(s.sites, d.Site)
		}
		s.bySite[d.Site] = append(s.bySite[d.Site], d)
	}
	return s, nil
}

// Counts says how much the simulator serves.
type Counts struct {
	Devices, Sites, DICOM, TCP, SNMP, Heartbeats int
}

// Endpoints is the number of listeners, one file descriptor each.
func (c Counts) Endpoints() int { return c.DICOM + c.TCP + c.SNMP }

// Counts reports the size of the fleet.
func (s *Simulator) Counts() Counts {
	c := Counts{Devices: len(s.devices), Sites: len(s.sites)}
	for _, d := range s.devices {
		for _, e := range d.eps {
			switch {
			case e.agent != nil:
				c.SNMP++
			case e.ae != "":
				c.DICOM++
			default:
				c.TCP++
			}
		}
		if d.Heartbeat != nil {
			c.Heartbeats++
		}
	}
	return c
}

// Start opens every endpoint, all devices up, and starts the heartbeats.
// If an endpoint cannot listen (port taken, file descriptors exhausted),
// everything opened is closed again and the error names the device.
func (s *Simulator) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return errors.New("fleetsim: already started")
	}
	for i, d := range s.devices {
		d.mu.Lock()
		err := d.open(false)
		d.mu.Unlock()
		if err != nil {
			for _, opened := range s.devices[:i] {
				opened.closeEndpoints()
			}
			return fmt.Errorf("fleetsim: device %s: %w", d.ID, err)
		}
	}
	s.started = true
	for _, d := range s.devices {
		if d.Heartbeat != nil {
			s.wg.Add(1)
			go s.heartbeats(d)
		}
	}
	return nil
}

// Close stops everything at once: scheduled outages, flaps, heartbeats,
// listeners and open connections.
func (s *Simulator) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

// Shutdown stops accepting on every endpoint at once, then lets open DICOM
// associations finish until ctx is done, when the rest are aborted.
func (s *Simulator) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.cancel()
	// Stop accepting everywhere first, so that waiting for one device's
	// associations does not leave the others answering.
	for _, d := range s.devices {
		d.mu.Lock()
		d.stopFlap()
		for _, e := range d.eps {
			e.stopAccepting()
		}
		d.mu.Unlock()
	}
	var err error
	for _, d := range s.devices {
		d.mu.Lock()
		for _, e := range d.eps {
			err = errors.Join(err, e.shutdown(ctx))
		}
		d.up = false
		d.mu.Unlock()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("fleetsim: shutdown: %w", ctx.Err())
	}
	return nil
}

func (s *Simulator) device(id string) (*device, error) {
	d, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownDevice, id)
	}
	return d, nil
}

func (s *Simulator) checkRunning() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return errors.New("fleetsim: not started")
	}
	return nil
}

// Down takes a device down; it stops flapping if it was.
func (s *Simulator) Down(id string, mode Mode) error {
	d, err := s.device(id)
	if err != nil {
		return err
	}
	return s.set(d, false, mode)
}

// Up brings a device back; it stops flapping if it was.
func (s *Simulator) Up(id string) error {
	d, err := s.device(id)
	if err != nil {
		return err
	}
	return s.set(d, true, Refuse)
}

// SiteDown takes every device of a site down, its gateway included, as
// when the site loses power or its link.
func (s *Simulator) SiteDown(site string, mode Mode) error {
	return s.setSite(site, false, mode)
}

// SiteUp brings every device of a site back up.
func (s *Simulator) SiteUp(site string) error {
	return s.setSite(site, true, Refuse)
}

func (s *Simulator) setSite(site string, up bool, mode Mode) error {
	devs, ok := s.bySite[site]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSite, site)
	}
	var errs error
	changed := 0
	for _, d := range devs {
		c, err := s.change(d, up, mode)
		errs = errors.Join(errs, err)
		if c && err == nil {
			changed++
		}
	}
	// One line for the site: its devices' lines would drown the log.
	if up {
		s.log.Info("site up", "site", site, "devices", changed)
	} else {
		s.log.Info("site down", "site", site, "devices", changed, "mode", mode)
	}
	return errs
}

func (s *Simulator) set(d *device, up bool, mode Mode) error {
	return s.setAndLog(d, up, mode, "")
}

// setAndLog changes d's state and logs one line if it changed; why, when
// not empty, prefixes the message.
func (s *Simulator) setAndLog(d *device, up bool, mode Mode, why string, attrs ...any) error {
	changed, err := s.change(d, up, mode)
	if changed && err == nil {
		if why != "" {
			why += ": "
		}
		if up {
			s.log.Info(why+"device up", append([]any{"device", d.ID, "site", d.Site}, attrs...)...)
		} else {
			s.log.Info(why+"device down", append([]any{"device", d.ID, "site", d.Site, "mode", mode}, attrs...)...)
		}
	}
	return err
}

// change stops d's flap and moves it to the state asked.
func (s *Simulator) change(d *device, up bool, mode Mode) (bool, error) {
	if err := s.checkRunning(); err != nil {
		return false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopFlap()
	return s.setLocked(d, up, mode)
}

// setLocked moves d to the state asked, reopening its listeners as
// needed, and reports whether anything changed.
func (s *Simulator) setLocked(d *device, up bool, mode Mode) (bool, error) {
	if d.up == up && (up || d.mode == mode) {
		return false, nil
	}
	d.closeEndpointsLocked()
	d.up, d.mode = false, Refuse
	if !up {
		if mode == Blackhole {
			if err := d.open(true); err != nil {
				d.closeEndpointsLocked()
				return true, fmt.Errorf("fleetsim: device %s: %w", d.ID, err)
			}
		}
		d.mode = mode
		return true, nil
	}
	if err := d.open(false); err != nil {
		// Someone else took the port meanwhile: the device stays down
		// (refused) rather than half up.
		d.closeEndpointsLocked()
		return true, fmt.Errorf("fleetsim: device %s: %w", d.ID, err)
	}
	d.up = true
	d.wakeHeartbeat()
	return true, nil
}

// wakeHeartbeat has a device that comes back up announce itself at once.
func (d *device) wakeHeartbeat() {
	if d.Heartbeat == nil {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Flap makes a device alternate: down (in mode) for period, up for
// period, starting with down, until Up, Down or a site operation.
func (s *Simulator) Flap(id string, period time.Duration, mode Mode) error {
	if period < MinFlapPeriod {
		return fmt.Errorf("fleetsim: flap period %s is under %s", period, MinFlapPeriod)
	}
	d, err := s.device(id)
	if err != nil {
		return err
	}
	if err := s.checkRunning(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopFlap()
	if _, err := s.setLocked(d, false, mode); err != nil {
		return err
	}
	s.log.Info("device flapping", "device", d.ID, "site", d.Site, "period", period, "mode", mode)
	stop := make(chan struct{})
	d.flapStop, d.flapPeriod = stop, period
	s.wg.Add(1)
	go s.flap(d, stop, period, mode)
	return nil
}

func (s *Simulator) flap(d *device, stop chan struct{}, period time.Duration, mode Mode) {
	defer s.wg.Done()
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		select {
		case <-stop:
			// Up or Down won the lock after the tick: theirs is the last word.
			d.mu.Unlock()
			return
		default:
		}
		if _, err := s.setLocked(d, !d.up, mode); err != nil {
			s.log.Warn("flap", "device", d.ID, "error", err)
		} else {
			s.log.Debug("flap", "device", d.ID, "up", d.up)
		}
		d.mu.Unlock()
	}
}

// stopFlap ends the device's flap, if any. Call with d.mu held.
func (d *device) stopFlap() {
	if d.flapStop != nil {
		close(d.flapStop)
		d.flapStop, d.flapPeriod = nil, 0
	}
}

// open opens every endpoint of d, serving or blackholed. Call with d.mu
// held (or before the device is shared).
func (d *device) open(blackhole bool) error {
	for _, e := range d.eps {
		if err := e.open(blackhole); err != nil {
			return err
		}
	}
	return nil
}

func (d *device) closeEndpoints() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closeEndpointsLocked()
	d.up = false
}

func (d *device) closeEndpointsLocked() {
	for _, e := range d.eps {
		e.close()
	}
}

func (d *device) isUp() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.up
}

// Status is a device as the control endpoint shows it.
type Status struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	Gateway bool   `json:"gateway,omitempty"`
	// Host is the address probers reach the device's endpoints at: its
	// own behind a delay line, else where it listens.
	Host  string `json:"host,omitempty"`
	State string `json:"state"`          // up or down
	Mode  Mode   `json:"mode,omitempty"` // how it fails, while down
	// FlapPeriod is set while the device alternates.
	FlapPeriod string `json:"flap_period,omitempty"`
	// Port is the DICOM port, or the TCP port of a device without DICOM.
	Port    int    `json:"port,omitempty"`
	AETitle string `json:"ae_title,omitempty"`
	// TCPPort is the TCP port of a device that also serves DICOM elsewhere.
	TCPPort   int  `json:"tcp_port,omitempty"`
	Heartbeat bool `json:"heartbeat,omitempty"`
	// SNMPPort is the UDP port of its SNMP agent.
	SNMPPort int `json:"snmp_port,omitempty"`
	// Profile names how it answers across its network, when not loopback.
	Profile string `json:"profile,omitempty"`
}

// Devices returns the status of every device, in fleet order.
func (s *Simulator) Devices() []Status {
	out := make([]Status, 0, len(s.devices))
	for _, d := range s.devices {
		out = append(out, d.status())
	}
	return out
}

// Device returns the status of one device.
func (s *Simulator) Device(id string) (Status, error) {
	d, err := s.device(id)
	if err != nil {
		return Status{}, err
	}
	return d.status(), nil
}

// Site returns the status of a site's devices.
func (s *Simulator) Site(site string) ([]Status, error) {
	devs, ok := s.bySite[site]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSite, site)
	}
	out := make([]Status, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.status())
	}
	return out, nil
}

// Sites lists the site ids in fleet order.
func (s *Simulator) Sites() []string { return slices.Clone(s.sites) }

func (d *device) status() Status {
	st := Status{ID: d.ID, Site: d.Site, Gateway: d.Gateway, Heartbeat: d.Heartbeat != nil}
	if len(d.eps) > 0 {
		st.Host, _, _ = net.SplitHostPort(d.eps[0].addr)
	}
	if d.NetAddr.IsValid() {
		st.Host = d.NetAddr.String()
	}
	if d.DICOM != nil {
		st.Port, st.AETitle = port(d.DICOM.Addr), d.DICOM.AETitle
		if d.TCP != "" && d.TCP != d.DICOM.Addr {
			st.TCPPort = port(d.TCP)
		}
	} else if d.TCP != "" {
		st.Port = port(d.TCP)
	}
	if d.SNMP != nil {
		st.SNMPPort = port(d.SNMP.Addr)
	}
	if !d.Profile.IsZero() {
		st.Profile = d.Profile.Name
		if d.Profile.Loss > 0 {
			st.Profile += fmt.Sprintf(" (loss %.3g%%)", d.Profile.Loss*100)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st.State = "down"
	if d.up {
		st.State = "up"
	} else {
		st.Mode = d.mode
	}
	if d.flapStop != nil {
		st.FlapPeriod = d.flapPeriod.String()
	}
	return st
}

func port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return n
}
