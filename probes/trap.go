package probes

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// The trap listener hears SNMP traps and informs (v1, v2c, v3) and turns
// those of known devices into history, conditions and events:
//
//   - The sender is matched to a device by the packet's source address (for
//     v1, the agent address inside the PDU when it is set), against the IP
//     addresses of devices' snmp.host. A trap is authenticated with that
//     device's own SNMP credentials: its v2c community, or its v3 USM user
//     with the same auth and privacy passphrases. There is no separate trap
//     configuration: a device's agent is set up once, for polls and traps.
//   - An unknown sender, a wrong community, or a v3 packet the device's user
//     cannot authenticate or decrypt is counted
//     (vigia_snmp_traps_received_total{result}) and logged once per source
//     and reason, never stored and never a ticket.
//   - v3 informs need the receiver's engine: the listener answers the
//     sender's discovery with a Report carrying its own engine ID, and
//     authenticates the inform with keys localised to it. v3 traps are
//     authoritative at the sender, whose engine ID the packet carries.
//
// gosnmp's TrapListener is not used: it knows one set of credentials, not
// one per sender, and its v3 handling is marked unreliable. The listener
// reads the socket itself and uses gosnmp's UnmarshalTrap with the sending
// device's credentials.

// Trap results, the label of vigia_snmp_traps_received_total.
const (
	trapAccepted         = "accepted"
	trapUnknownSource    = "unknown_source"
	trapWrongCommunity   = "wrong_community"
	trapWrongCredentials = "wrong_credentials"
	trapMalformed        = "malformed"
	trapNotStored        = "not_stored"
)

// Events the trap listener publishes for the ticketing stage.
const (
	// EventTrapAlarm: a condition with a severity was raised.
	EventTrapAlarm = "trap_alarm"
	// EventTrapCleared: that condition was cleared.
	EventTrapCleared = "trap_cleared"
)

// TrapConfig tunes the listener. Zero values take the defaults noted.
type TrapConfig struct {
	Clock clockwork.Clock // default: the real clock
	Log   *slog.Logger
	Rules *TrapRules // default: DefaultTrapRules
	// Inventory is read every Refresh (default 30 s) for devices' addresses
	// and credentials.
	Inventory DeviceSource
	Refresh   time.Duration
	// EngineID is this receiver's SNMPv3 engine ID (5 to 32 bytes), which
	// inform senders discover. Default: net-snmp's enterprise and "vigia".
	EngineID string
	// Conditions, when set, learns of conditions raised and cleared at
	// once (the engine's trap prober).
	Conditions *TrapConditions
	Registerer prometheus.Registerer
	// Sink, when set, takes the authenticated traps instead of the
	// database (a collector forwards them to the NOC); Rules and
	// Conditions are then the NOC's business.
	Sink TrapSink
}

// TrapSink takes an authenticated trap of a known device. An error means
// it was not kept: the trap is counted not_stored and an inform is not
// acknowledged, so that its sender repeats it.
type TrapSink interface {
	TakeTrap(ctx context.Context, d assets.Device, t Trap) (changed bool, err error)
}

// defaultEngineID: RFC 3411 format 4 (text) under net-snmp's enterprise 8072.
const defaultEngineID = "\x80\x00\x1f\x88\x04vigia"

// maxLoggedSources bounds the memory of "already logged" sources, so a
// storm of spoofed addresses cannot grow it without end (they are still
// counted).
const maxLoggedSources = 4096

// TrapListener receives traps on one UDP socket.
type TrapListener struct {
	cfg      TrapConfig
	db       *sqlx.DB
	received *prometheus.CounterVec
	started  time.Time

	mu       sync.RWMutex
	onChange func(deviceID string)
	byAddr   map[netip.Addr][]assets.Device
	logged   map[string]bool
	reports  int
}

