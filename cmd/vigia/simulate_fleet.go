package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/fleetsim"
)

func init() {
	registerSimulation(simulation{name: "fleet", summary: "a fleet of devices (generated, or an inventory's) with outages on demand", run: runSimulateFleet})
}

const simulateFleetDescription = `
Runs a fleet of simulated devices, defined one of two ways:

  --devices N --base-port P   N devices on 127.0.0.1:P to P+N-1, spread over
                              sites: each site's first device is its gateway
                              (TCP), the first one behind it the core PACS,
                              the rest modalities (DICOM, an AE title each).
                              --write-inventory saves the matching inventory
                              for 'vigia import'. The range must lie outside
                              the kernel's ephemeral ports (Linux:
                              net.ipv4.ip_local_port_range, 32768-60999 by
                              default), where outgoing connections take their
                              ports and would keep a device from coming back
                              up: such a range is refused.
                              --snmp M adds M SNMP agents on UDP ports P+N to
                              P+N+M-1 (switches, every tenth a server with
                              storage; v2c and v3 authPriv SHA/AES alternating),
                              --heartbeats H adds H devices posting heartbeats
                              every --heartbeat-every to --vigia.
  --from FILE                 every DICOM, TCP and SNMP endpoint of an
                              inventory whose host is a loopback address (DICOM
                              answers the device's called AE title exactly, SNMP
                              its community or v3 user), and the heartbeats of
                              devices with a token, every grace/3 to --vigia.
                              With --worklist-dir DIR, a device with a
                              worklist check answers worklist queries
                              (C-FIND) from DIR/DEVICE-ID/*.wl.

Devices answer at loopback speed unless given network profiles:
  --profiles lan:60,wan:35,satellite:5   each site's link, by share of sites
  --device-profiles slow-pacs:20         a device's own slowness, by share of
                                         DICOM nodes and SNMP agents
  --loss 1%                              packets lost on every exchange
Profiles: lan (nothing added), wan (20-80 ms per exchange), satellite
(600-650 ms), slow-pacs (40 ms per step of an association or SNMP request);
"wan+slow-pacs" combines. Over TCP (DICOM, heartbeats) a lost packet delays
the answer by a retransmission (200 ms or more); over UDP (SNMP) it is lost.

A plain TCP check only connects, and the handshake is the kernel's: the round
trip and loss of a profile reach it through the delay line. A generated
device whose profile has a round trip or loss (not lan, not slow-pacs alone)
gets an address of its own in --delay-line RANGE (default 198.18.0.0/16, from
the benchmarking range 198.18.0.0/15), routed into a TUN device: every packet
to it and back is held half a round trip each way (jitter within the profile)
or lost (--loss is per exchange: a request or its answer), as on a real link,
so TCP connects, DICOM, SNMP and worklist queries all see it, and the
inventory written with --write-inventory has those addresses. slow-pacs stays
the simulator's own delay per request, and heartbeats keep their delay per
post. The delay line needs root or CAP_NET_ADMIN; without, the simulator says
so once on stderr and adds the profiles at the application level only (TCP
checks then answer at loopback speed). A RANGE already routed on the machine
is refused; the device and its routes go when the simulator exits, killed
too.
--delay-line off keeps every device on loopback; so does --from, whose
inventory's addresses are its own.

A JSON control API on --control (loopback only) takes devices down and up:
  GET  /devices                         id, site, state, host, ports of each device
  POST /devices/ID/down[?mode=blackhole] refused, or no handshake (connects time out)
  POST /devices/ID/up
  POST /devices/ID/flap?period=2s       alternates down and up
  POST /sites/ID/down | /sites/ID/up    the whole site, gateway included
A down device's heartbeats stop. --outage schedules one for demos.
--serve dicom,tcp (or snmp,heartbeat…) serves only those endpoints, to split
a fleet bigger than one process's file descriptor limit over simulators; only
the one whose inventory is imported may use the delay line (the others take
--delay-line off), since the inventory places its devices only.

Prints where the control API is and how much it serves once ready, one line
per scheduled outage step, and shuts down gracefully on SIGINT or SIGTERM.`

// outageFlags collects repeated --outage flags.
type outageFlags []fleetsim.Outage

