package intake

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// AlertmanagerPayload is Alertmanager's webhook body (version 4).
type AlertmanagerPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts" items:"100000"` // bounded by the body size, not by a count
}

// Alert is one alert of the webhook body.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertResult says what became of each alert.
type AlertResult struct {
	Fingerprint string `json:"fingerprint"`
	Outcome     string `json:"outcome"` // opened, attached, repeat, restored, ignored
	Ticket      string `json:"ticket,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// validate checks a payload before anything is written.
func (p *AlertmanagerPayload) validate() error {
	if p.Version != "4" {
		return invalidPayload("version must be \"4\", got %q", p.Version)
	}
	for i, a := range p.Alerts {
		switch {
		case a.Status != "firing" && a.Status != "resolved":
			return invalidPayload("alerts[%d].status must be firing or resolved", i)
		case a.Fingerprint == "":
			return invalidPayload("alerts[%d].fingerprint is required", i)
		case a.StartsAt.IsZero():
			return invalidPayload("alerts[%d].startsAt is required", i)
		}
	}
	return nil
}

// Receiver is the Alertmanager webhook receiver.
type Receiver struct {
	tickets *maintenance.Store
	inv     *assets.Store
}

// NewReceiver returns the receiver opening tickets in tickets for the
// devices and sites of inv.
func NewReceiver(tickets *maintenance.Store, inv *assets.Store) *Receiver {
	return &Receiver{tickets: tickets, inv: inv}
}

// invalidPayload is a refused webhook body; the ticket core's ErrInvalid
// makes it a 400.
func invalidPayload(format string, a ...any) error {
	return maintenance.ErrInvalid.Errorf(format, a...)
}

// Alertmanager feeds alerts into the outage path: a firing alert whose
// labels name an inventory device (label "device") or site ("site") opens
// or joins the subject's automatic ticket, with the same severity rules as
// probes; a resolved alert restores it. (fingerprint, startsAt) is recorded
// once, so Alertmanager's repeats change nothing. Alerts naming nothing in
// the inventory are ignored and reported as such (Alertmanager would retry
// a non-2xx answer forever).
func (r *Receiver) Alertmanager(ctx context.Context, p AlertmanagerPayload, now time.Time) ([]AlertResult, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	out := []AlertResult{}
	err := r.tickets.InTx(ctx, "alertmanager webhook", func(tx *sqlx.Tx) error {
		for _, a := range p.Alerts {
			res, err := r.alert(ctx, tx, a, now)
			if err != nil {
				return fmt.Errorf("alert %s: %w", a.Fingerprint, err)
			}
			out = append(out, res)
		}
		return nil
	})
	return out, err
}

func (rc *Receiver) alert(ctx context.Context, tx *sqlx.Tx, a Alert, now time.Time) (AlertResult, error) {
	r := AlertResult{Fingerprint: a.Fingerprint}
	inv := rc.inv.InTx(tx) // not a second pooled connection: see terms
	tr := maintenance.Trigger{Source: maintenance.SourceAlertmanager, At: a.StartsAt.UTC(),
		Data: map[string]any{"alertname": a.Labels["alertname"], "fingerprint": a.Fingerprint, "summary": a.Annotations["summary"]}}
	switch {
	case a.Labels["device"] != "":
		d, err := inv.Device(ctx, assets.Scope{}, a.Labels["device"])
		if errors.Is(err, assets.ErrNotFound) {
			r.Outcome, r.Reason = "ignored", fmt.Sprintf("no device %q in the inventory", a.Labels["device"])
			return r, nil
		}
		if err != nil {
			return r, err
		}
		tr.Kind, tr.Device, tr.CustomerID, tr.SiteID = "device", &d, d.CustomerID, d.SiteID
	case a.Labels["site"] != "":
		st, err := inv.Site(ctx, assets.Scope{}, a.Labels["site"])
		if errors.Is(err, assets.ErrNotFound) {
			r.Outcome, r.Reason = "ignored", fmt.Sprintf("no site %q in the inventory", a.Labels["site"])
			return r, nil
		}
		if err != nil {
			return r, err
		}
		tr.Kind, tr.CustomerID, tr.SiteID = "site", st.CustomerID, st.ID
		if st.GatewayDeviceID != nil {
			if d, err := inv.Device(ctx, assets.Scope{}, *st.GatewayDeviceID); err == nil {
				tr.Device = &d
			}
		}
	default:
		r.Outcome, r.Reason = "ignored", "the alert has no device or site label"
		return r, nil
	}
	key := "device:" + a.Labels["device"]
	if tr.Kind == "site" {
		key = "site:" + tr.SiteID
	}

	var ticketID int64
	var resolvedAt *time.Time
	err := tx.QueryRowContext(ctx, `SELECT ticket_id, resolved_at FROM ticket_alerts WHERE fingerprint = $1 AND starts_at = $2 FOR UPDATE`,
		a.Fingerprint, a.StartsAt).Scan(&ticketID, &resolvedAt)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("look up alert: %w", err)
	}

	if a.Status == "firing" {
		if known {
			ref, err := rc.tickets.RefTx(ctx, tx, ticketID)
			r.Outcome, r.Ticket = "repeat", ref.Number
			return r, err
		}
		prior, err := rc.tickets.OpenAutoTx(ctx, tx, key)
		if err != nil {
			return r, err
		}
		t, err := rc.tickets.RaiseTx(ctx, tx, tr)
		if err != nil {
			return r, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_alerts (fingerprint, starts_at, ticket_id, alertname, received_at)
			VALUES ($1, $2, $3, $4, $5)`, a.Fingerprint, a.StartsAt, t.ID, a.Labels["alertname"], now); err != nil {
			return r, fmt.Errorf("record alert: %w", err)
		}
		r.Outcome, r.Ticket = "opened", t.Number
		if prior != nil {
			r.Outcome = "attached"
		}
		return r, nil
	}

	// Resolved.
	if known && resolvedAt != nil {
		ref, err := rc.tickets.RefTx(ctx, tx, ticketID)
		r.Outcome, r.Ticket = "repeat", ref.Number
		return r, err
	}
	if !known {
		// Resolved without a firing we saw (e.g. Vigía was down): nothing to
		// open; restore an open ticket of the subject if there is one.
		t, err := rc.tickets.OpenAutoTx(ctx, tx, key)
		if err != nil {
			return r, err
		}
		if t == nil {
			r.Outcome, r.Reason = "ignored", "resolved alert without a ticket"
			return r, nil
		}
		ticketID = t.ID
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_alerts (fingerprint, starts_at, ticket_id, alertname, received_at, resolved_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, a.Fingerprint, a.StartsAt, t.ID, a.Labels["alertname"], now, endOrNow(a, now)); err != nil {
			return r, fmt.Errorf("record alert: %w", err)
		}
	} else if _, err := tx.ExecContext(ctx, `UPDATE ticket_alerts SET resolved_at = $3 WHERE fingerprint = $1 AND starts_at = $2`,
		a.Fingerprint, a.StartsAt, endOrNow(a, now)); err != nil {
		return r, fmt.Errorf("record resolution: %w", err)
	}
	t, err := rc.tickets.LockTx(ctx, tx, ticketID)
	if err != nil {
		return r, err
	}
	if t.Status != maintenance.StatusClosed && t.AutoKey != "" {
		restored := func(lang string) string { return notify.ServiceRestoredText(lang, true) }
		if err := rc.tickets.RestoreTx(ctx, tx, t.AutoKey, 0, endOrNow(a, now), restored, tr.Data); err != nil {
			return r, err
		}
	}
	r.Outcome, r.Ticket = "restored", t.Number
	return r, nil
}

func endOrNow(a Alert, now time.Time) time.Time {
	if a.EndsAt.IsZero() || a.EndsAt.Year() < 2000 {
		return now
	}
	return a.EndsAt.UTC()
}
