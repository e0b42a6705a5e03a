// Command snmp measures the CPU one SNMP device poll costs `vigia serve`
// and Prometheus snmp_exporter, polling the same snmpsim agents for the
// same OIDs at the same interval. bench/snmp.sh starts the processes and
// calls it once per phase, then once more for the report:
//
//	snmp vigia    -metrics URL -pid PID ...   # vigia serve is polling
//	snmp exporter -exporter URL -targets F ... # drives snmp_exporter like Prometheus
//	snmp report   -in results.tsv              # Markdown tables and ratios
//
// A phase waits -warmup, then measures -window: the polls done (vigia's
// vigia_probe_runs_total{prober="snmp"}, or the scrapes this command made
// that returned sysUpTime) and the utime+stime of the poller's process
// from /proc. It appends one tab-separated line to -out.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: snmp vigia|exporter|report [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "vigia", "exporter":
		err = phase(ctx, os.Args[1], os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench snmp:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench snmp: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

type phaseConfig struct {
	metricsURL, exporterURL, targets, out, label string
	pid, pgPID                                   int
	simPIDs                                      string
	interval, warmup, window                     time.Duration
	devices                                      int
}

func phase(ctx context.Context, mode string, args []string) error {
	var c phaseConfig
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&c.metricsURL, "metrics", "", "vigia serve's /metrics `URL` (vigia)")
	fs.StringVar(&c.exporterURL, "exporter", "", "snmp_exporter's base `URL` (exporter)")
	fs.StringVar(&c.targets, "targets", "", "`file` of \"target module\" lines to scrape (exporter)")
	fs.StringVar(&c.out, "out", "", "append the result line to this `file`")
	fs.StringVar(&c.label, "label", "", "SNMP version label: v2c or v3")
	fs.IntVar(&c.pid, "pid", 0, "PID of the poller (vigia serve or snmp_exporter)")
	fs.IntVar(&c.pgPID, "pg-pid", 0, "PID of the postmaster (its children counted too); 0: none")
	fs.StringVar(&c.simPIDs, "sim-pids", "", "comma-separated PIDs of the snmpsim processes")
	fs.DurationVar(&c.interval, "interval", 10*time.Second, "poll interval of every device")
	fs.DurationVar(&c.warmup, "warmup", 30*time.Second, "wait this long before measuring")
	fs.DurationVar(&c.window, "window", 90*time.Second, "measurement window")
	fs.IntVar(&c.devices, "devices", 0, "devices polled (for the report)")
	_ = fs.Parse(args)
	if c.pid == 0 || c.out == "" {
		return errors.New("-pid and -out are required")
	}
	sims, err := parsePIDs(c.simPIDs)
	if err != nil {
		return err
	}

	var sc *scraper
	if mode == "exporter" {
		sc, err = newScraper(c.exporterURL, c.targets, c.interval)
		if err != nil {
			return err
		}
		c.devices = len(sc.targets)
		go sc.run(ctx)
	}
	logf("%s %s: %d devices, warm-up %s", mode, c.label, c.devices, c.warmup)
	if err := sleep(ctx, c.warmup); err != nil {
		return err
	}

	polls := func() (ok, all float64, err error) {
		if sc != nil {
			ok, all := sc.counts()
			return ok, all, nil
		}
		return vigiaPolls(c.metricsURL)
	}
	ok0, all0, err := polls()
	if err != nil {
		return err
	}
	s0 := snap(c.pid, sims, c.pgPID)
	if sc != nil {
		sc.measure(true)
	}
	var maxLoad float64
	end := time.Now().Add(c.window)
	for time.Now().Before(end) {
		if err := sleep(ctx, min(5*time.Second, time.Until(end))); err != nil {
			return err
		}
		if l, _ := loadAvg(); l > maxLoad {
			maxLoad = l
		}
		if !alive(c.pid) {
			return fmt.Errorf("%s (pid %d) exited during the window", mode, c.pid)
		}
	}
	s1 := snap(c.pid, sims, c.pgPID)
	ok1, all1, err := polls()
	if err != nil {
		return err
	}
	var lat []time.Duration
	if sc != nil {
		lat = sc.measure(false)
	}
	secs := s1.at.Sub(s0.at).Seconds()
	okN, allN := ok1-ok0, all1-all0
	r := result{
		mode: mode, label: c.label, devices: c.devices, secs: secs,
		polls: allN, okPolls: okN,
		cpu: s1.poller - s0.poller, sim: s1.sim - s0.sim, pg: s1.pg - s0.pg,
		busy: s1.busy - s0.busy, total: s1.total - s0.total,
		load0: s0.load, load1: s1.load, maxLoad: maxLoad,
		p50: quantile(lat, .5), p99: quantile(lat, .99),
		at: time.Now().UTC(),
	}
	logf("%s %s: %.0f polls (%.1f/s, %.1f%% ok), %.2f s CPU = %.0f µs/poll, %.1f%% of a core; snmpsim %.0f%%",
		mode, c.label, allN, allN/secs, 100*okN/max(allN, 1), r.cpu, 1e6*r.cpu/max(okN, 1), 100*r.cpu/secs, 100*r.sim/secs)
	f, err := os.OpenFile(c.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, r.line())
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func parsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// vigiaPolls reads vigia_probe_runs_total{prober="snmp"}: ok (ok and
// degraded: the agent answered) and all results.
func vigiaPolls(url string) (ok, all float64, err error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0, fmt.Errorf("parse %s: %w", url, err)
	}
	fam := fams["vigia_probe_runs_total"]
	if fam == nil {
		return 0, 0, nil
	}
	for _, m := range fam.Metric {
		var prober, res string
		for _, l := range m.Label {
			switch l.GetName() {
			case "prober":
				prober = l.GetValue()
			case "result":
				res = l.GetValue()
			}
		}
		if prober != "snmp" {
			continue
		}
		v := m.GetCounter().GetValue()
		all += v
		if res == "ok" || res == "degraded" {
			ok += v
		}
	}
	return ok, all, nil
}

