package biomed

import (
	"strings"
	"testing"
)

// The issue's alert, matched against the installed base.
const issueAlert = `[{"source": "INVIMA", "reference": "ALERTA-2026-123", "date": "2026-11-30", "manufacturer": "Acme Medical",
 "models": ["Vent 500"], "serials": ["VX100", {"from": "VX200", "to": "VX299"}], "patient_risk": true, "action": "Reemplazar válvula"}]`

func TestSerialRangeMatching(t *testing.T) {
	alerts, err := ParseAlerts([]byte(issueAlert))
	if err != nil {
		t.Fatal(err)
	}
	a := alerts[0]
	tests := []struct {
		name, manufacturer, model, serial string
		want                              bool
	}{
		{"listed serial", "Acme Medical", "Vent 500", "VX100", true},
		{"range start", "Acme Medical", "Vent 500", "VX200", true},
		{"inside the range", "Acme Medical", "Vent 500", "VX250", true},
		{"range end", "Acme Medical", "Vent 500", "VX299", true},
		{"just past the range", "Acme Medical", "Vent 500", "VX300", false},
		{"just before the range", "Acme Medical", "Vent 500", "VX199", false},
		{"leading zeros: same number", "Acme Medical", "Vent 500", "VX0250", true},
		{"longer number out of range", "Acme Medical", "Vent 500", "VX2500", false},
		{"other prefix, number in range", "Acme Medical", "Vent 500", "VY250", false},
		{"longer prefix", "Acme Medical", "Vent 500", "AVX250", false},
		{"suffix after the digits", "Acme Medical", "Vent 500", "VX250B", false},
		{"serial case-insensitive", "Acme Medical", "Vent 500", "vx250", true},
		{"manufacturer case-insensitive", "ACME MEDICAL", "Vent 500", "VX100", true},
		{"manufacturer with extra spaces", "  Acme   Medical ", "Vent 500", "VX100", true},
		{"model case-insensitive", "Acme Medical", "VENT 500", "VX250", true},
		{"other model", "Acme Medical", "Vent 600", "VX250", false},
		{"other manufacturer", "Acme Med", "Vent 500", "VX250", false},
		{"no serial in the inventory", "Acme Medical", "Vent 500", "", false},
		{"listed serial is not a prefix match", "Acme Medical", "Vent 500", "VX1000", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Affects(tc.manufacturer, tc.model, tc.serial); got != tc.want {
				t.Fatalf("Affects(%q, %q, %q) = %v; want %v", tc.manufacturer, tc.model, tc.serial, got, tc.want)
			}
		})
	}
	t.Run("no serials: every serial of the model", func(t *testing.T) {
		b := AlertInput{Manufacturer: "Acme Medical", Models: []string{"Vent 500"}}
		if !b.Affects("acme medical", "vent 500", "ANY1") || b.Affects("acme medical", "vent 600", "ANY1") {
			t.Fatal("a model-wide alert must match every serial of that model only")
		}
	})
}

func TestParseAlerts(t *testing.T) {
	csvFile := "source,reference,date,manufacturer,models,serials,patient_risk,action\n" +
		"INVIMA,ALERTA-2026-123,2026-11-30,Acme Medical,Vent 500,VX100;VX200..VX299,true,Reemplazar válvula\n"
	fromCSV, err := ParseAlerts([]byte(csvFile))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := ParseAlerts([]byte(issueAlert))
	if err != nil {
		t.Fatal(err)
	}
	if len(fromCSV) != 1 || len(fromCSV[0].Serials) != 2 || fromCSV[0].Serials[1] != fromJSON[0].Serials[1] ||
		fromCSV[0].Serials[0] != fromJSON[0].Serials[0] || !fromCSV[0].PatientRisk || fromCSV[0].Models[0] != "Vent 500" {
		t.Fatalf("CSV %+v differs from JSON %+v", fromCSV, fromJSON)
	}
	bad := []struct{ name, file, want string }{
		{"range with two prefixes", strings.Replace(issueAlert, `"to": "VX299"`, `"to": "VY299"`, 1), "different prefixes"},
		{"range backwards", strings.Replace(issueAlert, `"to": "VX299"`, `"to": "VX199"`, 1), "from is after to"},
		{"range bound without digits", strings.Replace(issueAlert, `"from": "VX200"`, `"from": "VX"`, 1), "end in digits"},
		{"unknown field", strings.Replace(issueAlert, `"action"`, `"acción": 1, "action"`, 1), "unknown field"},
		{"bad date", strings.Replace(issueAlert, "2026-11-30", "30/11/2026", 1), "date"},
		{"no action", strings.Replace(issueAlert, "Reemplazar válvula", " ", 1), "action is required"},
		{"empty array", "[]", "1 to 1000"},
		{"CSV with another header", "source,ref\nA,B\n", "header"},
		{"CSV risk not a boolean", strings.Replace(csvFile, ",true,", ",sí,", 1), "patient_risk"},
		{"NUL byte in JSON", "[\x00]", "invalid JSON"},
		{"escaped NUL in a JSON value", `[{"source":"INV\u0000IMA"}]`, "source: contains a NUL"},
		{"NUL byte in CSV", "source\x00,reference\n", "UTF-8"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAlerts([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one mentioning %q", err, tc.want)
			}
		})
	}
}
