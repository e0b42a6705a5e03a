package probes

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
)

// This file is the real side of snmpSession: the translation of an
// inventory endpoint into a gosnmp client, and the thin wrapper the prober
// talks to. Nothing here decides an outcome.

// snmpAuthProtocols and snmpPrivProtocols map the inventory's protocol
// names (assets' importer accepts exactly these) to gosnmp's.
var (
	snmpAuthProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
		"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
		"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
	}
	snmpPrivProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
		"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
		"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
	}
)

// snmpMinPassphrase is RFC 3414's minimum, which net-snmp and most agents
// enforce: a shorter one can never authenticate.
const snmpMinPassphrase = 8

// newGoSNMP builds a fresh, unconnected client for the endpoint. A new
// GoSNMP and new UsmSecurityParameters every time: neither may be shared
// between concurrent probes. Errors wrap errSNMPConfig and never contain a
// secret.
func newGoSNMP(ep *assets.SNMPEndpoint) (*gosnmp.GoSNMP, error) {
	if ep.Host == "" {
		return nil, fmt.Errorf("%w: no host", errSNMPConfig)
	}
	port := ep.Port
	if port == 0 {
		port = 161
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d out of range", errSNMPConfig, ep.Port)
	}
	g := &gosnmp.GoSNMP{
		Target:    ep.Host,
		Port:      uint16(port),
		Transport: "udp",
		MaxOids:   gosnmp.MaxOids,
	}
	switch strings.ToLower(ep.Version) {
	case "v2c", "2c":
		if ep.Community.IsZero() {
			return nil, fmt.Errorf("%w: SNMP v2c without a community", errSNMPConfig)
		}
		g.Version = gosnmp.Version2c
		g.Community = ep.Community.Reveal()
		return g, nil
	case "v3", "3":
		usm, flags, err := newUSM(ep)
		if err != nil {
			return nil, err
		}
		g.Version = gosnmp.Version3
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = flags
		g.SecurityParameters = usm
		return g, nil
	}
	return nil, fmt.Errorf("%w: unsupported SNMP version %q (want v2c or v3)", errSNMPConfig, ep.Version)
}

// newUSM derives the security level from which protocols are set: none is
// noAuthNoPriv, auth alone is authNoPriv, both are authPriv.
func newUSM(ep *assets.SNMPEndpoint) (*gosnmp.UsmSecurityParameters, gosnmp.SnmpV3MsgFlags, error) {
	if ep.User == "" {
		return nil, 0, fmt.Errorf("%w: SNMPv3 without a user", errSNMPConfig)
	}
	usm := &gosnmp.UsmSecurityParameters{
		UserName:               ep.User,
		AuthenticationProtocol: gosnmp.NoAuth,
		PrivacyProtocol:        gosnmp.NoPriv,
	}
	if ep.AuthProtocol == "" {
		if ep.PrivProtocol != "" {
			return nil, 0, fmt.Errorf("%w: SNMPv3 privacy protocol %s without an auth protocol", errSNMPConfig, ep.PrivProtocol)
		}
		return usm, gosnmp.NoAuthNoPriv, nil
	}
	auth, ok := snmpAuthProtocols[normaliseSNMPProtocol(ep.AuthProtocol)]
	if !ok {
		return nil, 0, fmt.Errorf("%w: unknown SNMPv3 auth protocol %q", errSNMPConfig, ep.AuthProtocol)
	}
	if len(ep.AuthPassphrase.Reveal()) < snmpMinPassphrase {
		return nil, 0, fmt.Errorf("%w: SNMPv3 auth passphrase missing or shorter than %d characters", errSNMPConfig, snmpMinPassphrase)
	}
	usm.AuthenticationProtocol = auth
	usm.AuthenticationPassphrase = ep.AuthPassphrase.Reveal()
	if ep.PrivProtocol == "" {
		return usm, gosnmp.AuthNoPriv, nil
	}
	priv, ok := snmpPrivProtocols[normaliseSNMPProtocol(ep.PrivProtocol)]
	if !ok {
		return nil, 0, fmt.Errorf("%w: unknown SNMPv3 privacy protocol %q", errSNMPConfig, ep.PrivProtocol)
	}
	if len(ep.PrivPassphrase.Reveal()) < snmpMinPassphrase {
		return nil, 0, fmt.Errorf("%w: SNMPv3 privacy passphrase missing or shorter than %d characters", errSNMPConfig, snmpMinPassphrase)
	}
	usm.PrivacyProtocol = priv
	usm.PrivacyPassphrase = ep.PrivPassphrase.Reveal()
	return usm, gosnmp.AuthPriv, nil
}

