package probes

import (
	"context"
	"maps"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// Integration tests of the SNMP prober against a real net-snmp agent
// (internal/snmptest). Deadlines are generous for a loaded 2-core machine
// but bounded, and the silent cases use short ones to stay fast.

func probeSNMP(t *testing.T, p *SNMPProber, kind string, ep assets.SNMPEndpoint, deadline time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return p.Probe(ctx, assets.Device{ID: "dev", Kind: kind, SNMP: &ep})
}

func TestSNMPProbeSnmpd(t *testing.T) {
	t.Parallel()
	agent := snmptest.Start(t)
	p := NewSNMPProber()

	wrongAuth := agent.V3()
	wrongAuth.AuthPassphrase = assets.NewSecret("not-the-passphrase")
	unknownUser := agent.V3()
	unknownUser.User = "nobody-here"
	privUserWithoutPriv := agent.V3()
	privUserWithoutPriv.PrivProtocol, privUserWithoutPriv.PrivPassphrase = "", assets.Secret{}
	wrongCommunity := agent.V2c()
	wrongCommunity.Community = assets.NewSecret("not-the-community")
	wrongPriv := agent.V3()
	wrongPriv.PrivPassphrase = assets.NewSecret("not-the-priv-passphrase")

	tests := []struct {
		name       string
		ep         assets.SNMPEndpoint
		deadline   time.Duration
		want       Outcome
		wantDetail string
	}{
		{"v2c", agent.V2c(), 10 * time.Second, OK, "sysUpTime"},
		{"v3 authPriv SHA-256 AES", agent.V3(), 10 * time.Second, OK, "sysUpTime"},
		{"v3 authNoPriv SHA", agent.V3AuthNoPriv(), 10 * time.Second, OK, "sysUpTime"},
		{"v3 noAuthNoPriv", agent.V3NoAuth(), 10 * time.Second, OK, "sysUpTime"},
		{"v3 wrong auth passphrase", wrongAuth, 10 * time.Second, Misconfigured, "usmStatsWrongDigests"},
		{"v3 unknown user", unknownUser, 10 * time.Second, Misconfigured, "usmStatsUnknownUserNames"},
		// rouser … priv: the agent's access control refuses authNoPriv.
		{"v3 security level below the user's", privUserWithoutPriv, 10 * time.Second, Misconfigured, "AuthorizationError"},
		// The protocol's nature: net-snmp drops these without a word, so
		// all the prober can see is silence.
		{"v2c wrong community is silence", wrongCommunity, 1500 * time.Millisecond, Failed, "no answer"},
		{"v3 wrong privacy passphrase is silence", wrongPriv, 1500 * time.Millisecond, Failed, "no answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := probeSNMP(t, p, "network", tt.ep, tt.deadline)
			if r.Outcome != tt.want || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Fatalf("got %s %q, want %s containing %q\nagent log:\n%s", r.Outcome, r.Detail, tt.want, tt.wantDetail, agent.Logs())
			}
			if tt.want == OK && r.Uptime <= 0 {
				t.Errorf("Uptime = %s, want > 0", r.Uptime)
			}
			if tt.want != OK && r.Uptime != 0 {
				t.Errorf("Uptime = %s on a refused probe", r.Uptime)
			}
			if elapsed := time.Since(start); elapsed > tt.deadline+time.Second {
				t.Errorf("probe took %s, deadline %s", elapsed, tt.deadline)
			}
			for _, s := range []string{"not-the-passphrase", "not-the-community", "not-the-priv-passphrase", snmptest.AuthPassphrase, snmptest.PrivPassphrase, snmptest.Community} {
				if strings.Contains(r.Detail, s) {
					t.Fatalf("detail leaks a secret: %q", r.Detail)
				}
			}
		})
	}
}

