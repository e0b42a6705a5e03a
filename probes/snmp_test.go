package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
)

// Unit tests of the SNMP prober's decisions against tableAgent, a test
// double that answers Get and GetBulk from a table of varbinds. The real
// agent is exercised in snmp_snmpd_test.go.

// tableAgent implements snmpSession over a sorted table of varbinds, with
// GetBulk semantics (each repetition advances every requested column) and
// knobs for the failures real agents produce.
type tableAgent struct {
	vars []gosnmp.SnmpPDU

	getPkt  *gosnmp.SnmpPacket // answer Get with this packet as is
	getErr  error
	bulkErr error
	// tooBigAbove makes GetBulk answer tooBig when asked for more
	// repetitions, as small agents do.
	tooBigAbove uint32
	// shortAnswers cuts every GetBulk answer to this many varbinds, as an
	// agent filling its maximum message size does.
	shortAnswers int

	bulkCalls int
	bulkReps  []uint32 // max-repetitions of each GetBulk, in order
	closed    bool
}

func newTableAgent(vars ...gosnmp.SnmpPDU) *tableAgent {
	a := &tableAgent{vars: slices.Clone(vars)}
	slices.SortFunc(a.vars, func(x, y gosnmp.SnmpPDU) int { return compareOIDs(x.Name, y.Name) })
	return a
}

func (a *tableAgent) Get(oids []string) (*gosnmp.SnmpPacket, error) {
	if a.getErr != nil || a.getPkt != nil {
		return a.getPkt, a.getErr
	}
	pkt := &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse}
	for _, oid := range oids {
		v := gosnmp.SnmpPDU{Name: oid, Type: gosnmp.NoSuchObject}
		for _, x := range a.vars {
			if x.Name == oid {
				v = x
			}
		}
		pkt.Variables = append(pkt.Variables, v)
	}
	return pkt, nil
}

func (a *tableAgent) GetBulk(oids []string, reps uint32) (*gosnmp.SnmpPacket, error) {
	a.bulkCalls++
	a.bulkReps = append(a.bulkReps, reps)
	if a.bulkErr != nil {
		return nil, a.bulkErr
	}
	if a.tooBigAbove > 0 && reps > a.tooBigAbove {
		return &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, Error: gosnmp.TooBig}, nil
	}
	pkt := &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse}
	cursor := slices.Clone(oids)
	for range reps {
		for i, c := range cursor {
			v := gosnmp.SnmpPDU{Name: c, Type: gosnmp.EndOfMibView}
			// The first varbind after c: the table is sorted.
			if j, _ := slices.BinarySearchFunc(a.vars, c, func(x gosnmp.SnmpPDU, c string) int {
				if compareOIDs(x.Name, c) <= 0 {
					return -1
				}
				return 1
			}); j < len(a.vars) {
				v = a.vars[j]
			}
			cursor[i] = v.Name
			pkt.Variables = append(pkt.Variables, v)
		}
	}
	if a.shortAnswers > 0 && len(pkt.Variables) > a.shortAnswers {
		pkt.Variables = pkt.Variables[:a.shortAnswers]
	}
	return pkt, nil
}

func (a *tableAgent) Close() error { a.closed = true; return nil }

func ticks(cs uint32) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: cs}
}

func intVar(oid string, v int) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Integer, Value: v}
}

func strVar(oid, v string) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.OctetString, Value: []byte(v)}
}

// iface is one ifTable row.
func iface(index int, name string, admin, oper int) []gosnmp.SnmpPDU {
	i := "." + strconv.Itoa(index)
	return []gosnmp.SnmpPDU{
		strVar(oidIfDescr+i, name),
		intVar(oidIfAdminStatus+i, admin),
		intVar(oidIfOperStatus+i, oper),
		// Columns the prober must not need (ifType, ifMtu).
		intVar(".1.3.6.1.2.1.2.2.1.3"+i, 6),
		intVar(".1.3.6.1.2.1.2.2.1.4"+i, 1500),
	}
}