// ---- the snmp_exporter driver ----

// scraper hits /snmp?target=T&module=M once per interval per target, each
// target at its own phase of the interval, as Prometheus spreads a scrape
// pool; a scrape still running when its next turn comes skips that turn
// (Prometheus does the same), and scrapes time out after the interval.
type scraper struct {
	base     string
	targets  [][2]string
	interval time.Duration
	client   *http.Client

	mu        sync.Mutex
	ok, all   float64
	measuring bool
	lat       []time.Duration
}

func newScraper(base, file string, interval time.Duration) (*scraper, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &scraper{base: strings.TrimSuffix(base, "/"), interval: interval,
		client: &http.Client{Timeout: interval, Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxIdleConns: 512}}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			s.targets = append(s.targets, [2]string{f[0], f[1]})
		}
	}
	if len(s.targets) == 0 {
		return nil, fmt.Errorf("%s: no targets", file)
	}
	return s, sc.Err()
}

func (s *scraper) run(ctx context.Context) {
	start := time.Now()
	step := s.interval / time.Duration(len(s.targets))
	for i, t := range s.targets {
		go func() {
			url := fmt.Sprintf("%s/snmp?target=%s&module=%s", s.base, t[0], t[1])
			next := start.Add(time.Duration(i) * step)
			for {
				if sleep(ctx, time.Until(next)) != nil {
					return
				}
				t0 := time.Now()
				ok := s.scrape(ctx, url)
				d := time.Since(t0)
				s.mu.Lock()
				s.all++
				if ok {
					s.ok++
					if s.measuring {
						s.lat = append(s.lat, d)
					}
				}
				s.mu.Unlock()
				for next = next.Add(s.interval); next.Before(time.Now()); {
					next = next.Add(s.interval)
				}
			}
		}()
	}
}

func (s *scraper) scrape(ctx context.Context, url string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	// A failed walk still answers 200 with what it got: the poll counts only
	// if sysUpTime came back and no walk failed.
	return err == nil && resp.StatusCode == http.StatusOK && strings.Contains(string(b), "\nsysUpTime ")
}

func (s *scraper) counts() (ok, all float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.all
}

// measure turns latency recording on or off; off returns what was recorded.
func (s *scraper) measure(on bool) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.measuring = on
	if on {
		s.lat = nil
		return nil
	}
	return slices.Clone(s.lat)
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(q*float64(len(s))))-1)]
}

