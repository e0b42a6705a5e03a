// Command mixed measures one `vigia serve` watching a mixed simulated fleet
// (DICOM, SNMP v2c/v3, heartbeats) across realistic network profiles: in
// phase "steady", its CPU and RSS, PostgreSQL's CPU, how late checks start
// after they are due (vigia_probe_start_lateness_seconds) and the probe
// rate, then the detection time of devices taken dark; in phase "echo", its
// CPU per DICOM echo (or per check of another -kind, such as tcp), to set
// fleets of fast and slow peers side by side.
// It prints Markdown table rows; bench/mixed.sh starts the processes and
// runs it.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func main() {
	phase := flag.String("phase", "steady", "steady or echo")
	label := flag.String("label", "", "the row's label (phase echo)")
	kind := flag.String("kind", "dicom", "the prober whose checks are counted (phase echo)")
	metricsURL := flag.String("metrics", "", "vigia's /metrics `URL`")
	control := flag.String("control", "", "the simulators' control API `URLs`, comma-separated")
	dbURL := flag.String("db", "", "PostgreSQL `URL`")
	vigiaPID := flag.Int("vigia-pid", 0, "PID of vigia serve")
	pgPID := flag.Int("pg-pid", 0, "PID of the postmaster")
	expect := flag.Int("expect", 0, "devices that must be up before measuring")
	interval := flag.Duration("interval", 10*time.Second, "probe interval of the fleet")
	retries := flag.Int("retries", 2, "probe retries of the fleet")
	warmup := flag.Duration("warmup", 60*time.Second, "wait this long once every device is up")
	window := flag.Duration("window", 120*time.Second, "measure over this long")
	down := flag.Int("down", 100, "devices taken dark to measure detection (phase steady)")
	flag.Parse()
	db, err := sql.Open("postgres", *dbURL)
	if err != nil {
		fail(err)
	}
	defer db.Close()
	ctx := context.Background()
	waitUp(ctx, db, *expect, *interval)
	logf("every device has a state (%s); warming up %s", states(ctx, db), *warmup)
	time.Sleep(*warmup)

	before := snap(*metricsURL, *vigiaPID, *pgPID)
	logf("measuring over %s", *window)
	time.Sleep(*window)
	after := snap(*metricsURL, *vigiaPID, *pgPID)
	secs := after.at.Sub(before.at).Seconds()
	vigiaCPU, pgCPU := (after.vigia-before.vigia)/secs*100, (after.pg-before.pg)/secs*100
	runs := func(prober string) float64 { return after.runs[prober] - before.runs[prober] }

	if *phase == "echo" {
		echoes := runs(*kind)
		if echoes == 0 {
			fail(fmt.Errorf("no %s check in the window", *kind))
		}
		dur := after.durations[*kind].minus(before.durations[*kind])
		fmt.Printf("| %s | %.0f | %.1f %% | %.0f µs | %s | %s |\n", *label, echoes/secs, vigiaCPU,
			(after.vigia-before.vigia)/echoes*1e6, ms(dur.quantile(0.5)), ms(dur.quantile(0.99)))
		return
	}
	late := after.lateness.minus(before.lateness)
	rss, hwm := rssMB(*vigiaPID)
	row := func(what, value string) { fmt.Printf("| %s | %s |\n", what, value) }
	row("vigia serve CPU", fmt.Sprintf("**%.1f %%** of one core (acceptance: ≤ 100 %%)", vigiaCPU))
	row("vigia serve RSS (peak)", fmt.Sprintf("**%.0f MB** (%.0f MB; acceptance: ≤ 400 MB)", rss, hwm))
	row("PostgreSQL CPU (postmaster and backends)", fmt.Sprintf("%.1f %% of one core", pgCPU))
	row("check start lateness p50 / p99 / max bucket", fmt.Sprintf("%s / **%s** / ≤ %s over %.0f checks (acceptance: p99 ≤ 1 s)",
		ms(late.quantile(0.5)), ms(late.quantile(0.99)), ms(late.maxBound()), late.count()))
	var probers []string
	for p := range after.runs {
		probers = append(probers, p)
	}
	slices.Sort(probers)
	for _, p := range probers {
		row("probes/s "+p, fmt.Sprintf("%.0f (failed %.0f)", runs(p)/secs, after.failed[p]-before.failed[p]))
	}
	row("device states after the window", states(ctx, db))
	fmt.Printf("| machine load average after | %s |\n", loadAvg())
	detection(ctx, db, *control, *down, *interval, *retries, row)
}

