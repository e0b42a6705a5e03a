package biomed

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// AlertSummary says what an alert import did.
type AlertSummary struct {
	Alerts  int           `json:"alerts"`  // in the file
	New     int           `json:"new"`     // not seen before
	Matched int           `json:"matched"` // devices affected, over all alerts
	Tickets []AlertTicket `json:"tickets"` // opened by this import
	// Ignored names known alerts whose text differs from the stored one:
	// the first import is kept.
	Ignored []string `json:"changed_ignored,omitempty"`
}

// AlertTicket is a ticket an alert opened for one device.
type AlertTicket struct {
	Source    string `json:"source"`
	Reference string `json:"reference"`
	DeviceID  string `json:"device_id"`
	Serial    string `json:"serial"`
	Ticket    string `json:"ticket"`
	Severity  int    `json:"severity"`
}

// AlertSeverity is the severity of an alert's ticket: 2 when the alert
// says patients are at risk, else 3.
func AlertSeverity(patientRisk bool) int {
	if patientRisk {
		return 2
	}
	return 3
}

// ImportAlerts stores the alerts and matches each against the installed
// base (every device in service or not, retired ones left out), opening
// one ticket per affected device with the alert linked. An alert is known
// by its source and reference: importing it again keeps the stored alert
// (a different text is reported as ignored) and opens tickets only for
// devices not matched before, e.g. ones added to the inventory since.
func (s *Store) ImportAlerts(ctx context.Context, alerts []AlertInput, now time.Time) (AlertSummary, error) {
	sum := AlertSummary{Alerts: len(alerts), Tickets: []AlertTicket{}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	devices, err := s.inv.Devices(ctx, assets.DeviceFilter{})
	if err != nil {
		return sum, err
	}
	cs := s.customers()
	for _, in := range alerts {
		err := s.inTx(ctx, "alert "+in.Source+" "+in.Reference, func(tx *sqlx.Tx) error {
			serials, err := json.Marshal(nonNil(in.Serials))
			if err != nil {
				return err
			}
			var id int64
			var inserted bool
			if err := tx.QueryRowContext(ctx, `INSERT INTO biomed_alerts (source, reference, issued_on, manufacturer, models, serials,
				patient_risk, action, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (source, reference) DO UPDATE SET source = excluded.source RETURNING id, xmax = 0`,
				in.Source, in.Reference, in.Date, in.Manufacturer, pq.StringArray(nonNil(in.Models)), serials, in.PatientRisk,
				in.Action, now).Scan(&id, &inserted); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			// The row lock taken above serialises importers of one alert.
			stored, err := loadAlert(ctx, tx, id)
			if err != nil {
				return err
			}
			if inserted {
				sum.New++
			} else if !sameAlert(stored, in) {
				sum.Ignored = append(sum.Ignored, in.Source+" "+in.Reference)
			}
			for _, d := range devices {
				if !stored.Affects(d.Manufacturer, d.Model, d.Serial) {
					continue
				}
				sum.Matched++
				var known int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM biomed_alert_matches WHERE alert_id = $1 AND device_id = $2`,
					id, d.ID).Scan(&known); err != nil {
					return err
				}
				if known > 0 {
					continue
				}
				c, err := cs.get(ctx, d.CustomerID, now)
				if err != nil {
					return err
				}
				t, err := s.openAlertTicket(ctx, tx, id, stored, d, lang(c.Language), now)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO biomed_alert_matches (alert_id, device_id, customer_id, ticket_id, matched_at)
					VALUES ($1, $2, $3, $4, $5)`, id, d.ID, d.CustomerID, t.ID, now); err != nil {
					return fmt.Errorf("match %s: %w", d.ID, err)
				}
				sum.Tickets = append(sum.Tickets, AlertTicket{Source: stored.Source, Reference: stored.Reference, DeviceID: d.ID,
					Serial: d.Serial, Ticket: t.Number, Severity: t.Severity})
			}
			return nil
		})
		if err != nil {
			return sum, err
		}
	}
	return sum, nil
}

