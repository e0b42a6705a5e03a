package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

func init() {
	register(command{name: "echo", summary: "DICOM C-ECHO a PACS, RIS or modality, like ping", run: runEcho})
}

// Exit codes of `vigia echo`. 2 means "rejected", so command-line mistakes
// take EX_USAGE from sysexits.h instead of flag's usual 2.
const (
	echoExitDown     = 1
	echoExitRejected = 2
	echoExitStatus   = 3
	echoExitUsage    = 64
)

const echoDescription = `
Checks that a DICOM application entity answers: opens an association
proposing Verification, sends a C-ECHO request and releases the association.
Prints one line per echo: "OK HOST:PORT called=AE rtt=…" on success, or the
class of the failure (DOWN, REJECTED, PROTOCOL, STATUS) and its cause.

Exit status:
  0   every echo succeeded
  1   down or broken: connection refused, timeout, abort, protocol error
  2   association rejected (AE title, allow list, certificate, SOP class):
      a configuration fault, the reason is printed
  3   the peer answered C-ECHO with a non-success DIMSE status
  64  bad command line
With --repeat, the exit status is that of the first failed echo.`

func runEcho(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("echo", "[flags] HOST:PORT", echoDescription, stdout, stderr)
	calling := fs.String("calling", dicomping.DefaultCallingAETitle, "our `AE` title (calling AE)")
	called := fs.String("called", dicomping.DefaultCalledAETitle, "the peer's `AE` title (called AE)")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of each echo, from connect to release")
	useTLS := fs.Bool("tls", false, "use DICOM TLS (commonly port 2762)")
	caFile := fs.String("ca", "", "PEM `file` of CAs to trust for the peer's certificate (default: system roots)")
	certFile := fs.String("cert", "", "PEM `file` of our client certificate, for peers that require one")
	keyFile := fs.String("key", "", "PEM `file` of the client certificate's private key")
	serverName := fs.String("server-name", "", "`name` expected in the peer's certificate (default: HOST)")
	repeat := fs.Int("repeat", 1, "number of echoes to send, one after the other")
	interval := fs.Duration("interval", time.Second, "pause between repeated echoes")
	jsonOut := fs.Bool("json", false, "print one JSON object per echo instead of text")

	addr, err := peerArg(fs, args, stdout, "echo")
	if err != nil {
		return err
	}
	for flagName, ae := range map[string]string{"--calling": *calling, "--called": *called} {
		if err := dicomping.ValidateAETitle(ae); err != nil {
			return usage("%s: %v", flagName, err)
		}
	}
	if *repeat < 1 {
		return usage("--repeat must be at least 1")
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	opts := dicomping.Options{CallingAETitle: *calling, CalledAETitle: *called, Timeout: *timeout}
	if *useTLS {
		if opts.TLSConfig, err = echoTLSConfig(*caFile, *certFile, *keyFile, *serverName); err != nil {
			return usage("%v", err)
		}
	} else if *caFile != "" || *certFile != "" || *keyFile != "" || *serverName != "" {
		return usage("--ca, --cert, --key and --server-name need --tls")
	}

	var (
		firstCode int
		stats     echoStats
	)
	for i := range *repeat {
		if i > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(*interval):
			}
			if ctx.Err() != nil {
				break
			}
		}
		opts.MessageID = uint16(i + 1)
		res, err := dicomping.Echo(ctx, addr, opts)
		code := echoExitCode(err)
		if code != 0 && firstCode == 0 {
			firstCode = code
		}
		stats.add(res, err)
		if *jsonOut {
			if err := json.NewEncoder(stdout).Encode(newEchoReport(res, err)); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		} else {
			fmt.Fprintln(stdout, echoLine(res, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	if *repeat > 1 && !*jsonOut {
		fmt.Fprintln(stdout, stats.summary(addr))
	}
	if firstCode != 0 {
		return &exitError{code: firstCode}
	}
	return nil
}

// usage is a command-line mistake of echo, worklist or hl7: EX_USAGE.
func usage(format string, a ...any) error {
	return &exitError{code: echoExitUsage, err: fmt.Errorf(format, a...)}
}

// peerArg parses the flags and the one HOST:PORT argument of echo,
// worklist and hl7, whose mistakes exit with EX_USAGE.
func peerArg(fs *flag.FlagSet, args []string, stdout io.Writer, command string) (string, error) {
	positional, err := parseInterspersed(fs, args, stdout)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			ee.code = echoExitUsage
		}
		return "", err
	}
	if len(positional) != 1 {
		return "", usage("want exactly one HOST:PORT, got %d arguments (see vigia %s --help)", len(positional), command)
	}
	addr := positional[0]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", usage("%q is not HOST:PORT: %v", addr, err)
	}
	return addr, nil
}

