package notify

import (
	"fmt"
	"strings"
)

// The words of what dispatch writes on a ticket, its bill and its
// customer's mailbox (visits, spare parts, manufacturer cases, quotes, the
// hour bank), in the customer's language lang ("en" or Spanish): dispatch
// hands the values, the text is written here. States (proposed, on_site…)
// stay keys. The invitation an engineer receives is not here: it is
// dispatch's own artefact, written in the engineer's language
// (dispatch/invite.go).

// inLang is en for an English reader, es for anyone else.
func inLang(lang, es, en string) string {
	if lang == "en" {
		return en
	}
	return es
}

// withNote appends a person's note to an entry: ". note".
func withNote(text, note string) string {
	if note != "" {
		return text + ". " + note
	}
	return text
}

// VisitProposedText is the timeline entry of a proposed visit; travelFrom
// is the lead engineer's home city when the trip is billed, "" otherwise.
func VisitProposedText(lang string, visit int64, purpose string, engineers []string, travelFrom string) string {
	text := fmt.Sprintf(inLang(lang, "Visita %d propuesta (%s) con %s", "Visit %d proposed (%s) with %s"), visit, purpose, strings.Join(engineers, ", "))
	if travelFrom != "" {
		text += fmt.Sprintf(inLang(lang, "; desplazamiento desde %s a cargo del cliente", "; travel from %s billed to the customer"), travelFrom)
	}
	return text
}

// VisitMovedText is the timeline entry of a visit moving from one state to
// another, with the person's note.
func VisitMovedText(lang string, visit int64, from, to, note string) string {
	return withNote(fmt.Sprintf(inLang(lang, "Visita %d: %s → %s", "Visit %d: %s → %s"), visit, from, to), note)
}

// VisitDoneText is the timeline entry of a visit's outcome, signed on site.
func VisitDoneText(lang string, visit int64, work, signer string) string {
	return fmt.Sprintf(inLang(lang, "Visita %d realizada: %s. Firmado por %s.", "Visit %d done: %s. Signed by %s."), visit, work, signer)
}

// VisitRef names a visit in a note ("visita 7").
func VisitRef(lang string, visit int64) string {
	return fmt.Sprintf(inLang(lang, "visita %d", "visit %d"), visit)
}

// EquipmentUnavailableText is why a ticket closed when its visit found the
// equipment unavailable (seed 000 §8), with the engineer's note.
func EquipmentUnavailableText(lang string, visit int64, note string) string {
	text := fmt.Sprintf(inLang(lang, "Equipo no disponible a la hora acordada (visita %d)", "Equipment unavailable at the agreed time (visit %d)"), visit)
	if note != "" {
		text += ": " + note
	}
	return text
}

// WaitCarriedText is the pause note of the ticket that reschedules a visit
// and inherits the closed ticket's waits.
func WaitCarriedText(lang, closedTicket string) string {
	return fmt.Sprintf(inLang(lang, "continúa la espera del ticket %s", "the wait of ticket %s goes on"), closedTicket)
}

// RescheduledVisitNote is the notes of the visit that replaces one the
// equipment was unavailable for.
func RescheduledVisitNote(lang string, visit int64, closedTicket string) string {
	return fmt.Sprintf(inLang(lang, "Reprogramación de la visita %d (ticket %s)", "Rescheduling of visit %d (ticket %s)"), visit, closedTicket)
}

// PartRequestedText is the timeline entry (and pause note) of a spare part
// requested for the ticket.
func PartRequestedText(lang, part string, quantity int, request int64) string {
	return fmt.Sprintf(inLang(lang, "Repuesto solicitado: %s ×%d (solicitud %d)", "Spare part requested: %s ×%d (request %d)"), part, quantity, request)
}

// PartMovedText is the timeline entry of a part request changing state.
func PartMovedText(lang string, request int64, from, to, note string) string {
	return withNote(fmt.Sprintf(inLang(lang, "Solicitud de repuesto %d: %s → %s", "Part request %d: %s → %s"), request, from, to), note)
}

// CaseOpenedText is the timeline entry of a case opened with a
// manufacturer.
func CaseOpenedText(lang, manufacturer, caseNumber string) string {
	return fmt.Sprintf(inLang(lang, "Caso abierto con %s: %s", "Case opened with %s: %s"), manufacturer, caseNumber)
}

