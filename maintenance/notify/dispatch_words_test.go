package notify

import "testing"

// Each of dispatch's texts in both languages: Spanish as it always read,
// English for a customer whose language is "en".
func TestDispatchWords(t *testing.T) {
	testWords(t, []wordCase{
		{"visit proposed", func(l string) string { return VisitProposedText(l, 7, "corrective", []string{"ana", "luis"}, "") },
			"Visita 7 propuesta (corrective) con ana, luis", "Visit 7 proposed (corrective) with ana, luis"},
		{"visit proposed with travel", func(l string) string { return VisitProposedText(l, 7, "preventive", []string{"ana"}, "Cali") },
			"Visita 7 propuesta (preventive) con ana; desplazamiento desde Cali a cargo del cliente",
			"Visit 7 proposed (preventive) with ana; travel from Cali billed to the customer"},
		{"visit moved", func(l string) string { return VisitMovedText(l, 7, "proposed", "scheduled", "") },
			"Visita 7: proposed → scheduled", "Visit 7: proposed → scheduled"},
		{"visit moved with note", func(l string) string { return VisitMovedText(l, 7, "scheduled", "cancelled", "lluvia") },
			"Visita 7: scheduled → cancelled. lluvia", "Visit 7: scheduled → cancelled. lluvia"},
		{"visit done", func(l string) string { return VisitDoneText(l, 7, "Cambio de fuente", "Dra. Ruiz") },
			"Visita 7 realizada: Cambio de fuente. Firmado por Dra. Ruiz.", "Visit 7 done: Cambio de fuente. Signed by Dra. Ruiz."},
		{"visit ref", func(l string) string { return VisitRef(l, 7) }, "visita 7", "visit 7"},
		{"equipment unavailable", func(l string) string { return EquipmentUnavailableText(l, 7, "") },
			"Equipo no disponible a la hora acordada (visita 7)", "Equipment unavailable at the agreed time (visit 7)"},
		{"equipment unavailable with note", func(l string) string { return EquipmentUnavailableText(l, 7, "sala ocupada") },
			"Equipo no disponible a la hora acordada (visita 7): sala ocupada", "Equipment unavailable at the agreed time (visit 7): sala ocupada"},
		{"wait carried", func(l string) string { return WaitCarriedText(l, "VG-2026-000042") },
			"continúa la espera del ticket VG-2026-000042", "the wait of ticket VG-2026-000042 goes on"},
		{"rescheduled visit", func(l string) string { return RescheduledVisitNote(l, 7, "VG-2026-000042") },
			"Reprogramación de la visita 7 (ticket VG-2026-000042)", "Rescheduling of visit 7 (ticket VG-2026-000042)"},
		{"part requested", func(l string) string { return PartRequestedText(l, "GE 5141", 2, 3) },
			"Repuesto solicitado: GE 5141 ×2 (solicitud 3)", "Spare part requested: GE 5141 ×2 (request 3)"},
		{"part moved", func(l string) string { return PartMovedText(l, 3, "ordered", "in_customs", "") },
			"Solicitud de repuesto 3: ordered → in_customs", "Part request 3: ordered → in_customs"},
		{"part moved with note", func(l string) string { return PartMovedText(l, 3, "received", "installed", "visita 7") },
			"Solicitud de repuesto 3: received → installed. visita 7", "Part request 3: received → installed. visita 7"},
		{"case opened", func(l string) string { return CaseOpenedText(l, "Siemens", "CS-9") },
			"Caso abierto con Siemens: CS-9", "Case opened with Siemens: CS-9"},
		{"case moved", func(l string) string {
			return CaseMovedText(l, "CS-9", "Siemens", "opened", "escalated", "", "nivel 2")
		},
			"Caso CS-9 de Siemens: opened → escalated. nivel 2", "Case CS-9 with Siemens: opened → escalated. nivel 2"},
		{"case answered", func(l string) string {
			return CaseMovedText(l, "CS-9", "Siemens", "escalated", "answered", "parche 3.1", "nota")
		},
			"Caso CS-9 de Siemens: escalated → answered. Respuesta: parche 3.1", "Case CS-9 with Siemens: escalated → answered. Answer: parche 3.1"},
		{"quote proposed", func(l string) string { return QuoteProposedText(l, 4, 2) }, "Cotización 4: 2 h", "Quote 4: 2 h"},
		{"quote decided", func(l string) string { return QuoteDecidedText(l, 4, "approved") }, "Cotización 4: approved", "Quote 4: approved"},
		{"remote work line", func(l string) string { return WorkLineText(l, "remote", "repair", "VG-2026-000042", 2) },
			"Soporte remoto repair, ticket VG-2026-000042: 2 h", "Remote support repair, ticket VG-2026-000042: 2 h"},
		{"on-site work line", func(l string) string { return WorkLineText(l, "on_site", "update", "VG-2026-000042", 1) },
			"Soporte en sitio update, ticket VG-2026-000042: 1 h", "On-site support update, ticket VG-2026-000042: 1 h"},
		{"travel line", func(l string) string { return TravelLineText(l, "Bogotá", "Cali", 7, "VG-2026-000042", false) },
			"Desplazamiento Bogotá → Cali, visita 7 (ticket VG-2026-000042)", "Travel Bogotá → Cali, visit 7 (ticket VG-2026-000042)"},
		{"travel line at cost", func(l string) string { return TravelLineText(l, "Bogotá", "Cali", 7, "VG-2026-000042", true) },
			"Desplazamiento Bogotá → Cali, visita 7 (ticket VG-2026-000042) — a facturar al costo",
			"Travel Bogotá → Cali, visit 7 (ticket VG-2026-000042) — billed at cost"},
		{"equipment unavailable mail", func(l string) string {
			s, b := EquipmentUnavailableMail(l, "lun 2026-03-02 09:00", "VG-1", "VG-2")
			return s + "\n" + b
		},
			"[VG-1] Visita no realizada: equipo no disponible\nNuestro ingeniero no pudo intervenir el equipo a la hora acordada (lun 2026-03-02 09:00) porque no estaba disponible.\n" +
				"Según la política de soporte, el ticket VG-1 se cierra y se abrió el ticket VG-2 para reprogramar la visita.\n\n— Vigía NOC\n",
			"[VG-1] Visit not possible: equipment unavailable\nOur engineer could not work on the equipment at the agreed time (lun 2026-03-02 09:00): it was not available.\n" +
				"As the support policy states, ticket VG-1 is closed and ticket VG-2 was opened to reschedule the visit.\n\n— Vigía NOC\n"},
		{"hour bank mail", func(l string) string {
			s, b := HourBankMail(l, "K-1", 80, "4.0", 20, "2026-12-31")
			return s + "\n" + b
		},
			"Bolsa de horas K-1: 80% consumido\nA su bolsa de horas de soporte (contrato K-1) le quedan 4.0 de 20 horas, vigentes hasta 2026-12-31.\n\n— Vigía NOC\n",
			"Hour bank K-1: 80% used\nYour support hour bank (contract K-1) has 4.0 of 20 hours left, valid until 2026-12-31.\n\n— Vigía NOC\n"},
	})
}

// wordCase is one text in Spanish (also for a customer without a language
// set) and English.
type wordCase struct {
	name   string
	text   func(lang string) string
	es, en string
}

func testWords(t *testing.T, tests []wordCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range []struct{ lang, want string }{{"es", tc.es}, {"", tc.es}, {"en", tc.en}} {
				if got := tc.text(c.lang); got != c.want {
					t.Errorf("lang %q:\n got %q\nwant %q", c.lang, got, c.want)
				}
			}
		})
	}
}