// storage is one hrStorageTable row; typ is the last arc of hrStorageTypes.
func storage(index int, typ int, name string, units, size, used int) []gosnmp.SnmpPDU {
	i := "." + strconv.Itoa(index)
	return []gosnmp.SnmpPDU{
		intVar(".1.3.6.1.2.1.25.2.3.1.1"+i, index),
		{Name: oidHrStorageType + i, Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.2.1.25.2.1." + strconv.Itoa(typ)},
		strVar(oidHrStorageDescr+i, name),
		intVar(oidHrStorageUnits+i, units),
		intVar(oidHrStorageSize+i, size),
		intVar(oidHrStorageUsed+i, used),
		intVar(".1.3.6.1.2.1.25.2.3.1.7"+i, 0),
	}
}

func rows(parts ...[]gosnmp.SnmpPDU) []gosnmp.SnmpPDU { return slices.Concat(parts...) }

const (
	hrRAM       = 2
	hrFixedDisk = 4
	ifUp        = 1
	ifDown      = 2
	ifDormant   = 5
)

var (
	// Secrets that must never show up in a Result.
	testCommunity = "c0mmunity-s3cret"
	testAuthPass  = "auth-s3cret-pass"
	testPrivPass  = "priv-s3cret-pass"
)

func v2cDevice(kind string) assets.Device {
	return assets.Device{ID: "d1", Kind: kind, SNMP: &assets.SNMPEndpoint{
		Host: "192.0.2.10", Version: "v2c", Community: assets.NewSecret(testCommunity),
	}}
}

func v3Device(kind string) assets.Device {
	return assets.Device{ID: "d1", Kind: kind, SNMP: &assets.SNMPEndpoint{
		Host: "192.0.2.10", Version: "v3", User: "vigia",
		AuthProtocol: "SHA256", AuthPassphrase: assets.NewSecret(testAuthPass),
		PrivProtocol: "AES", PrivPassphrase: assets.NewSecret(testPrivPass),
	}}
}

func reportPacket(oid string) *gosnmp.SnmpPacket {
	return &gosnmp.SnmpPacket{PDUType: gosnmp.Report, Variables: []gosnmp.SnmpPDU{
		{Name: oid, Type: gosnmp.Counter32, Value: uint(3)},
	}}
}

func TestSNMPProbeDecisions(t *testing.T) {
	healthyIfaces := rows(iface(1, "lo", ifUp, ifUp), iface(2, "eth0", ifUp, ifUp))
	tests := []struct {
		name    string
		device  assets.Device
		agent   *tableAgent
		dialErr error

		want       Outcome
		wantUptime time.Duration
		wantDetail string // substring
		wantFacts  map[string]string
		noFacts    []string
	}{
		{
			name:   "v2c healthy network device",
			device: v2cDevice("network"),
			agent:  newTableAgent(rows([]gosnmp.SnmpPDU{ticks(123456)}, healthyIfaces)...),
			want:   OK, wantUptime: 1234560 * time.Millisecond, wantDetail: "sysUpTime 20m34.56s",
			noFacts: []string{"interfaces_down", "storage_max_percent"},
		},
		{
			name:   "interface down is evidence, not an outage",
			device: v2cDevice("modality"),
			agent: newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)},
				iface(1, "lo", ifUp, ifUp), iface(2, "eth0", ifUp, ifUp), iface(3, "eth1", ifUp, ifDown),
				iface(10, "eth2", ifUp, ifStatusLowerLayerDown))...),
			want: OK, wantUptime: time.Second, wantDetail: "interfaces down: eth1,eth2",
			wantFacts: map[string]string{"interfaces_down": "eth1,eth2"},
		},
		{
			name:   "administratively down and dormant interfaces are ignored",
			device: v2cDevice("network"),
			agent: newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)},
				iface(1, "eth0", ifUp, ifUp), iface(2, "ifb0", ifDown, ifDown), iface(3, "ppp0", ifUp, ifDormant))...),
			want: OK, noFacts: []string{"interfaces_down"},
		},
		{
			name:   "interface without ifDescr is named by index",
			device: v2cDevice("network"),
			agent: newTableAgent(ticks(100),
				intVar(oidIfAdminStatus+".7", ifUp), intVar(oidIfOperStatus+".7", ifDown)),
			want: OK, wantFacts: map[string]string{"interfaces_down": "ifIndex 7"},
		},
		{
			name:   "server disk at 95 percent degrades and names the volume",
			device: v3Device("pacs"),
			agent: newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)}, healthyIfaces,
				storage(1, hrRAM, "Physical memory", 1024, 1000, 999),
				storage(31, hrFixedDisk, "/", 4096, 1000, 400),
				storage(32, hrFixedDisk, "/data", 4096, 1000, 950))...),
			want: Degraded, wantDetail: "storage over 90%: /data 95.0% full",
			wantFacts: map[string]string{
				"storage_max_percent": "95.0", "storage_max_volume": "/data",
				"storage:/data": "3.7 MiB/3.9 MiB (95.0%)", "storage:/": "1.6 MiB/3.9 MiB (40.0%)",
			},
			noFacts: []string{"storage:Physical memory"},
		},
		{
			name:   "server disks below the threshold stay OK with their readings",
			device: v2cDevice("ris"),
			agent: newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)}, healthyIfaces,
				storage(31, hrFixedDisk, "/", 4096, 1000, 900),
				storage(33, hrFixedDisk, "/empty", 4096, 0, 0))...),
			want:      OK,
			wantFacts: map[string]string{"storage_max_percent": "90.0", "storage_max_volume": "/"},
			noFacts:   []string{"storage:/empty"},
		},
		{
			name:   "storage is not read on non-servers",
			device: v2cDevice("modality"),
			agent: newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)}, healthyIfaces,
				storage(31, hrFixedDisk, "/", 4096, 1000, 999))...),
			want: OK, noFacts: []string{"storage_max_percent"},
		},
		{
			name:   "agent without IF-MIB or HOST-RESOURCES-MIB is OK",
			device: v2cDevice("broker"),
			agent:  newTableAgent(ticks(100)),
			want:   OK, noFacts: []string{"interfaces_down", "storage_max_percent"},
		},
		{
			name: "unknown user is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getErr: gosnmp.ErrUnknownUsername},
			want:  Misconfigured, wantDetail: "usmStatsUnknownUserNames",
		},
		{
			name: "wrong digest is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getErr: fmt.Errorf("get: %w", gosnmp.ErrWrongDigest)},
			want:  Misconfigured, wantDetail: "wrong auth passphrase",
		},
		{
			name: "decryption error is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getErr: gosnmp.ErrDecryption},
			want:  Misconfigured, wantDetail: "usmStatsDecryptionErrors",
		},
		{
			name: "unsupported security level is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getErr: gosnmp.ErrUnknownSecurityLevel},
			want:  Misconfigured, wantDetail: "usmStatsUnsupportedSecLevels",
		},
		{
			name: "not in time window after resync is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getErr: gosnmp.ErrNotInTimeWindow},
			want:  Misconfigured, wantDetail: "duplicate engine ID",
		},
		{
			name: "Report PDU handed back as an answer is never success", device: v3Device("pacs"),
			agent: &tableAgent{getPkt: reportPacket(oidUsmStatsNotInTimeWindows)},
			want:  Misconfigured, wantDetail: "resynchronisation",
		},
		{
			name: "Report PDU with wrongDigests is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getPkt: reportPacket(oidUsmStatsWrongDigests)},
			want:  Misconfigured, wantDetail: "usmStatsWrongDigests",
		},
		{
			name: "unknown Report PDU is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getPkt: reportPacket(".1.3.6.1.6.3.11.2.1.3.0")},
			want:  Misconfigured, wantDetail: "refused",
		},
		{
			name: "authorizationError status is misconfigured", device: v3Device("pacs"),
			agent: &tableAgent{getPkt: &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, Error: gosnmp.AuthorizationError,
				Variables: []gosnmp.SnmpPDU{{Name: oidSysUpTime, Type: gosnmp.Null}}}},
			want: Misconfigured, wantDetail: "access denied",
		},
		{
			name: "genErr status degrades", device: v2cDevice("pacs"),
			agent: &tableAgent{getPkt: &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, Error: gosnmp.GenErr,
				Variables: []gosnmp.SnmpPDU{{Name: oidSysUpTime, Type: gosnmp.Null}}}},
			want: Degraded, wantDetail: "GenErr",
		},
		{
			name: "sysUpTime outside the view is misconfigured", device: v2cDevice("pacs"),
			agent: newTableAgent(),
			want:  Misconfigured, wantDetail: "view",
		},
		{
			name: "deadline is failed", device: v2cDevice("pacs"),
			agent: &tableAgent{getErr: context.DeadlineExceeded},
			want:  Failed, wantDetail: "no answer",
		},
		{
			name: "retries exhausted is failed", device: v2cDevice("pacs"),
			agent: &tableAgent{getErr: fmt.Errorf("request timeout (after 1 retries): %w", gosnmp.ErrMaxRetriesExceeded)},
			want:  Failed, wantDetail: "no answer",
		},
		{
			name: "port unreachable is failed", device: v2cDevice("pacs"),
			agent: &tableAgent{getErr: &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", syscall.ECONNREFUSED)}},
			want:  Failed, wantDetail: "port unreachable",
		},
		{
			name: "unresolvable host name is misconfigured", device: v2cDevice("pacs"),
			dialErr: fmt.Errorf("error establishing connection to host: %w", &net.DNSError{Err: "no such host", Name: "pacs.invalid", IsNotFound: true}),
			want:    Misconfigured, wantDetail: "does not resolve: pacs.invalid",
		},
		{
			name: "DNS timeout is failed", device: v2cDevice("pacs"),
			dialErr: &net.DNSError{Err: "i/o timeout", Name: "pacs.example", IsTimeout: true},
			want:    Failed,
		},
		{
			name: "table walk timing out after sysUpTime degrades", device: v2cDevice("pacs"),
			agent: &tableAgent{vars: []gosnmp.SnmpPDU{ticks(100)}, bulkErr: context.DeadlineExceeded},
			want:  Degraded, wantUptime: time.Second, wantDetail: "ifTable: no answer",
		},
		{
			name: "agent refusing GetBulk with tooBig gets fewer rows per request", device: v2cDevice("network"),
			agent: func() *tableAgent {
				a := newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)}, iface(1, "eth0", ifUp, ifUp), iface(2, "eth1", ifUp, ifDown))...)
				a.tooBigAbove = 4
				return a
			}(),
			want: OK, wantFacts: map[string]string{"interfaces_down": "eth1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialed := false
			p := NewSNMPProber()
			p.dial = func(ctx context.Context, g *gosnmp.GoSNMP) (snmpSession, error) {
				dialed = true
				if tt.dialErr != nil {
					return nil, tt.dialErr
				}
				return tt.agent, nil
			}
			r := p.Probe(context.Background(), tt.device)
			if !dialed {
				t.Fatal("prober never dialled")
			}
			if r.Prober != "snmp" {
				t.Errorf("Prober = %q, want snmp", r.Prober)
			}
			if r.Outcome != tt.want {
				t.Fatalf("Outcome = %s (%s), want %s", r.Outcome, r.Detail, tt.want)
			}
			if tt.wantUptime != 0 && r.Uptime != tt.wantUptime {
				t.Errorf("Uptime = %s, want %s", r.Uptime, tt.wantUptime)
			}
			if !strings.Contains(r.Detail, tt.wantDetail) {
				t.Errorf("Detail = %q, want it to contain %q", r.Detail, tt.wantDetail)
			}
			for k, v := range tt.wantFacts {
				if got, ok := r.Facts[k]; !ok || got != v {
					t.Errorf("Facts[%q] = %q (present %v), want %q; facts %v", k, got, ok, v, r.Facts)
				}
			}
			for _, k := range tt.noFacts {
				if v, ok := r.Facts[k]; ok {
					t.Errorf("Facts[%q] = %q, want absent", k, v)
				}
			}
			if tt.agent != nil && tt.dialErr == nil && !tt.agent.closed {
				t.Error("session not closed")
			}
			assertNoSecret(t, r)
		})
	}
}