// TestSNMPProbeSnmpdTablesMatchSnmpwalk cross-checks the GetBulk table
// reader with net-snmp's snmpwalk on the same agent: the interfaces down
// and the fixed disks must be the ones snmpwalk sees.
func TestSNMPProbeSnmpdTablesMatchSnmpwalk(t *testing.T) {
	t.Parallel()
	snmpwalk := testpeer.Command(t, "snmpwalk", "snmp")
	agent := snmptest.Start(t)
	walk := func(oid string) map[string]string {
		t.Helper()
		cmd := exec.Command(snmpwalk, "-On", "-Oq", "-v2c", "-c", snmptest.Community, "-t", "5", "udp:"+agent.Addr(), oid)
		cmd.Env = append(cmd.Environ(), "MIBS=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("snmpwalk %s: %v", oid, err)
		}
		rows := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if ok && strings.HasPrefix(name, oid+".") {
				rows[strings.TrimPrefix(name, oid+".")] = strings.Trim(value, `"`)
			}
		}
		return rows
	}

	descr, admin, oper := walk(oidIfDescr), walk(oidIfAdminStatus), walk(oidIfOperStatus)
	if len(oper) == 0 {
		t.Fatal("snmpwalk sees no interfaces; the agent always has at least lo")
	}
	var wantDown []string
	indexes := slices.SortedFunc(maps.Keys(oper), compareOIDs)
	for _, idx := range indexes {
		if admin[idx] == "1" && (oper[idx] == "2" || oper[idx] == "6" || oper[idx] == "7") {
			wantDown = append(wantDown, descr[idx])
		}
	}

	typ, size, used := walk(oidHrStorageType), walk(oidHrStorageSize), walk(oidHrStorageUsed)
	fixed := 0
	maxPercent := 0.0
	for idx, ty := range typ {
		sz, _ := strconv.ParseFloat(size[idx], 64)
		us, _ := strconv.ParseFloat(used[idx], 64)
		if ty == oidHrStorageFixedDisk && sz > 0 {
			fixed++
			maxPercent = max(maxPercent, us/sz*100)
		}
	}

	p := NewSNMPProber()
	for _, kind := range []string{"pacs", "network"} {
		t.Run(kind, func(t *testing.T) {
			r := probeSNMP(t, p, kind, agent.V3(), 10*time.Second)
			if r.Outcome == Failed || r.Outcome == Misconfigured {
				t.Fatalf("got %s %q", r.Outcome, r.Detail)
			}
			if got := r.Facts["interfaces_down"]; got != strings.Join(wantDown, ",") {
				t.Errorf("interfaces_down = %q, snmpwalk says %q", got, strings.Join(wantDown, ","))
			}
			got, hasStorage := r.Facts["storage_max_percent"]
			if kind != "pacs" {
				if hasStorage {
					t.Errorf("storage read on a %s: %v", kind, r.Facts)
				}
				return
			}
			if fixed == 0 {
				if hasStorage {
					t.Errorf("storage facts without fixed disks: %v", r.Facts)
				}
				return
			}
			pct, err := strconv.ParseFloat(got, 64)
			// Disk use moves between the two readings; a point is plenty.
			if err != nil || pct < maxPercent-1 || pct > maxPercent+1 {
				t.Errorf("storage_max_percent = %q, snmpwalk says %.1f", got, maxPercent)
			}
			if n := countPrefix(r.Facts, "storage:"); n != fixed {
				t.Errorf("%d storage facts, snmpwalk sees %d fixed disks: %v", n, fixed, r.Facts)
			}
			wantDegraded := pct > defaultSNMPStorageThreshold
			if (r.Outcome == Degraded) != wantDegraded {
				t.Errorf("Outcome = %s with fullest disk at %s%%", r.Outcome, got)
			}
		})
	}
}

