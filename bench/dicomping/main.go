// Command dicomping measures what a C-ECHO costs the client: echoes per
// second and CPU (user+sys) per echo of dicomping.Echo against Vigía's own
// Verification SCP and against dcmtk's storescp, next to dcmtk's echoscu
// run as one process per echo (as a Nagios-style check does), to a bare
// TCP connect+close, the floor any echo pays, and to two measuring sticks
// that do the same exchanges (bound.go): the kernel's own cost, and the
// simplest Go client's.
//
// The servers run as separate processes so that their CPU is not counted:
// only the client's is. Run it through bench/dicomping.sh, which builds
// vigia first and writes a Markdown section for BENCHMARKS.md to stdout.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

func main() {
	vigia := flag.String("vigia", "", "path of the vigia binary that serves `vigia simulate dicom`")
	n := flag.Int("n", 10000, "echoes (and bare connects) per in-process mode")
	nStorescp := flag.Int("n-storescp", 300, "echoes (and bare connects) against storescp, which answers slowly")
	nProc := flag.Int("n-echoscu", 300, "echoscu processes per target")
	loop := flag.String("loop", "", "only run `op` (echo, bound, netconn, connect or connect-nokeepalive) -n times against -addr, for strace -c -f or perf")
	addr := flag.String("addr", "", "target of -loop")
	ae := flag.String("ae", "SIM", "called AE title of -loop echoes")
	flag.Parse()
	if *loop != "" {
		if err := runLoop(*loop, *addr, *ae, *n); err != nil {
			fmt.Fprintln(os.Stderr, "bench dicomping:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*vigia, *n, *nStorescp, *nProc, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench dicomping:", err)
		os.Exit(1)
	}
}

// ops are the operations measured in-process against a target.
func ops(addr, ae string) (echo, connect, connectNoKeepAlive func() error) {
	opts := dicomping.Options{CalledAETitle: ae, Timeout: 5 * time.Second}
	echo = func() error { _, err := dicomping.Echo(context.Background(), addr, opts); return err }
	dial := func(d *net.Dialer) func() error {
		return func() error {
			c, err := d.DialContext(context.Background(), "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		}
	}
	// The floor is Go's plain connect+close, default Dialer. The variant
	// without keep-alive is shown too, as dicomping does without it when
	// its deadline is sooner than the first keep-alive probe could be.
	return echo, dial(&net.Dialer{}), dial(&net.Dialer{KeepAlive: -1})
}

// runLoop runs one operation n times, nothing else, so that strace -c -f
// counts the system calls of exactly that.
func runLoop(op, addr, ae string, n int) error {
	echo, connect, connectNoKA := ops(addr, ae)
	f := map[string]func() error{"echo": echo, "connect": connect, "connect-nokeepalive": connectNoKA}[op]
	if f == nil && (op == "bound" || op == "netconn") {
		sts, err := sticks(addr, ae)
		if err != nil {
			return err
		}
		for _, s := range sts {
			if s.key == op {
				f = s.run
			}
		}
	}
	if f == nil || addr == "" {
		return fmt.Errorf("-loop wants echo, bound, netconn, connect or connect-nokeepalive, and -addr")
	}
	for i := range n {
		if err := f(); err != nil {
			return fmt.Errorf("%s %d: %w", op, i, err)
		}
	}
	return nil
}

// measurement is one row of the results.
type measurement struct {
	client, target string
	n              int
	wall           time.Duration
	cpu            time.Duration // client user+sys
}

func (m measurement) perSecond() float64      { return float64(m.n) / m.wall.Seconds() }
func (m measurement) cpuPerOp() time.Duration { return m.cpu / time.Duration(m.n) }

func run(vigia string, nOurs, nStorescp, nProc int, out io.Writer) error {
	if vigia == "" {
		return fmt.Errorf("-vigia is required")
	}
	echoscu, err := exec.LookPath("echoscu")
	if err != nil {
		return fmt.Errorf("echoscu (dcmtk) not found: %w", err)
	}
	storescpPath, err := exec.LookPath("storescp")
	if err != nil {
		return fmt.Errorf("storescp (dcmtk) not found: %w", err)
	}
	ours, stopOurs, err := startVigia(vigia)
	if err != nil {
		return err
	}
	defer stopOurs()
	storescp, stopStorescp, err := startStorescp(storescpPath)
	if err != nil {
		return err
	}
	defer stopStorescp()

	// The measuring sticks run only against our server, which answers in
	// microseconds: storescp takes tens of milliseconds per echo, and a
	// thread blocked that long in a running Go program is interrupted by
	// the runtime's monitor, so there the lower bound would measure the
	// runtime, not the kernel.
	targets := []struct {
		name, addr, ae string
		n              int
		sticks         bool
	}{
		{"vigia simulate dicom", ours, "SIM", nOurs, true},
		{"dcmtk storescp", storescp, "STORESCP", nStorescp, false},
	}
	var results []targetResult
	for _, t := range targets {
		echo, connect, connectNoKA := ops(t.addr, t.ae)
		var sts []op
		if t.sticks {
			var err error
			if sts, err = sticks(t.addr, t.ae); err != nil {
				return err
			}
		}
		// Warm up all (page faults, first GC cycles, server caches).
		for range min(200, t.n) {
			if err := echo(); err != nil {
				return fmt.Errorf("warm-up echo %s: %w", t.name, err)
			}
			connect()
			connectNoKA()
			for _, s := range sts {
				if err := s.run(); err != nil {
					return fmt.Errorf("warm-up %s %s: %w", s.name, t.name, err)
				}
			}
		}
		r, err := measureInterleaved(t.name, t.n, connect, connectNoKA, echo, sts)
		if err != nil {
			return err
		}
		host, port, _ := net.SplitHostPort(t.addr)
		r.proc, err = measureProcesses("echoscu (process per echo)", t.name, nProc, echoscu, "-aec", t.ae, host, port)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	report(out, results)
	return nil
}

// op is an operation measured in batches: key names it for -loop, name in
// the results.
type op struct {
	key, name string
	run       func() error
}

// targetResult is what was measured against one target.
type targetResult struct {
	floor, floorNoKA, ping, proc measurement
	// Median over rounds of the echo/connect CPU ratio, against each floor.
	median, medianNoKA float64
	sticks             []stickResult
}

// stickResult is a measuring stick's row and the median over rounds of its
// CPU ratio to the floor.
type stickResult struct {
	measurement
	median float64
}

// rounds interleaves the floor and the echo measurements so that load
// from other processes on the machine hits them alike.
const rounds = 20

// measureInterleaved runs n bare connects (with and without keep-alive),
// n echoes and n of each measuring stick in alternating batches, reporting
// this process's CPU for each, and the median over rounds of the CPU
// ratios to the floor.
func measureInterleaved(target string, n int, connect, connectNoKA, echo func() error, sticks []op) (targetResult, error) {
	r := targetResult{
		floor:     measurement{client: "bare TCP connect+close (Go, default Dialer)", target: target},
		floorNoKA: measurement{client: "bare TCP connect+close (Go, keep-alive off)", target: target},
		ping:      measurement{client: "dicomping.Echo", target: target},
		sticks:    make([]stickResult, len(sticks)),
	}
	for i, s := range sticks {
		r.sticks[i].measurement = measurement{client: s.name, target: target}
	}
	var perRound, perRoundNoKA []float64
	perRoundStick := make([][]float64, len(sticks))
	for i := range rounds {
		batch := n / rounds
		if i == rounds-1 {
			batch = n - (rounds-1)*(n/rounds)
		}
		fc, err := timeBatch(&r.floor, batch, connect)
		if err != nil {
			return r, err
		}
		ec, err := timeBatch(&r.ping, batch, echo)
		if err != nil {
			return r, err
		}
		kc, err := timeBatch(&r.floorNoKA, batch, connectNoKA)
		if err != nil {
			return r, err
		}
		perRound = append(perRound, float64(ec)/float64(fc))
		perRoundNoKA = append(perRoundNoKA, float64(ec)/float64(kc))
		for j, s := range sticks {
			sc, err := timeBatch(&r.sticks[j].measurement, batch, s.run)
			if err != nil {
				return r, err
			}
			perRoundStick[j] = append(perRoundStick[j], float64(sc)/float64(fc))
		}
	}
	r.median, r.medianNoKA = median(perRound), median(perRoundNoKA)
	for j := range sticks {
		r.sticks[j].median = median(perRoundStick[j])
	}
	return r, nil
}

func median(v []float64) float64 {
	sort.Float64s(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// timeBatch runs op batch times, adds wall and CPU to m, returns the CPU.
func timeBatch(m *measurement, batch int, op func() error) (time.Duration, error) {
	runtime.GC()
	before := selfCPU()
	start := time.Now()
	for i := range batch {
		if err := op(); err != nil {
			return 0, fmt.Errorf("%s to %s, iteration %d: %w", m.client, m.target, m.n+i, err)
		}
	}
	cpu := selfCPU() - before
	m.wall += time.Since(start)
	m.cpu += cpu
	m.n += batch
	return cpu, nil
}

// measureProcesses runs a program n times and sums the children's CPU.
func measureProcesses(client, target string, n int, name string, args ...string) (measurement, error) {
	var cpu time.Duration
	start := time.Now()
	for i := range n {
		cmd := exec.Command(name, args...)
		if outErr, err := cmd.CombinedOutput(); err != nil {
			return measurement{}, fmt.Errorf("%s to %s, run %d: %v: %s", client, target, i, err, outErr)
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return measurement{client: client, target: target, n: n, wall: time.Since(start), cpu: cpu}, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // cannot fail for RUSAGE_SELF with a valid pointer
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var listening = regexp.MustCompile(`listening on (\S+)`)

func startVigia(path string) (string, func(), error) {
	cmd := exec.Command(path, "simulate", "dicom", "--listen", "127.0.0.1:0", "--ae", "SIM")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", path, err)
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := listening.FindStringSubmatch(line)
	if err != nil || m == nil {
		stop()
		return "", nil, fmt.Errorf("vigia simulate dicom did not report its address: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return m[1], stop, nil
}

func startStorescp(path string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "bench-storescp-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(path, "--aetitle", "STORESCP", "--output-directory", dir, strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); os.RemoveAll(dir) }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("storescp not listening on %s", addr)
}

func report(w io.Writer, results []targetResult) {
	fmt.Fprintf(w, "Measured %s on %s, %d CPUs (%s), %s, %s.\n\n", time.Now().Format("2006-01-02 15:04 MST"),
		cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), "loopback")
	fmt.Fprintf(w, "| client | target | n | echoes/s (sequential) | client CPU per op (user+sys) |\n|---|---|---:|---:|---:|\n")
	for _, t := range results {
		rows := []measurement{t.floor, t.floorNoKA, t.ping}
		for _, st := range t.sticks {
			rows = append(rows, st.measurement)
		}
		for _, r := range append(rows, t.proc) {
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s |\n", r.client, r.target, r.n, r.perSecond(), fmtDur(r.cpuPerOp()))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Acceptance (client CPU per echo, same run):\n\n")
	for _, t := range results {
		vsProc := float64(t.proc.cpuPerOp()) / float64(t.ping.cpuPerOp())
		vsFloor := float64(t.ping.cpuPerOp()) / float64(t.floor.cpuPerOp())
		vsNoKA := float64(t.ping.cpuPerOp()) / float64(t.floorNoKA.cpuPerOp())
		fmt.Fprintf(w, "- against %s: echoscu costs **%.0f×** dicomping (target ≥ 20×: %s); dicomping costs **%.2f×** a bare TCP connect+close (default Dialer) over the whole run, median of %d interleaved rounds %.2f× (target ≤ 3×: %s); against a connect+close with keep-alive off, %.2f× over the run, median %.2f× (%s)\n",
			t.ping.target, vsProc, verdict(vsProc >= 20), vsFloor, rounds, t.median, verdict(vsFloor <= 3 && t.median <= 3),
			vsNoKA, t.medianNoKA, verdict(vsNoKA <= 3 && t.medianNoKA <= 3))
		for _, st := range t.sticks {
			fmt.Fprintf(w, "  - %s: **%.2f×** the same connect+close over the run, median %.2f×; dicomping costs %.2f× it\n",
				st.client, float64(st.cpuPerOp())/float64(t.floor.cpuPerOp()), st.median,
				float64(t.ping.cpuPerOp())/float64(st.cpuPerOp()))
		}
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func fmtDur(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}