func assertNoSecret(t *testing.T, r Result) {
	t.Helper()
	all := fmt.Sprintf("%+v", r)
	for _, s := range []string{testCommunity, testAuthPass, testPrivPass} {
		if strings.Contains(all, s) {
			t.Fatalf("result leaks a secret: %s", all)
		}
	}
}

// TestSNMPProbeMisconfiguredEndpoint: endpoints that cannot become a
// request are Misconfigured without any network traffic, and the message
// never carries the secret.
func TestSNMPProbeMisconfiguredEndpoint(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*assets.SNMPEndpoint)
		detail string
	}{
		{"unknown version", func(e *assets.SNMPEndpoint) { e.Version = "v1" }, `unsupported SNMP version "v1"`},
		{"v2c without community", func(e *assets.SNMPEndpoint) { e.Version = "v2c"; e.Community = assets.Secret{} }, "without a community"},
		{"v3 without user", func(e *assets.SNMPEndpoint) { e.User = "" }, "without a user"},
		{"unknown auth protocol", func(e *assets.SNMPEndpoint) { e.AuthProtocol = "SHA1024" }, `unknown SNMPv3 auth protocol "SHA1024"`},
		{"unknown priv protocol", func(e *assets.SNMPEndpoint) { e.PrivProtocol = "3DES" }, `unknown SNMPv3 privacy protocol "3DES"`},
		{"privacy without auth", func(e *assets.SNMPEndpoint) { e.AuthProtocol = "" }, "without an auth protocol"},
		{"short auth passphrase", func(e *assets.SNMPEndpoint) { e.AuthPassphrase = assets.NewSecret("s3cr3t") }, "auth passphrase missing or shorter than 8"},
		{"missing priv passphrase", func(e *assets.SNMPEndpoint) { e.PrivPassphrase = assets.Secret{} }, "privacy passphrase missing"},
		{"port out of range", func(e *assets.SNMPEndpoint) { e.Port = 70000 }, "port 70000 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := v3Device("pacs")
			ep := *d.SNMP
			tt.edit(&ep)
			d.SNMP = &ep
			p := NewSNMPProber()
			p.dial = func(context.Context, *gosnmp.GoSNMP) (snmpSession, error) {
				t.Fatal("dialled a misconfigured endpoint")
				return nil, nil
			}
			r := p.Probe(context.Background(), d)
			if r.Outcome != Misconfigured || !strings.Contains(r.Detail, tt.detail) {
				t.Fatalf("got %s %q, want misconfigured containing %q", r.Outcome, r.Detail, tt.detail)
			}
			if strings.Contains(r.Detail, "s3cr3t") {
				t.Fatalf("detail leaks the passphrase: %q", r.Detail)
			}
			assertNoSecret(t, r)
		})
	}
	t.Run("no endpoint", func(t *testing.T) {
		p := NewSNMPProber()
		if p.Applies(assets.Device{}) {
			t.Fatal("Applies to a device without SNMP")
		}
		if r := p.Probe(context.Background(), assets.Device{}); r.Outcome != Misconfigured {
			t.Fatalf("Outcome = %s, want misconfigured", r.Outcome)
		}
	})
}

