package notify

import (
	"fmt"
	"strings"
)

// The words of the tickets and inventory notes biomedical engineering
// writes by itself (safety alerts, overdue calibrations, failed electrical
// safety tests, preventive work orders), in the customer's language lang
// ("en" or Spanish): biomed hands the values, the text is written here.

// SafetyAlert is what a manufacturer's or regulator's safety alert says
// about one affected device.
type SafetyAlert struct {
	Source, Reference, Date string // who issued it, its reference and date
	Manufacturer            string
	Models                  []string
	PatientRisk             bool
	Action                  string
	// The affected device.
	DeviceName, DeviceID, DeviceManufacturer, DeviceModel, Serial string
}

// SafetyAlertTitle is the title of the ticket a safety alert opens for
// one affected device.
func SafetyAlertTitle(lang string, a SafetyAlert) string {
	return fmt.Sprintf(inLang(lang, "Alerta de seguridad %s %s: %s %s (serie %s)", "Safety alert %s %s: %s %s (serial %s)"),
		a.Source, a.Reference, a.DeviceManufacturer, a.DeviceModel, a.Serial)
}

// SafetyAlertText is that ticket's description.
func SafetyAlertText(lang string, a SafetyAlert) string {
	risk := "no"
	if a.PatientRisk {
		risk = inLang(lang, "sí", "yes")
	}
	return fmt.Sprintf(inLang(lang,
		"Alerta %s %s del %s. Fabricante: %s; modelos: %s. Riesgo para el paciente: %s.\nAcción: %s\nEquipo afectado: %s (%s), serie %s.",
		"Alert %s %s of %s. Manufacturer: %s; models: %s. Patient risk: %s.\nAction: %s\nAffected device: %s (%s), serial %s."),
		a.Source, a.Reference, a.Date, a.Manufacturer, strings.Join(a.Models, ", "), risk, a.Action, a.DeviceName, a.DeviceID, a.Serial)
}

// CalibrationOverdueTitle is the title of the ticket of a measuring
// instrument whose calibration fell due on dueOn.
func CalibrationOverdueTitle(lang, dueOn, device, serial string) string {
	return fmt.Sprintf(inLang(lang, "Calibración vencida desde el %s: %s (serie %s)", "Calibration overdue since %s: %s (serial %s)"),
		dueOn, device, serial)
}

// CalibrationOverdueText is that ticket's description.
func CalibrationOverdueText(lang string) string {
	return inLang(lang,
		"El equipo está marcado como instrumento de medición y su calibración venció. Programe la calibración y cargue el certificado.",
		"The device is flagged as a measuring instrument and its calibration is overdue. Book the calibration and upload the certificate.")
}

// safetyTerms are an IEC 62353 test's kinds and measured quantities.
var safetyTerms = map[string][2]string{
	"recurrent":                   {"periódica", "recurrent"},
	"after_repair":                {"tras reparación", "after repair"},
	"protective_earth_resistance": {"resistencia de la tierra de protección", "protective earth resistance"},
	"equipment_leakage":           {"corriente de fuga del equipo", "equipment leakage current"},
	"applied_part_leakage":        {"corriente de fuga de la parte aplicada", "applied part leakage current"},
	"insulation_resistance":       {"resistencia de aislamiento", "insulation resistance"},
}

// safetyTerm names a test kind or quantity key; "" for an unknown key.
func safetyTerm(lang, key string) string {
	w, ok := safetyTerms[key]
	if !ok {
		return ""
	}
	return inLang(lang, w[0], w[1])
}

// SafetyFailure describes one failed measurement: the quantity (a key),
// its value and unit, and the limit it broke.
func SafetyFailure(lang, quantity string, value float64, unit string, limit float64) string {
	return fmt.Sprintf("%s %g %s (%s %g)", safetyTerm(lang, quantity), value, unit, inLang(lang, "límite", "limit"), limit)
}

// SafetyFailedReason is why the inventory holds a device out of service
// after test number test of kind (recurrent, after_repair) failed with
// failures (SafetyFailure's, joined).
func SafetyFailedReason(lang, kind string, test int64, failures string) string {
	return fmt.Sprintf(inLang(lang, "Prueba IEC 62353 %s n.º %d fallida: %s", "IEC 62353 %s test no. %d failed: %s"),
		safetyTerm(lang, kind), test, failures)
}

// SafetyFailedTitle is the title of the ticket a failed test opens.
func SafetyFailedTitle(lang, device, serial string) string {
	return fmt.Sprintf(inLang(lang, "Equipo fuera de servicio: prueba de seguridad eléctrica fallida — %s (serie %s)",
		"Device out of service: failed electrical safety test — %s (serial %s)"), device, serial)
}

// SafetyFailedText is that ticket's description.
func SafetyFailedText(lang, kind string, visit int64, failures string) string {
	return fmt.Sprintf(inLang(lang,
		"Prueba IEC 62353 %s de la visita %d fallida: %s. El equipo queda fuera de servicio hasta que una prueba tras la reparación sea satisfactoria.",
		"IEC 62353 %s test on visit %d failed: %s. The device stays out of service until a test after repair passes."),
		safetyTerm(lang, kind), visit, failures)
}

// PreventiveText is a preventive work order's description: the programme,
// the time it takes, the skills it needs and its checklist.
func PreventiveText(lang, programme string, minutes int, skills, checklist []string) string {
	words := [4]string{"Programa", "Duración estimada", "Habilidades requeridas", "Lista de verificación"}
	if lang == "en" {
		words = [4]string{"Programme", "Estimated duration", "Required skills", "Checklist"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n%s: %d min\n", words[0], programme, words[1], minutes)
	if len(skills) > 0 {
		fmt.Fprintf(&b, "%s: %s\n", words[2], strings.Join(skills, ", "))
	}
	if len(checklist) > 0 {
		fmt.Fprintf(&b, "%s:\n", words[3])
		for _, c := range checklist {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}
	return b.String()
}