// normaliseSNMPProtocol accepts net-snmp's spelling too ("SHA-256",
// "aes"), since people copy it from snmpd.conf.
func normaliseSNMPProtocol(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", ""))
}

// snmpEngine is what an SNMPv3 poll learnt of an agent: the security
// parameters gosnmp filled in (authoritative engine ID, boots and time, the
// keys localised to that engine) and the context engine ID.
type snmpEngine struct {
	usm             *gosnmp.UsmSecurityParameters
	contextEngineID string
	credentials     [sha256.Size]byte
	learnt          time.Time
}

// snmpEngines hands each device's engine from one poll to the next. take
// removes the entry, so two polls of one device (a gateway checked on
// behalf of its site while its own check runs) never hold the same
// UsmSecurityParameters: the second one discovers for itself.
type snmpEngines struct{ m sync.Map }

func (e *snmpEngines) take(deviceID string, ep *assets.SNMPEndpoint) *snmpEngine {
	v, ok := e.m.LoadAndDelete(deviceID)
	if !ok {
		return nil
	}
	known := v.(*snmpEngine)
	if known.credentials != snmpCredentials(ep) {
		return nil // the inventory changed the endpoint: start afresh
	}
	return known
}

// keep remembers the engine of a v3 client that got answers.
func (e *snmpEngines) keep(deviceID string, ep *assets.SNMPEndpoint, g *gosnmp.GoSNMP) {
	usm, ok := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if g.Version != gosnmp.Version3 || !ok || usm.AuthoritativeEngineID == "" {
		return
	}
	e.m.Store(deviceID, &snmpEngine{usm: usm, contextEngineID: g.ContextEngineID,
		credentials: snmpCredentials(ep), learnt: time.Now()})
}

// useIn gives a fresh v3 client the remembered engine. The engine time
// moves on by the time elapsed, as RFC 3414 2.3 has a non-authoritative
// engine estimate it; an agent that disagrees answers notInTimeWindow and
// gosnmp resends with its values. gosnmp's Connect gives the parameters a
// new random privacy salt.
func (known *snmpEngine) useIn(g *gosnmp.GoSNMP) {
	if known == nil || g.Version != gosnmp.Version3 {
		return
	}
	known.usm.AuthoritativeEngineTime += uint32(time.Since(known.learnt) / time.Second)
	g.SecurityParameters = known.usm
	g.ContextEngineID = known.contextEngineID
}

// snmpCredentials fingerprints what the remembered engine depends on, so
// that an inventory change is never answered with stale keys. Hashed: the
// cache holds no passphrase of its own.
func snmpCredentials(ep *assets.SNMPEndpoint) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.Join([]string{ep.Host, strconv.Itoa(ep.Port), ep.Version, ep.User,
		ep.AuthProtocol, ep.AuthPassphrase.Reveal(), ep.PrivProtocol, ep.PrivPassphrase.Reveal()}, "\x00")))
}

// gosnmpSession is the real snmpSession. g is the poll's own client
// configuration; c does the work and is recycled once the session closes.
type gosnmpSession struct {
	g    *gosnmp.GoSNMP
	c    *snmpClient
	conn *reportConn
	// dirty: a request was resent or failed, so an answer may still be
	// on its way to the socket: it is closed, not recycled.
	dirty bool
}

