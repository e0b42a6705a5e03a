package probes

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

// DICOM checks a DICOM node with a C-ECHO. A rejected association is a
// configuration fault (misconfigured), never an outage.
type DICOM struct {
	// TLS is the client configuration for nodes with tls: true (trusted
	// CAs, client certificate); nil uses the system roots.
	TLS *tls.Config
	// Slow marks an answer slower than this as degraded; zero disables.
	Slow time.Duration
}

// Applies reports whether the device has a DICOM endpoint.
func (p *DICOM) Applies(d assets.Device) bool { return d.DICOM != nil }

// dicomOptions are the association options of a DICOM endpoint: its AE
// titles, TLS when it says so (with the prober's client configuration),
// and no timeout of their own (the probe's context has the deadline).
func dicomOptions(e *assets.DICOMEndpoint, tlsCfg *tls.Config) dicomping.Options {
	opts := dicomping.Options{CallingAETitle: e.CallingAE, CalledAETitle: e.CalledAE, Timeout: -1}
	if e.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsCfg != nil {
			opts.TLSConfig = tlsCfg.Clone()
		}
	}
	return opts
}

// Probe runs one C-ECHO.
func (p *DICOM) Probe(ctx context.Context, d assets.Device) Result {
	e := d.DICOM
	start := time.Now()
	res, err := dicomping.Echo(ctx, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), dicomOptions(e, p.TLS))
	r := Result{Prober: "dicom", Duration: time.Since(start)}
	switch dicomping.Classify(err) {
	case dicomping.ClassOK:
		r.Outcome = OK
		r.Detail = fmt.Sprintf("C-ECHO ok, rtt %s", res.RTT.Round(time.Microsecond))
		if p.Slow > 0 && res.RTT > p.Slow {
			r.Outcome = Degraded
			r.Detail = fmt.Sprintf("C-ECHO slow: rtt %s over %s", res.RTT.Round(time.Millisecond), p.Slow)
		}
	case dicomping.ClassMisconfigured:
		r.Outcome, r.Detail = Misconfigured, err.Error()
	default:
		// Refused, silent, aborted, a broken answer or a failure status:
		// the node is not doing its job.
		r.Outcome, r.Detail = Failed, err.Error()
	}
	return r
}
