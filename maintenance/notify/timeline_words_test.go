package notify

import "testing"

// The core's timeline entries in both languages: a Spanish (or unset)
// customer reads Spanish, an English one English.
func TestTimelineWords(t *testing.T) {
	tests := []struct {
		name   string
		text   func(lang string) string
		es, en string
	}{
		{"fault back", FaultBackText, "la falla volvió mientras se esperaba la confirmación", "the fault is back while awaiting confirmation"},
		{"outage attached", func(l string) string { return AttachedText(l, false) }, "nueva caída con el ticket abierto", "new outage while the ticket is open"},
		{"alert attached", func(l string) string { return AttachedText(l, true) }, "alerta activa con el ticket abierto", "alert firing while the ticket is open"},
		{"answered", EmailAnsweredText, "el cliente respondió por correo", "the customer answered by e-mail"},
		{"reply stops closure", ReplyStopsClosureText,
			"el cliente respondió mientras la solución esperaba confirmación: se detienen los contactos de pre-cierre y el cierre automático; el ingeniero confirma, cierra o reabre",
			"the customer replied while the solution awaited confirmation: pre-closure contacts and auto-close stopped; the engineer confirms, closes or reopens"},
		{"bounce", func(l string) string { return DeliveryFailedText(l, "it@h.example", "550 no such user") },
			"falló el correo a it@h.example: 550 no such user", "e-mail to it@h.example failed: 550 no such user"},
		{"call attempt", func(l string) string { return ContactAttemptText(l, 1, 3, "call") },
			"intento de contacto 1 de 3 (llamada) para confirmar la solución", "contact attempt 1 of 3 (call) to confirm the solution"},
		{"e-mail attempt", func(l string) string { return ContactAttemptText(l, 2, 3, "email") },
			"intento de contacto 2 de 3 (correo) para confirmar la solución", "contact attempt 2 of 3 (email) to confirm the solution"},
		{"accepted", AcceptedWithoutAnswerText, "el protocolo de pre-cierre terminó sin respuesta: solución aceptada",
			"pre-closure protocol ended without an answer: solution accepted"},
		{"exhausted", AttemptsExhaustedText, "sin respuesta tras los intentos de contacto del protocolo; el NOC cierra el ticket",
			"no answer after the protocol's contact attempts; the NOC closes the ticket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for lang, want := range map[string]string{"es": tc.es, "": tc.es, "en": tc.en} {
				if got := tc.text(lang); got != want {
					t.Errorf("%q: %q, want %q", lang, got, want)
				}
			}
		})
	}
}

// The words of restorations and device events, in both languages.
func TestRestoreWords(t *testing.T) {
	tests := []struct {
		name   string
		text   func(lang string) string
		es, en string
	}{
		{"service restored", func(l string) string { return ServiceRestoredText(l, false) }, "servicio restablecido", "service restored"},
		{"alert resolved", func(l string) string { return ServiceRestoredText(l, true) }, "servicio restablecido (alerta resuelta)", "service restored (alert resolved)"},
		{"worklist", WorklistRestoredText, "la worklist responde de nuevo", "worklist answering again"},
		{"monitoring", MonitoringRestoredText, "monitoreo restablecido: los resultados del colector llegan de nuevo",
			"monitoring restored: the collector's results arrive again"},
		{"rebooted", func(l string) string { return DeviceEventText(l, "rebooted") }, "el equipo se reinició", "the device rebooted"},
		{"unknown event", func(l string) string { return DeviceEventText(l, "device_up") }, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for lang, want := range map[string]string{"es": tc.es, "": tc.es, "en": tc.en} {
				if got := tc.text(lang); got != want {
					t.Errorf("%q: %q, want %q", lang, got, want)
				}
			}
		})
	}
}