func (s *Store) openAlertTicket(ctx context.Context, tx *sqlx.Tx, alertID int64, a AlertInput, d assets.Device, l string, now time.Time) (maintenance.Ticket, error) {
	facts := notify.SafetyAlert{Source: a.Source, Reference: a.Reference, Date: a.Date, Manufacturer: a.Manufacturer, Models: a.Models,
		PatientRisk: a.PatientRisk, Action: a.Action, DeviceName: d.Name, DeviceID: d.ID, DeviceManufacturer: d.Manufacturer,
		DeviceModel: d.Model, Serial: d.Serial}
	title, text := notify.SafetyAlertTitle(l, facts), notify.SafetyAlertText(l, facts)
	t, ok, err := s.tickets.OpenSystemTx(ctx, tx, maintenance.SystemInput{CustomerID: d.CustomerID, SiteID: d.SiteID, DeviceIDs: []string{d.ID},
		Title: cut(title, 200), Description: text, Category: "safety_alert", Severity: AlertSeverity(a.PatientRisk),
		Source: maintenance.SourceBiomed, AutoKey: fmt.Sprintf("biomed:alert:%d:%s", alertID, d.ID), OpenedAt: now,
		Data: map[string]any{"alert_id": alertID, "source": a.Source, "reference": a.Reference, "patient_risk": a.PatientRisk}})
	if err == nil && !ok {
		err = fmt.Errorf("ticket for %s not inserted", d.ID)
	}
	return t, err
}

func loadAlert(ctx context.Context, tx *sqlx.Tx, id int64) (AlertInput, error) {
	var a AlertInput
	var models pq.StringArray
	var serials []byte
	var on time.Time
	if err := tx.QueryRowContext(ctx, `SELECT source, reference, issued_on, manufacturer, models, serials, patient_risk, action
		FROM biomed_alerts WHERE id = $1`, id).Scan(&a.Source, &a.Reference, &on, &a.Manufacturer, &models, &serials, &a.PatientRisk, &a.Action); err != nil {
		return a, fmt.Errorf("load alert %d: %w", id, err)
	}
	a.Date, a.Models = on.Format(dateLayout), models
	if err := json.Unmarshal(serials, &a.Serials); err != nil {
		return a, fmt.Errorf("alert %d serials: %w", id, err)
	}
	return a, nil
}

func sameAlert(a, b AlertInput) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// AlertMatch is one device an alert affects, with its ticket.
type AlertMatch struct {
	AlertID      int64      `json:"alert_id"`
	Source       string     `json:"source"`
	Reference    string     `json:"reference"`
	IssuedOn     string     `json:"date"`
	Manufacturer string     `json:"manufacturer"`
	Models       []string   `json:"models"`
	PatientRisk  bool       `json:"patient_risk"`
	Action       string     `json:"action"`
	DeviceID     string     `json:"device_id"`
	DeviceName   string     `json:"device_name"`
	Serial       string     `json:"serial"`
	CustomerID   string     `json:"customer_id"`
	TicketID     int64      `json:"ticket_id"`
	Ticket       string     `json:"ticket"`
	Status       string     `json:"ticket_status"`
	ClosedAt     *time.Time `json:"closed_at,omitempty"`
	MatchedAt    time.Time  `json:"matched_at"`
}

// Matches lists the devices affected by alerts in a's scope, newest
// alert first; from/to (zero: unbounded) bound the match instant.
func (s *Store) Matches(ctx context.Context, a auth.Actor, customerID string, from, to time.Time) ([]AlertMatch, error) {
	customerID, err := scope(a, customerID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	if to.IsZero() {
		to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.source, a.reference, a.issued_on, a.manufacturer, a.models, a.patient_risk, a.action,
		m.device_id, m.customer_id, m.ticket_id, m.matched_at FROM biomed_alert_matches m JOIN biomed_alerts a ON a.id = m.alert_id
		WHERE ($1 = '' OR m.customer_id = $1) AND m.matched_at >= $2 AND m.matched_at < $3
		ORDER BY a.issued_on DESC, a.id DESC, m.device_id LIMIT 1000`, customerID, from, to)
	if err != nil {
		return nil, fmt.Errorf("biomed: alert matches: %w", err)
	}
	defer rows.Close()
	out := []AlertMatch{}
	var ids []int64
	for rows.Next() {
		var m AlertMatch
		var models pq.StringArray
		var on time.Time
		if err := rows.Scan(&m.AlertID, &m.Source, &m.Reference, &on, &m.Manufacturer, &models, &m.PatientRisk, &m.Action,
			&m.DeviceID, &m.CustomerID, &m.TicketID, &m.MatchedAt); err != nil {
			return nil, fmt.Errorf("biomed: alert matches: %w", err)
		}
		m.IssuedOn, m.Models = on.Format(dateLayout), models
		out = append(out, m)
		ids = append(ids, m.TicketID)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	tickets, err := s.tickets.TicketsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		t := tickets[out[i].TicketID]
		out[i].Ticket, out[i].Status, out[i].ClosedAt = t.Number, t.Status, t.ClosedAt
		if d, err := s.inv.Device(ctx, assets.Scope{}, out[i].DeviceID); err == nil {
			out[i].DeviceName, out[i].Serial = d.Name, d.Serial
		}
	}
	return out, nil
}
