package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/hl7test"
	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/worklisttest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/intake"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
)

const worklistInventory = `
customers:
  - id: hsj
    name: Hospital San José
    country: CO
    time_zone: America/Bogota
    sites:
      - id: hsj-main
        name: Sede principal
        kind: hospital
        devices:
          - {id: ris, name: RIS, kind: ris, dicom: {host: 127.0.0.1, port: %d, called_ae: WLMSCP, worklist: {modality: CT, expect_items: true}}, probe: {interval: 3s, retries: 0}}
          - {id: broker, name: Broker, kind: broker, dicom: {host: 127.0.0.1, port: %d, called_ae: BROKER, worklist: {modality: CT, station_ae: CT01, expect_items: true}}, probe: {interval: 3s, retries: 0}}
          - {id: broker-off, name: Broker apagado, kind: broker, dicom: {host: 127.0.0.1, port: %d, called_ae: BROKEROFF, worklist: {modality: CT, expect_items: true}}, probe: {interval: 3s, retries: 0}}
          - {id: ris-wrong-ae, name: RIS mal configurado, kind: ris, dicom: {host: 127.0.0.1, port: %d, called_ae: NOTWLM, worklist: {modality: CT, expect_items: true}}, probe: {interval: 3s, retries: 0}}
          - {id: engine, name: Motor HL7, kind: broker, hl7: {host: 127.0.0.1, port: %d, receiving_app: RIS}, probe: {interval: 3s, retries: 0}}
          - {id: engine-ae, name: Motor HL7 que rechaza, kind: broker, hl7: {host: 127.0.0.1, port: %d, receiving_app: RIS}, probe: {interval: 3s, retries: 0}}
          - {id: engine-silent, name: Motor HL7 mudo, kind: broker, hl7: {host: 127.0.0.1, port: %d, receiving_app: RIS}, probe: {interval: 3s, retries: 0}}
    contracts:
      - {id: hsj-2026, sla_policy: imaging-24x7, devices: [ris, broker, broker-off, ris-wrong-ae, engine, engine-ae, engine-silent], start: 2026-01-01, end: 2027-12-31, activated: 2026-01-01}
`

