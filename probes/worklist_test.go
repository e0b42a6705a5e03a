package probes

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

// fixedHours is a customer's calendar reduced to one answer.
type fixedHours struct {
	loc     *time.Location
	working bool
}

func (h fixedHours) WorkingTime(_ context.Context, _ assets.Device, t time.Time) (time.Time, bool) {
	return t.In(h.loc), h.working
}

// worklistSCP serves a worklist from our own SCP: each query gets the
// items scheduled on the asked date, or the given failure status.
func worklistSCP(t *testing.T, status uint16, items ...dicomping.WorklistItem) int {
	t.Helper()
	srv := &dicomping.Server{AETitle: "BROKER", Worklist: func(_ dicomping.Association, q dicomping.WorklistQuery) ([]dicomping.WorklistItem, uint16) {
		var out []dicomping.WorklistItem
		for _, it := range items {
			if q.Matches(it) {
				out = append(out, it)
			}
		}
		return out, status
	}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, dicomping.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

func TestWorklistProbe(t *testing.T) {
	t.Parallel()
	bogota, _ := time.LoadLocation("America/Bogota")
	// 2026-12-07 03:00 UTC is still the 6th in Bogotá: "today" is local.
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	ct := dicomping.WorklistItem{PatientID: "P1", ScheduledDate: "20261206", Modality: "CT", StationAETitle: "CT01"}
	withItems := worklistSCP(t, dicomping.StatusSuccess, ct)
	failing := worklistSCP(t, dicomping.StatusUnableToProcess, ct)
	tests := []struct {
		name        string
		port        int
		check       assets.WorklistCheck
		working     bool
		want        Outcome
		wantFailing bool
		wantDetail  string
	}{
		{"items today", withItems, assets.WorklistCheck{Modality: "CT", ExpectItems: true}, true, OK, false, "worklist (20261206 CT): 1 items"},
		{"empty in working hours", withItems, assets.WorklistCheck{Modality: "MR", ExpectItems: true}, true, Degraded, true,
			"worklist (20261206 MR) empty during working hours"},
		{"empty out of hours", withItems, assets.WorklistCheck{Modality: "MR", ExpectItems: true}, false, OK, false,
			"worklist (20261206 MR) empty, outside working hours"},
		{"empty, none expected", withItems, assets.WorklistCheck{StationAE: "CT02"}, true, OK, false, "worklist (20261206 CT02): 0 items"},
		{"failure status", failing, assets.WorklistCheck{Modality: "CT", ExpectItems: true}, true, Degraded, true,
			"C-FIND status 0xC000: failed: unable to process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := tt.check
			d := assets.Device{ID: "broker", DICOM: &assets.DICOMEndpoint{Host: "127.0.0.1", Port: tt.port, CalledAE: "BROKER",
				CallingAE: "VIGIA", Worklist: &check}}
			p := &Worklist{Clock: clock, Hours: fixedHours{loc: bogota, working: tt.working}}
			if !p.Applies(d) || p.Applies(assets.Device{DICOM: &assets.DICOMEndpoint{}}) {
				t.Fatal("Applies must follow the worklist check")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := p.Probe(ctx, d)
			if r.Outcome != tt.want || r.WorklistFailing != tt.wantFailing || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Fatalf("got %s failing=%t %q, want %s failing=%t with %q", r.Outcome, r.WorklistFailing, r.Detail,
					tt.want, tt.wantFailing, tt.wantDetail)
			}
		})
	}
}

func TestStepWorklistEvents(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	yes, no := true, false
	tests := []struct {
		name       string
		prev       bool
		obs        Observation
		wantEvents []string
		wantState  bool
	}{
		{"starts failing", false, Observation{At: at, Outcome: Degraded, Worklist: &yes}, []string{EventWorklistFailing}, true},
		{"still failing", true, Observation{At: at, Outcome: Degraded, Worklist: &yes}, nil, true},
		{"answers again", true, Observation{At: at, Outcome: OK, Worklist: &no}, []string{EventWorklistRestored}, false},
		{"device down: unknown, kept", true, Observation{At: at, Outcome: Failed}, nil, true},
		{"inside a window: nothing", false, Observation{At: at, Outcome: Degraded, Worklist: &yes, InMaintenance: true}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Step(Status{State: StateUp, WorklistFailing: tt.prev}, tt.obs, DefaultPolicy)
			var got []string
			for _, e := range d.Events {
				if strings.HasPrefix(e, "worklist") {
					got = append(got, e)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantEvents, ",") || d.Next.WorklistFailing != tt.wantState {
				t.Fatalf("events %v failing=%t, want %v failing=%t", got, d.Next.WorklistFailing, tt.wantEvents, tt.wantState)
			}
		})
	}
}

// A collector's worklist check reports an empty worklist raw; judged at
// the NOC with the calendar at the instant it was queried, it is the
// result serve's own check gives.
func TestWorklistRawJudgedAtTheNOC(t *testing.T) {
	t.Parallel()
	bogota, _ := time.LoadLocation("America/Bogota")
	clock := clockwork.NewFakeClockAt(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
	port := worklistSCP(t, dicomping.StatusSuccess, dicomping.WorklistItem{PatientID: "P1", ScheduledDate: "20261206", Modality: "CT"})
	for _, tc := range []struct {
		name     string
		modality string
		working  bool
	}{
		{"empty in working hours", "MR", true},
		{"empty out of hours", "MR", false},
		{"items", "CT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := assets.Device{ID: "broker", DICOM: &assets.DICOMEndpoint{Host: "127.0.0.1", Port: port, CalledAE: "BROKER",
				CallingAE: "VIGIA", Worklist: &assets.WorklistCheck{Modality: tc.modality, ExpectItems: true}}}
			hours := fixedHours{loc: bogota, working: tc.working}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			serve := (&Worklist{Clock: clock, Hours: hours}).Probe(ctx, d)
			raw := (&Worklist{Clock: clock, Hours: fixedHours{loc: bogota}, Raw: true}).Probe(ctx, d)
			raw.At, serve.At = clock.Now(), clock.Now()
			if tc.modality == "MR" && (raw.Outcome != OK || raw.WorklistFailing || !strings.Contains(raw.Detail, "0 items")) {
				t.Errorf("raw on the collector: %s failing=%t %q, want ok with 0 items", raw.Outcome, raw.WorklistFailing, raw.Detail)
			}
			got := judgeRemoteWorklist(ctx, hours, d, raw)
			// A worklist with items is not judged (its detail carries its own rtt).
			sameDetail := got.Detail == serve.Detail || (tc.modality == "CT" && strings.Contains(got.Detail, ": 1 items"))
			if got.Outcome != serve.Outcome || got.WorklistFailing != serve.WorklistFailing || got.Facts["worklist_date"] != serve.Facts["worklist_date"] || !sameDetail {
				t.Errorf("judged at the NOC: %s failing=%t %q; serve's: %s failing=%t %q", got.Outcome, got.WorklistFailing, got.Detail,
					serve.Outcome, serve.WorklistFailing, serve.Detail)
			}
		})
	}
}
