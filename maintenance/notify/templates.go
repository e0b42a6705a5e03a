// Package notify is the only writer of the outbox: it renders what a
// ticket's customer, a dispatched engineer or the NOC's webhooks are told,
// in the reader's language (Spanish unless English is set), queues it in
// the caller's transaction, and delivers it (SMTP, signed webhooks) with
// retries. Stages above it (tickets, intake, sweeps, dispatch, reports)
// hand it keys and typed values; the words live here.
package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
)

// Notification kinds.
const (
	Opened  = "opened"
	Solved  = "solved"
	Contact = "contact"
	Closed  = "closed"
)

// Ticket is what a ticket's notifications say about it: the ticket stage
// hands it over, so that this package needs nothing of that stage.
type Ticket struct {
	ID                         int64
	Number, CustomerID, SiteID string
	DeviceIDs                  []string
	Title, Status, SLAPolicy   string
	AutoKey, CloseReason       string
	Severity                   int
	Automatic                  bool // opened by a probe or Alertmanager
	Billable                   bool
	NOCOnly                    bool // the NOC's own incident: never mailed to the hospital
	ResponseDueAt, SolvedAt    *time.Time
	KBLinks                    []string
}

// ticketContext is what a message names: customer, site and devices.
type ticketContext struct {
	CustomerName, Language, TimeZone, NotifyEmail string
	SiteName                                      string
	DeviceNames                                   []string
}

func loadContext(ctx context.Context, tx *sqlx.Tx, t *Ticket) (ticketContext, error) {
	var c ticketContext
	a, err := assets.AddresseeTx(ctx, tx, t.CustomerID)
	if err != nil {
		return c, err
	}
	c.CustomerName, c.Language, c.TimeZone, c.NotifyEmail = a.Name, a.Language, a.TimeZone, a.NotifyEmail
	if t.SiteID != "" {
		names, err := assets.SiteNamesTx(ctx, tx, []string{t.SiteID})
		if err != nil {
			return c, err
		}
		if len(names) == 0 {
			return c, fmt.Errorf("site %s: %w", t.SiteID, assets.ErrNotFound)
		}
		c.SiteName = names[0]
	}
	if len(t.DeviceIDs) > 0 {
		if c.DeviceNames, err = assets.DeviceNamesTx(ctx, tx, t.DeviceIDs); err != nil {
			return c, err
		}
	}
	return c, nil
}

// message is one rendered notification.
type message struct {
	Subject, Body string
}

// Notice is what one notification says, beyond the ticket itself: the
// instant of its event and, for the pre-closure protocol, which contact
// this is and when the protocol gives up waiting. Every e-mail of a ticket
// to one address differs from the others by these.
type Notice struct {
	Kind  string
	At    time.Time // the solution, contact or closing instant
	Round int       // solved, contact: the solution's round (1 for the first)
	// Contact: attempt Seq of Total, by Channel (call, email, contact).
	Seq, Total int
	Channel    string
	// Deadline: when the protocol closes the ticket as accepted (zero when
	// it does not close it by itself).
	Deadline time.Time
}

// FormatInstant writes an instant in the customer's zone, as people read it.
func FormatInstant(t time.Time, zone string) string {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	return FormatIn(t, loc)
}

// FormatIn writes an instant in loc with the zone's name, the one way every
// message to a customer or an engineer shows a time.
func FormatIn(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04") + " (" + loc.String() + ")"
}

// nameAfter writes "prefix name" without doubling a word: a site named
// "Sede Norte" after "la sede" reads "la Sede Norte", not "la sede Sede
// Norte".
func nameAfter(prefix, name string) string {
	words := strings.Fields(prefix)
	first, _, _ := strings.Cut(strings.TrimSpace(name), " ")
	if len(words) > 0 && strings.EqualFold(words[len(words)-1], first) {
		words = words[:len(words)-1]
	}
	return strings.TrimSpace(strings.Join(append(words, name), " "))
}

// MonitoringLostTitle is the title of the NOC's ticket for a collector gone
// silent at sites.
func MonitoringLostTitle(lang, sites string) string {
	if lang == "en" {
		return "Monitoring lost at " + sites
	}
	return "Monitorización perdida en " + sites
}

