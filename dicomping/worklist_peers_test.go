package dicomping

// Worklist queries against real peers: dcmtk's wlmscpfs and Orthanc's
// modality worklist plugin, answering from files made by dump2dcm; and
// dcmtk's findscu against our Server.

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/internal/worklisttest"
)

// schedule is a day of a site: three CT steps today (two on CT01, one on
// CT02), an MR today and a CT tomorrow.
func schedule(today, tomorrow string) []worklisttest.Item {
	return []worklisttest.Item{
		{PatientName: "Pérez^Ana", PatientID: "P001", Accession: "ACC001", Date: today, Time: "080000", Modality: "CT", StationAE: "CT01", StepID: "S1", Description: "TC de cráneo"},
		{PatientName: "Gómez^Luis", PatientID: "P002", Accession: "ACC002", Date: today, Time: "093000", Modality: "CT", StationAE: "CT01", StepID: "S2", Description: "TC de tórax"},
		{PatientName: "Ruiz^Eva", PatientID: "P003", Accession: "ACC003", Date: today, Time: "110000", Modality: "CT", StationAE: "CT02", StepID: "S3", Description: "TC abdomen"},
		{PatientName: "Díaz^Juan", PatientID: "P004", Accession: "ACC004", Date: today, Time: "120000", Modality: "MR", StationAE: "MR01", StepID: "S4", Description: "RM rodilla"},
		{PatientName: "Soto^Rosa", PatientID: "P005", Accession: "ACC005", Date: tomorrow, Time: "080000", Modality: "CT", StationAE: "CT01", StepID: "S5", Description: "TC de cráneo"},
	}
}

