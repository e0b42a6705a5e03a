package fleetsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"
)

// SNMP is a simulated SNMP agent on UDP: SNMPv2c with a community, or
// SNMPv3 with one USM user. It answers Get, GetNext and GetBulk for
// sysDescr, sysUpTime and sysName, a two-port ifTable (both up) and, on a
// server, an hrStorageTable with two fixed disks — what Vigía's SNMP probe
// reads. Each agent has its own engine ID, and its uptime counts from the
// simulator's start, so a poller sees no reboot while the simulator runs.
type SNMP struct {
	Addr      string // host:port (UDP)
	Community string // SNMPv2c; ignored when User is set
	// SNMPv3 (USM): the user and its protocols, as the inventory names
	// them (SHA, SHA256, …; AES, AES256, DES…), with their passphrases.
	User, AuthProtocol, AuthPassphrase, PrivProtocol, PrivPassphrase string
	// Server adds hrStorageTable, as on a PACS, RIS or broker.
	Server bool
}

var (
	snmpAuth = map[string]gosnmp.SnmpV3AuthProtocol{
		"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
		"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
	}
	snmpPriv = map[string]gosnmp.SnmpV3PrivProtocol{
		"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
		"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
	}
	// snmpLog discards gosnmp's debug output.
	snmpLog = gosnmp.NewLogger(log.New(io.Discard, "", 0))
)

// mibEntry is one object of the simulated MIB.
type mibEntry struct {
	oid   []uint32
	name  string
	typ   gosnmp.Asn1BER
	value any
	dyn   byte // 'u': sysUpTime, 'n': sysName (the device id)
}

// snmpMIB is what every agent serves; snmpServerMIB adds the storage.
var snmpMIB, snmpServerMIB = buildMIB(false), buildMIB(true)

func buildMIB(server bool) []mibEntry {
	var m []mibEntry
	add := func(name string, typ gosnmp.Asn1BER, v any, dyn byte) {
		m = append(m, mibEntry{oid: parseOID(name), name: name, typ: typ, value: v, dyn: dyn})
	}
	add(".1.3.6.1.2.1.1.1.0", gosnmp.OctetString, []byte("Vigía simulated agent"), 0)
	add(".1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks, uint32(0), 'u')
	add(".1.3.6.1.2.1.1.5.0", gosnmp.OctetString, nil, 'n')
	add(".1.3.6.1.2.1.2.1.0", gosnmp.Integer, 2, 0)
	for i := 1; i <= 2; i++ {
		n := strconv.Itoa(i)
		add(".1.3.6.1.2.1.2.2.1.1."+n, gosnmp.Integer, i, 0)
		add(".1.3.6.1.2.1.2.2.1.2."+n, gosnmp.OctetString, []byte("eth"+strconv.Itoa(i-1)), 0)
		add(".1.3.6.1.2.1.2.2.1.3."+n, gosnmp.Integer, 6, 0) // ethernetCsmacd
		add(".1.3.6.1.2.1.2.2.1.7."+n, gosnmp.Integer, 1, 0) // admin up
		add(".1.3.6.1.2.1.2.2.1.8."+n, gosnmp.Integer, 1, 0) // oper up
	}
	if server {
		disks := []struct {
			descr      string
			size, used int
		}{{"/", 2_500_000, 1_000_000}, {"/var/lib/pacs", 250_000_000, 162_500_000}}
		for i, d := range disks {
			n := strconv.Itoa(i + 1)
			add(".1.3.6.1.2.1.25.2.3.1.1."+n, gosnmp.Integer, i+1, 0)
			add(".1.3.6.1.2.1.25.2.3.1.2."+n, gosnmp.ObjectIdentifier, ".1.3.6.1.2.1.25.2.1.4", 0)
			add(".1.3.6.1.2.1.25.2.3.1.3."+n, gosnmp.OctetString, []byte(d.descr), 0)
			add(".1.3.6.1.2.1.25.2.3.1.4."+n, gosnmp.Integer, 4096, 0)
			add(".1.3.6.1.2.1.25.2.3.1.5."+n, gosnmp.Integer, d.size, 0)
			add(".1.3.6.1.2.1.25.2.3.1.6."+n, gosnmp.Integer, d.used, 0)
		}
	}
	slices.SortFunc(m, func(a, b mibEntry) int { return slices.Compare(a.oid, b.oid) })
	return m
}

func parseOID(s string) []uint32 {
	var out []uint32
	for part := range strings.SplitSeq(strings.TrimPrefix(s, "."), ".") {
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return nil
		}
		out = append(out, uint32(n))
	}
	return out
}

