package assets

import (
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func dayPtr(s string) *time.Time { t := day(s); return &t }

func TestEvaluate(t *testing.T) {
	bogota, _ := time.LoadLocation("America/Bogota")
	active := Contract{ID: "k1", SLAPolicy: "imaging-8x5", DeviceIDs: []string{"ct", "pacs"},
		StartsOn: day("2026-01-01"), EndsOn: day("2026-12-31"), ActivatedOn: dayPtr("2026-01-15"), PaidUp: true}
	with := func(mod func(*Contract)) Contract { k := active; mod(&k); return k }
	at := time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC)

	tests := []struct {
		name       string
		device     string
		contracts  []Contract
		at         time.Time
		wantStatus string
		wantReason string
	}{
		{"active contract names the device", "ct", []Contract{active}, at, Covered, ReasonContract},
		{"no contract at all", "ct", nil, at, Billable, ReasonNoContract},
		{"device not listed", "us-old", []Contract{active}, at, Billable, ReasonDeviceNotListed},
		{"all-devices contract covers any device", "us-old", []Contract{with(func(k *Contract) { k.AllDevices = true })}, at, Covered, ReasonContract},
		{"expired", "ct", []Contract{with(func(k *Contract) { k.EndsOn = day("2026-05-31") })}, at, Billable, ReasonContractExpired},
		{"not started", "ct", []Contract{with(func(k *Contract) { k.StartsOn = day("2026-07-01") })}, at, Billable, ReasonContractNotStarted},
		{"never activated", "ct", []Contract{with(func(k *Contract) { k.ActivatedOn = nil })}, at, Billable, ReasonNotActivated},
		{"activated later", "ct", []Contract{with(func(k *Contract) { k.ActivatedOn = dayPtr("2026-06-11") })}, at, Billable, ReasonNotActivated},
		{"not paid up", "ct", []Contract{with(func(k *Contract) { k.PaidUp = false })}, at, Billable, ReasonNotPaidUp},
		// 2026-12-31 23:30 in Bogotá is already 2027-01-01 in UTC: the contract's
		// last day is read in the customer's zone, so it is still covered.
		{"last day in the customer's zone", "ct", []Contract{active}, time.Date(2027, 1, 1, 4, 30, 0, 0, time.UTC), Covered, ReasonContract},
		{"first day after, in the customer's zone", "ct", []Contract{active}, time.Date(2027, 1, 1, 5, 30, 0, 0, time.UTC), Billable, ReasonContractExpired},
		{"support warranty before activation is covered", "ct", []Contract{with(func(k *Contract) {
			k.ActivatedOn = nil
			k.Warranties = []Warranty{{StartsOn: day("2026-06-01"), EndsOn: day("2026-07-31"), Covers: "support"}}
		})}, at, Covered, ReasonWarrantySupport},
		{"defects-only warranty is billable with its reason", "ct", []Contract{with(func(k *Contract) {
			k.EndsOn = day("2026-03-31")
			k.Warranties = []Warranty{{StartsOn: day("2026-04-01"), EndsOn: day("2026-06-30"), Covers: "manufacturing_defects"}}
		})}, at, Billable, ReasonWarrantyOnly},
		{"warranty for another device does not apply", "ct", []Contract{with(func(k *Contract) {
			k.ActivatedOn = nil
			k.Warranties = []Warranty{{StartsOn: day("2026-06-01"), EndsOn: day("2026-07-31"), Covers: "support", DeviceIDs: []string{"pacs"}}}
		})}, at, Billable, ReasonNotActivated},
		{"one good contract among bad ones covers", "ct", []Contract{
			with(func(k *Contract) { k.ID = "old"; k.EndsOn = day("2025-12-31") }), active}, at, Covered, ReasonContract},
		{"payment problem outranks an expired contract", "ct", []Contract{
			with(func(k *Contract) { k.ID = "old"; k.EndsOn = day("2025-12-31") }),
			with(func(k *Contract) { k.PaidUp = false })}, at, Billable, ReasonNotPaidUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.device, tt.contracts, bogota, tt.at)
			if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
				t.Errorf("Evaluate = %s/%s, want %s/%s", got.Status, got.Reason, tt.wantStatus, tt.wantReason)
			}
			if got.TextES == "" || got.TextEN == "" {
				t.Errorf("reason %s has no text for people", got.Reason)
			}
		})
	}
}
