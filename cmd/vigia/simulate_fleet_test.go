package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/fleetsim"
)

var fleetControl = regexp.MustCompile(`control on http://(\S+)`)

// fleetStart runs `vigia simulate fleet ARGS` in-process until the test
// cancels it, and returns the control API's base URL, a stop function
// that cancels it as SIGINT would and returns the exit code, and its
// stdout and stderr.
func fleetStart(t *testing.T, args ...string) (api string, stop func() int, stdout, stderr *simBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &simBuffer{}, &simBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, append([]string{"simulate", "fleet", "--control", "127.0.0.1:0"}, args...), stdout, stderr)
	}()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-exited:
			case <-time.After(10 * time.Second):
				t.Error("fleet still running 10s after cancellation")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := fleetControl.FindStringSubmatch(stdout.String()); m != nil {
			return "http://" + m[1], stop, stdout, stderr
		}
		select {
		case code := <-exited:
			t.Fatalf("fleet exited with %d before serving: %s", code, stderr.String())
		default:
		}
	}
	t.Fatalf("fleet not serving after 10s: %q %q", stdout.String(), stderr.String())
	return
}

// fleetFreeBlock finds n consecutive free loopback ports below the
// ephemeral range, where other tests' port 0 listeners cannot land.
func fleetFreeBlock(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 12000 + rand.IntN(20000-n)
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return base
		}
	}
	t.Fatalf("no block of %d free ports", n)
	return 0
}

func fleetDevices(t *testing.T, api string) map[string]fleetsim.Status {
	t.Helper()
	resp, err := http.Get(api + "/devices")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []fleetsim.Status
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	m := map[string]fleetsim.Status{}
	for _, d := range list {
		m[d.ID] = d
	}
	return m
}

func fleetEcho(port int, ae string) error {
	_, err := dicomping.Echo(context.Background(), "127.0.0.1:"+strconv.Itoa(port), dicomping.Options{CalledAETitle: ae, Timeout: 2 * time.Second})
	return err
}

func TestFleetGenerated(t *testing.T) {
	t.Parallel()
	const n = 12
	base := fleetFreeBlock(t, n)
	inv := filepath.Join(t.TempDir(), "fleet.yaml")
	api, stop, stdout, stderr := fleetStart(t, "--devices", strconv.Itoa(n), "--base-port", strconv.Itoa(base), "--sites", "3",
		"--customer", "demo", "--write-inventory", inv, "--outage", "demo-gw-04@100ms+200ms")
	for _, want := range []string{"serving 12 endpoints (9 DICOM, 3 TCP, 0 SNMP) of 12 devices on 3 sites", "inventory written to " + inv, "outage scheduled: demo-gw-04 down in 100ms for 200ms"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("stdout %q lacks %q", stdout.String(), want)
		}
	}

	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := assets.ParseFile(inv, data, parseOptions())
	if err != nil {
		t.Fatalf("written inventory: %v", err)
	}
	devices := fleetDevices(t, api)
	inInventory := 0
	for _, s := range f.Customers[0].Sites {
		for _, d := range s.Devices {
			inInventory++
			st, ok := devices[d.ID]
			switch {
			case !ok:
				t.Fatalf("%s is in the inventory but not served", d.ID)
			case d.DICOM != nil && (st.Port != d.DICOM.Port || st.AETitle != d.DICOM.CalledAE):
				t.Fatalf("%s: served %d %s, inventory %d %s", d.ID, st.Port, st.AETitle, d.DICOM.Port, d.DICOM.CalledAE)
			case d.DICOM != nil:
				if err := fleetEcho(d.DICOM.Port, d.DICOM.CalledAE); err != nil {
					t.Fatalf("%s: %v", d.ID, err)
				}
			case d.TCP != nil && st.Port != d.TCP.Port:
				t.Fatalf("%s: served %d, inventory %d", d.ID, st.Port, d.TCP.Port)
			}
		}
	}
	if inInventory != n || len(devices) != n {
		t.Fatalf("%d devices in the inventory, %d served; want %d", inInventory, len(devices), n)
	}

	// The scheduled outage takes the second site's gateway down and back.
	gw := devices["demo-gw-04"]
	for _, want := range []string{"scheduled outage: device down", "scheduled outage over: device up"} {
		deadline := time.Now().Add(3 * time.Second)
		for !strings.Contains(stderr.String(), want) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("no %q line: %s", want, stderr.String())
		}
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(gw.Port), time.Second); err != nil {
		t.Fatalf("gateway after its outage: %v", err)
	} else {
		c.Close()
	}

	// The control API reaches the served devices.
	pacs := devices["demo-pacs-01"]
	resp, err := http.Post(api+"/devices/demo-pacs-01/down", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST down: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := fleetEcho(pacs.Port, pacs.AETitle); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("echo a down PACS: %v, want connection refused", err)
	}

	if code := stop(); code != 0 {
		t.Fatalf("exit %d after SIGINT, want 0: %s", code, stderr.String())
	}
	for port := base; port < base+n; port++ {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			t.Fatalf("port %d still served after SIGINT", port)
		}
	}
}