func TestFindWorklistAgainstRealPeers(t *testing.T) {
	t.Parallel()
	now := time.Now()
	today, tomorrow := now.Format("20060102"), now.AddDate(0, 0, 1).Format("20060102")
	wlm := worklisttest.StartWlmscpfs(t, "WLMSCP")
	worklisttest.Write(t, wlm.Dir, schedule(today, tomorrow)...)
	orthancDir := t.TempDir()
	worklisttest.Write(t, orthancDir, schedule(today, tomorrow)...)
	orthanc := orthanctest.StartWithWorklists(t, "ORTHANCWL", orthancDir)
	emptyDir := t.TempDir()
	emptyOrthanc := orthanctest.StartWithWorklists(t, "ORTHANCEMPTY", emptyDir)

	peers := []struct{ name, addr, ae string }{
		{"wlmscpfs", wlm.Addr, "WLMSCP"},
		{"orthanc", orthanc.Addr(), "ORTHANCWL"},
	}
	queries := []struct {
		name      string
		q         WorklistQuery
		wantIDs   []string
		wantFirst WorklistItem
		notOn     string
	}{
		{"today's CT", WorklistQuery{Date: today, Modality: "CT"}, []string{"P001", "P002", "P003"},
			WorklistItem{PatientName: "Pérez^Ana", PatientID: "P001", AccessionNumber: "ACC001", ScheduledDate: today,
				ScheduledTime: "080000", Modality: "CT", StationAETitle: "CT01", StepID: "S1", Description: "TC de cráneo"}, ""},
		{"today's CT01", WorklistQuery{Date: today, Modality: "CT", StationAETitle: "CT01"}, []string{"P001", "P002"}, WorklistItem{}, ""},
		{"today, any modality", WorklistQuery{Date: today}, []string{"P001", "P002", "P003", "P004"}, WorklistItem{}, ""},
		// wlmscpfs 3.6.7 answers no item to any date range (findscu's
		// queries too).
		{"CT from today on", WorklistQuery{Date: today + "-", Modality: "CT"}, []string{"P001", "P002", "P003", "P005"}, WorklistItem{}, "wlmscpfs"},
		{"no US today", WorklistQuery{Date: today, Modality: "US"}, nil, WorklistItem{}, ""},
	}
	for _, p := range peers {
		for _, tt := range queries {
			if tt.notOn == p.name {
				continue
			}
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res, err := FindWorklist(ctx, p.addr, tt.q, Options{CallingAETitle: "VIGIATEST", CalledAETitle: p.ae})
				if err != nil {
					t.Fatalf("FindWorklist: %v", err)
				}
				var ids []string
				for _, it := range res.Items {
					ids = append(ids, it.PatientID)
				}
				slices.Sort(ids)
				if !slices.Equal(ids, tt.wantIDs) || res.Total != len(tt.wantIDs) {
					t.Fatalf("patients %v (total %d), want %v", ids, res.Total, tt.wantIDs)
				}
				if tt.wantFirst.PatientID != "" {
					i := slices.IndexFunc(res.Items, func(it WorklistItem) bool { return it.PatientID == tt.wantFirst.PatientID })
					if res.Items[i] != tt.wantFirst {
						t.Errorf("item\n got %+v\nwant %+v", res.Items[i], tt.wantFirst)
					}
				}
				if res.Status != StatusSuccess || res.Find <= 0 || res.RTT < res.Find {
					t.Errorf("status 0x%04X, find %s, rtt %s", res.Status, res.Find, res.RTT)
				}
			})
		}
	}

	failures := []struct {
		name, addr, ae string
		stop           func()
		want           Class
		wantErr        string
	}{
		{"wlmscpfs wrong called AE", wlm.Addr, "NOTWLM", nil, ClassMisconfigured, "called AE title not recognized"},
		{"orthanc wrong called AE", orthanc.Addr(), "NOTORTHANC", nil, ClassMisconfigured, "called AE title not recognized"},
		{"orthanc stopped", emptyOrthanc.Addr(), "ORTHANCEMPTY", emptyOrthanc.Stop, ClassDown, "connect"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			if tt.stop == nil {
				// The empty worklist answers Success with no item.
				res, err := FindWorklist(context.Background(), emptyOrthanc.Addr(), WorklistQuery{Date: today},
					Options{CalledAETitle: "ORTHANCEMPTY", Timeout: 10 * time.Second})
				if err != nil || len(res.Items) != 0 {
					t.Fatalf("empty worklist: %d items, %v", len(res.Items), err)
				}
			} else {
				tt.stop()
			}
			_, err := FindWorklist(context.Background(), tt.addr, WorklistQuery{Date: today},
				Options{CalledAETitle: tt.ae, Timeout: 10 * time.Second})
			if got := Classify(err); got != tt.want || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Classify(%v) = %v, want %v with %q", err, got, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFindscuAgainstServer(t *testing.T) {
	t.Parallel()
	findscu := testpeer.Command(t, "findscu", "dcmtk")
	today := time.Now().Format("20060102")
	dir := t.TempDir()
	worklisttest.Write(t, dir, schedule(today, time.Now().AddDate(0, 0, 1).Format("20060102"))...)
	addr := startServer(t, &Server{AETitle: "VIGIAWL", Worklist: WorklistDir(dir)})
	host, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		name      string
		args      []string
		wantCount int
		wantOut   []string
	}{
		{"today's CT", []string{"-k", "ScheduledProcedureStepSequence[0].Modality=CT",
			"-k", "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=" + today}, 3,
			[]string{"(0010,0010) PN [Pérez^Ana]", "(0040,0001) AE [CT01]", "(0008,0050) SH [ACC003]"}},
		{"station wildcard", []string{"-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MR*"}, 1,
			[]string{"(0010,0020) LO [P004]"}},
		{"explicit VR", []string{"-xe", "-k", "ScheduledProcedureStepSequence[0].Modality=CT"}, 4, nil},
		{"nothing matches", []string{"-k", "ScheduledProcedureStepSequence[0].Modality=US"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"-W", "-to", "5", "-aet", "FINDSCU", "-aec", "VIGIAWL",
				"-k", "PatientName", "-k", "PatientID", "-k", "AccessionNumber",
				"-k", "ScheduledProcedureStepSequence[0].ScheduledStationAETitle"}, tt.args...)
			out, err := exec.CommandContext(ctx, findscu, append(args, host, port)...).CombinedOutput()
			if err != nil {
				t.Fatalf("findscu: %v\n%s", err, out)
			}
			if got := strings.Count(string(out), "Find Response:"); got != tt.wantCount {
				t.Fatalf("%d responses with an item, want %d:\n%s", got, tt.wantCount, out)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(string(out), w) {
					t.Errorf("findscu output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
