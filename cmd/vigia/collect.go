package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigia-noc/vigia/collector"
	"github.com/vigia-noc/vigia/probes"
)

func init() {
	register(command{name: "collect", summary: "probe a hospital's devices on site and report to the NOC", run: runCollect})
	register(command{name: "collector", summary: "create collector tokens (collector create)", run: runCollectorCmd})
}

func runCollect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("collect", "--upstream URL --token-file FILE [flags]", `
Runs a collector inside a hospital's network: it fetches its sites' devices
from the NOC, probes them (DICOM, worklist, SNMP, TCP, HL7), receives their
heartbeats on --listen and their SNMP traps and informs on
--snmp-trap-listen, and pushes all of it to the NOC. A trap is accepted
only from a device of its sites, with that device's own community or v3
user (as by serve); others are counted in vigia_snmp_traps_received_total
and dropped. The NOC applies its trap rules, and judges an empty worklist
with the contract's calendar. While the uplink is down the results and
traps wait on disk under --data-dir and are replayed, with the instants they
were observed at, when it is back.

The token file holds the token printed by "vigia collector create"; it must
not be readable by group or others. Device credentials are kept in memory
only, never written to disk.`, stdout, stderr)
	upstream := fs.String("upstream", os.Getenv("VIGIA_UPSTREAM"), "the NOC's base URL, https:// (env VIGIA_UPSTREAM)")
	tokenFile := fs.String("token-file", os.Getenv("VIGIA_COLLECTOR_TOKEN_FILE"), "file holding the collector token, mode 0600 (env VIGIA_COLLECTOR_TOKEN_FILE)")
	dataDir := fs.String("data-dir", envOr("VIGIA_DATA_DIR", "var/collector"), "directory of the result queue (env VIGIA_DATA_DIR)")
	caFile := fs.String("ca", os.Getenv("VIGIA_UPSTREAM_CA"), "PEM file of the CA that signed the NOC's certificate (env VIGIA_UPSTREAM_CA); default: the system's")
	listen := fs.String("listen", envOr("VIGIA_LISTEN", "127.0.0.1:9465"), "address of /metrics and of the heartbeat receiver (env VIGIA_LISTEN)")
	queueBytes := fs.Int64("queue-max-bytes", 256<<20, "bound of the on-disk queue; the oldest results are dropped beyond it")
	queueAge := fs.Duration("queue-max-age", 7*24*time.Hour, "results older than this are dropped from the queue")
	configEvery := fs.Duration("config-every", 30*time.Second, "how often the device list is refreshed")
	pushEvery := fs.Duration("push-every", time.Second, "how often queued results are pushed")
	batchChecks := fs.Int("batch-checks", 1000, "checks per push, at most")
	concurrency := fs.Int("probe-concurrency", 256, "device checks running at once")
	logLevel := fs.String("log-level", envOr("VIGIA_LOG_LEVEL", "info"), "debug, info, warn or error (env VIGIA_LOG_LEVEL)")
	var trapListen, trapEngineID string
	registerTrapListen(fs, &trapListen, &trapEngineID)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	base, err := upstreamURL(*upstream)
	if err != nil {
		return usageError("%v", err)
	}
	token, err := readTokenFile(*tokenFile)
	if err != nil {
		return usageError("%v", err)
	}
	client, err := upstreamClient(*caFile)
	if err != nil {
		return usageError("%v", err)
	}
	if *queueBytes < 1<<20 || *queueAge < time.Minute || *configEvery < time.Second || *pushEvery < 10*time.Millisecond ||
		*batchChecks < 1 || *concurrency < 1 {
		return usageError("bounds: --queue-max-bytes ≥ 1 MiB, --queue-max-age ≥ 1m, --config-every ≥ 1s, --push-every ≥ 10ms, --batch-checks and --probe-concurrency ≥ 1")
	}
	var trapConn net.PacketConn
	if trapListen != "" {
		if trapConn, trapEngineID, err = trapSocket(trapListen, trapEngineID); err != nil {
			return err
		}
		defer trapConn.Close()
	}
	queue, err := collector.OpenQueue(filepath.Join(*dataDir, "queue"), collector.QueueOptions{MaxBytes: *queueBytes, MaxAge: *queueAge})
	if err != nil {
		return err
	}
	defer queue.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	col, err := collector.New(collector.Config{Upstream: base, Token: token, Client: client, Queue: queue, Log: log, Registry: reg,
		ConfigEvery: *configEvery, PushEvery: *pushEvery, BatchChecks: *batchChecks, Concurrency: *concurrency,
		Traps: trapConn, TrapEngineID: trapEngineID,
		// The heartbeat and worklist probers are the collector's own.
		Probers: map[string]probes.Prober{
			"dicom": &probes.DICOM{Slow: 2 * time.Second},
			"snmp":  probes.NewSNMPProber(),
			"tcp":   &probes.TCP{Slow: 2 * time.Second},
			"hl7":   &probes.HL7{},
		}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	defer ln.Close()
	mux := http.NewServeMux()
	col.HeartbeatAPI().Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go srv.Serve(ln)
	defer srv.Close()
	log.Info("collecting", "upstream", base.String(), "queue", queue.Stats(time.Now()).Depth, "metrics", "http://"+ln.Addr().String()+"/metrics")
	return col.Run(ctx)
}

// upstreamURL accepts https, and plain http only to a loopback address
// (a local TLS terminator, or tests): results and device credentials
// cross the hospital's uplink.
func upstreamURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("--upstream is required (the NOC's https:// URL)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--upstream %q: want https://host[:port]", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("--upstream %q: plain http only to a loopback address; use https", s)
		}
	default:
		return nil, fmt.Errorf("--upstream %q: want https://", s)
	}
	return u, nil
}