func countPrefix(m map[string]string, prefix string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// TestSNMPProbeSnmpdDown: a stopped agent (port unreachable) and a silent
// one (a socket that swallows requests) are Failed within the deadline.
func TestSNMPProbeSnmpdDown(t *testing.T) {
	t.Parallel()
	agent := snmptest.Start(t)
	agent.Stop()

	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	blackhole := agent.V3()
	blackhole.Port = silent.LocalAddr().(*net.UDPAddr).Port

	tests := []struct {
		name       string
		ep         assets.SNMPEndpoint
		wantDetail string
	}{
		{"stopped agent v2c", agent.V2c(), ""},
		{"stopped agent v3", agent.V3(), ""},
		{"silent agent v3", blackhole, "no answer"},
	}
	// The per-request timeout is longer than the deadline: ctx must win.
	p := NewSNMPProber()
	p.Timeout = 5 * time.Second
	const deadline = 800 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := probeSNMP(t, p, "pacs", tt.ep, deadline)
			elapsed := time.Since(start)
			if r.Outcome != Failed || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Fatalf("got %s %q, want failed containing %q", r.Outcome, r.Detail, tt.wantDetail)
			}
			if elapsed > deadline+time.Second {
				t.Fatalf("probe took %s, deadline %s", elapsed, deadline)
			}
		})
	}
}

// TestSNMPProbeSnmpdRestart: after the agent restarts, the probe reads a
// lower sysUpTime (what the state machine calls a reboot), and v3 still
// works although the agent's engineBoots changed.
func TestSNMPProbeSnmpdRestart(t *testing.T) {
	t.Parallel()
	agent := snmptest.Start(t)
	p := NewSNMPProber()

	for _, ep := range []struct {
		name string
		ep   assets.SNMPEndpoint
	}{{"v2c", agent.V2c()}, {"v3", agent.V3()}} {
		if r := probeSNMP(t, p, "pacs", ep.ep, 10*time.Second); r.Outcome == Failed || r.Outcome == Misconfigured {
			t.Fatalf("%s before restart: %s %q", ep.name, r.Outcome, r.Detail)
		}
	}
	// Let the uptime grow well past what a restart takes on a loaded
	// machine, so "lower" is not a coincidence of timing.
	const grown = 3 * time.Second
	if u := agent.Uptime(); u < grown {
		time.Sleep(grown - u)
	}
	before := probeSNMP(t, p, "pacs", agent.V3(), 10*time.Second)

	agent.Restart()

	after := probeSNMP(t, p, "pacs", agent.V3(), 10*time.Second)
	if after.Outcome == Failed || after.Outcome == Misconfigured {
		t.Fatalf("v3 after restart: %s %q\nagent log:\n%s", after.Outcome, after.Detail, agent.Logs())
	}
	if before.Uptime < grown || after.Uptime >= before.Uptime {
		t.Fatalf("uptime before restart %s, after %s: want after < before", before.Uptime, after.Uptime)
	}
}

// TestSNMPProbeSnmpdConcurrent runs many probes at once through one prober,
// v2c and v3 mixed, under the race detector: no shared client state.
func TestSNMPProbeSnmpdConcurrent(t *testing.T) {
	t.Parallel()
	agent := snmptest.Start(t)
	p := NewSNMPProber()
	eps := []assets.SNMPEndpoint{agent.V2c(), agent.V3(), agent.V3AuthNoPriv(), agent.V3NoAuth()}

	var wg sync.WaitGroup
	results := make([]Result, 16)
	for i := range results {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			ep := eps[i%len(eps)]
			results[i] = p.Probe(ctx, assets.Device{ID: "d" + strconv.Itoa(i), Kind: "pacs", SNMP: &ep})
		})
	}
	wg.Wait()
	uptime := regexp.MustCompile(`^sysUpTime \S+`)
	for i, r := range results {
		if r.Outcome == Failed || r.Outcome == Misconfigured || r.Uptime <= 0 || !uptime.MatchString(r.Detail) {
			t.Errorf("probe %d: %s uptime %s %q", i, r.Outcome, r.Uptime, r.Detail)
		}
	}
}

// countingConn counts the datagrams a client sends.
type countingConn struct {
	net.Conn
	sent *int
}

func (c countingConn) Write(b []byte) (int, error) { *c.sent++; return c.Conn.Write(b) }

