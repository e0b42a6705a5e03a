// Command probes measures `vigia serve` probing a simulated fleet: its CPU
// and memory in a steady state, probe throughput and latency, the probe
// backlog, and how long a device taken down takes to get its `down` row.
//
// It drives processes that bench/probes.sh starts (vigia serve, vigia
// simulate fleet, a private PostgreSQL) and prints a Markdown section for
// BENCHMARKS.md. Run it through that script.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigia-noc/vigia/dicomping"
)

type config struct {
	metricsURL, controlURL, dbURL string
	vigiaPID, simPID, pgPID       int
	interval                      time.Duration
	retries                       int
	upTimeout, warmup, window     time.Duration
	scrapeEvery                   time.Duration
	down, blackhole               int
	spacing                       time.Duration
	samplerRate                   float64
	seed                          uint64
}

func main() {
	var c config
	flag.StringVar(&c.metricsURL, "metrics", "", "vigia serve's /metrics `URL`")
	flag.StringVar(&c.controlURL, "control", "", "the simulator's control API base `URL`")
	flag.StringVar(&c.dbURL, "db", "", "PostgreSQL `URL` vigia serve uses")
	flag.IntVar(&c.vigiaPID, "vigia-pid", 0, "PID of vigia serve")
	flag.IntVar(&c.simPID, "sim-pid", 0, "PID of vigia simulate fleet")
	flag.IntVar(&c.pgPID, "pg-pid", 0, "PID of the postmaster (its children are counted too)")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "probe interval of the fleet")
	flag.IntVar(&c.retries, "retries", 2, "probe retries of the fleet")
	flag.DurationVar(&c.upTimeout, "up-timeout", 5*time.Minute, "give up when the fleet is not all up after this long")
	flag.DurationVar(&c.warmup, "warmup", 60*time.Second, "wait this long after all are up before measuring")
	flag.DurationVar(&c.window, "window", 120*time.Second, "steady-state measurement window")
	flag.DurationVar(&c.scrapeEvery, "scrape-every", 5*time.Second, "scrape /metrics this often during the window")
	flag.IntVar(&c.down, "down", 100, "devices taken down in refused mode")
	flag.IntVar(&c.blackhole, "blackhole", 20, "devices taken down in blackhole mode")
	flag.DurationVar(&c.spacing, "spacing", time.Second, "time between two take-downs")
	flag.Float64Var(&c.samplerRate, "sampler-rate", 10, "C-ECHOs per second of the independent latency sampler (0: off)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the choice of devices")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench probes:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench probes: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// simDevice is one device of the simulator's GET /devices.
type simDevice struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	Gateway bool   `json:"gateway"`
	State   string `json:"state"`
	Port    int    `json:"port"`
	AETitle string `json:"ae_title"`
}

func run(ctx context.Context, c config, out io.Writer) error {
	db, err := sql.Open("postgres", c.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	fleet, err := fleetDevices(ctx, c.controlURL)
	if err != nil {
		return err
	}
	var nDICOM, nTCP int
	for _, d := range fleet {
		if d.AETitle != "" {
			nDICOM++
		} else {
			nTCP++
		}
	}
	logf("fleet: %d devices (%d DICOM, %d TCP gateways)", len(fleet), nDICOM, nTCP)

	// 1. Every device up.
	upAfter, err := waitAllUp(ctx, db, len(fleet), c.upTimeout)
	if err != nil {
		return err
	}
	logf("all %d devices up %.0f s after the helper started; warming up %s", len(fleet), upAfter.Seconds(), c.warmup)
	if err := sleep(ctx, c.warmup); err != nil {
		return err
	}

	// 2. Steady state.
	logf("measuring for %s", c.window)
	ss, err := steadyState(ctx, c, fleet)
	if err != nil {
		return err
	}

	// 3. Detection.
	det, err := detection(ctx, c, db, fleet)
	if err != nil {
		return err
	}
	report(out, c, fleet, nDICOM, nTCP, upAfter, ss, det)
	return nil
}

func fleetDevices(ctx context.Context, control string) ([]simDevice, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, control+"/devices", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("simulator devices: %w", err)
	}
	defer resp.Body.Close()
	var ds []simDevice
	if err := json.NewDecoder(resp.Body).Decode(&ds); err != nil {
		return nil, fmt.Errorf("simulator devices: %w", err)
	}
	return ds, nil
}