// snmpAgent serves one SNMP endpoint. Its state outlives the endpoint's
// socket, so taking a device down and up keeps its engine and uptime.
type snmpAgent struct {
	cfg      *SNMP
	device   string
	mib      []mibEntry
	started  time.Time
	engineID string
	boots    uint32
	profile  Profile

	// v3 only: the USM user with its keys, localised to our engine ID on
	// first use (the costly part) and then shared read-only.
	keysOnce sync.Once
	usm      *gosnmp.UsmSecurityParameters
	keysErr  error
	salt     atomic.Uint64
	reports  atomic.Uint32 // usmStatsUnknownEngineIDs
}

func newSNMPAgent(device string, cfg *SNMP, p Profile, started time.Time) (*snmpAgent, error) {
	a := &snmpAgent{cfg: cfg, device: device, mib: snmpMIB, started: started, boots: 1, profile: p}
	if cfg.Server {
		a.mib = snmpServerMIB
	}
	// RFC 3411 engine ID: enterprise 8072 (net-snmp's, as a simulated
	// agent is no vendor's) with format 4 (text), then the device id.
	h := fnv.New64a()
	h.Write([]byte(device))
	id := binary.BigEndian.AppendUint32(nil, 0x80000000|8072)
	id = append(id, 4)
	a.engineID = string(binary.BigEndian.AppendUint64(id, h.Sum64()))
	if cfg.User == "" {
		if cfg.Community == "" {
			return nil, errors.New("an SNMP agent needs a community or a user")
		}
		return a, nil
	}
	usm := &gosnmp.UsmSecurityParameters{UserName: cfg.User, AuthoritativeEngineID: a.engineID,
		AuthoritativeEngineBoots: a.boots, Logger: snmpLog}
	if cfg.AuthProtocol != "" {
		p, ok := snmpAuth[strings.ToUpper(cfg.AuthProtocol)]
		if !ok {
			return nil, fmt.Errorf("unknown SNMPv3 auth protocol %q", cfg.AuthProtocol)
		}
		usm.AuthenticationProtocol, usm.AuthenticationPassphrase = p, cfg.AuthPassphrase
	}
	if cfg.PrivProtocol != "" {
		p, ok := snmpPriv[strings.ToUpper(cfg.PrivProtocol)]
		if !ok || cfg.AuthProtocol == "" {
			return nil, fmt.Errorf("unknown SNMPv3 privacy protocol %q, or privacy without auth", cfg.PrivProtocol)
		}
		usm.PrivacyProtocol, usm.PrivacyPassphrase = p, cfg.PrivPassphrase
	}
	a.usm = usm
	return a, nil
}

// flags is the security level the agent's user answers at.
func (a *snmpAgent) flags() gosnmp.SnmpV3MsgFlags {
	switch {
	case a.usm.PrivacyProtocol > gosnmp.NoPriv:
		return gosnmp.AuthPriv
	case a.usm.AuthenticationProtocol > gosnmp.NoAuth:
		return gosnmp.AuthNoPriv
	}
	return gosnmp.NoAuthNoPriv
}

// serve answers requests on pc until it is closed. Answers are sent after
// the profile's delay, without holding up the next request; a lost
// exchange is simply not answered.
func (a *snmpAgent) serve(pc net.PacketConn) {
	buf := make([]byte, 2048) // a poller's request is a few hundred bytes
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out := a.answer(buf[:n])
		if out == nil {
			continue
		}
		d, lost := a.profile.delay()
		switch {
		case lost:
		case d == 0:
			pc.WriteTo(out, from)
		default:
			time.AfterFunc(d, func() { pc.WriteTo(out, from) })
		}
	}
}

