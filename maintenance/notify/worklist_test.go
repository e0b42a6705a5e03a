package notify

import (
	"strings"
	"testing"
	"time"
)

// TestRenderWorklistTicket: a failing worklist is told as such, in the
// customer's language, never as an outage (the broker answers).
func TestRenderWorklistTicket(t *testing.T) {
	due := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	tk := &Ticket{Number: "VG-2026-000042", Severity: 2, Automatic: true, AutoKey: "worklist:hsr-worklist",
		Title: "Worklist con fallas en Broker (Sede principal)", ResponseDueAt: &due}
	tests := []struct {
		language, want, wantSubject string
	}{
		{"es", "La lista de trabajo (worklist) de Broker en la Sede principal está fallando (no responde, o está vacía en horario hábil), ticket VG-2026-000042, Severidad 2, respuesta antes de 2026-12-07 12:00 (America/Bogota).",
			"[VG-2026-000042] Severidad 2: Worklist con fallas"},
		{"en", "The modality worklist of Broker at site Sede principal is failing (not answering, or empty during working hours), ticket VG-2026-000042, Sev 2, response due 2026-12-07 12:00 (America/Bogota).",
			"[VG-2026-000042] Sev 2: Worklist con fallas"},
	}
	for _, tt := range tests {
		t.Run(tt.language, func(t *testing.T) {
			m := render(Notice{Kind: Opened}, tk, ticketContext{Language: tt.language, TimeZone: "America/Bogota", SiteName: "Sede principal",
				DeviceNames: []string{"Broker"}})
			if !strings.HasPrefix(m.Body, tt.want) || !strings.HasPrefix(m.Subject, tt.wantSubject) {
				t.Fatalf("got %q / %q, want %q / %q", m.Subject, m.Body, tt.wantSubject, tt.want)
			}
			if strings.Contains(m.Body, "caída") || strings.Contains(m.Body, "outage") {
				t.Errorf("a worklist ticket told as an outage: %q", m.Body)
			}
		})
	}
}
