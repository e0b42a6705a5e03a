package dispatch

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// seriesOf returns every series of the family name as "k=v,k=v" → value.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, fam := range fams {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[strings.Join(ls, ",")] = m.GetGauge().GetValue()
		}
	}
	return out
}

// zeros is a 0 for every value of label.
func zeros(label string, values []string) map[string]float64 {
	out := map[string]float64{}
	for _, v := range values {
		out[label+"="+v] = 0
	}
	return out
}

func with(m map[string]float64, kv ...any) map[string]float64 {
	m = maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(float64)
	}
	return m
}

// The gauges follow what the store did: visits proposed and scheduled,
// part requests requested and in customs, a manufacturer case, a manual
// wait, and the waits those opened, with the oldest of each reason.
func TestMetrics(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	t0 := at(2026, 9, 7, 9, 0)
	mr := f.openTicket(t, "andes", []string{"andes-mr"}, 2, t0)
	ct := f.openTicket(t, "andes", []string{"andes-ct"}, 2, t0)

	must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: mr.ID, Engineers: []string{"eng-bog"}}, t0.Add(10*time.Minute)))
	v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: ct.ID, Engineers: []string{"eng-med"}}, t0.Add(10*time.Minute)))
	must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
		WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, t0.Add(20*time.Minute)))

	part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Siemens", PartNumber: "S-1"}, t0))
	// Parts for the MR since 9:30 (spare parts); for the CT since 10:00,
	// then held in customs from 11:00 (import).
	must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: mr.ID, PartID: part.ID, Quantity: 1}, t0.Add(30*time.Minute)))
	pr := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: ct.ID, PartID: part.ID, Quantity: 1}, t0.Add(time.Hour)))
	for _, to := range []string{PartApproved, PartOrdered, PartInCustoms} {
		must[PartRequest](t)(f.store.MovePart(ctx, noc, pr.ID, PartMoveInput{To: to}, t0.Add(2*time.Hour)))
	}
	must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: ct.ID, Manufacturer: "Siemens", CaseNumber: "SR-1"}, t0.Add(90*time.Minute)))
	must[Wait](t)(f.store.StartWait(ctx, noc, WaitInput{TicketID: mr.ID, Reason: WaitCustomer, Note: "sala ocupada"}, t0.Add(3*time.Hour)))

	now := t0.Add(4 * time.Hour)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{db: f.db, now: func() time.Time { return now }, timeout: 5 * time.Second})
	hours := func(h float64) float64 { return h * 3600 }
	for _, tc := range []struct {
		name string
		want map[string]float64
	}{
		{"vigia_visits", with(zeros("state", visitStates), "state=proposed", 1.0, "state=scheduled", 1.0)},
		{"vigia_part_requests", with(zeros("state", allPartStates), "state=requested", 1.0, "state=in_customs", 1.0)},
		{"vigia_manufacturer_cases", with(zeros("state", caseStates), "state=opened", 1.0)},
		{"vigia_ticket_waits_open", with(zeros("reason", waitReasons),
			"reason=spare_parts", 1.0, "reason=import", 1.0, "reason=manufacturer", 1.0, "reason=customer", 1.0)},
		// The CT's spare-parts wait ended when the part reached customs.
		{"vigia_ticket_wait_oldest_age_seconds", with(zeros("reason", waitReasons),
			"reason=spare_parts", hours(3.5), "reason=import", hours(2), "reason=manufacturer", hours(2.5), "reason=customer", hours(1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seriesOf(t, reg, tc.name); !maps.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}

	t.Run("RegisterMetrics", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		RegisterMetrics(reg, f.db)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fam := range fams {
			names = append(names, fam.GetName())
		}
		want := []string{"vigia_manufacturer_cases", "vigia_part_requests", "vigia_ticket_wait_oldest_age_seconds", "vigia_ticket_waits_open", "vigia_visits"}
		if !slices.Equal(names, want) {
			t.Errorf("families %v, want %v", names, want)
		}
		// The real clock is past "now" above: the waits are older still.
		if age := seriesOf(t, reg, "vigia_ticket_wait_oldest_age_seconds")["reason=customer"]; age < hours(1) {
			t.Errorf("customer wait age with the real clock = %v, want ≥ 3600", age)
		}
	})
}

// A database that does not answer reports nothing, and says why, instead
// of zeros that would look like an idle field team.
func TestMetricsDatabaseDown(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	RegisterMetrics(reg, f.db)
	f.db.Close()
	fams, err := reg.Gather()
	if err == nil {
		t.Error("Gather with the database closed: no error")
	}
	for _, fam := range fams {
		t.Errorf("family %s reported with the database closed: %v", fam.GetName(), fam.GetMetric())
	}
}
