package console

import "strings"

// The names of timeline entries' kinds. The domain stores a kind as a key
// (opened, service_restored, visit_on_site…); people read it here, in their
// language. Dispatch's kinds are a prefix and a state, named with the
// states' own words (vstate., pstate., cstate.).
func init() {
	addMessages("timeline", map[string]map[string]string{
		"es": {
			"event.opened": "Abierto", "event.acknowledged": "Reconocido", "event.assigned": "Asignado",
			"event.paused": "En pausa", "event.resumed": "Reanudado", "event.severity_changed": "Cambio de severidad",
			"event.comment": "Comentario", "event.solved": "Solucionado", "event.reopened": "Reabierto", "event.closed": "Cerrado",
			"event.contact_attempt": "Intento de contacto", "event.contact_attempts_exhausted": "Intentos de contacto agotados",
			"event.customer_replied": "Respuesta del cliente", "event.linked_ticket": "Ticket relacionado",
			"event.outage_attached": "Nueva caída", "event.service_restored": "Servicio restablecido",
			"event.billable": "Facturable", "event.billable_flagged": "Marcado como facturable",
			"event.pause_reasons_added": "Motivos de pausa", "event.preventive_visit": "Visita preventiva",
			"event.rescheduled": "Reprogramado", "event.delivery_failed": "Correo no entregado",
			"event.quote_proposed": "Cotización propuesta", "event.quote_approved": "Cotización aprobada",
			"event.quote_rejected": "Cotización rechazada", "event.alert": "Alerta", "event.collector": "Colector",
			"event.device": "Equipo", "event.storage_forecast": "Pronóstico de almacenamiento",
			"event.trap_repeated": "Trap repetido", "event.worklist": "Worklist",
			"event.visit": "Visita", "event.part": "Repuesto", "event.manufacturer_case": "Caso con el fabricante",
		},
		"en": {
			"event.opened": "Opened", "event.acknowledged": "Acknowledged", "event.assigned": "Assigned",
			"event.paused": "Paused", "event.resumed": "Resumed", "event.severity_changed": "Severity changed",
			"event.comment": "Comment", "event.solved": "Solved", "event.reopened": "Reopened", "event.closed": "Closed",
			"event.contact_attempt": "Contact attempt", "event.contact_attempts_exhausted": "Contact attempts exhausted",
			"event.customer_replied": "Customer replied", "event.linked_ticket": "Linked ticket",
			"event.outage_attached": "New outage", "event.service_restored": "Service restored",
			"event.billable": "Billable", "event.billable_flagged": "Flagged billable",
			"event.pause_reasons_added": "Pause reasons", "event.preventive_visit": "Preventive visit",
			"event.rescheduled": "Rescheduled", "event.delivery_failed": "E-mail not delivered",
			"event.quote_proposed": "Quote proposed", "event.quote_approved": "Quote approved",
			"event.quote_rejected": "Quote rejected", "event.alert": "Alert", "event.collector": "Collector",
			"event.device": "Device", "event.storage_forecast": "Storage forecast",
			"event.trap_repeated": "Trap repeated", "event.worklist": "Worklist",
			"event.visit": "Visit", "event.part": "Part", "event.manufacturer_case": "Manufacturer case",
		},
	})
}

// stateKinds are dispatch's timeline kinds: a prefix, then a state.
var stateKinds = []struct{ prefix, event, states string }{
	{"visit_", "event.visit", "vstate."},
	{"part_", "event.part", "pstate."},
	{"manufacturer_case_", "event.manufacturer_case", "cstate."},
}

// EventKind names a timeline entry's kind in the reader's language; a kind
// without words yet reads as itself with spaces, never as a catalogue key.
func (v view) EventKind(kind string) string {
	if _, ok := messages["es"]["event."+kind]; ok {
		return v.T("event." + kind)
	}
	for _, k := range stateKinds {
		if state, ok := strings.CutPrefix(kind, k.prefix); ok {
			if _, known := messages["es"][k.states+state]; known {
				return v.T(k.event) + ": " + v.T(k.states+state)
			}
		}
	}
	return strings.ReplaceAll(kind, "_", " ")
}
