package fleetsim

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// parseOptions knows the SLA policies Vigía ships, as `vigia import` does.
var parseOptions = assets.ParseOptions{KnownPolicy: func(name string) bool {
	_, err := sla.Presets().Lookup(name)
	return err == nil
}}

func TestGenerate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      GenerateOptions
		wantSites int
		serve     bool // also serve it and echo every device
	}{
		{"smallest", GenerateOptions{Devices: 2}, 1, true},
		{"default sites", GenerateOptions{Devices: 45, ProbeInterval: 10 * time.Second, ProbeRetries: 2}, 2, true},
		{"many sites", GenerateOptions{Devices: 101, Sites: 7, Customer: "acme"}, 7, true},
		{"one per site pair", GenerateOptions{Devices: 10, Sites: 5}, 5, false},
		{"wide ids", GenerateOptions{Devices: 1500, BasePort: 40000, Sites: 75}, 75, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := tt.opts
			if o.BasePort == 0 {
				o.BasePort = freeBlock(t, o.Devices)
			}
			data, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			f, err := assets.ParseFile("fleet.yaml", data, parseOptions)
			if err != nil {
				t.Fatalf("generated inventory does not parse: %v", err)
			}
			customer := cmp(o.Customer, "sim")
			if len(f.Customers) != 1 || f.Customers[0].ID != customer {
				t.Fatalf("customers %+v, want one, %s", f.Customers, customer)
			}
			c := f.Customers[0]
			if len(c.Sites) != tt.wantSites {
				t.Fatalf("%d sites, want %d", len(c.Sites), tt.wantSites)
			}
			ports := map[int]string{}
			aes := map[string]bool{}
			var cores []string
			for _, s := range c.Sites {
				if len(s.Devices) < 2 || s.Gateway != s.Devices[0].ID || s.Devices[0].Kind != "network" || s.Devices[0].TCP == nil {
					t.Fatalf("site %s: gateway %q, devices %d; want its first device, a network device with tcp, and one behind it", s.ID, s.Gateway, len(s.Devices))
				}
				for _, d := range s.Devices {
					if d.Role == "core" {
						cores = append(cores, d.ID)
					}
					port := 0
					switch {
					case d.DICOM != nil && d.TCP == nil:
						port = d.DICOM.Port
						if aes[d.DICOM.CalledAE] {
							t.Fatalf("AE title %s twice", d.DICOM.CalledAE)
						}
						aes[d.DICOM.CalledAE] = true
					case d.TCP != nil && d.DICOM == nil && d.Kind == "network":
						port = d.TCP.Port
					default:
						t.Fatalf("device %s: dicom %v, tcp %v", d.ID, d.DICOM, d.TCP)
					}
					if other, dup := ports[port]; dup {
						t.Fatalf("port %d for %s and %s", port, other, d.ID)
					}
					ports[port] = d.ID
					if !strings.HasSuffix(d.ID, fmt.Sprintf("%0*d", len(strconv.Itoa(o.Devices-1)), port-o.BasePort)) {
						t.Fatalf("device %s on port %d: id does not name its port offset", d.ID, port)
					}
					if o.ProbeInterval > 0 && (d.Probe == nil || d.Probe.Interval.Duration != o.ProbeInterval || *d.Probe.Retries != o.ProbeRetries) {
						t.Fatalf("device %s: probe %+v, want %s/%d", d.ID, d.Probe, o.ProbeInterval, o.ProbeRetries)
					}
				}
			}
			if len(ports) != o.Devices || !has(ports, o.BasePort) || !has(ports, o.BasePort+o.Devices-1) {
				t.Fatalf("%d ports, want %d from %d", len(ports), o.Devices, o.BasePort)
			}
			if len(cores) != 1 || cores[0] != c.Sites[0].Devices[1].ID || c.Sites[0].Devices[1].Kind != "pacs" {
				t.Fatalf("core devices %v, want the first device behind the first gateway, a PACS", cores)
			}
			if len(c.Contracts) != 1 {
				t.Fatalf("%d contracts, want 1", len(c.Contracts))
			}
			k := c.Contracts[0]
			if k.SLAPolicy != "imaging-8x5" || !k.Devices.All || k.Start.After(date(2026, 1, 1)) || k.End.Before(date(2027, 12, 31)) || k.Activated == nil {
				t.Fatalf("contract %+v: want imaging-8x5, all devices, activated, covering 2026-2027", k)
			}

			plan := FromInventory(f)
			if len(plan.Devices) != o.Devices || len(plan.Skipped) != 0 {
				t.Fatalf("plan: %d devices, skipped %v; want %d, none", len(plan.Devices), plan.Skipped, o.Devices)
			}
			if !tt.serve {
				return
			}
			s := start(t, plan.Devices, Options{})
			for _, st := range s.Devices() {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(st.Port))
				if ports[st.Port] != st.ID {
					t.Fatalf("%s served on %d, inventory says %s", st.ID, st.Port, ports[st.Port])
				}
				if st.AETitle == "" {
					if err := dial(addr); err != nil {
						t.Fatalf("gateway %s: %v", st.ID, err)
					}
					continue
				}
				if err := echo(addr, st.AETitle, 2*time.Second); err != nil {
					t.Fatalf("%s: %v", st.ID, err)
				}
			}
		})
	}
}

