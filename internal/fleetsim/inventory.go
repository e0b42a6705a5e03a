package fleetsim

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// Plan is the fleet an inventory describes, as far as this machine can
// play it.
type Plan struct {
	Devices []Device
	// Skipped lists the endpoints not served because their host is not a
	// loopback address ("hsr-pacs dicom 10.1.2.3:104"): simulating them
	// here would not make the NOC reach them.
	Skipped []string
}

// PortsWithin counts the endpoints listening on a port from lo to hi.
func (p Plan) PortsWithin(lo, hi int) int {
	n := 0
	for _, d := range p.Devices {
		addrs := []string{d.TCP}
		if d.DICOM != nil && d.DICOM.Addr != d.TCP {
			addrs = append(addrs, d.DICOM.Addr)
		}
		for _, a := range addrs {
			if a == "" {
				continue
			}
			if pt := port(a); pt >= lo && pt <= hi {
				n++
			}
		}
	}
	return n
}

// FromInventory plans the simulation of an inventory: every DICOM and TCP
// endpoint on a loopback host, and a heartbeat every grace/3 for each
// device with a heartbeat token. Devices with none of these are left out.
func FromInventory(f *assets.File) Plan { return FromInventoryWithWorklists(f, "") }

// FromInventoryWithWorklists plans as FromInventory does, and a DICOM node
// with a worklist check answers worklist queries from
// worklistDir/DEVICE-ID/*.wl (a missing folder answers 0xC000, a broken
// worklist).
func FromInventoryWithWorklists(f *assets.File, worklistDir string) Plan {
	var p Plan
	for _, c := range f.Customers {
		for _, site := range c.Sites {
			for _, fd := range site.Devices {
				d := Device{ID: fd.ID, Site: site.ID, Gateway: site.Gateway != "" && site.Gateway == fd.ID}
				if x := fd.DICOM; x != nil {
					addr := net.JoinHostPort(x.Host, strconv.Itoa(x.Port))
					if IsLoopback(x.Host) {
						d.DICOM = &DICOM{Addr: addr, AETitle: x.CalledAE}
						if x.Worklist != nil && worklistDir != "" {
							d.DICOM.Worklist = filepath.Join(worklistDir, fd.ID)
						}
					} else {
						p.Skipped = append(p.Skipped, fd.ID+" dicom "+addr)
					}
				}
				if x := fd.TCP; x != nil {
					addr := net.JoinHostPort(x.Host, strconv.Itoa(x.Port))
					if IsLoopback(x.Host) {
						d.TCP = addr
					} else {
						p.Skipped = append(p.Skipped, fd.ID+" tcp "+addr)
					}
				}
				if x := fd.SNMP; x != nil {
					port := x.Port
					if port == 0 {
						port = 161
					}
					addr := net.JoinHostPort(x.Host, strconv.Itoa(port))
					if IsLoopback(x.Host) {
						d.SNMP = &SNMP{Addr: addr, Server: slices.Contains(snmpServerKinds, fd.Kind)}
						if strings.EqualFold(x.Version, "v3") {
							d.SNMP.User, d.SNMP.AuthProtocol, d.SNMP.AuthPassphrase = x.User, x.AuthProtocol, x.AuthPassphrase.Reveal()
							d.SNMP.PrivProtocol, d.SNMP.PrivPassphrase = x.PrivProtocol, x.PrivPassphrase.Reveal()
						} else {
							d.SNMP.Community = x.Community.Reveal()
						}
					} else {
						p.Skipped = append(p.Skipped, fd.ID+" snmp "+addr)
					}
				}
				if x := fd.Heartbeat; x != nil && !x.Token.IsZero() && x.Grace.Duration > 0 {
					// Three beats per grace period: one lost beat never
					// looks like an outage.
					d.Heartbeat = &Heartbeat{Token: x.Token, Every: x.Grace.Duration / 3}
				}
				if d.DICOM != nil || d.TCP != "" || d.Heartbeat != nil || d.SNMP != nil {
					p.Devices = append(p.Devices, d)
				}
			}
		}
	}
	return p
}