// TestWorklistProbeToTicket runs the worklist checks of a site against
// real peers (dcmtk's wlmscpfs, Orthanc's worklist plugin) through the
// probes engine and the ticketing stage, as vigia serve wires them.
func TestWorklistProbeToTicket(t *testing.T) {
	t.Parallel()
	bogota, _ := time.LoadLocation("America/Bogota")
	today := time.Now().In(bogota).Format("20060102")
	items := []worklisttest.Item{
		{PatientName: "Pérez^Ana", PatientID: "P1", Accession: "A1", Date: today, Time: "080000", Modality: "CT", StationAE: "CT01"},
		{PatientName: "Gómez^Luis", PatientID: "P2", Accession: "A2", Date: today, Time: "090000", Modality: "CT", StationAE: "CT02"},
		{PatientName: "Ruiz^Eva", PatientID: "P3", Accession: "A3", Date: today, Time: "100000", Modality: "CT", StationAE: "CT01"},
		{PatientName: "Díaz^Juan", PatientID: "P4", Accession: "A4", Date: today, Time: "110000", Modality: "MR", StationAE: "MR01"},
	}
	wlm := worklisttest.StartWlmscpfs(t, "WLMSCP")
	worklisttest.Write(t, wlm.Dir, items...)
	brokerDir := t.TempDir()
	broker := orthanctest.StartWithWorklists(t, "BROKER", brokerDir)
	off := orthanctest.StartWithWorklists(t, "BROKEROFF", t.TempDir())

	ctx := context.Background()
	db := pgtest.DB(t)
	inv := assets.NewStore(db)
	f, err := assets.ParseFile("worklist.yaml", []byte(fmt.Sprintf(worklistInventory, wlm.Port, broker.Port, off.Port, wlm.Port,
		hl7test.Start(t, hl7test.AA), hl7test.Start(t, hl7test.AE), hl7test.Start(t, hl7test.Silent))),
		assets.ParseOptions{KnownPolicy: knownPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewRealClock()
	worklist := &probes.Worklist{Clock: clock, Hours: contractHours{inv: inv, policies: sla.Presets()}}
	pstore := probes.NewStore(db)
	engine, err := probes.NewEngine(ctx, pstore, inv, probes.Config{Clock: clock,
		Probers: map[string]probes.Prober{"dicom": &probes.DICOM{}, "worklist": worklist, "hl7": &probes.HL7{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	tickets := maintenance.NewStore(db, inv, maintenance.Options{})
	consumer := intake.NewOutageConsumer(tickets, inv, time.Now, slog.New(slog.DiscardHandler))
	check := func(id string) probes.State {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := engine.Check(cctx, id); err != nil {
			t.Fatalf("Check(%s): %v", id, err)
		}
		if _, err := consumer.RunOnce(cctx); err != nil {
			t.Fatalf("outage consumer: %v", err)
		}
		st, _ := engine.Status(id)
		return st.State
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.Get(&n, q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}
	device := func(id string) assets.Device {
		d, err := inv.Device(ctx, assets.Scope{}, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	t.Run("today's items for the modality", func(t *testing.T) {
		if st := check("ris"); st != probes.StateUp {
			s, _ := engine.Status("ris")
			t.Fatalf("ris is %s (%s), want up", st, s.LastDetail)
		}
		r := worklist.Probe(ctx, device("ris"))
		if r.Outcome != probes.OK || r.Facts["worklist_items"] != "3" || r.Facts["worklist_date"] != today {
			t.Fatalf("worklist probe %s %q %v, want ok with the 3 CT items of %s", r.Outcome, r.Detail, r.Facts, today)
		}
	})

	t.Run("empty worklist: degraded and one Sev 2 ticket", func(t *testing.T) {
		for range 3 {
			if st := check("broker"); st != probes.StateDegraded {
				t.Fatalf("broker is %s, want degraded", st)
			}
		}
		if n := count(`SELECT count(*) FROM device_events WHERE device_id = 'broker' AND kind = 'worklist_failing'`); n != 1 {
			t.Fatalf("%d worklist_failing events, want 1", n)
		}
		var tk struct {
			Severity int    `db:"severity"`
			Title    string `db:"title"`
			Status   string `db:"status"`
		}
		if n := count(`SELECT count(*) FROM tickets WHERE device_ids = '{broker}'`); n != 1 {
			t.Fatalf("%d tickets for the broker, want 1", n)
		}
		if err := db.Get(&tk, `SELECT severity, title, status FROM tickets WHERE auto_key = 'worklist:broker'`); err != nil {
			t.Fatal(err)
		}
		if tk.Severity != 2 || !strings.Contains(tk.Title, "Worklist con fallas en Broker") {
			t.Fatalf("ticket %+v, want Sev 2 'worklist failing'", tk)
		}

		// The RIS schedules the day: the worklist answers again.
		worklisttest.Write(t, brokerDir, items...)
		if st := check("broker"); st != probes.StateUp {
			t.Fatalf("broker is %s once its worklist has items, want up", st)
		}
		if err := db.Get(&tk, `SELECT severity, title, status FROM tickets WHERE auto_key = 'worklist:broker'`); err != nil {
			t.Fatal(err)
		}
		if tk.Status != maintenance.StatusSolved || count(`SELECT count(*) FROM device_events WHERE kind = 'worklist_restored'`) != 1 {
			t.Fatalf("ticket %s after the worklist came back, want solved (and one worklist_restored)", tk.Status)
		}
	})

	t.Run("peer stopped: down", func(t *testing.T) {
		off.Stop()
		if st := check("broker-off"); st != probes.StateDown {
			t.Fatalf("broker-off is %s, want down", st)
		}
		if n := count(`SELECT count(*) FROM device_events WHERE device_id = 'broker-off' AND kind LIKE 'worklist%'`); n != 0 {
			t.Fatalf("%d worklist events for a device down, want none (its outage is the ticket)", n)
		}
	})

	t.Run("wrong called AE: misconfigured", func(t *testing.T) {
		if st := check("ris-wrong-ae"); st != probes.StateMisconfigured {
			t.Fatalf("ris-wrong-ae is %s, want misconfigured", st)
		}
	})

	// The HL7 interface engines, checked with the same engine.
	for id, want := range map[string]probes.State{"engine": probes.StateUp, "engine-ae": probes.StateMisconfigured,
		"engine-silent": probes.StateDown} {
		t.Run("hl7 "+id, func(t *testing.T) {
			if st := check(id); st != want {
				s, _ := engine.Status(id)
				t.Fatalf("%s is %s (%s), want %s", id, st, s.LastDetail, want)
			}
		})
	}
}

func TestContractHours(t *testing.T) {
	t.Parallel()
	db := pgtest.DB(t)
	inv := assets.NewStore(db)
	const yaml = `
customers:
  - id: c
    name: Clínica
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s
        name: Sede
        kind: hospital
        devices:
          - {id: covered, name: RIS, kind: ris, dicom: {host: 127.0.0.1, port: 104, called_ae: RIS}}
    contracts:
      - {id: k, sla_policy: imaging-8x5, devices: [covered], start: 2026-01-01, end: 2026-12-31, activated: 2026-01-01}
`
	f, err := assets.ParseFile("c.yaml", []byte(yaml), assets.ParseOptions{KnownPolicy: knownPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inv.Import(context.Background(), f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	d, err := inv.Device(context.Background(), assets.Scope{}, "covered")
	if err != nil {
		t.Fatal(err)
	}
	h := contractHours{inv: inv, policies: sla.Presets()}
	tests := []struct {
		at          string
		wantDate    string
		wantWorking bool
	}{
		{"2026-12-07T15:00:00Z", "20261207", true},  // Monday 10:00 in Bogotá
		{"2026-12-07T03:00:00Z", "20261206", false}, // Sunday 22:00 in Bogotá, Monday in UTC
		{"2026-12-06T15:00:00Z", "20261206", false}, // Sunday 10:00
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339, tt.at)
			local, working := h.WorkingTime(context.Background(), d, at)
			if local.Format("20060102") != tt.wantDate || working != tt.wantWorking {
				t.Fatalf("WorkingTime = %s, %t; want %s, %t", local, working, tt.wantDate, tt.wantWorking)
			}
		})
	}
}
