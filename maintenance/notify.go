package maintenance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Notification kinds.
const (
	msgOpened  = "opened"
	msgSolved  = "solved"
	msgContact = "contact"
	msgClosed  = "closed"
)

// ticketContext is what a message names: customer, site and devices.
type ticketContext struct {
	CustomerName, Language, TimeZone, NotifyEmail string
	SiteName                                      string
	DeviceNames                                   []string
}

func loadContext(ctx context.Context, tx *sqlx.Tx, t *Ticket) (ticketContext, error) {
	var c ticketContext
	if err := tx.QueryRowContext(ctx, `SELECT name, language, time_zone, notify_email FROM customers WHERE id = $1`, t.CustomerID).
		Scan(&c.CustomerName, &c.Language, &c.TimeZone, &c.NotifyEmail); err != nil {
		return c, fmt.Errorf("customer %s: %w", t.CustomerID, err)
	}
	if t.SiteID != "" {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM sites WHERE id = $1`, t.SiteID).Scan(&c.SiteName); err != nil {
			return c, fmt.Errorf("site %s: %w", t.SiteID, err)
		}
	}
	if len(t.DeviceIDs) > 0 {
		var names pq.StringArray
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(array_agg(name ORDER BY array_position($1, id)), '{}') FROM devices WHERE id = ANY ($1)`,
			pq.StringArray(t.DeviceIDs)).Scan(&names); err != nil {
			return c, fmt.Errorf("device names: %w", err)
		}
		c.DeviceNames = names
	}
	return c, nil
}

// message is one rendered notification.
type message struct {
	Subject, Body string
}

// formatInstant writes an instant in the customer's zone, as people read it.
func formatInstant(t time.Time, zone string) string {
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 15:04") + " (" + loc.String() + ")"
}

// render writes the notification of kind about t in the customer's
// language (Spanish unless the customer is set to English).
func render(kind string, t *Ticket, c ticketContext) message {
	en := c.Language == "en"
	what := strings.Join(c.DeviceNames, ", ")
	site := c.SiteName
	siteTicket := strings.HasPrefix(t.AutoKey, "site:")
	// A worklist ticket's device answers: it is no outage.
	worklistTicket := strings.HasPrefix(t.AutoKey, "worklist:")
	due := ""
	if t.ResponseDueAt != nil {
		due = formatInstant(*t.ResponseDueAt, c.TimeZone)
	}
	var subject, body string
	switch kind {
	case msgOpened:
		automatic := t.Source == SourceProbe || t.Source == SourceAlertmanager
		switch {
		case en && automatic && worklistTicket:
			body = fmt.Sprintf("The modality worklist of %s at site %s is failing (not answering, or empty during working hours), ticket %s, Sev %d", what, site, t.Number, t.Severity)
		case automatic && worklistTicket:
			body = fmt.Sprintf("La lista de trabajo (worklist) de %s en la sede %s está fallando (no responde, o está vacía en horario hábil), ticket %s, Severidad %d", what, site, t.Number, t.Severity)
		case en && automatic && siteTicket:
			body = fmt.Sprintf("We detected an outage of site %s (%d devices unreachable: %s), ticket %s, Sev %d", site, len(c.DeviceNames), what, t.Number, t.Severity)
		case en && automatic:
			body = fmt.Sprintf("We detected an outage of %s at site %s, ticket %s, Sev %d", what, site, t.Number, t.Severity)
		case en:
			body = fmt.Sprintf("Ticket %s opened: %s, Sev %d", t.Number, t.Title, t.Severity)
		case automatic && siteTicket:
			body = fmt.Sprintf("Detectamos una caída de la sede %s (%d equipos sin conexión: %s), ticket %s, Severidad %d", site, len(c.DeviceNames), what, t.Number, t.Severity)
		case automatic:
			body = fmt.Sprintf("Detectamos una caída de %s en la sede %s, ticket %s, Severidad %d", what, site, t.Number, t.Severity)
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
	case msgSolved, msgContact:
		if en {
			subject = fmt.Sprintf("[%s] Solved: please confirm", t.Number)
			body = fmt.Sprintf("Ticket %s (%s) is solved. Please confirm the solution, or reply if the problem persists.", t.Number, t.Title)
		} else {
			subject = fmt.Sprintf("[%s] Solucionado: por favor confirme", t.Number)
			body = fmt.Sprintf("El ticket %s (%s) está solucionado. Por favor confirme la solución, o responda si el problema persiste.", t.Number, t.Title)
		}
	case msgClosed:
		if en {
			subject = fmt.Sprintf("[%s] Closed", t.Number)
			body = fmt.Sprintf("Ticket %s (%s) is closed (%s).", t.Number, t.Title, t.CloseReason)
		} else {
			subject = fmt.Sprintf("[%s] Cerrado", t.Number)
			body = fmt.Sprintf("El ticket %s (%s) fue cerrado (%s).", t.Number, t.Title, closeReasonES[t.CloseReason])
		}
		if len(t.KBLinks) > 0 {
			body += "\n\n" + strings.Join(t.KBLinks, "\n")
		}
	}
	if t.Billable && kind == msgOpened {
		if en {
			body += " This work is billable."
		} else {
			body += " Este servicio es facturable."
		}
	}
	return message{Subject: subject, Body: body + "\n\n— Vigía NOC\n"}
}

var closeReasonES = map[string]string{
	CloseConfirmed:            "solución confirmada",
	CloseAcceptedNoAnswer:     "solución aceptada sin respuesta",
	CloseAutoClosed:           "cierre automático tras 48 horas",
	CloseResolved:             "resuelto",
	CloseMisuse:               "mal uso",
	CloseDuplicate:            "duplicado",
	CloseCancelled:            "cancelado",
	CloseEquipmentUnavailable: "el equipo no estaba disponible a la hora acordada; se abrió un nuevo ticket para reprogramar la visita",
}
