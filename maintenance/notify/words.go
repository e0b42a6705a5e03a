package notify

import (
	"fmt"
	"strings"
	"time"
)

// The words of the tickets intake opens by itself (device alerts, worklist
// and outage timelines), in the customer's language lang ("en" or
// Spanish): intake hands the keys and values, the text is written here.

// TrapTitle names a trap condition's ticket: the trap's own text in lang,
// then the device and its site.
func TrapTitle(lang, textES, textEN, device, site string) string {
	if lang == "en" {
		return fmt.Sprintf("%s: %s at %s", textEN, device, site)
	}
	return fmt.Sprintf("%s: %s en %s", textES, device, site)
}

// TrapClearedText is the timeline entry of a trap condition that cleared.
func TrapClearedText(lang, trapOID string) string {
	if lang == "en" {
		return "the condition cleared (trap " + trapOID + ")"
	}
	return "la condición se despejó (trap " + trapOID + ")"
}

// StorageTitle reads "PACS storage full in ~9 days (/data, PACS central)";
// kind is the device's inventory kind.
func StorageTitle(lang, kind, device, volume string, days int) string {
	what := strings.ToUpper(kind)
	if kind != "pacs" && kind != "ris" {
		what = kind
	}
	if lang == "en" {
		unit := "days"
		if days == 1 {
			unit = "day"
		}
		return fmt.Sprintf("%s storage full in ~%d %s (%s, %s)", what, days, unit, volume, device)
	}
	unit := "días"
	if days == 1 {
		unit = "día"
	}
	return fmt.Sprintf("Almacenamiento del %s lleno en ~%d %s (%s, %s)", what, days, unit, volume, device)
}

// StorageForecastText is the timeline entry of an updated forecast.
func StorageForecastText(lang string, days int, fullAt time.Time) string {
	if lang == "en" {
		return fmt.Sprintf("forecast updated: full in ~%d days (%s UTC)", days, fullAt.UTC().Format("2006-01-02 15:04"))
	}
	return fmt.Sprintf("pronóstico actualizado: lleno en ~%d días (%s UTC)", days, fullAt.UTC().Format("2006-01-02 15:04"))
}

// StorageCalmText is the timeline entry of a volume the trend no longer
// fills.
func StorageCalmText(lang, volume string) string {
	if lang == "en" {
		return "the trend no longer fills volume " + volume + " within the threshold"
	}
	return "la tendencia ya no llena el volumen " + volume + " antes del umbral"
}

// WorklistRestoredText is the timeline entry of a worklist answering again.
func WorklistRestoredText(lang string) string {
	return inLang(lang, "la worklist responde de nuevo", "worklist answering again")
}

// ServiceRestoredText is the timeline entry of a device or site answering
// again (alert: an Alertmanager alert resolved).
func ServiceRestoredText(lang string, alert bool) string {
	if alert {
		return inLang(lang, "servicio restablecido (alerta resuelta)", "service restored (alert resolved)")
	}
	return inLang(lang, "servicio restablecido", "service restored")
}

// MonitoringRestoredText closes the NOC's ticket of a collector's loss.
func MonitoringRestoredText(lang string) string {
	return inLang(lang, "monitoreo restablecido: los resultados del colector llegan de nuevo",
		"monitoring restored: the collector's results arrive again")
}

// DeviceEventText is the timeline entry of a device event that annotates
// an open ticket (flapping, misconfiguration, reboot); "" for another kind.
func DeviceEventText(lang, kind string) string {
	w, ok := deviceEventText[kind]
	if !ok {
		return ""
	}
	return inLang(lang, w[0], w[1])
}

var deviceEventText = map[string][2]string{
	"flapping_started": {"el equipo oscila (flapping)", "the device is flapping"},
	"flapping_stopped": {"el equipo dejó de oscilar", "the device stopped flapping"},
	"misconfigured":    {"la sonda del equipo está mal configurada", "the device's probe is misconfigured"},
	"rebooted":         {"el equipo se reinició", "the device rebooted"},
}

// RescheduleTitle is the title of the ticket that reschedules a visit, in
// the customer's language; a ticket rescheduled again keeps one prefix.
func RescheduleTitle(lang, title string) string {
	prefix := "Reprogramar visita: "
	if lang == "en" {
		prefix = "Reschedule visit: "
	}
	for _, p := range []string{"Reprogramar visita: ", "Reschedule visit: "} {
		title = strings.TrimPrefix(title, p)
	}
	return prefix + title
}

// PreventiveTitle is a work order's title in the customer's language.
func PreventiveTitle(lang, due, plan, device string) string {
	if lang == "en" {
		return fmt.Sprintf("Preventive maintenance %s: %s (%s)", due, plan, device)
	}
	return fmt.Sprintf("Mantenimiento preventivo %s: %s (%s)", due, plan, device)
}

// CustomerCausedText is the timeline entry of a fault found to be the
// customer's: the diagnosis time becomes billable (seed 000).
func CustomerCausedText(lang string) string {
	return inLang(lang, "la causa fue del cliente: el tiempo de diagnóstico es facturable",
		"the cause was the customer's: the diagnosis time is billable")
}

// PreventiveVisitText is the timeline entry of a preventive visit's day
// and its maintenance window.
func PreventiveVisitText(lang, due, start, end string) string {
	return fmt.Sprintf(inLang(lang, "visita preventiva el %s; ventana de mantenimiento de %s a %s",
		"preventive visit on %s; maintenance window from %s to %s"), due, start, end)
}
