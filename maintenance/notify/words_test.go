package notify

import "testing"

// The ticket core's own timeline words in both languages.
func TestTicketCoreWords(t *testing.T) {
	testWords(t, []wordCase{
		{"customer caused", CustomerCausedText,
			"la causa fue del cliente: el tiempo de diagnóstico es facturable", "the cause was the customer's: the diagnosis time is billable"},
		{"preventive visit", func(l string) string {
			return PreventiveVisitText(l, "2026-06-08", "2026-06-08T00:00:00-05:00", "2026-06-09T00:00:00-05:00")
		},
			"visita preventiva el 2026-06-08; ventana de mantenimiento de 2026-06-08T00:00:00-05:00 a 2026-06-09T00:00:00-05:00",
			"preventive visit on 2026-06-08; maintenance window from 2026-06-08T00:00:00-05:00 to 2026-06-09T00:00:00-05:00"},
	})
}