// NewTrapListener returns a listener storing into db.
func NewTrapListener(db *sqlx.DB, cfg TrapConfig) (*TrapListener, error) {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultTrapRules()
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.EngineID == "" {
		cfg.EngineID = defaultEngineID
	}
	if n := len(cfg.EngineID); n < 5 || n > 32 {
		return nil, fmt.Errorf("probes: SNMP engine ID has %d bytes, want 5 to 32", n)
	}
	if cfg.Inventory == nil {
		return nil, errors.New("probes: trap listener without an inventory")
	}
	if db == nil && cfg.Sink == nil {
		return nil, errors.New("probes: trap listener without a database or a sink")
	}
	l := &TrapListener{cfg: cfg, db: db, byAddr: map[netip.Addr][]assets.Device{}, logged: map[string]bool{},
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigia_snmp_traps_received_total",
			Help: "SNMP traps and informs received, by result (accepted, unknown_source, wrong_community, wrong_credentials, malformed, not_stored)."},
			[]string{"result"}),
		started: cfg.Clock.Now()}
	for _, r := range []string{trapAccepted, trapUnknownSource, trapWrongCommunity, trapWrongCredentials, trapMalformed, trapNotStored} {
		l.received.WithLabelValues(r)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(l.received); err != nil {
			return nil, fmt.Errorf("probes: register trap metrics: %w", err)
		}
	}
	return l, nil
}

// OnChange sets what is called, outside any lock, with a device whose
// conditions or reboot a trap just changed: serve checks it at once.
func (l *TrapListener) OnChange(fn func(deviceID string)) {
	l.mu.Lock()
	l.onChange = fn
	l.mu.Unlock()
}

// Sync reloads the devices' addresses and credentials.
func (l *TrapListener) Sync(ctx context.Context) error {
	devices, err := l.cfg.Inventory.Devices(ctx, assets.DeviceFilter{})
	if err != nil {
		return fmt.Errorf("probes: trap listener inventory: %w", err)
	}
	byAddr := map[netip.Addr][]assets.Device{}
	for _, d := range devices {
		if d.SNMP == nil || d.SNMP.Host == "" {
			continue
		}
		for _, a := range resolveHost(ctx, d.SNMP.Host) {
			byAddr[a] = append(byAddr[a], d)
		}
	}
	l.mu.Lock()
	l.byAddr = byAddr
	l.mu.Unlock()
	return nil
}

func resolveHost(ctx context.Context, host string) []netip.Addr {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.Unmap())
	}
	return out
}

// ListenAndServe binds addr and serves until ctx ends.
func (l *TrapListener) ListenAndServe(ctx context.Context, addr string) error {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("probes: listen for SNMP traps on %s: %w", addr, err)
	}
	return l.Serve(ctx, conn)
}

// Serve reads traps from conn until ctx ends, then closes it. The
// inventory is loaded before the first packet is read.
func (l *TrapListener) Serve(ctx context.Context, conn net.PacketConn) error {
	defer conn.Close()
	if err := l.Sync(ctx); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-l.cfg.Clock.After(l.cfg.Refresh):
			}
			if err := l.Sync(ctx); err != nil && ctx.Err() == nil {
				l.cfg.Log.Warn("trap listener inventory not refreshed", "err", err)
			}
		}
	}()
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("probes: read SNMP trap: %w", err)
		}
		udp, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		l.handle(ctx, conn, slices.Clone(buf[:n]), udp)
	}
}

// handle authenticates one datagram, answers it if it asks (v3 discovery,
// informs), and applies it.
func (l *TrapListener) handle(ctx context.Context, conn net.PacketConn, msg []byte, from *net.UDPAddr) {
	src := from.AddrPort().Addr().Unmap()
	l.mu.RLock()
	candidates := l.byAddr[src]
	l.mu.RUnlock()
	// v1 traps name their agent inside the PDU (a relay may forward them).
	if len(candidates) == 0 {
		if agent, ok := v1AgentAddress(msg); ok {
			l.mu.RLock()
			candidates = l.byAddr[agent]
			l.mu.RUnlock()
		}
	}
	if len(candidates) == 0 {
		l.refuse(from, trapUnknownSource, "no device has this SNMP address")
		return
	}
	var (
		pkt    *gosnmp.SnmpPacket
		dev    assets.Device
		reason = trapWrongCredentials
	)
	// Only the devices set up for the packet's version can vouch for it:
	// a v2c trap from an address shared with a v3 device is judged by the
	// v2c device's community.
	v3 := looksV3(msg)
	candidates = slices.DeleteFunc(slices.Clone(candidates), func(d assets.Device) bool {
		return (strings.TrimPrefix(strings.ToLower(d.SNMP.Version), "v") == "3") != v3
	})
	for _, d := range candidates {
		p, why, err := l.decode(msg, d)
		if err != nil {
			reason = why
			continue
		}
		if isEngineDiscoveryRequest(p) {
			l.answerDiscovery(conn, p, from)
			return
		}
		pkt, dev = p, d
		break
	}
	if pkt == nil {
		detail := "v3 user, auth or privacy does not match the device's"
		if reason == trapWrongCommunity {
			detail = "community does not match the device's"
		} else if reason == trapMalformed {
			detail = "not an SNMP trap or inform"
		}
		l.refuse(from, reason, detail)
		return
	}
	if pkt.PDUType != gosnmp.SNMPv2Trap && pkt.PDUType != gosnmp.InformRequest && pkt.PDUType != gosnmp.Trap {
		l.refuse(from, trapMalformed, "not a trap or inform PDU: "+pkt.PDUType.String())
		return
	}
	inform := pkt.PDUType == gosnmp.InformRequest
	trap, err := newTrap(pkt, from.String(), inform, l.cfg.Clock.Now())
	if err != nil {
		l.refuse(from, trapMalformed, err.Error())
		return
	}
	dbctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	changed, err := l.take(dbctx, dev, trap)
	cancel()
	if err != nil {
		// An inform not stored is not acknowledged: its sender repeats it.
		l.received.WithLabelValues(trapNotStored).Inc()
		l.cfg.Log.Warn("SNMP trap not stored", "device", dev.ID, "source", from.String(), "err", err)
		return
	}
	l.received.WithLabelValues(trapAccepted).Inc()
	if inform {
		l.acknowledge(conn, pkt, from)
	}
	l.mu.RLock()
	onChange := l.onChange
	l.mu.RUnlock()
	if changed && onChange != nil {
		onChange(dev.ID)
	}
}