// ---- detection ----

type simDevice struct {
	ID       string `json:"id"`
	Site     string `json:"site"`
	Gateway  bool   `json:"gateway"`
	AETitle  string `json:"ae_title"`
	SNMPPort int    `json:"snmp_port"`
	Profile  string `json:"profile"`
}

// detection takes n devices dark (half DICOM, half SNMP, never a gateway,
// spread over the sites), spaced 100 ms apart, and waits for each one's
// outage: detection is from dark to the failing probe that decided it.
func detection(ctx context.Context, db *sql.DB, control string, n int, interval time.Duration, retries int, row func(string, string)) {
	if n == 0 {
		return
	}
	var all []simDevice
	owner := map[string]string{} // device id → its simulator's control URL
	for c := range strings.SplitSeq(control, ",") {
		resp, err := http.Get(c + "/devices")
		if err != nil {
			fail(err)
		}
		var some []simDevice
		err = json.NewDecoder(resp.Body).Decode(&some)
		resp.Body.Close()
		if err != nil {
			fail(err)
		}
		for _, d := range some {
			owner[d.ID] = c
		}
		all = append(all, some...)
	}
	// Half DICOM nodes, half SNMP agents, one per site while sites last.
	var picked []simDevice
	used := map[string]bool{}
	for _, want := range []func(simDevice) bool{
		func(d simDevice) bool { return d.AETitle != "" },
		func(d simDevice) bool { return d.SNMPPort != 0 },
	} {
		quota := len(picked) + (n-len(picked)+1)/2
		if len(picked) > 0 {
			quota = n
		}
		for pass := 0; pass < 2 && len(picked) < quota; pass++ {
			for _, d := range all {
				if len(picked) >= quota || d.Gateway || used[d.ID] || !want(d) || pass == 0 && used["site:"+d.Site] {
					continue
				}
				picked = append(picked, d)
				used[d.ID], used["site:"+d.Site] = true, true
			}
		}
	}
	dark := map[string]time.Time{}
	for _, d := range picked {
		dark[d.ID] = time.Now()
		post(owner[d.ID] + "/devices/" + d.ID + "/down")
		time.Sleep(100 * time.Millisecond)
	}
	bound := interval*time.Duration(retries+1) + 2*time.Second
	ids := make([]string, 0, len(picked))
	for _, d := range picked {
		ids = append(ids, d.ID)
	}
	started := map[string]time.Time{}
	deadline := time.Now().Add(2*bound + 60*time.Second)
	for len(started) < len(ids) && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		rows, err := db.QueryContext(ctx, `SELECT device_id, started_at FROM outages WHERE device_id = ANY($1)`, pq.Array(ids))
		if err != nil {
			continue
		}
		for rows.Next() {
			var id string
			var at time.Time
			if rows.Scan(&id, &at) == nil {
				started[id] = at
			}
		}
		rows.Close()
	}
	var took []float64
	byProfile := map[string][]float64{}
	for _, d := range picked {
		if at, ok := started[d.ID]; ok {
			s := at.Sub(dark[d.ID]).Seconds()
			took = append(took, s)
			byProfile[d.Profile] = append(byProfile[d.Profile], s)
		}
	}
	for _, d := range picked {
		post(owner[d.ID] + "/devices/" + d.ID + "/up")
	}
	slices.Sort(took)
	row("detection (dark → deciding probe) p50 / p99 / max", fmt.Sprintf("%s / **%s** / %s of %d devices, %d never detected (acceptance: p99 ≤ %s)",
		sec(pct(took, 0.5)), sec(pct(took, 0.99)), sec(pct(took, 1)), len(picked), len(picked)-len(took), bound))
	var profiles []string
	for p := range byProfile {
		profiles = append(profiles, p)
	}
	slices.Sort(profiles)
	for _, p := range profiles {
		v := byProfile[p]
		slices.Sort(v)
		name := p
		if name == "" {
			name = "lan"
		}
		row("  detection p99, "+name, fmt.Sprintf("%s (%d devices)", sec(pct(v, 0.99)), len(v)))
	}
}

func post(url string) {
	resp, err := http.Post(url, "", nil)
	if err != nil {
		fail(err)
	}
	resp.Body.Close()
}

