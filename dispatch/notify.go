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
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Dispatch e-mails go through notify, the outbox's only writer: written in
// the transaction of the change they announce, delivered (and retried) by
// the same Sender, and deduplicated by (event_key, channel, recipient).

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
	_, err = notify.Put(ctx, tx, notify.Row{Key: m.Key, Channel: "email", Recipient: m.Recipient, TicketID: m.TicketID,
		Subject: m.Subject, Body: m.Body, Payload: payload, At: at})
	return err
}

// customerContact is the customer a dispatch e-mail is about or goes to,
// with its notification addresses.
type customerContact struct {
	assets.Customer
	NotifyEmail string
}

func (s *Store) loadContact(ctx context.Context, tx *sqlx.Tx, customerID string) (customerContact, error) {
	inv := s.inv.InTx(tx)
	cu, err := inv.Customer(ctx, assets.Scope{}, customerID)
	if err != nil {
		return customerContact{}, fmt.Errorf("customer %s: %w", customerID, err)
	}
	to, err := assets.AddresseeTx(ctx, tx, customerID)
	if err != nil {
		return customerContact{}, fmt.Errorf("customer %s: %w", customerID, err)
	}
	return customerContact{Customer: cu, NotifyEmail: to.NotifyEmail}, nil
}

// notifyCustomer sends one message to each of the customer's addresses.
func (s *Store) notifyCustomer(ctx context.Context, tx *sqlx.Tx, customerID string, m outboxMessage, at time.Time) error {
	c, err := s.loadContact(ctx, tx, customerID)
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

// notifyUnavailable tells the customer that the visit could not be done
// because the equipment was not available (seed 000 §8), and under which
// ticket it will be rescheduled.
func (s *Store) notifyUnavailable(ctx context.Context, tx *sqlx.Tx, v Visit, closed, next maintenance.Ticket, now time.Time) error {
	c, err := s.loadContact(ctx, tx, v.CustomerID)
	if err != nil {
		return err
	}
	loc := c.Location()
	window := ""
	if v.WindowStart != nil {
		window = notify.FormatIn(*v.WindowStart, loc)
	}
	m := outboxMessage{Key: fmt.Sprintf("visit:%d:equipment_unavailable", v.ID), TicketID: closed.ID,
		Payload: map[string]any{"kind": "visit_equipment_unavailable", "visit": v.ID, "closed_ticket": closed.Number, "new_ticket": next.Number}}
	m.Subject, m.Body = notify.EquipmentUnavailableMail(c.Language, window, closed.Number, next.Number)
	return s.notifyCustomer(ctx, tx, v.CustomerID, m, now)
}

// notifyHourBank warns the customer, once per bank period, that the bank
// reached the warning threshold.
func (s *Store) notifyHourBank(ctx context.Context, tx *sqlx.Tx, t ticketRef, bt billingTerms, used, total int, now time.Time) error {
	k := bt.Contract
	m := outboxMessage{Key: fmt.Sprintf("hour_bank:%s:%s:warn%d", k.ID, bt.Period.Start.Format(time.DateOnly), s.rules.HourBankWarnPercent),
		TicketID: t.ID, Payload: map[string]any{"kind": "hour_bank_warning", "contract": k.ID, "used_minutes": used, "total_minutes": total}}
	left := fmt.Sprintf("%.1f", float64(total-used)/60)
	end := bt.Period.End.AddDate(0, 0, -1).Format(time.DateOnly)
	m.Subject, m.Body = notify.HourBankMail(bt.Customer.Language, k.ID, used*100/total, left, total/60, end)
	return s.notifyCustomer(ctx, tx, t.CustomerID, m, now)
}
