package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRenderLanguages: the report speaks the customer's language, and
// every format carries the same figures.
func TestRenderLanguages(t *testing.T) {
	bogota, _ := time.LoadLocation("America/Bogota")
	m := Monthly{CustomerID: "c", CustomerName: "Clinic", Month: "2026-11", TimeZone: "America/Bogota",
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, bogota), To: time.Date(2026, 12, 1, 0, 0, 0, 0, bogota),
		Availability: Availability{Devices: []DeviceAvailability{{DeviceID: "ct", DeviceName: "CT", CoveredSeconds: 684000,
			DowntimeSeconds: 1800.5, Availability: 0.997368, Exclusions: []Exclusion{}}}},
		BySeverity: []SeverityRow{{Severity: 2, Opened: 1, ResponseBreached: 1}},
		Outcomes: []OutcomeRow{{Ticket: "VG-2026-000007", Severity: 2, Clock: "response", Outcome: "breached",
			Due: time.Date(2026, 11, 3, 21, 0, 0, 0, bogota), Stopped: time.Date(2026, 11, 3, 22, 30, 5, 0, bogota), MarginSeconds: -5405}},
		Pauses: []PauseRow{{Reason: "import", Pauses: 2, Seconds: 9000, Hours: 2.5}}, Currency: "COP", BillableTotalCents: 12345}
	figures := []string{"99.7368 %", "1800.5", "190.00", "-1:30:05", "2.50", "123.45"}
	for _, tc := range []struct {
		lang  string
		words []string
	}{
		{"es", []string{"Informe mensual de servicio", "incumplido", "Importación", "Respuesta incumplida"}},
		{"en", []string{"Monthly service report", "breached", "Import", "Response breached"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			m.Language = tc.lang
			var html bytes.Buffer
			if err := m.WriteHTML(&html); err != nil {
				t.Fatal(err)
			}
			for _, w := range append(append([]string{}, figures...), tc.words...) {
				if !strings.Contains(html.String(), w) {
					t.Errorf("HTML lacks %q", w)
				}
			}
			var text bytes.Buffer
			if err := m.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{"99.7368 %", "2.50 h", "123.45 COP", tc.words[0]} {
				if !strings.Contains(text.String(), w) {
					t.Errorf("text lacks %q:\n%s", w, text.String())
				}
			}
		})
	}
	var csv bytes.Buffer
	if err := m.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"device,ct,,,684000,1800.5,0,0.997368", "outcome,VG-2026-000007,2,response,breached", "-5405", "pause,import,2,9000,2.50", "billable_total,123.45,COP"} {
		if !strings.Contains(csv.String(), w) {
			t.Errorf("CSV lacks %q:\n%s", w, csv.String())
		}
	}
}