// snmpServerKinds are the device kinds whose agents serve hrStorageTable,
// the kinds Vigía reads storage from.
var snmpServerKinds = []string{"pacs", "ris", "broker"}

// IsLoopback reports whether host is "localhost" or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// GenerateOptions describe a generated fleet.
type GenerateOptions struct {
	// Devices is how many devices, each listening on BasePort+i of Host.
	Devices  int
	BasePort int
	// Sites spreads the devices over that many sites, each with a gateway
	// and at least one device behind it; zero means one site per 20 devices.
	Sites int
	// Customer is the customer id, also the prefix of every id; empty
	// means "sim".
	Customer string
	// Host is where the devices listen; empty means 127.0.0.1.
	Host string
	// ProbeInterval and ProbeRetries go in every device's probe block;
	// zero interval leaves the block out (the NOC's defaults apply).
	ProbeInterval time.Duration
	ProbeRetries  int
	// SNMPDevices more devices are SNMP agents, device Devices+j on UDP
	// port BasePort+Devices+j: network switches, every tenth a broker (a
	// server, whose storage is read), SNMPv2c and SNMPv3 authPriv
	// (SHA/AES) alternating. They are spread over the sites.
	SNMPDevices int
	// HeartbeatDevices more devices (biomedical centrals) post a heartbeat
	// every HeartbeatEvery (default 10 s; the grace written is three
	// times that). They listen on nothing.
	HeartbeatDevices int
	HeartbeatEvery   time.Duration
	// Hosts gives some devices, by id, another host than Host: their
	// addresses behind a delay line (DelayLine.Place).
	Hosts map[string]string
}

// The credentials of generated SNMP agents (a simulated fleet's secrets are
// no secret).
const (
	SimCommunity      = "sim-community"
	SimSNMPUser       = "vigia-sim"
	SimAuthPassphrase = "sim-auth-passphrase"
	SimPrivPassphrase = "sim-priv-passphrase"
)

// LastPort is the highest port a generated fleet uses (TCP for its DICOM
// and TCP devices, UDP for its SNMP agents).
func (o GenerateOptions) LastPort() int { return o.BasePort + o.Devices + o.SNMPDevices - 1 }

// DefaultDevicesPerSite sizes sites when GenerateOptions.Sites is zero.
const DefaultDevicesPerSite = 20

// modalities cycle over a generated fleet's modalities, the common ones first.
var modalities = []string{"CT", "MR", "US", "CR", "DX", "MG", "NM", "XA", "RF", "PT"}

var customerIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Generate writes the inventory file of a simulated fleet. In every site
// the first device is the gateway, a network device checked over TCP; the
// customer's first device behind a gateway is its core PACS; the rest are
// modalities of varied kinds. Every device is a DICOM node with its own AE
// title except the gateways. Device i listens on BasePort+i, and its id
// and AE title end in i, so a port names its device. One contract on the
// imaging-8x5 policy covers every device through 2026 and 2027.
func Generate(o GenerateOptions) ([]byte, error) {
	if o.Customer == "" {
		o.Customer = "sim"
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Sites == 0 {
		o.Sites = max(1, o.Devices/DefaultDevicesPerSite)
	}
	switch {
	case o.Devices < 2:
		return nil, errors.New("fleetsim: a fleet needs at least 2 devices (a gateway and a PACS)")
	case o.Sites < 1 || o.Sites*2 > o.Devices:
		return nil, fmt.Errorf("fleetsim: %d sites need at least %d devices (a gateway and one device behind it each)", o.Sites, o.Sites*2)
	case o.BasePort < 1 || o.LastPort() > 65535:
		return nil, fmt.Errorf("fleetsim: ports %d to %d are not all valid ports", o.BasePort, o.LastPort())
	case o.SNMPDevices < 0 || o.HeartbeatDevices < 0 || o.HeartbeatEvery < 0:
		return nil, errors.New("fleetsim: negative SNMP or heartbeat device count or period")
	case !customerIDRE.MatchString(o.Customer):
		return nil, fmt.Errorf("fleetsim: %q is not a valid customer id (lower-case letters, digits, '.', '_', '-')", o.Customer)
	case o.ProbeInterval < 0 || o.ProbeInterval > 0 && o.ProbeInterval < time.Second:
		return nil, fmt.Errorf("fleetsim: probe interval %s is under 1s", o.ProbeInterval)
	case o.ProbeInterval > 0 && (o.ProbeRetries < 0 || o.ProbeRetries > 10):
		return nil, fmt.Errorf("fleetsim: probe retries %d out of range 0-10", o.ProbeRetries)
	}
	if o.HeartbeatEvery == 0 {
		o.HeartbeatEvery = 10 * time.Second
	}
	devWidth, siteWidth := len(strconv.Itoa(o.Devices+o.SNMPDevices+o.HeartbeatDevices-1)), len(strconv.Itoa(o.Sites))
	hostOf := func(id string) string {
		host := o.Host
		if h, ok := o.Hosts[id]; ok {
			host = h
		}
		if strings.Contains(host, ":") {
			host = `"` + host + `"` // an IPv6 literal is not a plain YAML scalar in a flow mapping
		}
		return host
	}
	probe := ""
	if o.ProbeInterval > 0 {
		probe = fmt.Sprintf("            probe: {interval: %s, retries: %d}\n", o.ProbeInterval, o.ProbeRetries)
	}

	var b bytes.Buffer
	b.Grow(o.Devices * 220)
	fmt.Fprintf(&b, "# Simulated fleet written by `vigia simulate fleet`: %d devices on %d sites,\n", o.Devices, o.Sites)
	fmt.Fprintf(&b, "# device i listening on %s port %d+i. Import it with `vigia import`.\n", o.Host, o.BasePort)
	if o.SNMPDevices > 0 || o.HeartbeatDevices > 0 {
		fmt.Fprintf(&b, "# Also %d SNMP agents (UDP port %d+i) and %d devices posting heartbeats every %s.\n",
			o.SNMPDevices, o.BasePort, o.HeartbeatDevices, o.HeartbeatEvery)
	}
	if len(o.Hosts) > 0 {
		fmt.Fprintf(&b, "# %d devices behind network profiles are reached at their own addresses through the simulator's delay line.\n", len(o.Hosts))
	}
	fmt.Fprintf(&b, "customers:\n  - id: %s\n    name: Red simulada %s (%d equipos)\n", o.Customer, o.Customer, o.Devices)
	b.WriteString("    country: CO\n    time_zone: America/Bogota\n    language: es\n    sites:\n")
	pacsDone := false
	for j := range o.Sites {
		first, end := j*o.Devices/o.Sites, (j+1)*o.Devices/o.Sites
		siteID := fmt.Sprintf("%s-s%0*d", o.Customer, siteWidth, j+1)
		kind := "centre"
		if j == 0 {
			kind = "hospital"
		}
		gw := fmt.Sprintf("%s-gw-%0*d", o.Customer, devWidth, first)
		fmt.Fprintf(&b, "      - id: %s\n        name: Sede simulada %d\n        kind: %s\n        city: Bogotá\n        gateway: %s\n        devices:\n",
			siteID, j+1, kind, gw)
		for i := first; i < end; i++ {
			port := o.BasePort + i
			var id, name, extra, endpoint string
			switch {
			case i == first:
				id, name = gw, fmt.Sprintf("Router de enlace sede %d", j+1)
				extra = "            kind: network\n"
				endpoint = fmt.Sprintf("            tcp: {host: %s, port: %d}\n", hostOf(id), port)
			case !pacsDone:
				pacsDone = true
				id, name = fmt.Sprintf("%s-pacs-%0*d", o.Customer, devWidth, i), "PACS central simulado"
				extra = "            kind: pacs\n            role: core\n"
				endpoint = fmt.Sprintf("            dicom: {host: %s, port: %d, called_ae: %s}\n", hostOf(id), port, AETitle("PACS", i))
			default:
				m := modalities[i%len(modalities)]
				id, name = fmt.Sprintf("%s-%s-%0*d", o.Customer, strings.ToLower(m), devWidth, i), fmt.Sprintf("Equipo %s simulado %d", m, i)
				extra = fmt.Sprintf("            kind: modality\n            modality: %s\n", m)
				endpoint = fmt.Sprintf("            dicom: {host: %s, port: %d, called_ae: %s}\n", hostOf(id), port, AETitle(m, i))
			}
			fmt.Fprintf(&b, "          - id: %s\n            name: %s\n%s%s%s", id, name, extra, endpoint, probe)
		}
		for k := j * o.SNMPDevices / o.Sites; k < (j+1)*o.SNMPDevices/o.Sites; k++ {
			i := o.Devices + k
			kind, what := "network", "Switch"
			if k%10 == 9 {
				kind, what = "broker", "Servidor de integración"
			}
			auth := fmt.Sprintf("version: v2c, community: %s", SimCommunity)
			if k%2 == 1 {
				auth = fmt.Sprintf("version: v3, user: %s, auth_protocol: SHA, auth_passphrase: %s, priv_protocol: AES, priv_passphrase: %s",
					SimSNMPUser, SimAuthPassphrase, SimPrivPassphrase)
			}
			id := fmt.Sprintf("%s-%s-%0*d", o.Customer, kind, devWidth, i)
			fmt.Fprintf(&b, "          - id: %s\n            name: %s simulado %d\n            kind: %s\n            snmp: {host: %s, port: %d, %s}\n%s",
				id, what, i, kind, hostOf(id), o.BasePort+i, auth, probe)
		}
		for k := j * o.HeartbeatDevices / o.Sites; k < (j+1)*o.HeartbeatDevices/o.Sites; k++ {
			i := o.Devices + o.SNMPDevices + k
			fmt.Fprintf(&b, "          - id: %s-hb-%0*d\n            name: Central de monitoreo simulada %d\n            kind: biomedical\n"+
				"            heartbeat: {grace: %s, token: %s-heartbeat-token-%0*d}\n", o.Customer, devWidth, i, i, 3*o.HeartbeatEvery, o.Customer, devWidth, i)
		}
	}
	fmt.Fprintf(&b, `    contracts:
      - id: %s-imaging
        plan: Flota simulada 8x5
        sla_policy: imaging-8x5
        devices: all
        start: 2026-01-01
        end: 2027-12-31
        activated: 2026-01-01
        paid_up: true
`, o.Customer)
	return b.Bytes(), nil
}

// AETitle is the AE title Generate gives device i of a kind: "CT00042".
func AETitle(kind string, i int) string {
	return fmt.Sprintf("%s%05d", kind, i)
}

// Endpoint kinds a simulator can be asked to serve alone (Only).
const (
	KindDICOM     = "dicom"
	KindTCP       = "tcp"
	KindSNMP      = "snmp"
	KindHeartbeat = "heartbeat"
)

// Only keeps the endpoints of the given kinds, and the devices left with
// one: a fleet larger than one process's file descriptor limit is served
// by several simulators, each its share of the kinds.
func Only(devices []Device, kinds []string) ([]Device, error) {
	want := map[string]bool{}
	for _, k := range kinds {
		switch k {
		case KindDICOM, KindTCP, KindSNMP, KindHeartbeat:
			want[k] = true
		default:
			return nil, fmt.Errorf("fleetsim: unknown endpoint kind %q (want dicom, tcp, snmp or heartbeat)", k)
		}
	}
	var out []Device
	for _, d := range devices {
		if !want[KindDICOM] {
			d.DICOM = nil
		}
		if !want[KindTCP] {
			d.TCP = ""
		}
		if !want[KindSNMP] {
			d.SNMP = nil
		}
		if !want[KindHeartbeat] {
			d.Heartbeat = nil
		}
		if d.DICOM != nil || d.TCP != "" || d.SNMP != nil || d.Heartbeat != nil {
			out = append(out, d)
		}
	}
	return out, nil
}