// An SNMPv3 poll hands the engine it discovered to the device's next
// poll, which then skips discovery; an engine that no longer matches (the
// agent was replaced) is discovered afresh within the same poll.
func TestSNMPv3RemembersTheAgentEngine(t *testing.T) {
	t.Parallel()
	agent := snmptest.Start(t)
	var sent int
	p := NewSNMPProber()
	p.dial = func(ctx context.Context, g *gosnmp.GoSNMP) (snmpSession, error) {
		s, err := gosnmpDial(ctx, g)
		if err == nil {
			c := s.(*gosnmpSession).c.g
			c.Conn = countingConn{Conn: c.Conn, sent: &sent}
		}
		return s, err
	}
	ep := agent.V3()
	poll := func() int {
		t.Helper()
		sent = 0
		r := probeSNMP(t, p, "network", ep, 10*time.Second)
		if r.Outcome != OK {
			t.Fatalf("poll: %s %q\nagent log:\n%s", r.Outcome, r.Detail, agent.Logs())
		}
		return sent
	}
	first, second := poll(), poll()
	if second != first-1 {
		t.Fatalf("datagrams sent: first poll %d, second %d; want the second to skip the discovery request", first, second)
	}

	// The agent behind the address is now another engine.
	v, ok := p.engines.m.Load("dev")
	if !ok {
		t.Fatal("no engine remembered after an answered poll")
	}
	known := v.(*snmpEngine)
	realID := known.usm.AuthoritativeEngineID
	known.usm.AuthoritativeEngineID = "\x80\x00\x1f\x88\x04not-this-agent"
	if n := poll(); n <= second {
		t.Fatalf("datagrams sent with a stale engine: %d, want a refused try and a fresh discovery (> %d)", n, second)
	}
	v, _ = p.engines.m.Load("dev")
	if got := v.(*snmpEngine).usm.AuthoritativeEngineID; got != realID {
		t.Fatalf("remembered engine after rediscovery = %x, want the agent's %x", got, realID)
	}

	// Changed credentials in the inventory never reuse the old keys.
	other := agent.V3AuthNoPriv()
	if known := p.engines.take("dev", &other); known != nil {
		t.Fatal("an engine learnt with other credentials was handed out")
	}
}

// Recycled clients carry nothing from one device to the next: polls in a
// row with other credentials get each their own answer (or silence).
func TestSNMPRecycledClientsForgetTheLastDevice(t *testing.T) {
	agent := snmptest.Start(t)
	p := NewSNMPProber()
	wrongCommunity := agent.V2c()
	wrongCommunity.Community = assets.NewSecret("not-the-community")
	wrongAuth := agent.V3()
	wrongAuth.AuthPassphrase = assets.NewSecret("not-the-passphrase")
	for i, c := range []struct {
		id   string
		ep   assets.SNMPEndpoint
		want Outcome
	}{
		{"a", agent.V2c(), OK}, {"b", wrongCommunity, Failed}, {"a", agent.V2c(), OK},
		{"c", agent.V3(), OK}, {"d", wrongAuth, Misconfigured}, {"c", agent.V3(), OK},
		{"e", agent.V3NoAuth(), OK}, {"b", wrongCommunity, Failed}, {"c", agent.V3(), OK},
	} {
		deadline := 10 * time.Second
		if c.want == Failed {
			deadline = 1500 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		r := p.Probe(ctx, assets.Device{ID: c.id, Kind: "network", SNMP: &c.ep})
		cancel()
		if r.Outcome != c.want {
			t.Fatalf("poll %d of %s: %s %q, want %s", i, c.id, r.Outcome, r.Detail, c.want)
		}
	}
	// A recycled socket, connected anew, still hears that no agent listens.
	agent.Stop()
	ep := agent.V2c()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r := p.Probe(ctx, assets.Device{ID: "a", Kind: "network", SNMP: &ep}); r.Outcome != Failed || !strings.Contains(r.Detail, "port unreachable") {
		t.Fatalf("poll of a stopped agent: %s %q, want Failed: port unreachable", r.Outcome, r.Detail)
	}
}
