package notify

import "testing"

// Each of biomed's texts in both languages: Spanish as it always read,
// English for a customer whose language is "en".
func TestBiomedWords(t *testing.T) {
	alert := SafetyAlert{Source: "INVIMA", Reference: "A-2026-01", Date: "2026-02-03", Manufacturer: "Acme Medical",
		Models: []string{"P-100", "P-200"}, Action: "Actualizar el firmware", DeviceName: "Bomba UCI 3", DeviceID: "dev-7",
		DeviceManufacturer: "Acme Medical", DeviceModel: "P-100", Serial: "SN-9"}
	risky := alert
	risky.PatientRisk = true
	failed := SafetyFailure("es", "equipment_leakage", 620, "µA", 500)
	failedEN := SafetyFailure("en", "equipment_leakage", 620, "µA", 500)
	testWords(t, []wordCase{
		{"alert title", func(l string) string { return SafetyAlertTitle(l, alert) },
			"Alerta de seguridad INVIMA A-2026-01: Acme Medical P-100 (serie SN-9)", "Safety alert INVIMA A-2026-01: Acme Medical P-100 (serial SN-9)"},
		{"alert text", func(l string) string { return SafetyAlertText(l, alert) },
			"Alerta INVIMA A-2026-01 del 2026-02-03. Fabricante: Acme Medical; modelos: P-100, P-200. Riesgo para el paciente: no.\n" +
				"Acción: Actualizar el firmware\nEquipo afectado: Bomba UCI 3 (dev-7), serie SN-9.",
			"Alert INVIMA A-2026-01 of 2026-02-03. Manufacturer: Acme Medical; models: P-100, P-200. Patient risk: no.\n" +
				"Action: Actualizar el firmware\nAffected device: Bomba UCI 3 (dev-7), serial SN-9."},
		{"alert text with patient risk", func(l string) string { return SafetyAlertText(l, risky) },
			"Alerta INVIMA A-2026-01 del 2026-02-03. Fabricante: Acme Medical; modelos: P-100, P-200. Riesgo para el paciente: sí.\n" +
				"Acción: Actualizar el firmware\nEquipo afectado: Bomba UCI 3 (dev-7), serie SN-9.",
			"Alert INVIMA A-2026-01 of 2026-02-03. Manufacturer: Acme Medical; models: P-100, P-200. Patient risk: yes.\n" +
				"Action: Actualizar el firmware\nAffected device: Bomba UCI 3 (dev-7), serial SN-9."},
		{"calibration title", func(l string) string { return CalibrationOverdueTitle(l, "2026-03-01", "Monitor 2", "SN-4") },
			"Calibración vencida desde el 2026-03-01: Monitor 2 (serie SN-4)", "Calibration overdue since 2026-03-01: Monitor 2 (serial SN-4)"},
		{"calibration text", CalibrationOverdueText,
			"El equipo está marcado como instrumento de medición y su calibración venció. Programe la calibración y cargue el certificado.",
			"The device is flagged as a measuring instrument and its calibration is overdue. Book the calibration and upload the certificate."},
		{"failure", func(l string) string { return SafetyFailure(l, "protective_earth_resistance", 0.45, "Ω", 0.3) },
			"resistencia de la tierra de protección 0.45 Ω (límite 0.3)", "protective earth resistance 0.45 Ω (limit 0.3)"},
		{"failure of an unknown quantity", func(l string) string { return SafetyFailure(l, "x", 1, "A", 2) },
			" 1 A (límite 2)", " 1 A (limit 2)"},
		{"out-of-service reason", func(l string) string {
			return SafetyFailedReason(l, "recurrent", 12, map[bool]string{true: failedEN, false: failed}[l == "en"])
		},
			"Prueba IEC 62353 periódica n.º 12 fallida: corriente de fuga del equipo 620 µA (límite 500)",
			"IEC 62353 recurrent test no. 12 failed: equipment leakage current 620 µA (limit 500)"},
		{"failed test title", func(l string) string { return SafetyFailedTitle(l, "Bomba UCI 3", "SN-9") },
			"Equipo fuera de servicio: prueba de seguridad eléctrica fallida — Bomba UCI 3 (serie SN-9)",
			"Device out of service: failed electrical safety test — Bomba UCI 3 (serial SN-9)"},
		{"failed test text", func(l string) string {
			return SafetyFailedText(l, "after_repair", 5, map[bool]string{true: failedEN, false: failed}[l == "en"])
		},
			"Prueba IEC 62353 tras reparación de la visita 5 fallida: corriente de fuga del equipo 620 µA (límite 500). " +
				"El equipo queda fuera de servicio hasta que una prueba tras la reparación sea satisfactoria.",
			"IEC 62353 after repair test on visit 5 failed: equipment leakage current 620 µA (limit 500). " +
				"The device stays out of service until a test after repair passes."},
		{"preventive title", func(l string) string { return PreventiveTitle(l, "2026-04-06", "Inspección", "Bomba UCI 3") },
			"Mantenimiento preventivo 2026-04-06: Inspección (Bomba UCI 3)", "Preventive maintenance 2026-04-06: Inspección (Bomba UCI 3)"},
		{"preventive text", func(l string) string {
			return PreventiveText(l, "infusion", 45, []string{"biomed"}, []string{"Alarmas", "Fugas"})
		},
			"Programa: infusion\nDuración estimada: 45 min\nHabilidades requeridas: biomed\nLista de verificación:\n- Alarmas\n- Fugas\n",
			"Programme: infusion\nEstimated duration: 45 min\nRequired skills: biomed\nChecklist:\n- Alarmas\n- Fugas\n"},
		{"preventive text, bare", func(l string) string { return PreventiveText(l, "infusion", 30, nil, nil) },
			"Programa: infusion\nDuración estimada: 30 min\n", "Programme: infusion\nEstimated duration: 30 min\n"},
	})
}
