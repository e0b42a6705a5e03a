package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

func init() {
	register(command{name: "worklist", summary: "query a RIS or broker's modality worklist (DICOM C-FIND)", run: runWorklist})
}

const worklistDescription = `
Queries a modality worklist the way a modality does: opens an association
proposing Modality Worklist Information Model – FIND, sends a C-FIND for the
scheduled procedure steps of the date (and modality, station), prints one
line per item, then "OK n items rtt=…". Near the deadline an unfinished
query is cancelled (C-CANCEL) and reported as DOWN.

Exit status, as vigia echo:
  0   the query succeeded (even with no item)
  1   down or broken: connection refused, timeout, abort, protocol error
  2   association or worklist context rejected: a configuration fault
  3   the peer answered the C-FIND with a failure status (A700, A900, Cxxx)
  64  bad command line`

func runWorklist(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worklist", "[flags] HOST:PORT", worklistDescription, stdout, stderr)
	calling := fs.String("calling", dicomping.DefaultCallingAETitle, "our `AE` title (calling AE)")
	called := fs.String("called", dicomping.DefaultCalledAETitle, "the peer's `AE` title (called AE)")
	modality := fs.String("modality", "", "scheduled `modality`, e.g. CT (default: any)")
	station := fs.String("station", "", "scheduled station `AE` title (default: any)")
	date := fs.String("date", "today", "scheduled `date`: today, YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of the query, from connect to release")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of text")
	addr, err := peerArg(fs, args, stdout, "worklist")
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usage("--timeout must be positive")
	}
	q := dicomping.WorklistQuery{Date: *date, Modality: *modality, StationAETitle: *station}
	if q.Date == "today" {
		// The worklist's dates are the site's wall clock: this machine's.
		q.Date = time.Now().Format("20060102")
	}
	if err := q.Validate(); err != nil {
		return usage("%v", err)
	}
	opts := dicomping.Options{CallingAETitle: *calling, CalledAETitle: *called, Timeout: *timeout}
	if err := dicomping.ValidateAETitle(*calling); err != nil {
		return usage("--calling: %v", err)
	}
	if err := dicomping.ValidateAETitle(*called); err != nil {
		return usage("--called: %v", err)
	}
	res, err := dicomping.FindWorklist(ctx, addr, q, opts)
	if *jsonOut {
		report := struct {
			echoReport
			Date        string                   `json:"date"`
			Items       []dicomping.WorklistItem `json:"items"`
			Total       int                      `json:"total"`
			Cancelled   bool                     `json:"cancelled,omitempty"`
			FindSeconds float64                  `json:"find_seconds"`
		}{newEchoReport(res.Result, err), q.Date, res.Items, res.Total, res.Cancelled, res.Find.Seconds()}
		if report.Items == nil {
			report.Items = []dicomping.WorklistItem{}
		}
		if err := json.NewEncoder(stdout).Encode(report); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		for _, it := range res.Items {
			fmt.Fprintf(stdout, "%s %s %-8s %-16s %-12s %-16s %s\n", it.ScheduledDate, orDash(it.ScheduledTime), orDash(it.Modality),
				orDash(it.StationAETitle), orDash(it.AccessionNumber), orDash(it.PatientID), it.PatientName)
		}
		if err == nil {
			fmt.Fprintf(stdout, "OK %d items rtt=%s\n", res.Total, res.RTT.Round(time.Microsecond))
		} else {
			line := fmt.Sprintf("%s %s called=%s: %s", echoLabel(err), res.Addr, res.CalledAETitle, echoCause(err))
			if res.Total > 0 {
				line += fmt.Sprintf(" (%d items received)", res.Total)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	if code := echoExitCode(err); code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// contractHours tells the worklist prober what "today" and "working hours"
// are for a device: its customer's contract calendar, from the SLA policy
// a ticket about the device would get (the covering contract's, else the
// default policy's). Wired here so that probes needs nothing of the
// ticketing stage.
type contractHours struct {
	inv      *assets.Store
	policies *sla.Set
}

func (h contractHours) WorkingTime(ctx context.Context, d assets.Device, t time.Time) (time.Time, bool) {
	name := maintenance.DefaultPolicy
	if cov, err := h.inv.CoverageOf(ctx, []assets.Device{d}, t); err == nil && cov[d.ID].SLAPolicy != "" {
		name = cov[d.ID].SLAPolicy
	}
	p, err := h.policies.Lookup(name)
	if err != nil {
		// An unknown policy cannot happen after import; if it does, an
		// empty worklist is reported rather than hidden.
		return t.UTC(), true
	}
	cal := p.Calendar()
	return t.In(cal.Location()), cal.IsWorking(t)
}