// snmpClient is a gosnmp client kept between polls with its UDP socket.
// gosnmp gives each client a 64 KiB receive buffer in Connect: at a
// thousand polls a second that was three quarters of the memory vigia
// allocated, and so most of its garbage collection; and a socket per poll
// is half a dozen system calls, each dear on a virtual machine. A recycled
// client is configured afresh from the poll's own GoSNMP (configureClient;
// GoSNMP.Conn is a settable field), its socket connected to the new agent,
// and it is used by one poll at a time.
type snmpClient struct {
	g   *gosnmp.GoSNMP
	udp *net.UDPConn // nil once closed
}

// snmpClients holds the idle clients: a bounded list, not a sync.Pool, so
// that an idle socket is closed when dropped, never left to a finalizer.
// 256 is the engine's default probe concurrency.
var snmpClients = make(chan *snmpClient, 256)

func takeSNMPClient() *snmpClient {
	select {
	case c := <-snmpClients:
		return c
	default:
		return nil
	}
}

func putSNMPClient(c *snmpClient) {
	select {
	case snmpClients <- c:
	default:
		if c.udp != nil {
			c.udp.Close()
		}
	}
}

// gosnmpDial opens the client's UDP socket (and resolves its host name)
// within ctx.
func gosnmpDial(ctx context.Context, g *gosnmp.GoSNMP) (snmpSession, error) {
	g.Context = ctx
	s := &gosnmpSession{g: g}
	// A recycled client skips Connect, and so the salt initialisation of
	// new SNMPv3 security parameters: only parameters that went through a
	// Connect before (a remembered engine) may use one.
	usm, _ := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	recyclable := g.Version != gosnmp.Version3 || usm != nil && usm.AuthoritativeEngineID != ""
	if c := takeSNMPClient(); c != nil && recyclable {
		configureClient(c.g, g)
		if err := c.aim(ctx, g); err != nil {
			c.forget()
			putSNMPClient(c)
			return nil, fmt.Errorf("error establishing connection to host: %w", err)
		}
		s.c = c
	} else {
		if c != nil {
			putSNMPClient(c)
		}
		c = &snmpClient{g: &gosnmp.GoSNMP{}}
		configureClient(c.g, g)
		if err := c.g.Connect(); err != nil {
			return nil, err
		}
		c.udp, _ = c.g.Conn.(*net.UDPConn)
		s.c = c
	}
	s.c.g.OnRetry = func(*gosnmp.GoSNMP) { s.dirty = true }
	if g.Version == gosnmp.Version3 {
		s.conn = &reportConn{Conn: s.c.g.Conn}
		s.c.g.Conn = s.conn
	}
	return s, nil
}

// aim points the recycled client's socket at the poll's agent: the same
// socket connected anew when the address is an IP of the same family,
// otherwise a new one, as gosnmp would dial it.
func (c *snmpClient) aim(ctx context.Context, g *gosnmp.GoSNMP) error {
	if ip, err := netip.ParseAddr(g.Target); err == nil && c.udp != nil {
		if err := reconnectUDP(c.udp, netip.AddrPortFrom(ip.Unmap(), g.Port)); err == nil {
			c.g.Conn = c.udp
			return nil
		}
	}
	if c.udp != nil {
		c.udp.Close()
		c.udp = nil
	}
	conn, err := (&net.Dialer{Timeout: g.Timeout}).DialContext(ctx, "udp", net.JoinHostPort(g.Target, strconv.Itoa(int(g.Port))))
	if err != nil {
		return err
	}
	c.udp, _ = conn.(*net.UDPConn)
	c.g.Conn = conn
	return nil
}