// answer returns the reply to one request, or nil to drop it: bad
// community, unknown user, failed authentication, or not a request — as a
// real agent does, silently.
func (a *snmpAgent) answer(raw []byte) []byte {
	if a.usm == nil {
		parser := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Logger: snmpLog}
		req, err := parser.UnmarshalTrap(raw, false)
		if err != nil || req.Version != gosnmp.Version2c || req.Community != a.cfg.Community {
			return nil
		}
		vars, ok := a.vars(req)
		if !ok {
			return nil
		}
		out, err := (&gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse,
			RequestID: req.RequestID, Variables: vars, Logger: snmpLog}).MarshalMsg()
		if err != nil {
			return nil
		}
		return out
	}
	a.keysOnce.Do(func() { a.keysErr = a.usm.InitSecurityKeys() })
	if a.keysErr != nil {
		return nil
	}
	parser := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: a.usm.Copy(), Logger: snmpLog}
	req, err := parser.UnmarshalTrap(raw, true)
	if err != nil || req.Version != gosnmp.Version3 {
		return nil
	}
	sp := a.usm.Copy().(*gosnmp.UsmSecurityParameters)
	sp.AuthoritativeEngineTime = uint32(time.Since(a.started) / time.Second)
	resp := &gosnmp.SnmpPacket{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, SecurityParameters: sp,
		MsgID: req.MsgID, RequestID: req.RequestID, ContextEngineID: a.engineID, ContextName: req.ContextName, Logger: snmpLog}
	if reqUSM, ok := req.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok && reqUSM.AuthoritativeEngineID == "" {
		// Engine discovery (RFC 3414 §4): a Report naming our engine,
		// unauthenticated, as the poller expects.
		resp.PDUType, resp.MsgFlags = gosnmp.Report, gosnmp.NoAuthNoPriv
		sp.UserName, sp.AuthenticationProtocol, sp.PrivacyProtocol = "", gosnmp.NoAuth, gosnmp.NoPriv
		resp.Variables = []gosnmp.SnmpPDU{{Name: ".1.3.6.1.6.3.15.1.1.4.0", Type: gosnmp.Counter32, Value: uint(a.reports.Add(1))}}
	} else {
		vars, ok := a.vars(req)
		if !ok {
			return nil
		}
		resp.PDUType, resp.MsgFlags, resp.Variables = gosnmp.GetResponse, a.flags(), vars
		if resp.MsgFlags&gosnmp.AuthPriv == gosnmp.AuthPriv {
			salt := make([]byte, 8)
			binary.BigEndian.PutUint64(salt, a.salt.Add(1))
			sp.PrivacyParameters = salt
		}
	}
	out, err := resp.MarshalMsg()
	if err != nil {
		return nil
	}
	return out
}

// maxBulkVarbinds bounds a GetBulk answer, as small agents do.
const maxBulkVarbinds = 100

// vars answers the variables of a Get, GetNext or GetBulk.
func (a *snmpAgent) vars(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, bool) {
	var out []gosnmp.SnmpPDU
	switch req.PDUType {
	case gosnmp.GetRequest:
		for _, v := range req.Variables {
			i, found := a.find(v.Name)
			if !found {
				out = append(out, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.NoSuchObject})
				continue
			}
			out = append(out, a.value(i))
		}
	case gosnmp.GetNextRequest:
		for _, v := range req.Variables {
			out = append(out, a.next(v.Name))
		}
	case gosnmp.GetBulkRequest:
		nonRep := min(int(req.NonRepeaters), len(req.Variables))
		for _, v := range req.Variables[:nonRep] {
			out = append(out, a.next(v.Name))
		}
		cursors := make([]string, 0, len(req.Variables)-nonRep)
		for _, v := range req.Variables[nonRep:] {
			cursors = append(cursors, v.Name)
		}
		for r := 0; r < int(req.MaxRepetitions) && len(cursors) > 0 && len(out)+len(cursors) <= maxBulkVarbinds; r++ {
			done := true
			for j, c := range cursors {
				pdu := a.next(c)
				out = append(out, pdu)
				cursors[j] = pdu.Name
				done = done && pdu.Type == gosnmp.EndOfMibView
			}
			if done {
				break
			}
		}
	default:
		return nil, false
	}
	return out, true
}

// find returns the index of the first entry at or after oid, and whether
// it is oid itself.
func (a *snmpAgent) find(name string) (int, bool) {
	oid := parseOID(name)
	return slices.BinarySearchFunc(a.mib, oid, func(e mibEntry, t []uint32) int { return slices.Compare(e.oid, t) })
}

func (a *snmpAgent) next(name string) gosnmp.SnmpPDU {
	i, found := a.find(name)
	if found {
		i++
	}
	if i >= len(a.mib) {
		return gosnmp.SnmpPDU{Name: name, Type: gosnmp.EndOfMibView}
	}
	return a.value(i)
}

func (a *snmpAgent) value(i int) gosnmp.SnmpPDU {
	e := a.mib[i]
	pdu := gosnmp.SnmpPDU{Name: e.name, Type: e.typ, Value: e.value}
	switch e.dyn {
	case 'u':
		pdu.Value = uint32(time.Since(a.started) / (10 * time.Millisecond))
	case 'n':
		pdu.Value = []byte(a.device)
	}
	return pdu
}
