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
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

func init() {
	register(command{name: "simulate", summary: "run simulated devices for tests and demos (vigia simulate --help)", run: runSimulate})
	registerSimulation(simulation{name: "dicom", summary: "a DICOM Verification SCP answering C-ECHO", run: runSimulateDICOM})
}

// simulation is one kind of simulated device. Each kind registers itself
// from an init function, as commands do, so adding one touches no other.
type simulation struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var simulations = map[string]simulation{}

func registerSimulation(s simulation) {
	if _, dup := simulations[s.name]; dup {
		panic("vigia: simulation registered twice: " + s.name)
	}
	simulations[s.name] = s
}

// simulateShutdownGrace is how long open associations get to finish after
// SIGINT/SIGTERM before they are aborted.
const simulateShutdownGrace = 5 * time.Second

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printSimulateUsage(stderr)
		return &exitError{code: 2}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		printSimulateUsage(stdout)
		return nil
	}
	s, ok := simulations[args[0]]
	if !ok {
		return usageError("unknown kind %q; kinds: %s", args[0], strings.Join(simulationNames(), ", "))
	}
	return s.run(ctx, args[1:], stdout, stderr)
}

func simulationNames() []string {
	names := make([]string, 0, len(simulations))
	for n := range simulations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printSimulateUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: vigia simulate KIND [flags]\n\nRuns simulated devices until SIGINT or SIGTERM.\n\nKinds:\n")
	for _, n := range simulationNames() {
		fmt.Fprintf(w, "  %-10s %s\n", n, simulations[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'vigia simulate KIND --help' for the flags of a kind.\n")
}

const simulateDICOMDescription = `
Runs a DICOM Verification SCP: it accepts associations proposing
Verification, answers C-ECHO with Success and handles release and abort.
Associations to another called AE title are rejected ("called AE title not
recognized") unless --any-ae is given. With --worklist DIR it is a modality
worklist SCP too, answering C-FIND from the worklist files in DIR (DICOM
files named *.wl, e.g. made with dcmtk's dump2dcm; an unreadable one answers
0xC000). Prints "listening on ADDR" once ready, and shuts down gracefully on
SIGINT or SIGTERM.`

func runSimulateDICOM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate dicom", "[flags]", simulateDICOMDescription, stdout, stderr)
	listen := fs.String("listen", "127.0.0.1:11112", "TCP `address` to listen on (port 0 picks a free one)")
	ae := fs.String("ae", "VIGIA-SIM", "called `AE` title to answer to")
	anyAE := fs.Bool("any-ae", false, "accept any called AE title")
	allowCalling := fs.String("allow-calling", "", "comma-separated calling AE `titles` to accept (default: any)")
	maxAssoc := fs.Int("max-associations", 0, "concurrent associations before rejecting as busy (0: unlimited)")
	useTLS := fs.Bool("tls", false, "speak DICOM TLS")
	certFile := fs.String("cert", "", "PEM `file` of the server certificate (with --tls)")
	keyFile := fs.String("key", "", "PEM `file` of the server certificate's private key (with --tls)")
	clientCA := fs.String("client-ca", "", "PEM `file` of CAs whose client certificates are required (with --tls)")
	worklist := fs.String("worklist", "", "answer modality worklist queries (C-FIND) from the *.wl files in `DIR`, read at each query")
	verbose := fs.Bool("v", false, "log refused and aborted associations to stderr")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments %q", fs.Args())
	}
	srv := &dicomping.Server{AETitle: *ae, AnyCalledAETitle: *anyAE, MaxAssociations: *maxAssoc}
	if *allowCalling != "" {
		for _, t := range strings.Split(*allowCalling, ",") {
			srv.AllowedCallingAETitles = append(srv.AllowedCallingAETitles, strings.TrimSpace(t))
		}
	}
	if *worklist != "" {
		if fi, err := os.Stat(*worklist); err != nil || !fi.IsDir() {
			return usageError("--worklist: %q is not a folder", *worklist)
		}
		srv.Worklist = dicomping.WorklistDir(*worklist)
	}
	if *verbose {
		srv.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *useTLS {
		cfg, err := simulateTLSConfig(*certFile, *keyFile, *clientCA)
		if err != nil {
			return usageError("%v", err)
		}
		srv.TLSConfig = cfg
	} else if *certFile != "" || *keyFile != "" || *clientCA != "" {
		return usageError("--cert, --key and --client-ca need --tls")
	}
	if !*anyAE {
		if err := dicomping.ValidateAETitle(*ae); err != nil {
			return usageError("--ae: %v", err)
		}
	}

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("simulate dicom: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	called := *ae
	if *anyAE {
		called = "any"
	}
	fmt.Fprintf(stdout, "listening on %s (called AE %s, TLS %t)\n", l.Addr(), called, *useTLS)

	select {
	case err := <-served:
		// Serve only returns on its own for a configuration or listener error.
		return fmt.Errorf("simulate dicom: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), simulateShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(stderr, "vigia simulate dicom: associations still open after %s were aborted\n", simulateShutdownGrace)
	}
	if err := <-served; !errors.Is(err, dicomping.ErrServerClosed) {
		return fmt.Errorf("simulate dicom: %w", err)
	}
	return nil
}

func simulateTLSConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls needs --cert and --key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--cert/--key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("--client-ca: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca: no PEM certificate in %s", clientCA)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