// TestSNMPNewGoSNMPProtocols maps every protocol name the inventory accepts,
// and net-snmp's spellings, to gosnmp's security parameters.
func TestSNMPNewGoSNMPProtocols(t *testing.T) {
	tests := []struct {
		auth, priv string
		wantAuth   gosnmp.SnmpV3AuthProtocol
		wantPriv   gosnmp.SnmpV3PrivProtocol
		wantFlags  gosnmp.SnmpV3MsgFlags
	}{
		{"", "", gosnmp.NoAuth, gosnmp.NoPriv, gosnmp.NoAuthNoPriv},
		{"MD5", "", gosnmp.MD5, gosnmp.NoPriv, gosnmp.AuthNoPriv},
		{"SHA", "", gosnmp.SHA, gosnmp.NoPriv, gosnmp.AuthNoPriv},
		{"SHA224", "DES", gosnmp.SHA224, gosnmp.DES, gosnmp.AuthPriv},
		{"SHA256", "AES", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv},
		{"SHA384", "AES192", gosnmp.SHA384, gosnmp.AES192, gosnmp.AuthPriv},
		{"SHA512", "AES256", gosnmp.SHA512, gosnmp.AES256, gosnmp.AuthPriv},
		{"SHA", "AES192C", gosnmp.SHA, gosnmp.AES192C, gosnmp.AuthPriv},
		{"SHA", "AES256C", gosnmp.SHA, gosnmp.AES256C, gosnmp.AuthPriv},
		{"SHA-256", "aes", gosnmp.SHA256, gosnmp.AES, gosnmp.AuthPriv},
	}
	for _, tt := range tests {
		t.Run(tt.auth+"/"+tt.priv, func(t *testing.T) {
			ep := &assets.SNMPEndpoint{Host: "192.0.2.1", Version: "v3", User: "u",
				AuthProtocol: tt.auth, AuthPassphrase: assets.NewSecret(testAuthPass),
				PrivProtocol: tt.priv, PrivPassphrase: assets.NewSecret(testPrivPass)}
			g, err := newGoSNMP(ep)
			if err != nil {
				t.Fatal(err)
			}
			usm := g.SecurityParameters.(*gosnmp.UsmSecurityParameters)
			if g.Version != gosnmp.Version3 || g.Port != 161 || g.MsgFlags != tt.wantFlags ||
				usm.AuthenticationProtocol != tt.wantAuth || usm.PrivacyProtocol != tt.wantPriv {
				t.Fatalf("got version %v port %d flags %v auth %v priv %v", g.Version, g.Port, g.MsgFlags, usm.AuthenticationProtocol, usm.PrivacyProtocol)
			}
			if tt.wantAuth != gosnmp.NoAuth && usm.AuthenticationPassphrase != testAuthPass {
				t.Error("auth passphrase not passed on")
			}
			if tt.wantPriv != gosnmp.NoPriv && usm.PrivacyPassphrase != testPrivPass {
				t.Error("priv passphrase not passed on")
			}
			// Each client gets its own security parameters: gosnmp mutates
			// them (engine ID, boots, salt) while talking.
			g2, _ := newGoSNMP(ep)
			if g2.SecurityParameters == g.SecurityParameters {
				t.Error("security parameters shared between clients")
			}
		})
	}
}