func TestGenerateRejects(t *testing.T) {
	tests := []struct {
		name string
		opts GenerateOptions
		want string
	}{
		{"one device", GenerateOptions{Devices: 1, BasePort: 11112}, "at least 2 devices"},
		{"too many sites", GenerateOptions{Devices: 9, Sites: 5, BasePort: 11112}, "5 sites need at least 10 devices"},
		{"ports overflow", GenerateOptions{Devices: 10, BasePort: 65530}, "ports 65530 to 65539"},
		{"no port", GenerateOptions{Devices: 10}, "ports 0 to 9"},
		{"bad customer", GenerateOptions{Devices: 10, BasePort: 11112, Customer: "Acme"}, `"Acme" is not a valid customer id`},
		{"fast probe", GenerateOptions{Devices: 10, BasePort: 11112, ProbeInterval: time.Millisecond}, "under 1s"},
		{"retries", GenerateOptions{Devices: 10, BasePort: 11112, ProbeInterval: time.Second, ProbeRetries: 11}, "retries 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Generate: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestFromInventoryExample pins what `make run` serves for the example
// network.
func TestFromInventoryExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := assets.ParseFile("inventory.yaml", data, parseOptions)
	if err != nil {
		t.Fatal(err)
	}
	plan := FromInventory(f)
	var got []string
	for _, d := range plan.Devices {
		line := d.Site + "/" + d.ID
		if d.Gateway {
			line += " gateway"
		}
		if d.DICOM != nil {
			line += " dicom " + d.DICOM.Addr + " " + d.DICOM.AETitle
		}
		if d.TCP != "" {
			line += " tcp " + d.TCP
		}
		if d.Heartbeat != nil {
			line += " heartbeat every " + d.Heartbeat.Every.String()
		}
		got = append(got, line)
	}
	want := []string{
		"hsr-central/hsr-pacs dicom 127.0.0.1:11112 HSR_PACS",
		"hsr-central/hsr-ris tcp 127.0.0.1:11113 heartbeat every 40s",
		"hsr-central/hsr-worklist dicom 127.0.0.1:11114 HSR_MWL",
		"hsr-central/hsr-ct1 dicom 127.0.0.1:11115 HSR_CT1",
		"hsr-central/hsr-mr1 dicom 127.0.0.1:11116 HSR_MR1",
		"hsr-central/hsr-cr1 dicom 127.0.0.1:11117 HSR_CR1",
		"hsr-central/hsr-dx1 dicom 127.0.0.1:11118 HSR_DX1",
		"hsr-central/hsr-mg1 dicom 127.0.0.1:11119 HSR_MG1",
		"hsr-central/hsr-us-old dicom 127.0.0.1:11120 HSR_US0",
		"hsr-central/hsr-monitor-uci tcp 127.0.0.1:11121",
		"hsr-norte/hsr-norte-gw gateway tcp 127.0.0.1:11122",
		"hsr-norte/hsr-norte-ct dicom 127.0.0.1:11123 NORTE_CT",
		"hsr-norte/hsr-norte-us dicom 127.0.0.1:11124 NORTE_US",
		"hsr-norte/hsr-norte-dx dicom 127.0.0.1:11125 NORTE_DX",
		"hsr-chia/hsr-chia-nm dicom 127.0.0.1:11126 CHIA_NM",
		"cmf-lima/cmf-pacs dicom 127.0.0.1:11130 CMF_PACS",
		"cmf-lima/cmf-ct dicom 127.0.0.1:11131 CMF_CT",
		"cmf-lima/cmf-mr dicom 127.0.0.1:11132 CMF_MR",
	}
	if !slices.Equal(got, want) || len(plan.Skipped) != 0 {
		t.Fatalf("plan:\n%s\nskipped %v\nwant:\n%s", strings.Join(got, "\n"), plan.Skipped, strings.Join(want, "\n"))
	}
	s, err := New(plan.Devices, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Counts(); c != (Counts{Devices: 18, Sites: 4, DICOM: 15, TCP: 3, Heartbeats: 1}) {
		t.Fatalf("counts %+v", c)
	}
}

// TestFromInventoryServes runs a small inventory on free ports, with
// endpoints the simulator must leave alone.
func TestFromInventoryServes(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 4)
	ports := make([]string, len(addrs))
	for i, a := range addrs {
		_, ports[i], _ = net.SplitHostPort(a)
	}
	inv := fmt.Sprintf(`customers:
  - id: clinic
    name: Clínica de prueba
    country: CO
    time_zone: America/Bogota
    sites:
      - id: main
        name: Sede principal
        kind: hospital
        gateway: main-gw
        devices:
          - {id: main-gw, name: Router, kind: network, tcp: {host: 127.0.0.1, port: %s}}
          - {id: pacs, name: PACS, kind: pacs, role: core, dicom: {host: 127.0.0.1, port: %s, called_ae: "PACS MAIN"}}
          - {id: ct, name: CT, kind: modality, modality: CT, dicom: {host: localhost, port: %s, called_ae: CT_1}, tcp: {host: localhost, port: %s}}
          - {id: remote, name: Remoto, kind: modality, modality: MR, dicom: {host: 10.20.30.40, port: 104, called_ae: MR}}
          - {id: agent, name: Agente, kind: ris, heartbeat: {grace: 3m, token: agent-token-0123456789}}
          - {id: printer, name: Impresora, kind: biomedical}
`, ports[0], ports[1], ports[2], ports[3])
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(inv), 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	f, err := assets.ParseFile(path, data, parseOptions)
	if err != nil {
		t.Fatal(err)
	}
	plan := FromInventory(f)
	if want := []string{"remote dicom 10.20.30.40:104"}; !slices.Equal(plan.Skipped, want) {
		t.Fatalf("skipped %v, want %v", plan.Skipped, want)
	}
	// The heartbeat goes nowhere here; TestHeartbeats covers it.
	s := start(t, plan.Devices, Options{VigiaURL: "http://127.0.0.1:1"})
	if c := s.Counts(); c != (Counts{Devices: 4, Sites: 1, DICOM: 2, TCP: 2, Heartbeats: 1}) {
		t.Fatalf("counts %+v", c)
	}
	tests := []struct {
		name  string
		addr  string
		ae    string
		class dicomping.Class
	}{
		{"called AE with a space, exactly", addrs[1], "PACS MAIN", dicomping.ClassOK},
		{"another AE is rejected", addrs[1], "PACS", dicomping.ClassMisconfigured},
		{"localhost device", "localhost:" + ports[2], "CT_1", dicomping.ClassOK},
		{"same port, other AE", "127.0.0.1:" + ports[2], "OTHER", dicomping.ClassMisconfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dicomping.Classify(echo(tt.addr, tt.ae, 2*time.Second)); got != tt.class {
				t.Fatalf("echo %s %s: %s, want %s", tt.addr, tt.ae, got, tt.class)
			}
		})
	}
	for _, a := range []string{addrs[0], "localhost:" + ports[3]} {
		if err := dial(a); err != nil {
			t.Fatalf("tcp %s: %v", a, err)
		}
	}
	if err := s.SiteDown("main", Refuse); err != nil {
		t.Fatal(err)
	}
	if err := dial(addrs[0]); !errors.Is(err, errRefused) {
		t.Fatalf("gateway of a site down: %v, want refused", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"10.0.0.1": false, "0.0.0.0": false, "pacs.example.org": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %t, want %t", host, got, want)
		}
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func has(m map[int]string, k int) bool { _, ok := m[k]; return ok }

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// A mixed fleet: DICOM devices, SNMP agents (v2c and v3 alternating, every
// tenth a server) and heartbeat senders, all over the sites, imported and
// planned back as the simulator serves them.
func TestGenerateMixedFleet(t *testing.T) {
	data, err := Generate(GenerateOptions{Devices: 40, BasePort: 21000, Sites: 4, SNMPDevices: 20, HeartbeatDevices: 8,
		HeartbeatEvery: 10 * time.Second, ProbeInterval: 10 * time.Second, ProbeRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, err := assets.ParseFile("fleet.yaml", data, parseOptions)
	if err != nil {
		t.Fatal(err)
	}
	plan := FromInventory(f)
	var dicom, v2, v3, servers, hb int
	sites := map[string]int{}
	for _, d := range plan.Devices {
		if d.DICOM != nil {
			dicom++
		}
		if x := d.SNMP; x != nil {
			sites[d.Site]++
			switch {
			case x.User == SimSNMPUser && x.AuthPassphrase == SimAuthPassphrase && x.PrivProtocol == "AES":
				v3++
			case x.Community == SimCommunity:
				v2++
			default:
				t.Fatalf("SNMP agent %s: %+v", d.ID, x)
			}
			if x.Server {
				servers++
			}
			if _, p := splitAddr(t, x.Addr); p < 21040 || p >= 21060 {
				t.Errorf("SNMP agent %s on port %d, want 21040 to 21059", d.ID, p)
			}
		}
		if d.Heartbeat != nil {
			hb++
			if d.Heartbeat.Every != 10*time.Second {
				t.Errorf("%s beats every %s", d.ID, d.Heartbeat.Every)
			}
		}
	}
	if dicom != 36 || v2 != 10 || v3 != 10 || servers != 2 || hb != 8 || len(sites) != 4 {
		t.Fatalf("DICOM %d, SNMP v2c %d v3 %d (servers %d), heartbeats %d, SNMP on %d sites", dicom, v2, v3, servers, hb, len(sites))
	}
	if _, err := Generate(GenerateOptions{Devices: 40, BasePort: 65500, SNMPDevices: 100}); err == nil {
		t.Fatal("SNMP ports past 65535 accepted")
	}
}

func TestOnly(t *testing.T) {
	fleet := []Device{
		{ID: "pacs", DICOM: &DICOM{Addr: "127.0.0.1:1", AETitle: "PACS"}, TCP: "127.0.0.1:1"},
		{ID: "gw", TCP: "127.0.0.1:2"},
		{ID: "sw", SNMP: &SNMP{Addr: "127.0.0.1:3", Community: "c"}},
		{ID: "monitor", Heartbeat: &Heartbeat{Every: time.Second}},
	}
	for _, tc := range []struct {
		kinds []string
		want  string
	}{
		{[]string{"dicom", "tcp"}, "pacs gw"},
		{[]string{"snmp", "heartbeat"}, "sw monitor"},
		{[]string{"tcp"}, "pacs gw"},
		{[]string{"dicom"}, "pacs"},
	} {
		t.Run(strings.Join(tc.kinds, ","), func(t *testing.T) {
			got, err := Only(fleet, tc.kinds)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			if strings.Join(ids, " ") != tc.want {
				t.Fatalf("%v keeps %v, want %s", tc.kinds, ids, tc.want)
			}
		})
	}
	if fleet[0].DICOM == nil || fleet[0].TCP == "" {
		t.Fatal("Only changed the fleet it was given")
	}
	if _, err := Only(fleet, []string{"icmp"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// Devices behind a delay line are written at their own addresses, the
// others where the fleet listens.
func TestGenerateHosts(t *testing.T) {
	hosts := map[string]string{"sim-gw-0": "198.18.0.3", "sim-pacs-1": "198.18.0.4", "sim-network-5": "198.18.0.5"}
	data, err := Generate(GenerateOptions{Devices: 4, BasePort: 21000, Sites: 1, SNMPDevices: 2, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	f, err := assets.ParseFile("fleet.yaml", data, parseOptions)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, d := range f.Customers[0].Sites[0].Devices {
		var host string
		switch {
		case d.TCP != nil:
			host = d.TCP.Host
		case d.DICOM != nil:
			host = d.DICOM.Host
		case d.SNMP != nil:
			host = d.SNMP.Host
		}
		want, ok := hosts[d.ID]
		if !ok {
			want = "127.0.0.1"
		} else {
			seen++
		}
		if host != want {
			t.Errorf("%s at %q, want %q", d.ID, host, want)
		}
	}
	if seen != len(hosts) || !strings.Contains(string(data), "# 3 devices behind network profiles are reached at their own addresses") {
		t.Fatalf("%d of %d placed devices written:\n%s", seen, len(hosts), data)
	}
}
