package fleetsim

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/probes"
)

// freeUDP returns n loopback UDP addresses nobody listens on right now.
func freeUDP(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var pcs []net.PacketConn
	for range n {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
		out = append(out, pc.LocalAddr().String())
	}
	for _, pc := range pcs {
		pc.Close()
	}
	return out
}

const (
	simCommunity = "sim-community"
	simUser      = "noc"
	simAuth      = "auth-passphrase-1"
	simPriv      = "priv-passphrase-1"
)

// The simulated agents answer net-snmp's tools (an independent client)
// and Vigía's own SNMP prober, v2c and v3 authPriv alike; wrong
// credentials go unanswered; a device down refuses and, back up, has not
// rebooted.
func TestSNMPAgent(t *testing.T) {
	snmpget := testpeer.Command(t, "snmpget", "snmp")
	snmpbulkwalk := testpeer.Command(t, "snmpbulkwalk", "snmp")
	addrs := freeUDP(t, 2)
	sim, err := New([]Device{
		{ID: "sw-v2", Site: "s1", SNMP: &SNMP{Addr: addrs[0], Community: simCommunity}},
		{ID: "pacs-v3", Site: "s1", SNMP: &SNMP{Addr: addrs[1], User: simUser, AuthProtocol: "SHA256", AuthPassphrase: simAuth,
			PrivProtocol: "AES", PrivPassphrase: simPriv, Server: true}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if c := sim.Counts(); c.SNMP != 2 || c.Endpoints() != 2 {
		t.Fatalf("counts %+v", c)
	}
	v2 := []string{"-v2c", "-c", simCommunity, "-t", "1", "-r", "0", "-On"}
	v3 := []string{"-v3", "-l", "authPriv", "-u", simUser, "-a", "SHA-256", "-A", simAuth, "-x", "AES", "-X", simPriv, "-t", "1", "-r", "0", "-On"}
	run := func(tool string, args ...string) (string, error) {
		out, err := exec.Command(tool, args...).CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		name, tool string
		args       []string
		want       []string // substrings of the output; nil: the tool must fail
	}{
		{"v2c get", snmpget, append(v2, addrs[0], ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.3.0"), []string{`STRING: "sw-v2"`, "Timeticks:"}},
		{"v2c bulk walk of ifOperStatus", snmpbulkwalk, append(v2, addrs[0], ".1.3.6.1.2.1.2.2.1.8"),
			[]string{".1.3.6.1.2.1.2.2.1.8.1 = INTEGER: 1", ".1.3.6.1.2.1.2.2.1.8.2 = INTEGER: 1"}},
		{"v2c switch has no storage", snmpbulkwalk, append(v2, addrs[0], ".1.3.6.1.2.1.25.2.3.1.3"), []string{"No more variables left in this MIB View"}},
		{"v2c wrong community", snmpget, []string{"-v2c", "-c", "nope", "-t", "0.3", "-r", "0", addrs[0], ".1.3.6.1.2.1.1.5.0"}, nil},
		{"v3 authPriv get", snmpget, append(v3, addrs[1], ".1.3.6.1.2.1.1.5.0"), []string{`STRING: "pacs-v3"`}},
		{"v3 authPriv walk of storage", snmpbulkwalk, append(v3, addrs[1], ".1.3.6.1.2.1.25.2.3.1.3"), []string{`STRING: "/var/lib/pacs"`}},
		{"v3 wrong auth passphrase", snmpget, []string{"-v3", "-l", "authPriv", "-u", simUser, "-a", "SHA-256", "-A", "wrong-passphrase",
			"-x", "AES", "-X", simPriv, "-t", "0.3", "-r", "0", addrs[1], ".1.3.6.1.2.1.1.5.0"}, nil},
		{"v3 unknown user", snmpget, []string{"-v3", "-l", "authPriv", "-u", "intruder", "-a", "SHA-256", "-A", simAuth,
			"-x", "AES", "-X", simPriv, "-t", "0.3", "-r", "0", addrs[1], ".1.3.6.1.2.1.1.5.0"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.tool, tc.args...)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("succeeded: %s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	// Vigía's own prober reads what it needs: uptime, interfaces, storage.
	prober := probes.NewSNMPProber()
	host, port := splitAddr(t, addrs[1])
	pacs := assets.Device{ID: "pacs-v3", Kind: "pacs", SNMP: &assets.SNMPEndpoint{Host: host, Port: port, Version: "v3", User: simUser,
		AuthProtocol: "SHA256", AuthPassphrase: assets.NewSecret(simAuth), PrivProtocol: "AES", PrivPassphrase: assets.NewSecret(simPriv)}}
	host, port = splitAddr(t, addrs[0])
	sw := assets.Device{ID: "sw-v2", Kind: "network", SNMP: &assets.SNMPEndpoint{Host: host, Port: port, Version: "v2c",
		Community: assets.NewSecret(simCommunity)}}
	ctx := context.Background()
	first := prober.Probe(ctx, pacs)
	if first.Outcome != probes.OK || first.Uptime <= 0 {
		t.Fatalf("vigia's prober on the v3 PACS: %+v", first)
	}
	if r := prober.Probe(ctx, sw); r.Outcome != probes.OK {
		t.Fatalf("vigia's prober on the v2c switch: %+v", r)
	}

	if err := sim.Down("pacs-v3", Refuse); err != nil {
		t.Fatal(err)
	}
	if out, err := run(snmpget, append(v3, addrs[1], ".1.3.6.1.2.1.1.5.0")...); err == nil {
		t.Fatalf("a device down still answers: %s", out)
	}
	if r := prober.Probe(ctx, pacs); r.Outcome != probes.Failed {
		t.Fatalf("vigia's prober on the PACS down: %+v", r)
	}
	if err := sim.Up("pacs-v3"); err != nil {
		t.Fatal(err)
	}
	again := prober.Probe(ctx, pacs)
	if again.Outcome != probes.OK || again.Uptime < first.Uptime {
		t.Fatalf("back up: %+v (uptime before %s): a link outage is not a reboot", again, first.Uptime)
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// BenchmarkSNMPAnswer measures the CPU an agent spends on one request, as
// a poller sends it (a Get of sysUpTime, a GetBulk of the interface
// columns), v2c and v3 authPriv: 10 000 agents polled every 10 s take
// about 2 000 such requests a second.
//
//	go test -run '^$' -bench SNMPAnswer ./internal/fleetsim
func BenchmarkSNMPAnswer(b *testing.B) {
	cfgs := map[string]*SNMP{
		"v2c":         {Community: simCommunity},
		"v3-authPriv": {User: simUser, AuthProtocol: "SHA", AuthPassphrase: simAuth, PrivProtocol: "AES", PrivPassphrase: simPriv},
	}
	for _, name := range []string{"v2c", "v3-authPriv"} {
		agent, err := newSNMPAgent("dev", cfgs[name], Profile{}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		for _, req := range []struct {
			kind string
			pdu  gosnmp.PDUType
			oids []string
		}{
			{"get", gosnmp.GetRequest, []string{".1.3.6.1.2.1.1.3.0"}},
			{"getbulk", gosnmp.GetBulkRequest, []string{".1.3.6.1.2.1.2.2.1.2", ".1.3.6.1.2.1.2.2.1.7", ".1.3.6.1.2.1.2.2.1.8"}},
		} {
			raw := clientRequest(b, agent, name, req.pdu, req.oids)
			b.Run(name+"/"+req.kind, func(b *testing.B) {
				buf := make([]byte, len(raw))
				for b.Loop() {
					// The parser works in place (it blanks the MAC), as on
					// the agent's read buffer.
					copy(buf, raw)
					if agent.answer(buf) == nil {
						b.Fatal("no answer")
					}
				}
			})
		}
	}
}

// clientRequest is the request gosnmp sends for pdu, after engine
// discovery for v3, marshalled as it goes on the wire.
func clientRequest(b *testing.B, agent *snmpAgent, version string, pdu gosnmp.PDUType, oids []string) []byte {
	b.Helper()
	var vars []gosnmp.SnmpPDU
	for _, o := range oids {
		vars = append(vars, gosnmp.SnmpPDU{Name: o, Type: gosnmp.Null})
	}
	pkt := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: simCommunity, PDUType: pdu, RequestID: 7, Variables: vars,
		MaxRepetitions: 10, Logger: snmpLog}
	if version != "v2c" {
		usm := &gosnmp.UsmSecurityParameters{UserName: simUser, AuthoritativeEngineID: agent.engineID, AuthoritativeEngineBoots: 1,
			AuthenticationProtocol: gosnmp.SHA, AuthenticationPassphrase: simAuth, PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: simPriv,
			PrivacyParameters: []byte{0, 0, 0, 0, 0, 0, 0, 1}, Logger: snmpLog}
		if err := usm.InitSecurityKeys(); err != nil {
			b.Fatal(err)
		}
		pkt.Version, pkt.Community, pkt.MsgFlags, pkt.SecurityModel, pkt.SecurityParameters = gosnmp.Version3, "", gosnmp.AuthPriv|gosnmp.Reportable,
			gosnmp.UserSecurityModel, usm
		pkt.MsgID, pkt.ContextEngineID = 9, agent.engineID
	}
	raw, err := pkt.MarshalMsg()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