func TestFleetFromInventory(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var beats []string
	vigia := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		beats = append(beats, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer vigia.Close()
	port := fleetFreeBlock(t, 2)
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	err := os.WriteFile(inv, []byte(fmt.Sprintf(`customers:
  - id: clinic
    name: Clínica
    country: PE
    time_zone: America/Lima
    sites:
      - id: lima
        name: Lima
        kind: hospital
        devices:
          - {id: pacs, name: PACS, kind: pacs, dicom: {host: 127.0.0.1, port: %d, called_ae: LIMA_PACS}}
          - {id: ris, name: RIS, kind: ris, tcp: {host: 127.0.0.1, port: %d}, heartbeat: {grace: 150ms, token: ris-heartbeat-token-0001}}
          - {id: far, name: Lejano, kind: modality, modality: CT, dicom: {host: 192.0.2.10, port: 104, called_ae: FAR}}
`, port, port+1)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	api, stop, stdout, stderr := fleetStart(t, "--from", inv, "--vigia", vigia.URL)
	if want := "serving 2 endpoints (1 DICOM, 1 TCP, 0 SNMP) of 2 devices on 1 sites; 1 devices post heartbeats to " + vigia.URL; !strings.Contains(stdout.String(), want) {
		t.Fatalf("stdout %q lacks %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "far dicom 192.0.2.10:104") {
		t.Fatalf("the non-loopback endpoint is not reported as skipped: %s", stderr.String())
	}
	if err := fleetEcho(port, "LIMA_PACS"); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(beats)
	}
	deadline := time.Now().Add(3 * time.Second)
	for count() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	got := append([]string(nil), beats...)
	mu.Unlock()
	if len(got) < 3 || got[0] != "POST /api/v1/heartbeats/ris Bearer ris-heartbeat-token-0001" {
		t.Fatalf("heartbeats %q, want POSTs with the device's token every 50ms", got)
	}
	if strings.Contains(stderr.String(), "ris-heartbeat-token") || strings.Contains(stdout.String(), "ris-heartbeat-token") {
		t.Fatal("the heartbeat token was printed")
	}
	resp, err := http.Post(api+"/sites/lima/down", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST site down: %v %v", resp, err)
	}
	resp.Body.Close()
	time.Sleep(60 * time.Millisecond) // a heartbeat may have been on its way
	before := count()
	time.Sleep(200 * time.Millisecond)
	if after := count(); after != before {
		t.Fatalf("%d heartbeats while the site is down", after-before)
	}
	if code := stop(); code != 0 {
		t.Fatalf("exit %d, want 0: %s", code, stderr.String())
	}
}

func TestFleetUsage(t *testing.T) {
	t.Parallel()
	// Below the ephemeral ports, which are refused before any is tried.
	takenPort := strconv.Itoa(fleetFreeBlock(t, 2))
	taken, err := net.Listen("tcp", "127.0.0.1:"+takenPort)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	lo, hi, err := fleetsim.EphemeralPorts()
	if err != nil {
		t.Fatalf("this test wants Linux's ephemeral port range: %v", err)
	}
	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("customers:\n  - id: x\n    colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctl := "--control=127.0.0.1:0"
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"listed among kinds", []string{"simulate", "--help"}, 0, "fleet      a fleet of devices", ""},
		{"help", []string{"simulate", "fleet", "--help"}, 0, "Usage: vigia simulate fleet", ""},
		{"help warns of ephemeral ports", []string{"simulate", "fleet", "--help"}, 0, "outside\n                              the kernel's ephemeral ports", ""},
		{"range inside the ephemeral ports", []string{"simulate", "fleet", "--devices", "3", "--base-port", strconv.Itoa(lo + 10), ctl}, 2, "",
			fmt.Sprintf("overlap the kernel's ephemeral ports %d to %d", lo, hi)},
		{"range ending in the ephemeral ports", []string{"simulate", "fleet", "--devices", "20", "--base-port", strconv.Itoa(lo - 10), ctl}, 2, "",
			fmt.Sprintf("ports %d to %d overlap", lo-10, lo+9)},
		{"neither", []string{"simulate", "fleet", ctl}, 2, "", "want either --devices N or --from FILE"},
		{"both", []string{"simulate", "fleet", "--devices", "3", "--from", "x.yaml"}, 2, "", "want either"},
		{"write with from", []string{"simulate", "fleet", "--from", "x.yaml", "--write-inventory", "y.yaml"}, 2, "", "--write-inventory is for a generated fleet"},
		{"control not loopback", []string{"simulate", "fleet", "--devices", "3", "--control", "0.0.0.0:8099"}, 2, "", "want a loopback host:port"},
		{"too few devices", []string{"simulate", "fleet", "--devices", "1", ctl}, 2, "", "at least 2 devices"},
		{"bad outage", []string{"simulate", "fleet", "--devices", "3", "--outage", "pacs@soon+5m"}, 2, "", `AFTER "soon"`},
		{"unknown outage device", []string{"simulate", "fleet", "--devices", "3", "--base-port", "21000", ctl, "--outage", "pacs@1s+5m"}, 2, "", `no simulated device "pacs"`},
		{"missing file", []string{"simulate", "fleet", "--from", "/nonexistent/inventory.yaml", ctl}, 1, "", "no such file"},
		{"invalid inventory", []string{"simulate", "fleet", "--from", invalid, ctl}, 1, "", "3: colour: unknown key"},
		{"port taken", []string{"simulate", "fleet", "--devices", "2", "--base-port", takenPort, ctl}, 1, "", "address already in use"},
		{"unknown profile", []string{"simulate", "fleet", "--devices", "3", "--profiles", "lan:50,moon:50", ctl}, 2, "", `--profiles: unknown profile "moon"`},
		{"shares over 100", []string{"simulate", "fleet", "--devices", "3", "--device-profiles", "slow-pacs:120", ctl}, 2, "", "--device-profiles: profile share"},
		{"bad loss", []string{"simulate", "fleet", "--devices", "3", "--loss", "100%", ctl}, 2, "", "--loss: loss"},
		{"unknown serve kind", []string{"simulate", "fleet", "--devices", "3", "--serve", "dicom,icmp", ctl}, 2, "", `--serve: unknown endpoint kind "icmp"`},
		{"snmp with from", []string{"simulate", "fleet", "--from", "x.yaml", "--snmp", "3", ctl}, 2, "", "--snmp and --heartbeats are for a generated fleet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := echoRun(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.wantCode, stdout, tt.wantOut, stderr, tt.wantErr)
			}
		})
	}
}

