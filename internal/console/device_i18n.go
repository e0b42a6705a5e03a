package console

// deviceMessages are the device view's words, merged into messages: kept
// apart so that the history's many event names stay together.
var deviceMessages = map[string]map[string]string{
	"es": {
		"device.history":                  "Historial",
		"device.none":                     "Sin eventos registrados.",
		"device.state":                    "Estado",
		"device.when":                     "Cuándo",
		"device.what":                     "Qué",
		"device.detail":                   "Detalle",
		"history.trap":                    "Trap %s",
		"history.effect.interface_down":   "interfaz caída",
		"history.effect.interface_up":     "interfaz activa",
		"history.effect.reboot":           "reinicio",
		"history.effect.set":              "condición activada",
		"history.effect.clear":            "condición despejada",
		"history.event.device_down":       "Caída (incidente abierto)",
		"history.event.device_up":         "Servicio restablecido",
		"history.event.site_down":         "Sede sin conexión",
		"history.event.site_up":           "Sede reconectada",
		"history.event.flapping_started":  "Comenzó a oscilar",
		"history.event.flapping_stopped":  "Dejó de oscilar",
		"history.event.misconfigured":     "Sonda mal configurada",
		"history.event.rebooted":          "Reinicio",
		"history.event.worklist_failing":  "Worklist fallando",
		"history.event.worklist_restored": "Worklist restablecida",
		"history.event.trap_alarm":        "Alarma por trap",
		"history.event.trap_cleared":      "Alarma por trap despejada",
		"history.event.storage_trend":     "Pronóstico de almacenamiento",
		"history.storage.filling":         "%s lleno en ~%d días (%s)",
		"history.storage.ok":              "%s ya no se llena antes del umbral",
	},
	"en": {
		"device.history":                  "History",
		"device.none":                     "Nothing recorded.",
		"device.state":                    "State",
		"device.when":                     "When",
		"device.what":                     "What",
		"device.detail":                   "Detail",
		"history.trap":                    "Trap %s",
		"history.effect.interface_down":   "interface down",
		"history.effect.interface_up":     "interface up",
		"history.effect.reboot":           "reboot",
		"history.effect.set":              "condition raised",
		"history.effect.clear":            "condition cleared",
		"history.event.device_down":       "Down (outage opened)",
		"history.event.device_up":         "Service restored",
		"history.event.site_down":         "Site unreachable",
		"history.event.site_up":           "Site reachable again",
		"history.event.flapping_started":  "Started flapping",
		"history.event.flapping_stopped":  "Stopped flapping",
		"history.event.misconfigured":     "Probe misconfigured",
		"history.event.rebooted":          "Rebooted",
		"history.event.worklist_failing":  "Worklist failing",
		"history.event.worklist_restored": "Worklist restored",
		"history.event.trap_alarm":        "Trap alarm",
		"history.event.trap_cleared":      "Trap alarm cleared",
		"history.event.storage_trend":     "Storage forecast",
		"history.storage.filling":         "%s full in ~%d days (%s)",
		"history.storage.ok":              "%s no longer fills within the threshold",
	},
}

func init() {
	for lang, m := range deviceMessages {
		for k, v := range m {
			messages[lang][k] = v
		}
	}
}
