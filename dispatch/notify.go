package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
)

// Dispatch e-mails go through maintenance's outbox table: written in the
// transaction of the change they announce, delivered (and retried) by the
// same Sender, and deduplicated by (event_key, channel, recipient).

type outboxMessage struct {
	Key, Recipient, Subject, Body string
	TicketID                      int64
	Payload                       map[string]any
}

func enqueue(ctx context.Context, tx *sqlx.Tx, m outboxMessage, at time.Time) error {
	if m.Payload == nil {
		m.Payload = map[string]any{}
	}
	m.Payload["event"], m.Payload["subject"], m.Payload["text"], m.Payload["at"] = m.Key, m.Subject, m.Body, at
	payload, err := json.Marshal(m.Payload)
	if err != nil {
		return fmt.Errorf("notify %s: %w", m.Key, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (event_key, channel, recipient, ticket_id, subject, body, payload, created_at, next_attempt_at)
		VALUES ($1, 'email', $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (event_key, channel, recipient) DO NOTHING`,
		m.Key, m.Recipient, m.TicketID, m.Subject, m.Body, payload, at); err != nil {
		return fmt.Errorf("notify %s to %s: %w", m.Key, m.Recipient, err)
	}
	return nil
}

type customerContact struct {
	Name, Language, TimeZone, NotifyEmail string
}

func (c customerContact) location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func loadContact(ctx context.Context, tx *sqlx.Tx, customerID string) (customerContact, error) {
	var c customerContact
	if err := tx.QueryRowContext(ctx, `SELECT name, language, time_zone, notify_email FROM customers WHERE id = $1`, customerID).
		Scan(&c.Name, &c.Language, &c.TimeZone, &c.NotifyEmail); err != nil {
		return c, fmt.Errorf("customer %s: %w", customerID, err)
	}
	return c, nil
}

// notifyCustomer sends one message to each of the customer's addresses.
func notifyCustomer(ctx context.Context, tx *sqlx.Tx, customerID string, m outboxMessage, at time.Time) error {
	c, err := loadContact(ctx, tx, customerID)
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.NotifyEmail) == "" {
		return nil
	}
	addrs, err := mail.ParseAddressList(c.NotifyEmail)
	if err != nil {
		return fmt.Errorf("customer %s notify_email: %w", customerID, err)
	}
	for _, a := range addrs {
		m.Recipient = a.Address
		if err := enqueue(ctx, tx, m, at); err != nil {
			return err
		}
	}
	return nil
}

func localTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04") + " (" + loc.String() + ")"
}

// notifyEngineers sends a scheduled visit to each of its engineers: device,
// site, address, contact, the agreed window, the ticket and its history,
// the checklist and the parts to carry. A new window is a new dispatch.
func (s *Store) notifyEngineers(ctx context.Context, tx *sqlx.Tx, v *Visit, now time.Time) error {
	c, err := loadContact(ctx, tx, v.CustomerID)
	if err != nil {
		return err
	}
	loc := c.location()
	site, err := s.inv.InTx(tx).Site(ctx, assets.Scope{}, v.SiteID)
	if err != nil {
		return fmt.Errorf("site %s: %w", v.SiteID, err)
	}
	detail, err := s.tickets.Get(ctx, maintenance.Scope{}, fmt.Sprint(v.TicketID), now)
	if err != nil {
		return fmt.Errorf("ticket %d: %w", v.TicketID, err)
	}
	parts, err := s.partRequests(ctx, tx, NOC("dispatch"), v.TicketID)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Visita %d — ticket %s (Severidad %d): %s\n\n", v.ID, detail.Number, detail.Severity, detail.Title)
	fmt.Fprintf(&b, "Ventana acordada: %s – %s\n", localTime(*v.WindowStart, loc), v.WindowEnd.In(loc).Format("15:04"))
	fmt.Fprintf(&b, "Cliente: %s\nSede: %s\nDirección: %s, %s\nContacto: %s\n", c.Name, site.Name, site.Address, site.City, site.Contact)
	if v.Travel {
		fmt.Fprintf(&b, "Desplazamiento desde %s (a cargo del cliente).\n", v.TravelFrom)
	}
	b.WriteString("\nEquipos:\n")
	for _, id := range v.DeviceIDs {
		d, err := s.inv.InTx(tx).Device(ctx, assets.Scope{}, id)
		if err != nil {
			return fmt.Errorf("device %s: %w", id, err)
		}
		what := d.Kind
		if d.Modality != "" {
			what += " " + d.Modality
		}
		fmt.Fprintf(&b, "  - %s (%s) %s %s, serie %s\n", d.Name, what, d.Manufacturer, d.Model, d.Serial)
	}
	b.WriteString("\nEquipo de trabajo:\n")
	for _, e := range v.Engineers {
		lead := ""
		if e.Lead {
			lead = " (responsable)"
		}
		fmt.Fprintf(&b, "  - %s%s\n", e.Name, lead)
	}
	b.WriteString("\nLista de chequeo:\n")
	for _, it := range v.Checklist {
		fmt.Fprintf(&b, "  [ ] %d. %s\n", it.ID, it.Text)
	}
	b.WriteString("\nRepuestos a llevar:\n")
	n := 0
	for _, p := range parts {
		if p.State == PartCancelled || p.State == PartInstalled {
			continue
		}
		n++
		where := p.State
		if p.WarehouseID != "" {
			where += ", bodega " + p.WarehouseID
		}
		fmt.Fprintf(&b, "  - %s %s ×%d (%s) %s\n", p.Manufacturer, p.PartNumber, p.Quantity, where, p.Description)
	}
	if n == 0 {
		b.WriteString("  (ninguno)\n")
	}
	if detail.Description != "" {
		fmt.Fprintf(&b, "\nDescripción:\n%s\n", detail.Description)
	}
	b.WriteString("\nHistoria del ticket:\n")
	for _, e := range detail.Timeline {
		line := e.Kind
		if e.Text != "" {
			line += ": " + e.Text
		}
		fmt.Fprintf(&b, "  %s  %s — %s\n", e.At.In(loc).Format("2006-01-02 15:04"), line, e.Author)
	}
	b.WriteString("\n— Vigía NOC\n")
	subject := fmt.Sprintf("[%s] Visita %d: %s, %s", detail.Number, v.ID, site.Name, v.WindowStart.In(loc).Format("2006-01-02 15:04"))
	for _, ve := range v.Engineers {
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM engineers WHERE id = $1`, ve.ID).Scan(&email); err != nil {
			return fmt.Errorf("engineer %s: %w", ve.ID, err)
		}
		if email == "" {
			continue
		}
		if err := enqueue(ctx, tx, outboxMessage{Key: fmt.Sprintf("visit:%d:dispatched:%d", v.ID, v.WindowStart.Unix()), Recipient: email,
			Subject: subject, Body: b.String(), TicketID: v.TicketID,
			Payload: map[string]any{"kind": "visit_dispatched", "visit": v.ID, "ticket": detail.Number, "engineer": ve.ID}}, now); err != nil {
			return err
		}
	}
	return nil
}

// notifyUnavailable tells the customer that the visit could not be done
// because the equipment was not available (seed 000 §8), and under which
// ticket it will be rescheduled.
func (s *Store) notifyUnavailable(ctx context.Context, tx *sqlx.Tx, v Visit, closed, next maintenance.Ticket, now time.Time) error {
	c, err := loadContact(ctx, tx, v.CustomerID)
	if err != nil {
		return err
	}
	loc := c.location()
	window := ""
	if v.WindowStart != nil {
		window = localTime(*v.WindowStart, loc)
	}
	m := outboxMessage{Key: fmt.Sprintf("visit:%d:equipment_unavailable", v.ID), TicketID: closed.ID,
		Payload: map[string]any{"kind": "visit_equipment_unavailable", "visit": v.ID, "closed_ticket": closed.Number, "new_ticket": next.Number}}
	if c.Language == "en" {
		m.Subject = fmt.Sprintf("[%s] Visit not possible: equipment unavailable", closed.Number)
		m.Body = fmt.Sprintf("Our engineer could not work on the equipment at the agreed time (%s): it was not available.\n"+
			"As the support policy states, ticket %s is closed and ticket %s was opened to reschedule the visit.\n\n— Vigía NOC\n",
			window, closed.Number, next.Number)
	} else {
		m.Subject = fmt.Sprintf("[%s] Visita no realizada: equipo no disponible", closed.Number)
		m.Body = fmt.Sprintf("Nuestro ingeniero no pudo intervenir el equipo a la hora acordada (%s) porque no estaba disponible.\n"+
			"Según la política de soporte, el ticket %s se cierra y se abrió el ticket %s para reprogramar la visita.\n\n— Vigía NOC\n",
			window, closed.Number, next.Number)
	}
	return notifyCustomer(ctx, tx, v.CustomerID, m, now)
}

// notifyHourBank warns the customer, once per bank period, that the bank
// reached the warning threshold.
func (s *Store) notifyHourBank(ctx context.Context, tx *sqlx.Tx, t ticketRef, bt billingTerms, used, total int, now time.Time) error {
	k := bt.Contract
	m := outboxMessage{Key: fmt.Sprintf("hour_bank:%s:%s:warn%d", k.ID, bt.Period.Start.Format(time.DateOnly), s.rules.HourBankWarnPercent),
		TicketID: t.ID, Payload: map[string]any{"kind": "hour_bank_warning", "contract": k.ID, "used_minutes": used, "total_minutes": total}}
	left := fmt.Sprintf("%.1f", float64(total-used)/60)
	end := bt.Period.End.AddDate(0, 0, -1).Format(time.DateOnly)
	if bt.Customer.Language == "en" {
		m.Subject = fmt.Sprintf("Hour bank %s: %d%% used", k.ID, used*100/total)
		m.Body = fmt.Sprintf("Your support hour bank (contract %s) has %s of %d hours left, valid until %s.\n\n— Vigía NOC\n", k.ID, left, total/60, end)
	} else {
		m.Subject = fmt.Sprintf("Bolsa de horas %s: %d%% consumido", k.ID, used*100/total)
		m.Body = fmt.Sprintf("A su bolsa de horas de soporte (contrato %s) le quedan %s de %d horas, vigentes hasta %s.\n\n— Vigía NOC\n", k.ID, left, total/60, end)
	}
	return notifyCustomer(ctx, tx, t.CustomerID, m, now)
}