func TestSNMPParseSysUpTime(t *testing.T) {
	tests := []struct {
		name    string
		pdu     gosnmp.SnmpPDU
		want    time.Duration
		wantErr error
	}{
		{"zero", ticks(0), 0, nil},
		{"hundredths", ticks(1), 10 * time.Millisecond, nil},
		{"a day", ticks(8640000), 24 * time.Hour, nil},
		{"just before the 497-day wrap", ticks(1<<32 - 1), time.Duration(1<<32-1) * 10 * time.Millisecond, nil},
		{"no such instance", gosnmp.SnmpPDU{Name: oidSysUpTime, Type: gosnmp.NoSuchInstance}, 0, errSNMPNotInView},
		{"no such object", gosnmp.SnmpPDU{Name: oidSysUpTime, Type: gosnmp.NoSuchObject}, 0, errSNMPNotInView},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSysUpTime(tt.pdu)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("parseSysUpTime = %s, %v; want %s, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("wrong type", func(t *testing.T) {
		if _, err := parseSysUpTime(gosnmp.SnmpPDU{Name: oidSysUpTime, Type: gosnmp.Integer, Value: 5}); err == nil {
			t.Fatal("Integer accepted as sysUpTime")
		}
	})
}

func TestSNMPWalkColumns(t *testing.T) {
	colA, colB := ".1.3.6.1.4.1.9999.1.1", ".1.3.6.1.4.1.9999.1.2"
	many := func(n int) []gosnmp.SnmpPDU {
		var vs []gosnmp.SnmpPDU
		for i := 1; i <= n; i++ {
			vs = append(vs, intVar(colA+"."+strconv.Itoa(i), i), intVar(colB+"."+strconv.Itoa(i), -i))
		}
		return append(vs, intVar(".1.3.6.1.4.1.9999.2.1.0", 0)) // past the table
	}
	tests := []struct {
		name          string
		agent         *tableAgent
		wantA, wantB  int
		wantTruncated bool
		wantCalls     int
	}{
		{"small table in one round trip", newTableAgent(many(5)...), 5, 5, false, 1},
		{"rows past one answer", newTableAgent(many(70)...), 70, 70, false, 3},
		{"sparse column", newTableAgent(intVar(colA+".1", 1), intVar(colA+".2", 2), intVar(colB+".2", 2)), 2, 1, false, 1},
		{"answers cut short by the agent", func() *tableAgent { a := newTableAgent(many(20)...); a.shortAnswers = 7; return a }(), 20, 20, false, 0},
		{"runaway table is truncated", newTableAgent(many(snmpMaxRows + 10)...), snmpMaxRows, snmpMaxRows, true, 0},
		{"empty table", newTableAgent(), 0, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cols, truncated, err := walkColumns(tt.agent, []string{colA, colB}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(cols[0]) != tt.wantA || len(cols[1]) != tt.wantB || truncated != tt.wantTruncated {
				t.Fatalf("got %d/%d rows truncated=%v, want %d/%d truncated=%v", len(cols[0]), len(cols[1]), truncated, tt.wantA, tt.wantB, tt.wantTruncated)
			}
			if tt.wantCalls != 0 && tt.agent.bulkCalls != tt.wantCalls {
				t.Errorf("GetBulk calls = %d, want %d", tt.agent.bulkCalls, tt.wantCalls)
			}
			if v, ok := cols[1]["2"]; tt.wantB >= 2 && (!ok || pduInt(v) != -2 && pduInt(v) != 2) {
				t.Errorf("row 2 of column B = %+v", v)
			}
		})
	}
	t.Run("a row hint sizes the first request", func(t *testing.T) {
		a := newTableAgent(many(5)...)
		cols, _, err := walkColumns(a, []string{colA, colB}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(cols[0]) != 5 || !slices.Equal(a.bulkReps, []uint32{6}) {
			t.Fatalf("rows %d, GetBulk repetitions %v; want 5 rows in one request of 6", len(cols[0]), a.bulkReps)
		}
	})
	t.Run("a table grown past its hint is still read whole", func(t *testing.T) {
		a := newTableAgent(many(70)...)
		cols, _, err := walkColumns(a, []string{colA, colB}, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(cols[0]) != 70 || len(cols[1]) != 70 || a.bulkReps[0] != 6 || a.bulkReps[1] != snmpMaxVarbinds/2 {
			t.Fatalf("rows %d/%d, GetBulk repetitions %v; want 70/70, a first request of 6 then full ones", len(cols[0]), len(cols[1]), a.bulkReps)
		}
	})
	t.Run("OIDs going backwards are an error", func(t *testing.T) {
		a := &backwardsAgent{}
		if _, _, err := walkColumns(a, []string{colA}, 0); err == nil || !strings.Contains(err.Error(), "out of order") {
			t.Fatalf("err = %v, want out of order", err)
		}
	})
}

// backwardsAgent answers every GetBulk with the same row: a broken agent
// that would loop a naive walker forever.
type backwardsAgent struct{}

func (backwardsAgent) Get([]string) (*gosnmp.SnmpPacket, error) { return nil, errors.New("unused") }
func (backwardsAgent) GetBulk([]string, uint32) (*gosnmp.SnmpPacket, error) {
	return &gosnmp.SnmpPacket{PDUType: gosnmp.GetResponse, Variables: []gosnmp.SnmpPDU{
		intVar(".1.3.6.1.4.1.9999.1.1.5", 1), intVar(".1.3.6.1.4.1.9999.1.1.3", 1),
	}}, nil
}
func (backwardsAgent) Close() error { return nil }

func TestSNMPCompareOIDs(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{".1.3.6.1", ".1.3.6.1", 0},
		{".1.3.6.1.2", ".1.3.6.1.10", -1}, // numeric, not string order
		{".1.3.6.1.10", ".1.3.6.1.2", 1},
		{".1.3.6", ".1.3.6.1", -1},
		{"1.3.6.1", ".1.3.6.1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			if got := compareOIDs(tt.a, tt.b); (got > 0) != (tt.want > 0) || (got < 0) != (tt.want < 0) {
				t.Fatalf("compareOIDs = %d, want sign of %d", got, tt.want)
			}
		})
	}
}