// decode reads msg with the device's credentials.
func (l *TrapListener) decode(msg []byte, d assets.Device) (*gosnmp.SnmpPacket, string, error) {
	g, err := newGoSNMP(d.SNMP)
	if err != nil {
		return nil, trapWrongCredentials, err
	}
	g.Logger = gosnmp.NewLogger(log.New(io.Discard, "", 0))
	if g.Version == gosnmp.Version3 {
		usm := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
		usm.AuthoritativeEngineID = l.cfg.EngineID
		usm.AuthoritativeEngineBoots = 1
		usm.AuthoritativeEngineTime = l.engineTime()
		p, err := g.UnmarshalTrap(msg, true)
		if err != nil {
			return nil, classifyTrapError(msg), err
		}
		if p.Version != gosnmp.Version3 {
			return nil, trapWrongCredentials, errors.New("not SNMPv3")
		}
		// gosnmp accepts a packet at a lower security level than the user's
		// (authNoPriv from an authPriv user): the device's level is the
		// minimum. Only an engine discovery may come unauthenticated.
		want := g.MsgFlags & gosnmp.AuthPriv
		if !isEngineDiscoveryRequest(p) && p.MsgFlags&want != want {
			return nil, trapWrongCredentials, errors.New("below the user's security level")
		}
		return p, "", nil
	}
	p, err := g.UnmarshalTrap(msg, false)
	if err != nil {
		return nil, classifyTrapError(msg), err
	}
	if p.Version == gosnmp.Version3 {
		return nil, trapWrongCredentials, errors.New("SNMPv3 from a v2c device")
	}
	// Constant time: the community is the only secret a v2c trap has.
	if subtle.ConstantTimeCompare([]byte(p.Community), []byte(d.SNMP.Community.Reveal())) != 1 {
		return nil, trapWrongCommunity, errors.New("wrong community")
	}
	return p, "", nil
}

// classifyTrapError tells a packet that is not SNMP from credentials that
// do not fit.
func classifyTrapError(msg []byte) string {
	if len(msg) < 2 || msg[0] != 0x30 {
		return trapMalformed
	}
	g := &gosnmp.GoSNMP{Logger: gosnmp.NewLogger(log.New(io.Discard, "", 0))}
	if _, err := g.SnmpDecodePacket(msg); err != nil && !looksV3(msg) {
		return trapMalformed
	}
	return trapWrongCredentials
}

// looksV3 reports whether msg's version field says SNMPv3 (30 len 02 01 03).
func looksV3(msg []byte) bool {
	i := 1
	if i < len(msg) && msg[i]&0x80 != 0 {
		i += int(msg[i] & 0x7f)
	}
	i++
	return i+2 < len(msg) && msg[i] == 0x02 && msg[i+1] == 0x01 && msg[i+2] == 0x03
}