// CaseMovedText is the timeline entry of a manufacturer case changing
// state, with the manufacturer's answer or else the person's note.
func CaseMovedText(lang, caseNumber, manufacturer, from, to, answer, note string) string {
	text := fmt.Sprintf(inLang(lang, "Caso %s de %s: %s → %s", "Case %s with %s: %s → %s"), caseNumber, manufacturer, from, to)
	if answer != "" {
		return text + inLang(lang, ". Respuesta: ", ". Answer: ") + answer
	}
	return withNote(text, note)
}

// QuoteProposedText is the timeline entry of a quote for hours of work.
func QuoteProposedText(lang string, quote int64, hours int) string {
	return fmt.Sprintf(inLang(lang, "Cotización %d: %d h", "Quote %d: %d h"), quote, hours)
}

// QuoteDecidedText is the timeline entry of a quote approved or rejected
// (state, a key).
func QuoteDecidedText(lang string, quote int64, state string) string {
	return fmt.Sprintf(inLang(lang, "Cotización %d: %s", "Quote %d: %s"), quote, state)
}

// WorkLineText is a billable line of support hours; kind is remote or
// on_site, activity a key (repair, update…).
func WorkLineText(lang, kind, activity, ticket string, hours int) string {
	words := map[string]string{"remote": "Soporte remoto", "on_site": "Soporte en sitio"}
	if lang == "en" {
		words = map[string]string{"remote": "Remote support", "on_site": "On-site support"}
	}
	return fmt.Sprintf("%s %s, ticket %s: %d h", words[kind], activity, ticket, hours)
}

// TravelLineText is the billable line of a visit's trip; atCost when no
// price was agreed and the trip is billed at cost.
func TravelLineText(lang, from, to string, visit int64, ticket string, atCost bool) string {
	text := fmt.Sprintf(inLang(lang, "Desplazamiento %s → %s, visita %d (ticket %s)", "Travel %s → %s, visit %d (ticket %s)"), from, to, visit, ticket)
	if atCost {
		text += inLang(lang, " — a facturar al costo", " — billed at cost")
	}
	return text
}

// EquipmentUnavailableMail tells the customer that a visit found the
// equipment unavailable at the agreed time (window, already written in the
// customer's zone), that ticket closed closes and ticket next reschedules.
func EquipmentUnavailableMail(lang, window, closed, next string) (subject, body string) {
	if lang == "en" {
		return fmt.Sprintf("[%s] Visit not possible: equipment unavailable", closed),
			fmt.Sprintf("Our engineer could not work on the equipment at the agreed time (%s): it was not available.\n"+
				"As the support policy states, ticket %s is closed and ticket %s was opened to reschedule the visit.\n\n— Vigía NOC\n",
				window, closed, next)
	}
	return fmt.Sprintf("[%s] Visita no realizada: equipo no disponible", closed),
		fmt.Sprintf("Nuestro ingeniero no pudo intervenir el equipo a la hora acordada (%s) porque no estaba disponible.\n"+
			"Según la política de soporte, el ticket %s se cierra y se abrió el ticket %s para reprogramar la visita.\n\n— Vigía NOC\n",
			window, closed, next)
}

// HourBankMail warns the customer that its hour bank under contract
// reached usedPercent: hoursLeft (already written, "3.5") of totalHours
// remain until the period's last day, until.
func HourBankMail(lang, contract string, usedPercent int, hoursLeft string, totalHours int, until string) (subject, body string) {
	if lang == "en" {
		return fmt.Sprintf("Hour bank %s: %d%% used", contract, usedPercent),
			fmt.Sprintf("Your support hour bank (contract %s) has %s of %d hours left, valid until %s.\n\n— Vigía NOC\n", contract, hoursLeft, totalHours, until)
	}
	return fmt.Sprintf("Bolsa de horas %s: %d%% consumido", contract, usedPercent),
		fmt.Sprintf("A su bolsa de horas de soporte (contrato %s) le quedan %s de %d horas, vigentes hasta %s.\n\n— Vigía NOC\n", contract, hoursLeft, totalHours, until)
}