// configureClient sets every field of c a poll depends on from the poll's
// configuration g, so nothing of an earlier device carries over.
func configureClient(c, g *gosnmp.GoSNMP) {
	c.Target, c.Port, c.Transport = g.Target, g.Port, g.Transport
	c.Version, c.Community = g.Version, g.Community
	c.Context, c.Timeout, c.Retries, c.MaxOids = g.Context, g.Timeout, g.Retries, g.MaxOids
	c.MsgFlags, c.SecurityModel, c.SecurityParameters = g.MsgFlags, g.SecurityModel, g.SecurityParameters
	c.ContextEngineID, c.ContextName = g.ContextEngineID, g.ContextName
	if g.Version == gosnmp.Version3 {
		c.MsgFlags |= gosnmp.Reportable // as Connect sets it
	}
}

func (s *gosnmpSession) Get(oids []string) (*gosnmp.SnmpPacket, error) {
	pkt, err := s.c.g.Get(oids)
	s.dirty = s.dirty || err != nil
	return pkt, s.explain(err)
}

func (s *gosnmpSession) GetBulk(oids []string, maxRepetitions uint32) (*gosnmp.SnmpPacket, error) {
	pkt, err := s.c.g.GetBulk(oids, 0, maxRepetitions)
	s.dirty = s.dirty || err != nil
	return pkt, s.explain(err)
}

// Close hands what the client learnt of the agent's engine back to the
// poll's configuration and recycles the client; its socket too, unless an
// answer to a resent or failed request could still arrive on it.
func (s *gosnmpSession) Close() error {
	c := s.c
	s.g.ContextEngineID = c.g.ContextEngineID
	var err error
	if s.dirty || c.udp == nil {
		err = c.g.Close()
		c.udp = nil
	}
	c.forget()
	putSNMPClient(c)
	s.c = nil
	return err
}

// forget drops what the client held of its last device (credentials,
// context, hooks) before it goes back to the idle list; its socket, if
// still open, stays.
func (c *snmpClient) forget() {
	c.g.Conn, c.g.OnRetry = nil, nil
	c.g.Context, c.g.Community, c.g.SecurityParameters = nil, "", nil
}

// explain recovers why a v3 agent refused us. An agent reports a wrong
// digest or an unknown user in an unauthenticated Report (RFC 3414 3.2:
// it cannot sign for a user it cannot verify); gosnmp, expecting a signed
// answer, discards it as "not authentic" and retries, so its error says
// nothing of the cause. If the last datagram received after the last
// request is such a Report, its varbind names the cause.
func (s *gosnmpSession) explain(err error) error {
	if err == nil || s.conn == nil {
		return err
	}
	last := s.conn.lastAnswer()
	if last == nil {
		return err
	}
	if oid, ok := decodeReport(last); ok {
		return fmt.Errorf("%w (%v)", snmpReportError{oid: oid}, err)
	}
	return err
}

// decodeReport parses an unauthenticated, unencrypted v3 datagram and
// returns its Report varbind's OID. Encrypted or signed datagrams are not
// Reports about our credentials and are left to gosnmp.
func decodeReport(datagram []byte) (string, bool) {
	dec := &gosnmp.GoSNMP{
		Version:            gosnmp.Version3,
		SecurityModel:      gosnmp.UserSecurityModel,
		MsgFlags:           gosnmp.NoAuthNoPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "report-decoder"},
	}
	pkt, err := dec.SnmpDecodePacket(datagram)
	if err != nil || pkt.Version != gosnmp.Version3 || pkt.MsgFlags&gosnmp.AuthPriv != gosnmp.NoAuthNoPriv ||
		pkt.PDUType != gosnmp.Report || len(pkt.Variables) == 0 {
		return "", false
	}
	return pkt.Variables[0].Name, true
}

// reportConn remembers the last datagram received since the last one sent,
// for explain. gosnmp uses one connection per client and one request at a
// time, but the mutex keeps explain safe whatever gosnmp does inside.
type reportConn struct {
	net.Conn
	mu   sync.Mutex
	last []byte
}

func (c *reportConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.last = nil
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *reportConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.last = append(c.last[:0], b[:n]...)
		c.mu.Unlock()
	}
	return n, err
}

func (c *reportConn) lastAnswer() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