// TestSNMPExplainUnauthenticatedReport: the Report an agent sends for a
// wrong digest or an unknown user is unsigned, so gosnmp discards it; the
// session must still recover its cause from the last datagram, and only
// from a datagram received after the last request.
func TestSNMPExplainUnauthenticatedReport(t *testing.T) {
	encode := func(t *testing.T, flags gosnmp.SnmpV3MsgFlags, pduType gosnmp.PDUType, oid string) []byte {
		t.Helper()
		enc := &gosnmp.GoSNMP{
			Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: flags,
			SecurityParameters: &gosnmp.UsmSecurityParameters{
				UserName: "vigia", AuthoritativeEngineID: "\x80\x00\x1f\x88\x80engine-id",
				AuthenticationProtocol: gosnmp.NoAuth, PrivacyProtocol: gosnmp.NoPriv,
			},
		}
		if flags&gosnmp.AuthNoPriv != 0 {
			usm := enc.SecurityParameters.(*gosnmp.UsmSecurityParameters)
			usm.AuthenticationProtocol, usm.AuthenticationPassphrase = gosnmp.SHA, testAuthPass
		}
		b, err := enc.SnmpEncodePacket(pduType, []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Counter32, Value: uint32(7)}}, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrongDigest := errors.New("incoming packet is not authentic, discarding")

	tests := []struct {
		name      string
		datagram  func(t *testing.T) []byte
		sentAfter bool // a request was sent after the datagram arrived
		want      Outcome
		detail    string
	}{
		{"wrong digest Report", func(t *testing.T) []byte {
			return encode(t, gosnmp.NoAuthNoPriv, gosnmp.Report, oidUsmStatsWrongDigests)
		}, false, Misconfigured, "usmStatsWrongDigests"},
		{"unknown user Report", func(t *testing.T) []byte {
			return encode(t, gosnmp.NoAuthNoPriv, gosnmp.Report, oidUsmStatsUnknownUserNames)
		}, false, Misconfigured, "usmStatsUnknownUserNames"},
		{"discovery Report before the last request does not explain a timeout", func(t *testing.T) []byte {
			return encode(t, gosnmp.NoAuthNoPriv, gosnmp.Report, oidUsmStatsUnknownEngineIDs)
		}, true, Failed, "not authentic"},
		{"a response is not a Report", func(t *testing.T) []byte {
			return encode(t, gosnmp.NoAuthNoPriv, gosnmp.GetResponse, oidSysUpTime)
		}, false, Failed, "not authentic"},
		{"garbage is not a Report", func(t *testing.T) []byte { return []byte{0x30, 0x03, 0x02, 0x01} }, false, Failed, "not authentic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			rc := &reportConn{Conn: client}
			go func() { _, _ = server.Write(tt.datagram(t)) }()
			buf := make([]byte, 4096)
			if _, err := rc.Read(buf); err != nil {
				t.Fatal(err)
			}
			if tt.sentAfter {
				go func() { _, _ = server.Read(make([]byte, 64)) }()
				if _, err := rc.Write([]byte("next request")); err != nil {
					t.Fatal(err)
				}
			}
			s := &gosnmpSession{g: &gosnmp.GoSNMP{}, conn: rc}
			o, detail := classifySNMPError(s.explain(wrongDigest))
			if o != tt.want || !strings.Contains(detail, tt.detail) {
				t.Fatalf("got %s %q, want %s containing %q", o, detail, tt.want, tt.detail)
			}
		})
	}
}