func (o *outageFlags) String() string {
	parts := make([]string, len(*o))
	for i, x := range *o {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func (o *outageFlags) Set(v string) error {
	x, err := fleetsim.ParseOutage(v)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "fleetsim: "))
	}
	*o = append(*o, x)
	return nil
}

// fleetFDMargin is what the process needs besides its listeners: stdio,
// the control API, heartbeat connections, the first probes in flight.
const fleetFDMargin = 64

func runSimulateFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate fleet", "--devices N --base-port P [flags] | --from FILE [flags]", simulateFleetDescription, stdout, stderr)
	devices := fs.Int("devices", 0, "generate `N` devices")
	basePort := fs.Int("base-port", 20000, "first `port` of the generated devices")
	sites := fs.Int("sites", 0, "spread the generated devices over `S` sites (default one per 20 devices)")
	customer := fs.String("customer", "sim", "customer `id` of the generated fleet, also the prefix of its ids")
	writeInv := fs.String("write-inventory", "", "write the generated fleet's inventory to `FILE`")
	interval := fs.Duration("interval", 10*time.Second, "probe interval written for every generated device (0: leave it to Vigía)")
	retries := fs.Int("retries", 2, "probe retries written for every generated device")
	from := fs.String("from", "", "serve the endpoints of the inventory `FILE`")
	vigia := fs.String("vigia", fleetsim.DefaultVigiaURL, "Vigía `URL` that heartbeats are posted to")
	control := fs.String("control", "127.0.0.1:8099", "loopback `address` of the control API (port 0 picks a free one)")
	var outages outageFlags
	fs.Var(&outages, "outage", "schedule an outage, `DEVICE@AFTER+DURATION` such as hsr-pacs@60s+5m (repeatable)")
	worklistDir := fs.String("worklist-dir", "", "with --from, a device with a worklist check answers worklist queries from `DIR`/DEVICE-ID/*.wl")
	snmpN := fs.Int("snmp", 0, "generate `M` more devices with an SNMP agent")
	heartbeats := fs.Int("heartbeats", 0, "generate `H` more devices posting heartbeats")
	heartbeatEvery := fs.Duration("heartbeat-every", 10*time.Second, "how often generated devices post heartbeats")
	siteMix := fs.String("profiles", "", "network profiles of the sites' links, `MIX` such as lan:60,wan:35,satellite:5")
	deviceMix := fs.String("device-profiles", "", "profiles of the devices themselves, `MIX` such as slow-pacs:20")
	lossFlag := fs.String("loss", "", "packet loss on every exchange, `RATE` such as 1%")
	delayLine := fs.String("delay-line", fleetsim.DefaultDelayRange.String(), "carry the profiles of generated devices packet by packet through a TUN device routing `RANGE` (inside 198.18.0.0/15; root or CAP_NET_ADMIN), or off")
	serveKinds := fs.String("serve", "", "serve only these endpoint `KINDS` (dicom,tcp,snmp,heartbeat): split a fleet over several simulators")
	verbose := fs.Bool("v", false, "log every state change, flaps included")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments %q", fs.Args())
	}
	if (*from == "") == (*devices == 0) {
		return usageError("want either --devices N or --from FILE")
	}
	if *from != "" && *writeInv != "" {
		return usageError("--write-inventory is for a generated fleet; --from already has its file")
	}
	if *from != "" && (*snmpN != 0 || *heartbeats != 0) {
		return usageError("--snmp and --heartbeats are for a generated fleet; --from serves what its file has")
	}
	sitesProfiles, err := fleetsim.ParseMix(*siteMix)
	if err != nil {
		return usageError("--profiles: %s", strings.TrimPrefix(err.Error(), "fleetsim: "))
	}
	devicesProfiles, err := fleetsim.ParseMix(*deviceMix)
	if err != nil {
		return usageError("--device-profiles: %s", strings.TrimPrefix(err.Error(), "fleetsim: "))
	}
	loss, err := fleetsim.ParseLoss(*lossFlag)
	if err != nil {
		return usageError("--loss: %s", strings.TrimPrefix(err.Error(), "fleetsim: "))
	}
	var delayRange netip.Prefix
	if *delayLine != "off" {
		if delayRange, err = netip.ParsePrefix(*delayLine); err == nil {
			err = fleetsim.CheckDelayRange(delayRange)
		}
		if err != nil {
			return usageError("--delay-line %q: want off or a range inside 198.18.0.0/15, such as 198.18.0.0/16", *delayLine)
		}
	}
	gen := fleetsim.GenerateOptions{Devices: *devices, BasePort: *basePort, Sites: *sites, Customer: *customer,
		ProbeInterval: *interval, ProbeRetries: *retries, SNMPDevices: *snmpN, HeartbeatDevices: *heartbeats, HeartbeatEvery: *heartbeatEvery}
	if host, _, err := net.SplitHostPort(*control); err != nil || !fleetsim.IsLoopback(host) {
		return usageError("--control %q: want a loopback host:port; the control API has no authentication", *control)
	}

	lo, hi, err := fleetsim.EphemeralPorts()
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	ephemeral := err == nil
	if last := gen.LastPort(); *devices > 0 && ephemeral && *basePort <= hi && last >= lo {
		return usageError("--base-port %d: ports %d to %d overlap the kernel's ephemeral ports %d to %d (net.ipv4.ip_local_port_range), "+
			"which outgoing connections take: a device taken down could find its port taken and not come back up; choose a range below %d or above %d",
			*basePort, *basePort, last, lo, hi, lo, hi)
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	name, data := *from, []byte(nil)
	if *from != "" {
		var err error
		if data, err = os.ReadFile(*from); err != nil {
			return err
		}
	} else {
		var err error
		data, err = fleetsim.Generate(gen)
		if err != nil {
			return usageError("%s", strings.TrimPrefix(err.Error(), "fleetsim: "))
		}
		name = "generated fleet"
	}
	inv, err := assets.ParseFile(name, data, parseOptions())
	var invalid *assets.InvalidFileError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s", len(invalid.Problems), name)}
	}
	if err != nil {
		return err
	}
	if *worklistDir != "" && *from == "" {
		return usageError("--worklist-dir is for --from: the generated fleet has no worklist checks")
	}
	plan := fleetsim.FromInventoryWithWorklists(inv, *worklistDir)
	for _, s := range plan.Skipped {
		log.Info("not simulated: host is not loopback", "endpoint", s)
	}
	if ephemeral {
		if n := plan.PortsWithin(lo, hi); n > 0 {
			log.Warn("endpoints listen inside the kernel's ephemeral ports: a device taken down may not get its port back",
				"endpoints", n, "ephemeral", fmt.Sprintf("%d-%d", lo, hi))
		}
	}
	if len(plan.Devices) == 0 {
		return fmt.Errorf("%s has no loopback endpoint or heartbeat to simulate", name)
	}
	if *serveKinds != "" {
		if plan.Devices, err = fleetsim.Only(plan.Devices, strings.Split(*serveKinds, ",")); err != nil {
			return usageError("--serve: %s", strings.TrimPrefix(err.Error(), "fleetsim: "))
		}
		if len(plan.Devices) == 0 {
			return fmt.Errorf("%s has no endpoint of the kinds %s", name, *serveKinds)
		}
	}
	fleetsim.AssignProfiles(plan.Devices, sitesProfiles, devicesProfiles, loss)
	// A generated fleet's devices with a round trip or loss move behind
	// the delay line, and the inventory written says where they are; an
	// inventory given with --from keeps its addresses.
	var line *fleetsim.DelayLine
	if *from == "" && delayRange.IsValid() && fleetsim.NeedsDelayLine(plan.Devices) {
		line, err = fleetsim.OpenDelayLine(delayRange, log)
		switch {
		case errors.Is(err, fleetsim.ErrDelayLineUnavailable):
			fmt.Fprintf(stderr, "vigia simulate fleet: %s; network profiles apply at the application level only, and plain TCP checks are not delayed\n",
				strings.TrimPrefix(err.Error(), "fleetsim: "))
		case err != nil:
			return errors.New(strings.TrimPrefix(err.Error(), "fleetsim: "))
		default:
			defer line.Close()
			if gen.Hosts, err = line.Place(plan.Devices); err != nil {
				return err
			}
			if data, err = fleetsim.Generate(gen); err != nil {
				return err
			}
		}
	}
	if *writeInv != "" {
		if err := os.WriteFile(*writeInv, data, 0o644); err != nil {
			return err
		}
	}
	profiled := map[string]int{}
	for _, d := range plan.Devices {
		if !d.Profile.IsZero() {
			profiled[d.Profile.Name]++
		}
	}
	sim, err := fleetsim.New(plan.Devices, fleetsim.Options{VigiaURL: *vigia, Logger: log})
	if err != nil {
		return err
	}
	for _, o := range outages {
		if _, err := sim.Device(o.Device); err != nil {
			return usageError("--outage %s: no simulated device %q", o, o.Device)
		}
	}
	counts := sim.Counts()
	fdLimit, err := fleetFileLimit(counts.Endpoints(), log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *control)
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	if err := sim.Start(); err != nil {
		ln.Close()
		return err
	}
	api := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- api.Serve(ln) }()
	for _, o := range outages {
		sim.Schedule(o) // the device exists: checked above
	}
	// The inventory's parse trees (about 10 KiB a device) are garbage now;
	// handing them back at once keeps a big fleet's RSS to what it costs
	// to run.
	inv, data, plan = nil, nil, fleetsim.Plan{}
	debug.FreeOSMemory()

	fmt.Fprintf(stdout, "serving %d endpoints (%d DICOM, %d TCP, %d SNMP) of %d devices on %d sites",
		counts.Endpoints(), counts.DICOM, counts.TCP, counts.SNMP, counts.Devices, counts.Sites)
	if counts.Heartbeats > 0 {
		fmt.Fprintf(stdout, "; %d devices post heartbeats to %s", counts.Heartbeats, *vigia)
	}
	if fdLimit > 0 {
		fmt.Fprintf(stdout, "; file descriptor limit %d", fdLimit)
	}
	if len(profiled) > 0 {
		names := make([]string, 0, len(profiled))
		for n := range profiled {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			names[i] = fmt.Sprintf("%s %d", n, profiled[n])
		}
		fmt.Fprintf(stdout, "; profiles: %s", strings.Join(names, ", "))
		if loss > 0 {
			fmt.Fprintf(stdout, " (loss %.3g%% on every exchange)", loss*100)
		}
	}
	if line != nil {
		fmt.Fprintf(stdout, "; %d devices behind the delay line %s on %s", len(gen.Hosts), line.Range(), line.Device())
	}
	fmt.Fprintf(stdout, "\ncontrol on http://%s (GET /devices, POST /devices/ID/down|up|flap, POST /sites/ID/down|up)\n", ln.Addr())
	if *writeInv != "" {
		fmt.Fprintf(stdout, "inventory written to %s (load it with: vigia import %s)\n", *writeInv, *writeInv)
	}
	for _, o := range outages {
		fmt.Fprintf(stdout, "outage scheduled: %s down in %s for %s\n", o.Device, o.After, o.For)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), simulateShutdownGrace)
	defer cancel()
	api.Shutdown(shutdownCtx)
	if err := sim.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(stderr, "vigia simulate fleet: associations still open after %s were aborted\n", simulateShutdownGrace)
	}
	if serveErr != nil {
		return fmt.Errorf("control API: %w", serveErr)
	}
	return nil
}

// fleetFileLimit raises the file descriptor limit as far as allowed and
// fails when it cannot hold every listener: better a clear message now
// than "too many open files" on the 1021st device.
func fleetFileLimit(endpoints int, log *slog.Logger) (uint64, error) {
	soft, hard, err := fleetsim.RaiseFileLimit()
	if errors.Is(err, errors.ErrUnsupported) {
		return 0, nil
	}
	if err != nil {
		log.Warn("could not raise the file descriptor limit", "soft", soft, "hard", hard, "error", err)
	}
	need := uint64(endpoints + fleetFDMargin)
	if soft < need {
		return soft, fmt.Errorf("%d endpoints need at least %d file descriptors but the limit is %d (hard limit %d): "+
			"raise the hard limit (ulimit -Hn as root, LimitNOFILE= under systemd, --ulimit nofile= in Docker) or simulate fewer devices",
			endpoints, need, soft, hard)
	}
	if soft < need+1024 {
		log.Warn("file descriptor limit is tight: each probe in flight holds one more", "limit", soft, "endpoints", endpoints)
	}
	return soft, nil
}