func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// waitUp waits until the probes have decided a state for expect devices
// (at most 10 intervals + 5 min): across slow links some are degraded, not
// up, which is what a NOC would see too.
func waitUp(ctx context.Context, db *sql.DB, expect int, interval time.Duration) {
	deadline := time.Now().Add(10*interval + 5*time.Minute)
	for {
		var decided int
		db.QueryRowContext(ctx, `SELECT count(*) FROM device_states WHERE state <> 'unknown'`).Scan(&decided)
		if decided >= expect {
			return
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("only %d of %d devices have a state", decided, expect))
		}
		time.Sleep(2 * time.Second)
	}
}

// states is the devices' state distribution: "up 22433, degraded 67".
func states(ctx context.Context, db *sql.DB) string {
	rows, err := db.QueryContext(ctx, `SELECT state, count(*) FROM device_states GROUP BY state ORDER BY count(*) DESC`)
	if err != nil {
		return "?"
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var st string
		var n int
		if rows.Scan(&st, &n) == nil {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return strings.Join(parts, ", ")
}

// ---- /proc and /metrics ----

type snapshot struct {
	at           time.Time
	vigia, pg    float64 // CPU seconds
	runs, failed map[string]float64
	lateness     hist
	durations    map[string]hist
}

func snap(metricsURL string, vigiaPID, pgPID int) snapshot {
	s := snapshot{at: time.Now(), vigia: procCPU(vigiaPID, false), pg: treeCPU(pgPID), runs: map[string]float64{},
		failed: map[string]float64{}, durations: map[string]hist{}}
	resp, err := http.Get(metricsURL)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		fail(err)
	}
	for _, m := range mfs["vigia_probe_runs_total"].GetMetric() {
		p := label(m, "prober")
		s.runs[p] += m.GetCounter().GetValue()
		if label(m, "result") == "failed" {
			s.failed[p] += m.GetCounter().GetValue()
		}
	}
	if ms := mfs["vigia_probe_start_lateness_seconds"].GetMetric(); len(ms) == 1 {
		s.lateness = histOf(ms[0])
	}
	for _, m := range mfs["vigia_probe_duration_seconds"].GetMetric() {
		s.durations[label(m, "prober")] = histOf(m)
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// hist is a cumulative histogram: upper bounds (the last +Inf) and counts.
type hist struct{ bounds, counts []float64 }

func histOf(m *dto.Metric) hist {
	var h hist
	for _, b := range m.GetHistogram().GetBucket() {
		h.bounds = append(h.bounds, b.GetUpperBound())
		h.counts = append(h.counts, float64(b.GetCumulativeCount()))
	}
	h.bounds = append(h.bounds, math.Inf(1))
	h.counts = append(h.counts, float64(m.GetHistogram().GetSampleCount()))
	return h
}

func (h hist) minus(o hist) hist {
	d := hist{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if len(o.counts) == len(h.counts) {
		for i := range d.counts {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

func (h hist) count() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile interpolates inside the bucket holding the rank, as PromQL's
// histogram_quantile does.
func (h hist) quantile(q float64) float64 {
	n := h.count()
	if n == 0 {
		return math.NaN()
	}
	rank := q * n
	i := 0
	for i < len(h.counts)-1 && h.counts[i] < rank {
		i++
	}
	if math.IsInf(h.bounds[i], 1) {
		return h.bounds[len(h.bounds)-2]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	if h.counts[i] == below {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-below)/(h.counts[i]-below)
}

// maxBound is the upper bound of the highest bucket with an observation.
func (h hist) maxBound() float64 {
	for i := range h.counts {
		if h.counts[i] == h.count() {
			return h.bounds[i]
		}
	}
	return math.NaN()
}

const clkTck = 100.0 // USER_HZ on Linux

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

func atof(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }

// procCPU is a process's user+system CPU seconds (with its reaped
// children's when asked).
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
		if f := statFields(child); len(f) >= 15 && f[1] == strconv.Itoa(pid) {
			total += (atof(f[11]) + atof(f[12])) / clkTck
		}
	}
	return total
}

func rssMB(pid int) (rss, hwm float64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = atof(f[1]) / 1024
		case "VmHWM:":
			hwm = atof(f[1]) / 1024
		}
	}
	return rss, hwm
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(s float64) string {
	if math.IsNaN(s) {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", s*1000)
}

func sec(s float64) string {
	if math.IsNaN(s) {
		return "—"
	}
	return fmt.Sprintf("%.1f s", s)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05")+" bench-mixed: "+format+"\n", a...)
}

func fail(err error) {
	logf("%v", err)
	os.Exit(1)
}