// v1AgentAddress reads the agent-addr of an SNMPv1 Trap-PDU, unauthenticated:
// it only chooses whose community to check.
func v1AgentAddress(msg []byte) (netip.Addr, bool) {
	g := &gosnmp.GoSNMP{Logger: gosnmp.NewLogger(log.New(io.Discard, "", 0))}
	p, err := g.SnmpDecodePacket(msg)
	if err != nil || p.Version != gosnmp.Version1 || p.PDUType != gosnmp.Trap {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(p.AgentAddress)
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func isEngineDiscoveryRequest(p *gosnmp.SnmpPacket) bool {
	if p.Version != gosnmp.Version3 || p.PDUType != gosnmp.GetRequest || len(p.Variables) > 0 {
		return false
	}
	usm, ok := p.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	return ok && usm.AuthoritativeEngineID == "" && p.MsgFlags&gosnmp.Reportable != 0
}

func (l *TrapListener) engineTime() uint32 {
	return uint32(max(l.cfg.Clock.Since(l.started), 0) / time.Second)
}

// answerDiscovery sends the Report (usmStatsUnknownEngineIDs) that tells an
// inform sender this receiver's engine ID, boots and time (RFC 3414 §4).
func (l *TrapListener) answerDiscovery(conn net.PacketConn, p *gosnmp.SnmpPacket, to *net.UDPAddr) {
	usm, _ := p.SecurityParameters.Copy().(*gosnmp.UsmSecurityParameters)
	usm.AuthoritativeEngineID = l.cfg.EngineID
	usm.AuthoritativeEngineBoots = 1
	usm.AuthoritativeEngineTime = l.engineTime()
	usm.AuthenticationProtocol, usm.PrivacyProtocol = gosnmp.NoAuth, gosnmp.NoPriv
	l.mu.Lock()
	l.reports++
	count := l.reports
	l.mu.Unlock()
	report := *p
	report.PDUType = gosnmp.Report
	report.MsgFlags = gosnmp.NoAuthNoPriv
	report.SecurityParameters = usm
	report.Variables = []gosnmp.SnmpPDU{{Name: oidUsmStatsUnknownEngineIDs, Type: gosnmp.Counter32, Value: uint32(count)}}
	l.send(conn, &report, to)
}

// acknowledge answers an inform with a Response carrying its varbinds.
func (l *TrapListener) acknowledge(conn net.PacketConn, p *gosnmp.SnmpPacket, to *net.UDPAddr) {
	resp := *p
	resp.PDUType = gosnmp.GetResponse
	resp.Error, resp.ErrorIndex = gosnmp.NoError, 0
	resp.MsgFlags &^= gosnmp.Reportable
	if usm, ok := p.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok {
		c := usm.Copy().(*gosnmp.UsmSecurityParameters)
		c.AuthoritativeEngineTime = l.engineTime()
		resp.SecurityParameters = c
	}
	l.send(conn, &resp, to)
}

func (l *TrapListener) send(conn net.PacketConn, p *gosnmp.SnmpPacket, to *net.UDPAddr) {
	b, err := p.MarshalMsg()
	if err == nil {
		_, err = conn.WriteTo(b, to)
	}
	if err != nil {
		l.cfg.Log.Warn("SNMP answer not sent", "to", to.String(), "pdu", p.PDUType.String(), "err", err)
	}
}

// refuse counts a packet not accepted, and logs it the first time this
// source is refused for this reason.
func (l *TrapListener) refuse(from *net.UDPAddr, reason, detail string) {
	l.received.WithLabelValues(reason).Inc()
	key := from.AddrPort().Addr().Unmap().String() + " " + reason
	l.mu.Lock()
	first := !l.logged[key] && len(l.logged) < maxLoggedSources
	if first {
		l.logged[key] = true
	}
	l.mu.Unlock()
	if first {
		l.cfg.Log.Warn("SNMP trap refused (logged once per source)", "source", from.AddrPort().Addr().Unmap().String(),
			"reason", reason, "detail", detail)
	}
}

// take hands the trap to the sink, or records it (serve).
func (l *TrapListener) take(ctx context.Context, d assets.Device, t Trap) (bool, error) {
	if l.cfg.Sink != nil {
		return l.cfg.Sink.TakeTrap(ctx, d, t)
	}
	var a trapApplied
	err := db.InTx(ctx, l.db, func(tx *sqlx.Tx) error {
		var err error
		a, err = recordTrap(ctx, tx, l.cfg.Rules, d, t)
		return err
	})
	if err != nil {
		return false, err
	}
	l.cfg.Conditions.learn(d.ID, a)
	return a.changed, nil
}