// ---- /proc ----

const clkTck = 100.0 // USER_HZ

type cpuSnap struct {
	at              time.Time
	poller, sim, pg float64
	busy, total     float64
	load            string
}

func snap(pid int, sims []int, pg int) cpuSnap {
	s := cpuSnap{at: time.Now()}
	s.poller = procCPU(pid, false)
	for _, p := range sims {
		s.sim += procCPU(p, false)
	}
	if pg != 0 {
		s.pg = treeCPU(pg)
	}
	s.busy, s.total = machineCPU()
	_, s.load = loadAvg()
	return s
}

func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func alive(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && f[0] != "Z"
}

// procCPU is utime+stime (all threads), plus reaped children's with
// reaped.
func procCPU(pid int, reaped bool) float64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	t := atof(f[11]) + atof(f[12])
	if reaped {
		t += atof(f[13]) + atof(f[14])
	}
	return t / clkTck
}

// treeCPU is a postmaster's CPU with its live and reaped children's.
func treeCPU(pid int) float64 {
	total := procCPU(pid, true)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(child); len(f) > 14 && f[1] == strconv.Itoa(pid) {
			total += (atof(f[11]) + atof(f[12])) / clkTck
		}
	}
	return total
}

func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, v := range strings.Fields(line)[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		x := atof(v) / clkTck
		total += x
		if i != 3 && i != 4 {
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

func atof(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }

// ---- results ----

type result struct {
	mode, label               string
	devices                   int
	secs, polls, okPolls      float64
	cpu, sim, pg, busy, total float64
	load0, load1              string
	maxLoad                   float64
	p50, p99                  time.Duration
	at                        time.Time
}

func (r result) line() string {
	return strings.Join([]string{r.mode, r.label, strconv.Itoa(r.devices), ff(r.secs), ff(r.polls), ff(r.okPolls),
		ff(r.cpu), ff(r.sim), ff(r.pg), ff(r.busy), ff(r.total), r.load0, r.load1, ff(r.maxLoad),
		ff(r.p50.Seconds()), ff(r.p99.Seconds()), r.at.Format(time.RFC3339)}, "\t")
}

func ff(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }

func parseResult(l string) (result, error) {
	f := strings.Split(l, "\t")
	if len(f) != 17 {
		return result{}, fmt.Errorf("bad result line %q", l)
	}
	n, _ := strconv.Atoi(f[2])
	at, _ := time.Parse(time.RFC3339, f[16])
	return result{mode: f[0], label: f[1], devices: n, secs: atof(f[3]), polls: atof(f[4]), okPolls: atof(f[5]),
		cpu: atof(f[6]), sim: atof(f[7]), pg: atof(f[8]), busy: atof(f[9]), total: atof(f[10]),
		load0: f[11], load1: f[12], maxLoad: atof(f[13]),
		p50: time.Duration(atof(f[14]) * 1e9), p99: time.Duration(atof(f[15]) * 1e9), at: at}, nil
}

// cpuPerPoll counts answered polls only: a poll that timed out costs its
// poller little and must not make it look cheaper.
func (r result) cpuPerPoll() float64 { return r.cpu / max(r.okPolls, 1) }

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	in := fs.String("in", "", "results `file`")
	_ = fs.Parse(args)
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var rs []result
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		r, err := parseResult(l)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	w := func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	w("| round | poller | SNMP | devices | polls/s (expected) | answered | poller CPU | CPU per answered poll | p50 / p99 scrape | agents' CPU (snmpsim or snmpd) | PostgreSQL CPU | machine busy | load avg start → end |")
	w("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	round := map[string]int{}
	for _, r := range rs {
		k := fmt.Sprint(r.mode, r.label, r.devices)
		round[k]++
		name := "vigia serve"
		lat := "—"
		if r.mode == "exporter" {
			name = "snmp_exporter"
			lat = fmt.Sprintf("%.1f / %.1f ms", r.p50.Seconds()*1e3, r.p99.Seconds()*1e3)
		}
		pg := "—"
		if r.mode == "vigia" {
			pg = fmt.Sprintf("%.1f %%", 100*r.pg/r.secs)
		}
		w("| %d | %s | %s | %d | %.1f (%.1f) | %.2f %% | %.1f %% of a core | **%.0f µs** | %s | %.1f %% | %s | %.0f %% of 200 | %s → %s |",
			round[k], name, r.label, r.devices, r.polls/r.secs, float64(r.devices)/10, 100*r.okPolls/max(r.polls, 1),
			100*r.cpu/r.secs, 1e6*r.cpuPerPoll(), lat, 100*r.sim/r.secs, pg, 200*r.busy/max(r.total, 1), r.load0, r.load1)
	}
	w("")

	// Per poller, version and size: medians over rounds of the poll rate,
	// the CPU rate and the CPU per answered poll.
	type key struct {
		mode, label string
		devices     int
	}
	type agg struct{ pollRate, cpuRate, perPoll []float64 }
	aggs := map[key]*agg{}
	sizes := map[int]bool{}
	for _, r := range rs {
		k := key{r.mode, r.label, r.devices}
		if aggs[k] == nil {
			aggs[k] = &agg{}
		}
		a := aggs[k]
		a.pollRate = append(a.pollRate, r.okPolls/r.secs)
		a.cpuRate = append(a.cpuRate, r.cpu/r.secs)
		a.perPoll = append(a.perPoll, r.cpuPerPoll())
		sizes[r.devices] = true
	}
	ns := make([]int, 0, len(sizes))
	for n := range sizes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	w("Whole-process CPU per answered poll (median of rounds), same devices, same interval:")
	w("")
	w("| SNMP | devices | polls/s | vigia serve | snmp_exporter | ratio vigia / exporter |")
	w("|---|---:|---:|---:|---:|---:|")
	for _, label := range []string{"v2c", "v3"} {
		for _, n := range ns {
			v, e := aggs[key{"vigia", label, n}], aggs[key{"exporter", label, n}]
			if v == nil {
				continue
			}
			mv := median(v.perPoll)
			if e == nil {
				w("| %s | %d | %.0f | %.0f µs | — | — |", label, n, median(v.pollRate), 1e6*mv)
				continue
			}
			me := median(e.perPoll)
			w("| %s | %d | %.0f | %.0f µs | %.0f µs | **%.2f** |", label, n, median(v.pollRate), 1e6*mv, 1e6*me, mv/me)
		}
	}
	if len(ns) < 2 {
		return nil
	}
	lo, hi := ns[0], ns[len(ns)-1]
	w("")
	extra := "**extrapolated**, not measured"
	if hi >= 10000 {
		extra = "measured up to the larger size"
	}
	w("Marginal CPU per poll between %d and %d devices (Δ CPU rate / Δ poll rate, medians), and the line through both points at 10 000 devices (%s):", lo, hi, extra)
	w("")
	w("| SNMP | poller | fixed CPU (intercept) | marginal CPU per poll | ratio vigia / exporter | devices per core at 10 s | CPU for 10 000 devices at 10 s |")
	w("|---|---|---:|---:|---:|---:|---:|")
	for _, label := range []string{"v2c", "v3"} {
		var slopes [2]float64
		for i, mode := range []string{"vigia", "exporter"} {
			a, b := aggs[key{mode, label, lo}], aggs[key{mode, label, hi}]
			if a == nil || b == nil {
				continue
			}
			pa, pb, ca, cb := median(a.pollRate), median(b.pollRate), median(a.cpuRate), median(b.cpuRate)
			slope := (cb - ca) / (pb - pa)
			fixed := ca - slope*pa
			slopes[i] = slope
			name := map[string]string{"vigia": "vigia serve", "exporter": "snmp_exporter"}[mode]
			ratio := ""
			if i == 1 && slopes[0] > 0 {
				ratio = fmt.Sprintf("**%.2f**", slopes[0]/slope)
			}
			w("| %s | %s | %.1f %% of a core | %.0f µs | %s | %.0f | %.0f %% of one core |", label, name, 100*fixed, 1e6*slope, ratio,
				(1-fixed)/(slope/10), 100*(fixed+slope*1000))
		}
	}
	return nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