// readTokenFile reads the collector token, refusing a file others can read.
func readTokenFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("--token-file is required")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: readable by group or others; run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || len(token) > 200 || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("token file %s: want the one token printed by vigia collector create", path)
	}
	return token, nil
}

func upstreamClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

func runCollectorCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = `
  create --customer ID --site ID [--site ID…] [--name NAME]
         registers a collector for those sites and prints its token once
  revoke ID
         disables a collector's token; the NOC probes its sites itself again`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stdout, "Usage: vigia collector create|revoke [flags]\n%s\n", usage)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	switch args[0] {
	case "create":
	case "revoke":
		return runCollectorRevoke(ctx, args[1:], stdout, stderr)
	default:
		return usageError("unknown subcommand %q (create or revoke)", args[0])
	}
	fs := newFlagSet("collector create", "--customer ID --site ID [--site ID…] [flags]", `
Registers a collector that probes the given sites of one customer and
prints its token on stdout, alone on a line. It is shown this once: only
its SHA-256 is stored. Put it in a file of mode 0600 for --token-file of
"vigia collect". The token reads and reports those sites only.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	customer := fs.String("customer", "", "customer id (required)")
	name := fs.String("name", "", "a label (default: the sites)")
	var sites []string
	fs.Func("site", "a site of the customer this collector probes (repeat for several)", func(s string) error {
		if s == "" {
			return errors.New("empty site id")
		}
		sites = append(sites, s)
		return nil
	})
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if *customer == "" || len(sites) == 0 {
		return usageError("--customer and at least one --site are required")
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *name == "" {
		*name = strings.Join(sites, "+")
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	token, id, err := probes.NewStore(conn).CreateCollector(ctx, *name, *customer, sites, time.Now())
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stderr, "collector %d created (%s); its token is shown only now:\n", id, *name)
	fmt.Fprintln(stdout, token)
	return nil
}

func runCollectorRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, err := revokeCommand(ctx, "collector revoke", "collector",
		"Disables the collector with the given id (printed when it was created) and frees its sites.", args, stdout, stderr,
		func(ctx context.Context, conn *sqlx.DB, id int64) error {
			if err := probes.NewStore(conn).RevokeCollector(ctx, id, time.Now()); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "collector %d revoked; its sites are probed by the NOC again\n", id)
	return nil
}
