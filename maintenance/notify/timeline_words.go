package notify

import "fmt"

// The ticket core's own timeline entries (what Vigía did by itself on a
// ticket), in the customer's language lang: the hospital reads them in its
// portal. The core hands the values; the words are here.

// FaultBackText: a solved ticket reopened because its fault came back.
func FaultBackText(lang string) string {
	return inLang(lang, "la falla volvió mientras se esperaba la confirmación", "the fault is back while awaiting confirmation")
}

// AttachedText: a new outage (or, with alert, an Alertmanager alert) joined
// the open ticket.
func AttachedText(lang string, alert bool) string {
	if alert {
		return inLang(lang, "alerta activa con el ticket abierto", "alert firing while the ticket is open")
	}
	return inLang(lang, "nueva caída con el ticket abierto", "new outage while the ticket is open")
}

// EmailAnsweredText: a ticket waiting on the customer resumed on its e-mail.
func EmailAnsweredText(lang string) string {
	return inLang(lang, "el cliente respondió por correo", "the customer answered by e-mail")
}

// ReplyStopsClosureText: a reply to a solution awaiting confirmation stops
// the pre-closure protocol.
func ReplyStopsClosureText(lang string) string {
	return inLang(lang,
		"el cliente respondió mientras la solución esperaba confirmación: se detienen los contactos de pre-cierre y el cierre automático; el ingeniero confirma, cierra o reabre",
		"the customer replied while the solution awaited confirmation: pre-closure contacts and auto-close stopped; the engineer confirms, closes or reopens")
}

// DeliveryFailedText: our e-mail to recipient bounced with reason.
func DeliveryFailedText(lang, recipient, reason string) string {
	return fmt.Sprintf(inLang(lang, "falló el correo a %s: %s", "e-mail to %s failed: %s"), recipient, reason)
}

var channelES = map[string]string{"call": "llamada", "email": "correo", "contact": "contacto"}

// ContactAttemptText: the pre-closure protocol's attempt seq of total, by
// channel (call, email).
func ContactAttemptText(lang string, seq, total int, channel string) string {
	if es, ok := channelES[channel]; ok && lang != "en" {
		channel = es
	}
	return fmt.Sprintf(inLang(lang, "intento de contacto %d de %d (%s) para confirmar la solución",
		"contact attempt %d of %d (%s) to confirm the solution"), seq, total, channel)
}

// AcceptedWithoutAnswerText: the protocol ended unanswered and closed the
// ticket as accepted.
func AcceptedWithoutAnswerText(lang string) string {
	return inLang(lang, "el protocolo de pre-cierre terminó sin respuesta: solución aceptada",
		"pre-closure protocol ended without an answer: solution accepted")
}

// AttemptsExhaustedText: the protocol ended unanswered and the NOC closes.
func AttemptsExhaustedText(lang string) string {
	return inLang(lang, "sin respuesta tras los intentos de contacto del protocolo; el NOC cierra el ticket",
		"no answer after the protocol's contact attempts; the NOC closes the ticket")
}