func waitAllUp(ctx context.Context, db *sql.DB, n int, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	last := time.Time{}
	for {
		var up, total int
		err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE state = 'up'), count(*) FROM device_states`).Scan(&up, &total)
		if err != nil {
			return 0, fmt.Errorf("count device states: %w", err)
		}
		if up >= n {
			return time.Since(start), nil
		}
		if time.Since(last) > 10*time.Second {
			logf("%d/%d devices up (%d states)", up, n, total)
			last = time.Now()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d devices up after %s", up, n, timeout)
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return 0, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- /proc ----

var clkTck = 100.0 // USER_HZ on Linux

// procCPU returns a process's user+system CPU in seconds; with children,
// also that of its reaped children (cutime+cstime).
func procCPU(pid int, reaped bool) (float64, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	// Fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
	ticks := atof(f[11]) + atof(f[12])
	if reaped {
		ticks += atof(f[13]) + atof(f[14])
	}
	return ticks / clkTck, nil
}

func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

func atof(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }

// treeCPU is a postmaster's CPU with its live children's and its reaped
// children's: backends come and go, and this sum only grows.
func treeCPU(pid int) (float64, error) {
	total, err := procCPU(pid, true)
	if err != nil {
		return 0, err
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := procStatFields(child)
		if err != nil || len(f) < 15 || f[1] != strconv.Itoa(pid) {
			continue
		}
		total += (atof(f[11]) + atof(f[12])) / clkTck
	}
	return total, nil
}

// machineCPU returns busy and total CPU seconds of the whole machine.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)[1:]
	for i, v := range f {
		if i >= 8 { // guest time is already in user
			break
		}
		x := atof(v) / clkTck
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

func loadAvg() (float64, string) {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, "?"
	}
	return atof(f[0]), strings.Join(f[:3], " ")
}

// rssKiB reads VmRSS and VmHWM (peak) of a process.
func rssKiB(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = atof(f[1])
		case "VmHWM:":
			hwm = atof(f[1])
		}
	}
	return rss, hwm
}

type cpuSnap struct {
	at                        time.Time
	vigia, sim, pg, self      float64
	machineBusy, machineTotal float64
}

func snapCPU(c config) (cpuSnap, error) {
	s := cpuSnap{at: time.Now()}
	var err error
	if s.vigia, err = procCPU(c.vigiaPID, false); err != nil {
		return s, fmt.Errorf("vigia serve (pid %d): %w", c.vigiaPID, err)
	}
	if s.sim, err = procCPU(c.simPID, false); err != nil {
		return s, fmt.Errorf("simulator (pid %d): %w", c.simPID, err)
	}
	if s.pg, err = treeCPU(c.pgPID); err != nil {
		return s, fmt.Errorf("postgres (pid %d): %w", c.pgPID, err)
	}
	s.self, _ = procCPU(os.Getpid(), false)
	s.machineBusy, s.machineTotal = machineCPU()
	return s, nil
}

// cpuUse is the CPU used between two snapshots, in % of one core.
type cpuUse struct {
	wall                         time.Duration
	vigia, sim, pg, self, others float64
	machine                      float64 // busy, % of one core (200 = both cores)
}

func diffCPU(a, b cpuSnap) cpuUse {
	w := b.at.Sub(a.at).Seconds()
	u := cpuUse{wall: b.at.Sub(a.at),
		vigia: 100 * (b.vigia - a.vigia) / w, sim: 100 * (b.sim - a.sim) / w, pg: 100 * (b.pg - a.pg) / w,
		self: 100 * (b.self - a.self) / w, machine: 100 * (b.machineBusy - a.machineBusy) / w}
	u.others = max(0, u.machine-u.vigia-u.sim-u.pg-u.self)
	return u
}

// ---- /metrics ----

type scrape struct {
	at   time.Time
	took time.Duration
	mfs  map[string]*dto.MetricFamily
}

func getMetrics(ctx context.Context, url string) (scrape, error) {
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape: %w", err)
	}
	return scrape{at: start, took: time.Since(start), mfs: mfs}, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (s scrape) gauge(name string) float64 {
	var v float64
	for _, m := range s.mfs[name].GetMetric() {
		v += m.GetGauge().GetValue()
	}
	return v
}

// counters returns a counter's values by the joined values of labels.
func (s scrape) counters(name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range s.mfs[name].GetMetric() {
		var k []string
		for _, l := range labels {
			k = append(k, label(m, l))
		}
		out[strings.Join(k, "/")] += m.GetCounter().GetValue()
	}
	return out
}

// hist is a cumulative histogram: upper bounds (the last +Inf) and counts.
type hist struct {
	bounds []float64
	counts []float64
	sum    float64
}

func (s scrape) histograms(name, by string) map[string]hist {
	out := map[string]hist{}
	for _, m := range s.mfs[name].GetMetric() {
		h := hist{sum: m.GetHistogram().GetSampleSum()}
		for _, b := range m.GetHistogram().GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, float64(b.GetCumulativeCount()))
		}
		h.bounds = append(h.bounds, math.Inf(1))
		h.counts = append(h.counts, float64(m.GetHistogram().GetSampleCount()))
		out[label(m, by)] = h
	}
	return out
}

func (h hist) minus(o hist) hist {
	d := hist{bounds: h.bounds, counts: slices.Clone(h.counts), sum: h.sum - o.sum}
	if len(o.counts) == len(h.counts) {
		for i := range d.counts {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

func (h hist) count() float64 { return h.counts[len(h.counts)-1] }

// quantile interpolates linearly inside the bucket holding the rank, as
// PromQL's histogram_quantile does; it also returns that bucket's bounds.
func (h hist) quantile(q float64) (v, lo, hi float64) {
	n := h.count()
	if n == 0 {
		return math.NaN(), 0, 0
	}
	rank := q * n
	i := 0
	for i < len(h.counts)-1 && h.counts[i] < rank {
		i++
	}
	if math.IsInf(h.bounds[i], 1) {
		b := h.bounds[len(h.bounds)-2]
		return b, b, math.Inf(1)
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	hi = h.bounds[i]
	inBucket := h.counts[i] - below
	if inBucket == 0 {
		return hi, lo, hi
	}
	return lo + (hi-lo)*(rank-below)/inBucket, lo, hi
}

// ---- steady state ----

type steady struct {
	cpu                 cpuUse
	start, end          scrape
	queueMax, queueMean float64
	scrapes             int
	scrapeMax           time.Duration
	rss, hwm            float64
	simRSS, pgRSS       float64
	loadStart, loadEnd  string
	loadMax             float64
	sampler             []time.Duration
	samplerFailed       int
	processCPU          float64 // vigia's own process_cpu_seconds_total, % of one core
}

func steadyState(ctx context.Context, c config, fleet []simDevice) (steady, error) {
	var ss steady
	_, ss.loadStart = loadAvg()
	ss.loadMax, _ = loadAvg()
	first, err := getMetrics(ctx, c.metricsURL)
	if err != nil {
		return ss, err
	}
	a, err := snapCPU(c)
	if err != nil {
		return ss, err
	}
	ss.start = first
	samplerCtx, stopSampler := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	if c.samplerRate > 0 {
		wg.Go(func() {
			lat, failed := sampleEchoes(samplerCtx, fleet, c.samplerRate)
			mu.Lock()
			ss.sampler, ss.samplerFailed = lat, failed
			mu.Unlock()
		})
	}
	end := a.at.Add(c.window)
	var queueSum float64
	var last scrape
	for {
		wait := min(c.scrapeEvery, time.Until(end))
		if wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				stopSampler()
				return ss, err
			}
		}
		s, err := getMetrics(ctx, c.metricsURL)
		if err != nil {
			stopSampler()
			return ss, err
		}
		ss.scrapes++
		ss.scrapeMax = max(ss.scrapeMax, s.took)
		q := s.gauge("vigia_probe_queue_waiting")
		ss.queueMax = max(ss.queueMax, q)
		queueSum += q
		l, _ := loadAvg()
		ss.loadMax = max(ss.loadMax, l)
		last = s
		if !time.Now().Before(end) {
			break
		}
	}
	b, err := snapCPU(c)
	stopSampler()
	wg.Wait()
	if err != nil {
		return ss, err
	}
	ss.end = last
	ss.cpu = diffCPU(a, b)
	ss.queueMean = queueSum / float64(ss.scrapes)
	ss.rss, ss.hwm = rssKiB(c.vigiaPID)
	ss.simRSS, _ = rssKiB(c.simPID)
	ss.pgRSS, _ = rssKiB(c.pgPID)
	_, ss.loadEnd = loadAvg()
	pcpu := ss.end.counters("process_cpu_seconds_total")[""] - ss.start.counters("process_cpu_seconds_total")[""]
	ss.processCPU = 100 * pcpu / ss.end.at.Sub(ss.start.at).Seconds()
	return ss, nil
}

// sampleEchoes runs C-ECHOs of its own against random DICOM devices, the
// exact latency a second client sees on the same loaded machine.
func sampleEchoes(ctx context.Context, fleet []simDevice, rate float64) ([]time.Duration, int) {
	var dicom []simDevice
	for _, d := range fleet {
		if d.AETitle != "" {
			dicom = append(dicom, d)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var lat []time.Duration
	failed := 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return lat, failed
		case <-tick.C:
		}
		d := dicom[rng.IntN(len(dicom))]
		wg.Go(func() {
			start := time.Now()
			_, err := dicomping.Echo(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port)),
				dicomping.Options{CallingAETitle: "BENCH", CalledAETitle: d.AETitle, Timeout: 5 * time.Second})
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			lat = append(lat, took)
		})
	}
}

// ---- detection ----

type takedown struct {
	dev      simDevice
	mode     string // refused or blackhole
	at       time.Time
	postTook time.Duration
	downAt   time.Time // the device_transitions row's at; zero: none
	upAt     time.Time // when it was brought back
	backAt   time.Time // its `up` row after upAt
}

type detect struct {
	downs       []*takedown
	cpu         cpuUse
	waitedUntil time.Time
	queueMax    float64
}

// pick chooses n modalities, one per site before a second from any site:
// never a gateway (its outage is a site incident) nor a core PACS.
func pick(fleet []simDevice, n int, seed uint64) []simDevice {
	bySite := map[string][]simDevice{}
	var sites []string
	for _, d := range fleet {
		if d.Gateway || d.AETitle == "" || strings.Contains(d.ID, "-pacs-") {
			continue
		}
		if _, ok := bySite[d.Site]; !ok {
			sites = append(sites, d.Site)
		}
		bySite[d.Site] = append(bySite[d.Site], d)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(sites), func(i, j int) { sites[i], sites[j] = sites[j], sites[i] })
	for _, s := range sites {
		ds := bySite[s]
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	}
	var out []simDevice
	for round := 0; len(out) < n; round++ {
		added := false
		for _, s := range sites {
			if len(out) < n && round < len(bySite[s]) {
				out = append(out, bySite[s][round])
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

func post(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	return nil
}

func (c config) bound() time.Duration {
	return c.interval*time.Duration(c.retries+1) + 2*time.Second
}

func detection(ctx context.Context, c config, db *sql.DB, fleet []simDevice) (detect, error) {
	var det detect
	n := c.down + c.blackhole
	if n == 0 {
		return det, nil
	}
	chosen := pick(fleet, n, c.seed)
	if len(chosen) < n {
		return det, fmt.Errorf("only %d devices eligible to take down, want %d", len(chosen), n)
	}
	// Blackholes spread evenly among the refusals.
	for i, d := range chosen {
		mode := "refused"
		if (i+1)*c.blackhole/n > i*c.blackhole/n {
			mode = "blackhole"
		}
		det.downs = append(det.downs, &takedown{dev: d, mode: mode})
	}
	logf("taking %d devices down (%d refused, %d blackhole), one every %s", n, c.down, c.blackhole, c.spacing)
	a, err := snapCPU(c)
	if err != nil {
		return det, err
	}
	ids := make([]string, n)
	for i, td := range det.downs {
		ids[i] = td.dev.ID
	}
	// Always bring them back, even when interrupted.
	defer func() {
		bctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, td := range det.downs {
			if td.upAt.IsZero() && !td.at.IsZero() {
				_ = post(bctx, c.controlURL+"/devices/"+td.dev.ID+"/up")
			}
		}
	}()
	phaseStart := time.Now()
	next := phaseStart
	for _, td := range det.downs {
		if err := sleep(ctx, time.Until(next)); err != nil {
			return det, err
		}
		next = next.Add(c.spacing)
		url := c.controlURL + "/devices/" + td.dev.ID + "/down"
		if td.mode == "blackhole" {
			url += "?mode=blackhole"
		}
		td.at = time.Now()
		if err := post(ctx, url); err != nil {
			return det, err
		}
		td.postTook = time.Since(td.at)
	}
	// Wait for every down row, or three bounds after the last take-down.
	deadline := det.downs[n-1].at.Add(3 * c.bound())
	for {
		rows, err := firstRows(ctx, db, ids, "down", phaseStart.Add(-time.Second))
		if err != nil {
			return det, err
		}
		got := 0
		for _, td := range det.downs {
			if at, ok := rows[td.dev.ID]; ok {
				td.downAt = at
				got++
			}
		}
		if got == n || time.Now().After(deadline) {
			logf("%d/%d down rows", got, n)
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			return det, err
		}
	}
	s, err := getMetrics(ctx, c.metricsURL)
	if err == nil {
		det.queueMax = s.gauge("vigia_probe_queue_waiting")
	}
	b, err := snapCPU(c)
	if err != nil {
		return det, err
	}
	det.cpu = diffCPU(a, b)
	// Back up, and time the `up` rows too.
	upStart := time.Now()
	for _, td := range det.downs {
		td.upAt = time.Now()
		if err := post(ctx, c.controlURL+"/devices/"+td.dev.ID+"/up"); err != nil {
			return det, err
		}
	}
	upDeadline := time.Now().Add(3 * c.bound())
	for {
		rows, err := firstRows(ctx, db, ids, "up", upStart.Add(-time.Second))
		if err != nil {
			return det, err
		}
		got := 0
		for _, td := range det.downs {
			if at, ok := rows[td.dev.ID]; ok {
				td.backAt = at
				got++
			}
		}
		if got == n || time.Now().After(upDeadline) {
			logf("%d/%d back up", got, n)
			break
		}
		if err := sleep(ctx, time.Second); err != nil {
			return det, err
		}
	}
	return det, nil
}

func countMode(ts []*takedown, mode string) int {
	n := 0
	for _, t := range ts {
		if t.mode == mode {
			n++
		}
	}
	return n
}

// firstRows returns, per device, its first transition to state at or after since.
func firstRows(ctx context.Context, db *sql.DB, ids []string, state string, since time.Time) (map[string]time.Time, error) {
	rows, err := db.QueryContext(ctx, `SELECT device_id, min(at) FROM device_transitions
		WHERE device_id = ANY($1) AND to_state = $2 AND at >= $3 GROUP BY device_id`, pq.Array(ids), state, since)
	if err != nil {
		return nil, fmt.Errorf("transitions to %s: %w", state, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		out[id] = at
	}
	return out, rows.Err()
}

// ---- report ----

// nearestRank is the exact q-quantile of sorted values (nearest rank).
func nearestRank[T any](sorted []T, q float64) T {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(sec float64) string {
	if math.IsNaN(sec) {
		return "–"
	}
	switch {
	case sec < 0.01:
		return fmt.Sprintf("%.2f ms", sec*1000)
	case sec < 1:
		return fmt.Sprintf("%.1f ms", sec*1000)
	}
	return fmt.Sprintf("%.2f s", sec)
}

func bucket(lo, hi float64) string {
	if math.IsInf(hi, 1) {
		return fmt.Sprintf("> %s", ms(lo))
	}
	return fmt.Sprintf("%s–%s", ms(lo), ms(hi))
}

func report(out io.Writer, c config, fleet []simDevice, nDICOM, nTCP int, upAfter time.Duration, ss steady, det detect) {
	w := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	win := ss.end.at.Sub(ss.start.at).Seconds()
	w("Fleet: %d devices (%d DICOM, %d TCP gateways, one per site), interval %s, retries %d; all up %.0f s after the helper started, then %s of warm-up; steady-state window %.0f s.",
		len(fleet), nDICOM, nTCP, c.interval, c.retries, upAfter.Seconds(), c.warmup, win)
	w("")
	w("| steady state | value |")
	w("|---|---:|")
	w("| `vigia serve` CPU (utime+stime, /proc) | **%.1f %% of one core** (%.1f %% of the 2-core machine) |", ss.cpu.vigia, ss.cpu.vigia/2)
	w("| `vigia serve` CPU (its own process_cpu_seconds_total) | %.1f %% of one core |", ss.processCPU)
	w("| simulator CPU | %.1f %% of one core |", ss.cpu.sim)
	w("| PostgreSQL CPU (postmaster and backends) | %.1f %% of one core |", ss.cpu.pg)
	w("| this helper (scrapes, sampler) | %.1f %% of one core |", ss.cpu.self)
	w("| everything else on the machine | %.1f %% of one core |", ss.cpu.others)
	w("| machine busy (/proc/stat) | %.1f %% of one core (of 200 %%) |", ss.cpu.machine)
	w("| load average (1, 5, 15 min) at start → end; max 1-min | %s → %s; %.2f |", ss.loadStart, ss.loadEnd, ss.loadMax)
	w("| `vigia serve` RSS at end (peak) | %.0f MiB (%.0f MiB) |", ss.rss/1024, ss.hwm/1024)
	w("| simulator RSS; postmaster RSS | %.0f MiB; %.0f MiB |", ss.simRSS/1024, ss.pgRSS/1024)
	runs0 := ss.start.counters("vigia_probe_runs_total", "prober", "result")
	runs1 := ss.end.counters("vigia_probe_runs_total", "prober", "result")
	var keys []string
	total := 0.0
	for k, v := range runs1 {
		if v-runs0[k] > 0 {
			keys = append(keys, k)
			total += v - runs0[k]
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, (runs1[k]-runs0[k])/win))
	}
	w("| probe runs per second (expected %.0f) | %.1f (%s) |", float64(len(fleet))/c.interval.Seconds(), total/win, strings.Join(parts, ", "))
	h0 := ss.start.histograms("vigia_probe_duration_seconds", "prober")
	h1 := ss.end.histograms("vigia_probe_duration_seconds", "prober")
	var probers []string
	for p := range h1 {
		probers = append(probers, p)
	}
	slices.Sort(probers)
	for _, p := range probers {
		d := h1[p].minus(h0[p])
		if d.count() == 0 {
			continue
		}
		p50, lo50, hi50 := d.quantile(0.5)
		p99, lo99, hi99 := d.quantile(0.99)
		p999, lo999, hi999 := d.quantile(0.999)
		w("| %s probe latency p50 / p99 / p99.9 (histogram, interpolated; bucket) | %s (%s) / **%s** (%s) / %s (%s); mean %s over %.0f probes |",
			p, ms(p50), bucket(lo50, hi50), ms(p99), bucket(lo99, hi99), ms(p999), bucket(lo999, hi999), ms(d.sum/d.count()), d.count())
	}
	if len(ss.sampler) > 0 {
		slices.Sort(ss.sampler)
		w("| independent C-ECHO sampler, %d echoes, p50 / p99 / max (exact) | %s / %s / %s; %d failed |", len(ss.sampler),
			ms(nearestRank(ss.sampler, 0.5).Seconds()), ms(nearestRank(ss.sampler, 0.99).Seconds()),
			ms(ss.sampler[len(ss.sampler)-1].Seconds()), ss.samplerFailed)
	}
	w("| `vigia_probe_queue_waiting` max (mean) over %d scrapes, every %s | %.0f (%.1f) |", ss.scrapes, c.scrapeEvery, ss.queueMax, ss.queueMean)
	w("| /metrics scrape, slowest | %s |", ms(ss.scrapeMax.Seconds()))
	if len(det.downs) == 0 {
		return
	}
	w("")
	w("Detection: %d devices taken down one every %s (one per site, never a gateway or a core PACS), time from the take-down request to the device's `down` row in device_transitions. Bound: interval × (retries + 1) + 2 s = %s.",
		len(det.downs), c.spacing, c.bound())
	w("")
	w("| mode | devices | `down` rows | p50 | p99 | max | p99 ≤ %s | back `up` p50 / max |", c.bound())
	w("|---|---:|---:|---:|---:|---:|---|---:|")
	for _, mode := range []string{"refused", "blackhole", "all"} {
		var lat, back []time.Duration
		total, missing := 0, 0
		for _, td := range det.downs {
			if mode != "all" && td.mode != mode {
				continue
			}
			total++
			if td.downAt.IsZero() {
				missing++
				continue
			}
			lat = append(lat, td.downAt.Sub(td.at))
			if !td.backAt.IsZero() {
				back = append(back, td.backAt.Sub(td.upAt))
			}
		}
		if total == 0 {
			continue
		}
		slices.Sort(lat)
		slices.Sort(back)
		// A missing row counts as slower than everything measured.
		all := slices.Clone(lat)
		for range missing {
			all = append(all, time.Duration(math.MaxInt64))
		}
		sec := func(d time.Duration) string {
			if d == time.Duration(math.MaxInt64) {
				return "none"
			}
			return fmt.Sprintf("%.1f s", d.Seconds())
		}
		met := "no"
		p99 := nearestRank(all, 0.99)
		if p99 <= c.bound() {
			met = "**yes**"
		} else {
			met = "**NO**"
		}
		backs := "–"
		if len(back) > 0 {
			backs = fmt.Sprintf("%.1f s / %.1f s", nearestRank(back, 0.5).Seconds(), back[len(back)-1].Seconds())
		}
		w("| %s | %d | %d | %s | %s | %s | %s | %s |", mode, total, total-missing, sec(nearestRank(all, 0.5)), sec(p99), sec(all[len(all)-1]), met, backs)
	}
	w("")
	w("During detection (%.0f s): `vigia serve` %.1f %% of one core, simulator %.1f %%, PostgreSQL %.1f %%, machine %.1f %% of 200 %%; `vigia_probe_queue_waiting` at the end %.0f.",
		det.cpu.wall.Seconds(), det.cpu.vigia, det.cpu.sim, det.cpu.pg, det.cpu.machine, det.queueMax)
	var maxPost time.Duration
	for _, td := range det.downs {
		maxPost = max(maxPost, td.postTook)
	}
	w("Take-down requests took at most %s (the instant taken is before the request).", maxPost.Round(time.Millisecond))
}