// A mixed generated fleet behind a WAN, its DICOM nodes and SNMP agents
// slow PACS: the counts and profiles are reported, a C-ECHO takes three
// slow exchanges, and the heartbeats still arrive.
func TestFleetMixedWithProfiles(t *testing.T) {
	t.Parallel()
	var beats sync.Map
	vigia := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		beats.Store(r.URL.Path, true)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(vigia.Close)
	base := fleetFreeBlock(t, 14)
	// Another simulator serves the same fleet's SNMP agents only.
	_, _, snmpOnly, _ := fleetStart(t, "--devices", "10", "--snmp", "4", "--sites", "2", "--base-port", strconv.Itoa(fleetFreeBlock(t, 14)),
		"--serve", "snmp")
	if !strings.Contains(snmpOnly.String(), "serving 4 endpoints (0 DICOM, 0 TCP, 4 SNMP) of 4 devices") {
		t.Fatalf("--serve snmp: %s", snmpOnly.String())
	}
	// A range of its own: fleetsim's tests may hold another meanwhile.
	const delayRange = "198.19.252.0/24"
	api, _, stdout, stderr := fleetStart(t, "--devices", "10", "--snmp", "4", "--heartbeats", "2", "--heartbeat-every", "200ms",
		"--sites", "2", "--base-port", strconv.Itoa(base), "--vigia", vigia.URL,
		"--profiles", "wan:100", "--device-profiles", "slow-pacs:100", "--loss", "0.1%", "--delay-line", delayRange)
	for _, want := range []string{"serving 14 endpoints (8 DICOM, 2 TCP, 4 SNMP) of 16 devices on 2 sites",
		"2 devices post heartbeats", "profiles: wan 4, wan+slow-pacs 12 (loss 0.1% on every exchange)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Fatalf("stdout %q lacks %q", stdout.String(), want)
		}
	}
	devices := fleetDevices(t, api)
	pacs := devices["sim-pacs-01"]
	if pacs.Profile != "wan+slow-pacs (loss 0.1%)" || devices["sim-network-10"].SNMPPort != base+10 {
		t.Fatalf("PACS %+v, switch %+v", pacs, devices["sim-network-10"])
	}
	// As root the devices that listen are behind the delay line, at their
	// own addresses; else the simulator says once why they are not.
	if os.Geteuid() == 0 {
		if !strings.Contains(stdout.String(), "14 devices behind the delay line "+delayRange) ||
			!netip.MustParsePrefix(delayRange).Contains(netip.MustParseAddr(pacs.Host)) {
			t.Fatalf("as root: stdout %q, PACS at %q", stdout.String(), pacs.Host)
		}
	} else if n := strings.Count(stderr.String(), "delay line unavailable"); n != 1 || pacs.Host != "127.0.0.1" {
		t.Fatalf("not root: %d warnings, PACS at %q; stderr %q", n, pacs.Host, stderr.String())
	}
	start := time.Now()
	if _, err := dicomping.Echo(context.Background(), net.JoinHostPort(pacs.Host, strconv.Itoa(pacs.Port)),
		dicomping.Options{CalledAETitle: pacs.AETitle, Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// Three exchanges of at least 20 ms of WAN and 40 ms of PACS each
	// (four round trips and three steps behind the delay line).
	if took := time.Since(start); took < 180*time.Millisecond {
		t.Fatalf("echo over a WAN to a slow PACS took %s, want at least 180 ms", took)
	}
	deadline := time.Now().Add(5 * time.Second)
	for n := 0; n < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n = 0
		beats.Range(func(any, any) bool { n++; return true })
	}
	for _, id := range []string{"sim-hb-14", "sim-hb-15"} {
		if _, ok := beats.Load("/api/v1/heartbeats/" + id); !ok {
			t.Errorf("no heartbeat from %s", id)
		}
	}
}