// The prober remembers each device's table sizes: the second poll of an
// unchanged switch reads its ifTable in one request just big enough.
func TestSNMPProberRemembersTableSizes(t *testing.T) {
	a := newTableAgent(rows([]gosnmp.SnmpPDU{ticks(100)}, iface(1, "eth0", ifUp, ifUp), iface(2, "eth1", ifUp, ifDown),
		iface(3, "eth2", ifUp, ifUp))...)
	p := NewSNMPProber()
	p.dial = func(context.Context, *gosnmp.GoSNMP) (snmpSession, error) { return a, nil }
	d := v2cDevice("network")
	other := v2cDevice("network")
	other.ID = "another-switch"
	for i, dev := range []assets.Device{d, d, other} {
		a.bulkReps = nil
		r := p.Probe(context.Background(), dev)
		if r.Outcome != OK || r.Facts["interfaces_down"] != "eth1" {
			t.Fatalf("poll %d: %s %s %v", i, r.Outcome, r.Detail, r.Facts)
		}
		want := []uint32{snmpMaxVarbinds / 3}
		if i == 1 {
			want = []uint32{4} // three rows and the end
		}
		if !slices.Equal(a.bulkReps, want) {
			t.Errorf("poll %d of %s: GetBulk repetitions %v, want %v", i, dev.ID, a.bulkReps, want)
		}
	}
}

func TestCompareOIDs(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{".1.3.6.1.2.1.2.2.1.2.10", ".1.3.6.1.2.1.2.2.1.2.9", 1},
		{".1.3.6.1.2.1.2.2.1.2.9", ".1.3.6.1.2.1.2.2.1.2.10", -1},
		{".1.3.6.1", "1.3.6.1", 0},
		{".1.3.6", ".1.3.6.1", -1},
		{".1.3.6.1", ".1.3.6", 1},
		{"", ".1", -1},
		{".1.3.6.1.4.1.4294967296", ".1.3.6.1.4.1.4294967295", 1},
	} {
		if got := compareOIDs(c.a, c.b); (got > 0) != (c.want > 0) || (got < 0) != (c.want < 0) {
			t.Errorf("compareOIDs(%q, %q) = %d, want sign of %d", c.a, c.b, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { compareOIDs(".1.3.6.1.2.1.2.2.1.2.10", ".1.3.6.1.2.1.2.2.1.8.3") }); n != 0 {
		t.Errorf("compareOIDs allocates %v times", n)
	}
}