// AutoTitle is the title of an automatic (probe) ticket in the customer's
// language: one device down, or a site unreachable with n devices.
func AutoTitle(lang, device, site string, n int) string {
	en := lang == "en"
	switch {
	case device != "" && en:
		return fmt.Sprintf("%s down at %s", device, site)
	case device != "":
		return fmt.Sprintf("Caída de %s en %s", device, site)
	case en:
		return fmt.Sprintf("%s unreachable (%s)", nameAfter("Site", site), plural(n, "device", "devices"))
	default:
		return fmt.Sprintf("%s sin conexión (%s)", nameAfter("Sede", site), plural(n, "equipo", "equipos"))
	}
}

// WorklistTitle names a worklist ticket: the device answers, so it is no
// outage.
func WorklistTitle(lang, device, site string) string {
	if lang == "en" {
		return fmt.Sprintf("Worklist failing on %s (%s)", device, site)
	}
	return fmt.Sprintf("Worklist con fallas en %s (%s)", device, site)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// render writes the notification n about t in the customer's language
// (Spanish unless the customer is set to English).
func render(n Notice, t *Ticket, c ticketContext) message {
	en := c.Language == "en"
	what := strings.Join(c.DeviceNames, ", ")
	site := c.SiteName
	siteTicket := strings.HasPrefix(t.AutoKey, "site:")
	at := FormatInstant(n.At, c.TimeZone)
	// A worklist ticket's device answers: it is no outage.
	worklistTicket := strings.HasPrefix(t.AutoKey, "worklist:")
	due := ""
	if t.ResponseDueAt != nil {
		due = FormatInstant(*t.ResponseDueAt, c.TimeZone)
	}
	// The protocol's deadline, said on the solved notice and every contact.
	deadline := ""
	switch {
	case n.Deadline.IsZero():
	case en:
		deadline = " If we hear nothing from you by " + FormatInstant(n.Deadline, c.TimeZone) + ", the solution will be taken as accepted and the ticket closed."
	default:
		deadline = " Si no recibimos respuesta antes de " + FormatInstant(n.Deadline, c.TimeZone) + ", daremos la solución por aceptada y cerraremos el ticket."
	}
	again := ""
	if n.Round > 1 {
		again = fmt.Sprintf(" (solución n.º %d)", n.Round)
		if en {
			again = fmt.Sprintf(" (solution no. %d)", n.Round)
		}
	}
	var subject, body string
	switch n.Kind {
	case Opened:
		automatic := t.Automatic
		switch {
		case en && automatic && worklistTicket:
			body = fmt.Sprintf("The modality worklist of %s at %s is failing (not answering, or empty during working hours), ticket %s, Sev %d", what, nameAfter("site", site), t.Number, t.Severity)
		case automatic && worklistTicket:
			body = fmt.Sprintf("La lista de trabajo (worklist) de %s en %s está fallando (no responde, o está vacía en horario hábil), ticket %s, Severidad %d", what, nameAfter("la sede", site), t.Number, t.Severity)
		case en && automatic && siteTicket:
			body = fmt.Sprintf("We detected an outage of %s (%s unreachable: %s), ticket %s, Sev %d", nameAfter("site", site), plural(len(c.DeviceNames), "device", "devices"), what, t.Number, t.Severity)
		case en && automatic:
			body = fmt.Sprintf("We detected an outage of %s at %s, ticket %s, Sev %d", what, nameAfter("site", site), t.Number, t.Severity)
		case en:
			body = fmt.Sprintf("Ticket %s opened: %s, Sev %d", t.Number, t.Title, t.Severity)
		case automatic && siteTicket:
			body = fmt.Sprintf("Detectamos una caída de %s (%s sin conexión: %s), ticket %s, Severidad %d", nameAfter("la sede", site), plural(len(c.DeviceNames), "equipo", "equipos"), what, t.Number, t.Severity)
		case automatic:
			body = fmt.Sprintf("Detectamos una caída de %s en %s, ticket %s, Severidad %d", what, nameAfter("la sede", site), t.Number, t.Severity)
		default:
			body = fmt.Sprintf("Se abrió el ticket %s: %s, Severidad %d", t.Number, t.Title, t.Severity)
		}
		switch {
		case due != "" && en:
			body += ", response due " + due + "."
		case due != "":
			body += ", respuesta antes de " + due + "."
		default:
			body += "."
		}
		if en {
			subject = fmt.Sprintf("[%s] Sev %d: %s", t.Number, t.Severity, t.Title)
		} else {
			subject = fmt.Sprintf("[%s] Severidad %d: %s", t.Number, t.Severity, t.Title)
		}
	case Solved:
		// The solved notice is also the protocol's first contact when that
		// contact is due at the solution (seeds 000, 003): one e-mail.
		if en {
			subject = fmt.Sprintf("[%s] Solved: please confirm", t.Number)
			body = fmt.Sprintf("Ticket %s (%s) was solved on %s%s. Please confirm the solution, or reply if the problem persists.%s",
				t.Number, t.Title, at, again, deadline)
		} else {
			subject = fmt.Sprintf("[%s] Solucionado: por favor confirme", t.Number)
			body = fmt.Sprintf("El ticket %s (%s) quedó solucionado el %s%s. Por favor confirme la solución, o responda si el problema persiste.%s",
				t.Number, t.Title, at, again, deadline)
		}
	case Contact:
		solvedAt := at
		if t.SolvedAt != nil {
			solvedAt = FormatInstant(*t.SolvedAt, c.TimeZone)
		}
		w := contactWords[c.Language == "en"]
		subject = fmt.Sprintf(w.subject, t.Number, n.Seq, n.Total)
		body = fmt.Sprintf(w.body, t.Number, t.Title, solvedAt, again, n.Seq, n.Total) + w.channel[n.Channel]
		body += deadline
	case Closed:
		if en {
			subject = fmt.Sprintf("[%s] Closed", t.Number)
			body = fmt.Sprintf("Ticket %s (%s) was closed on %s (%s).", t.Number, t.Title, at, closeReasonEN[t.CloseReason])
		} else {
			subject = fmt.Sprintf("[%s] Cerrado", t.Number)
			body = fmt.Sprintf("El ticket %s (%s) fue cerrado el %s (%s).", t.Number, t.Title, at, closeReasonES[t.CloseReason])
		}
		if len(t.KBLinks) > 0 {
			body += "\n\n" + strings.Join(t.KBLinks, "\n")
		}
	}
	if t.Billable && n.Kind == Opened {
		if en {
			body += " This work is billable."
		} else {
			body += " Este servicio es facturable."
		}
	}
	return message{Subject: subject, Body: body + "\n\n— Vigía NOC\n"}
}

// contactWords are a pre-closure contact's texts, English (true) and
// Spanish (false): subject (number, attempt, of), body (number, title,
// solved at, round, attempt, of), and what the channel adds.
var contactWords = map[bool]struct {
	subject, body string
	channel       map[string]string
}{
	true: {"[%s] Reminder %d of %d: please confirm the solution",
		"Ticket %s (%s) has been solved since %s%s and awaits your confirmation (contact attempt %d of %d).",
		map[string]string{
			"call":  " Our engineer will call you to check the solution with you.",
			"email": " Reply to this e-mail to book a slot in the engineer's agenda for the acceptance of the solution.",
		}},
	false: {"[%s] Recordatorio %d de %d: confirme la solución",
		"El ticket %s (%s) está solucionado desde el %s%s y espera su confirmación (intento de contacto %d de %d).",
		map[string]string{
			"call":  " Nuestro ingeniero le llamará para validar la solución con usted.",
			"email": " Responda a este correo para reservar un espacio en la agenda del ingeniero y realizar la aceptación de la solución.",
		}},
}

// The closing reasons are the ticket stage's keys (maintenance.Close*).
var closeReasonES = map[string]string{
	"confirmed":             "solución confirmada",
	"accepted_no_answer":    "solución aceptada sin respuesta",
	"auto_closed":           "cierre automático tras 48 horas",
	"resolved":              "resuelto",
	"misuse":                "mal uso",
	"duplicate":             "duplicado",
	"cancelled":             "cancelado",
	"equipment_unavailable": "el equipo no estaba disponible a la hora acordada; se abrió un nuevo ticket para reprogramar la visita",
}

var closeReasonEN = map[string]string{
	"confirmed":             "solution confirmed",
	"accepted_no_answer":    "solution accepted without an answer",
	"auto_closed":           "closed automatically after 48 hours",
	"resolved":              "resolved",
	"misuse":                "misuse",
	"duplicate":             "duplicate",
	"cancelled":             "cancelled",
	"equipment_unavailable": "the equipment was not available at the agreed time; a new ticket was opened to reschedule the visit",
}
