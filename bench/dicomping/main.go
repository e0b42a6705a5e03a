// Command dicomping measures what a C-ECHO costs the client: echoes per
// second and CPU (user+sys) per echo of dicomping.Echo against Vigía's own
// Verification SCP and against dcmtk's storescp, next to dcmtk's echoscu
// run as one process per echo (as a Nagios-style check does) and to a bare
// TCP connect+close, the floor any echo pays.
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
	n := flag.Int("n", 3000, "echoes (and bare connects) per in-process mode")
	nStorescp := flag.Int("n-storescp", 300, "echoes (and bare connects) against storescp, which answers slowly")
	nProc := flag.Int("n-echoscu", 300, "echoscu processes per target")
	flag.Parse()
	if err := run(*vigia, *n, *nStorescp, *nProc, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench dicomping:", err)
		os.Exit(1)
	}
}

// measurement is one row of the results.
type measurement struct {
	client, target string
	n              int
	wall           time.Duration
	cpu            time.Duration // client user+sys
	medianRatio    float64       // floor rows: median per-round echo/connect CPU
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

	targets := []struct {
		name, addr, ae string
		n              int
	}{
		{"vigia simulate dicom", ours, "SIM", nOurs},
		{"dcmtk storescp", storescp, "STORESCP", nStorescp},
	}
	var (
		rows   []measurement
		ratios []float64
	)
	for _, t := range targets {
		opts := dicomping.Options{CalledAETitle: t.ae, Timeout: 5 * time.Second}
		echo := func() error { _, err := dicomping.Echo(context.Background(), t.addr, opts); return err }
		connect := func() error {
			c, err := (&net.Dialer{}).DialContext(context.Background(), "tcp", t.addr)
			if err != nil {
				return err
			}
			return c.Close()
		}
		// Warm up both (page faults, first GC cycles, server caches).
		for range min(200, t.n) {
			if err := echo(); err != nil {
				return fmt.Errorf("warm-up echo %s: %w", t.name, err)
			}
			connect()
		}
		floor, ping, err := measureInterleaved(t.name, t.n, connect, echo)
		if err != nil {
			return err
		}
		ratios = append(ratios, floor.medianRatio)
		host, port, _ := net.SplitHostPort(t.addr)
		proc, err := measureProcesses("echoscu (process per echo)", t.name, nProc, echoscu, "-aec", t.ae, host, port)
		if err != nil {
			return err
		}
		rows = append(rows, floor, ping, proc)
	}
	report(out, rows, ratios)
	return nil
}

// rounds interleaves the floor and the echo measurements so that load
// from other processes on the machine hits both alike.
const rounds = 10

// measureInterleaved runs n bare connects and n echoes in alternating
// batches, reporting this process's CPU for each, and the median over
// rounds of the echo/connect CPU ratio (kept in floor.medianRatio).
func measureInterleaved(target string, n int, connect, echo func() error) (floor, ping measurement, err error) {
	floor = measurement{client: "bare TCP connect+close (Go)", target: target}
	ping = measurement{client: "dicomping.Echo", target: target}
	var perRound []float64
	for r := range rounds {
		batch := n / rounds
		if r == rounds-1 {
			batch = n - (rounds-1)*(n/rounds)
		}
		fc, err := timeBatch(&floor, batch, connect)
		if err != nil {
			return floor, ping, err
		}
		ec, err := timeBatch(&ping, batch, echo)
		if err != nil {
			return floor, ping, err
		}
		perRound = append(perRound, float64(ec)/float64(fc))
	}
	sort.Float64s(perRound)
	floor.medianRatio = perRound[len(perRound)/2]
	return floor, ping, nil
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

func report(w io.Writer, rows []measurement, ratios []float64) {
	fmt.Fprintf(w, "Measured %s on %s, %d CPUs (%s), %s, %s.\n\n", time.Now().Format("2006-01-02 15:04 MST"),
		cpuModel(), runtime.NumCPU(), kernel(), runtime.Version(), "loopback")
	fmt.Fprintf(w, "| client | target | n | echoes/s (sequential) | client CPU per op (user+sys) |\n|---|---|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s |\n", r.client, r.target, r.n, r.perSecond(), fmtDur(r.cpuPerOp()))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Acceptance (client CPU per echo, same run):\n\n")
	for i := 0; i+2 < len(rows); i += 3 {
		floor, ping, proc := rows[i], rows[i+1], rows[i+2]
		vsProc := float64(proc.cpuPerOp()) / float64(ping.cpuPerOp())
		vsFloor := float64(ping.cpuPerOp()) / float64(floor.cpuPerOp())
		median := ratios[i/3]
		fmt.Fprintf(w, "- against %s: echoscu costs **%.0f×** dicomping (target ≥ 20×: %s); dicomping costs **%.2f×** a bare TCP connect+close over the whole run, median of %d interleaved rounds %.2f× (target ≤ 3×: %s)\n",
			ping.target, vsProc, verdict(vsProc >= 20), vsFloor, rounds, median, verdict(vsFloor <= 3 && median <= 3))
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