// parseInterspersed parses flags placed before and after the positional
// arguments ("vigia echo pacs:104 --called PACS" works too); after a "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args, stdout); err != nil {
			return nil, err
		}
		consumed := len(args) - fs.NArg()
		endOfFlags := consumed > 0 && args[consumed-1] == "--"
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if endOfFlags {
			return append(positional, args...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func echoTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca: no PEM certificate in %s", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// echoExitCode maps an Echo error to the exit status documented in --help.
func echoExitCode(err error) int {
	switch dicomping.Classify(err) {
	case dicomping.ClassOK:
		return 0
	case dicomping.ClassMisconfigured:
		return echoExitRejected
	case dicomping.ClassStatus:
		return echoExitStatus
	}
	return echoExitDown
}

// echoLine is the one-line text report of an echo.
func echoLine(res dicomping.Result, err error) string {
	if err == nil {
		return fmt.Sprintf("OK %s called=%s rtt=%s", res.Addr, res.CalledAETitle, res.RTT.Round(time.Microsecond))
	}
	return fmt.Sprintf("%s %s called=%s: %s", echoLabel(err), res.Addr, res.CalledAETitle, echoCause(err))
}

// echoLabel names the failure class in the words of --help.
func echoLabel(err error) string {
	switch dicomping.Classify(err) {
	case dicomping.ClassDown:
		return "DOWN"
	case dicomping.ClassMisconfigured:
		return "REJECTED"
	case dicomping.ClassProtocol:
		return "PROTOCOL"
	case dicomping.ClassStatus:
		return "STATUS"
	}
	return "ERROR"
}

// echoCause is the error without the "dicomping: ADDR:" prefix, which the
// report line already shows.
func echoCause(err error) string {
	var de *dicomping.Error
	if errors.As(err, &de) {
		return string(de.Phase) + ": " + de.Err.Error()
	}
	return err.Error()
}

// echoReport is the --json form of one echo.
type echoReport struct {
	Addr                   string   `json:"addr"`
	Calling                string   `json:"calling_ae"`
	Called                 string   `json:"called_ae"`
	OK                     bool     `json:"ok"`
	Class                  string   `json:"class"`
	Phase                  string   `json:"phase,omitempty"`
	Error                  string   `json:"error,omitempty"`
	RTTSeconds             float64  `json:"rtt_seconds"`
	ConnectSeconds         float64  `json:"connect_seconds"`
	TLSHandshakeSeconds    float64  `json:"tls_handshake_seconds,omitempty"`
	AssociateSeconds       float64  `json:"associate_seconds"`
	EchoSeconds            float64  `json:"echo_seconds"`
	ReleaseSeconds         float64  `json:"release_seconds"`
	TransferSyntax         string   `json:"transfer_syntax,omitempty"`
	Status                 *uint16  `json:"status,omitempty"`
	PeerImplementationUID  string   `json:"peer_implementation_class_uid,omitempty"`
	PeerImplementationName string   `json:"peer_implementation_version_name,omitempty"`
	PeerMaxPDULength       *uint32  `json:"peer_max_pdu_length,omitempty"`
	Rejection              *rejJSON `json:"rejection,omitempty"`
}

type rejJSON struct {
	Result      byte   `json:"result"`
	Source      byte   `json:"source"`
	Reason      byte   `json:"reason"`
	Description string `json:"description"`
}

func newEchoReport(res dicomping.Result, err error) echoReport {
	r := echoReport{
		Addr: res.Addr, Calling: res.CallingAETitle, Called: res.CalledAETitle,
		OK: err == nil, Class: dicomping.Classify(err).String(),
		RTTSeconds: res.RTT.Seconds(), ConnectSeconds: res.Connect.Seconds(), TLSHandshakeSeconds: res.TLSHandshake.Seconds(),
		AssociateSeconds: res.Associate.Seconds(), EchoSeconds: res.Echo.Seconds(), ReleaseSeconds: res.Release.Seconds(),
		TransferSyntax: res.TransferSyntax, PeerImplementationUID: res.PeerImplementationClassUID,
		PeerImplementationName: res.PeerImplementationVersionName,
	}
	if res.TransferSyntax != "" {
		r.PeerMaxPDULength = &res.PeerMaxPDULength
	}
	if res.Echo > 0 {
		r.Status = &res.Status
	}
	if err != nil {
		r.Error = echoCause(err)
		var de *dicomping.Error
		if errors.As(err, &de) {
			r.Phase = string(de.Phase)
		}
		var rj *dicomping.RejectedError
		if errors.As(err, &rj) {
			r.Rejection = &rejJSON{Result: rj.Result, Source: rj.Source, Reason: rj.Reason, Description: rj.Description()}
		}
	}
	return r
}

// echoStats summarises repeated echoes, as ping does.
type echoStats struct {
	sent, ok      int
	min, max, sum time.Duration
}

func (s *echoStats) add(res dicomping.Result, err error) {
	s.sent++
	if err != nil {
		return
	}
	if s.ok == 0 || res.RTT < s.min {
		s.min = res.RTT
	}
	s.max = max(s.max, res.RTT)
	s.sum += res.RTT
	s.ok++
}

func (s *echoStats) summary(addr string) string {
	line := fmt.Sprintf("--- %s: %d echoes, %d ok, %d failed", addr, s.sent, s.ok, s.sent-s.ok)
	if s.ok > 0 {
		r := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
		line += fmt.Sprintf(", rtt min/avg/max = %s/%s/%s", r(s.min), r(s.sum/time.Duration(s.ok)), r(s.max))
	}
	return line
}
