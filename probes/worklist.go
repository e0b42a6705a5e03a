package probes

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

// WorklistProber names the worklist check's results, which the engine
// reads for the worklist's own events.
const WorklistProber = "worklist"

// WorkingHours says what an instant is for a device's customer: the local
// time (for "today's" worklist) and whether it is working time in the
// customer's contract calendar. The wiring implements it from the SLA
// policies, so that this package needs nothing of the ticketing stage.
type WorkingHours interface {
	WorkingTime(ctx context.Context, d assets.Device, t time.Time) (local time.Time, working bool)
}

// Worklist queries a broker's or RIS's modality worklist (C-FIND) for
// today's scheduled steps of the configured modality and station. A query
// that fails once the association is up (failure status, abort, a peer
// that stops answering mid-query), or an empty worklist during working
// hours where items are expected, makes the device degraded, not down,
// and marks the result WorklistFailing for the ticketing stage. No
// answer at all is down, a refusal misconfigured, as for C-ECHO.
type Worklist struct {
	// TLS is the client configuration for nodes with tls: true.
	TLS   *tls.Config
	Clock clockwork.Clock // nil: the real clock
	// Hours, nil: every instant is working time, in UTC.
	Hours WorkingHours
	// Raw leaves an empty worklist unjudged (OK, with its count): a
	// collector has no contract calendar, and the NOC's ingest judges it
	// with its own (JudgeRemote). Hours then gives only the local date.
	Raw bool
}

// Applies reports whether the device has a worklist check.
func (p *Worklist) Applies(d assets.Device) bool { return d.DICOM != nil && d.DICOM.Worklist != nil }

// Probe runs one worklist query.
func (p *Worklist) Probe(ctx context.Context, d assets.Device) Result {
	e, w := d.DICOM, d.DICOM.Worklist
	now := time.Now()
	if p.Clock != nil {
		now = p.Clock.Now()
	}
	local, working := now.UTC(), true
	if p.Hours != nil {
		local, working = p.Hours.WorkingTime(ctx, d, now)
	}
	q := dicomping.WorklistQuery{Date: local.Format("20060102"), Modality: w.Modality, StationAETitle: w.StationAE}
	start := time.Now()
	res, err := dicomping.FindWorklist(ctx, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), q, dicomOptions(e, p.TLS))
	r := Result{Prober: WorklistProber, Duration: time.Since(start), Facts: map[string]string{"worklist_date": q.Date}}
	what := describeQuery(q)
	var de *dicomping.Error
	if errors.As(err, &de) && de.Phase == dicomping.PhaseRelease {
		// The answer was complete: a sloppy release is the C-ECHO
		// probe's business, not the worklist failing.
		err = nil
	}
	associated := errors.As(err, &de) && de.Phase == dicomping.PhaseFind
	switch class := dicomping.Classify(err); {
	case err == nil:
		r.Facts["worklist_items"] = strconv.Itoa(res.Total)
		r.Outcome = OK
		r.Detail = fmt.Sprintf("worklist %s: %d items, rtt %s", what, res.Total, res.RTT.Round(time.Microsecond))
		if res.Total == 0 && w.ExpectItems && !p.Raw {
			judgeEmptyWorklist(&r, what, working)
		}
	case class == dicomping.ClassMisconfigured:
		r.Outcome, r.Detail = Misconfigured, err.Error()
	case associated:
		// The node answers, but not with the worklist.
		r.Outcome, r.WorklistFailing = Degraded, true
		r.Detail = fmt.Sprintf("worklist %s failing: %v", what, err)
	default:
		r.Outcome, r.Detail = Failed, err.Error()
	}
	return r
}

// judgeEmptyWorklist decides what an empty worklist that should hold
// items means at an instant that is working time or not.
func judgeEmptyWorklist(r *Result, what string, working bool) {
	if working {
		r.Outcome, r.WorklistFailing = Degraded, true
		r.Detail = fmt.Sprintf("worklist %s empty during working hours", what)
	} else {
		r.Outcome, r.WorklistFailing = OK, false
		r.Detail = fmt.Sprintf("worklist %s empty, outside working hours", what)
	}
}

// judgeRemoteWorklist judges, with the NOC's calendar at the instant the
// collector queried, an empty worklist a collector reported raw. Other
// results are returned as they are.
func judgeRemoteWorklist(ctx context.Context, hours WorkingHours, d assets.Device, r Result) Result {
	if r.Prober != WorklistProber || r.Outcome != OK || r.Facts["worklist_items"] != "0" ||
		d.DICOM == nil || d.DICOM.Worklist == nil || !d.DICOM.Worklist.ExpectItems {
		return r
	}
	working := true
	if hours != nil {
		_, working = hours.WorkingTime(ctx, d, r.At)
	}
	w := d.DICOM.Worklist
	judgeEmptyWorklist(&r, describeQuery(dicomping.WorklistQuery{Date: r.Facts["worklist_date"], Modality: w.Modality,
		StationAETitle: w.StationAE}), working)
	return r
}

func describeQuery(q dicomping.WorklistQuery) string {
	s := q.Date
	if q.Modality != "" {
		s += " " + q.Modality
	}
	if q.StationAETitle != "" {
		s += " " + q.StationAETitle
	}
	return "(" + s + ")"
}

// worklistOf is what the worklist's answer says of it (nil when it did
// not answer): failing or not.
func worklistOf(results []Result) *bool {
	var out *bool
	for _, r := range results {
		if r.Prober == WorklistProber && (r.Outcome == OK || r.Outcome == Degraded) {
			failing := r.WorklistFailing
			out = &failing
		}
	}
	return out
}
