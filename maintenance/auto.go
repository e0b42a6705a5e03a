package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Automatic tickets: what intake (the outage consumer, the Alertmanager
// receiver, device alerts) asks of the ticket core. RaiseTx is the one
// "open an automatic ticket" entry point; RestoreTx is its way back. Both
// run in intake's transaction, so that the event or alert it records
// commits with the ticket, or not at all.

// Trigger is an outage or a firing alert, from either source.
type Trigger struct {
	Source     string
	Kind       string // device, site, worklist, collector, or alert (with Alert)
	Key        string // the subject, when not the device or site (collector:ID)
	CustomerID string
	SiteID     string
	Device     *assets.Device // the device down, or the site's gateway
	Affected   []string       // site incidents: the devices made unreachable
	OutageID   int64          // 0 for alerts
	At         time.Time
	Data       map[string]any // timeline data
	// Alert, when set, makes the ticket a device alert's own: its key,
	// title and severity are given, and a repeat updates it.
	Alert *Alert
}

// Alert is one subject's ticket to open or update.
type Alert struct {
	Key      string
	Severity int
	Title    string
	Kind     string // timeline kind of an update
	Text     string // timeline text of an update
	Data     map[string]any
}

// RaiseTx opens the ticket for a trigger, or attaches the trigger to the
// subject's open ticket (reopening it if it was solved awaiting
// confirmation: the fault is back). A new ticket after a closed one links
// to it.
func (s *Store) RaiseTx(ctx context.Context, tx *sqlx.Tx, tr Trigger) (*Ticket, error) {
	if tr.Alert != nil {
		return s.raiseAlert(ctx, tx, tr)
	}
	key := tr.Kind + ":" + tr.SiteID
	switch {
	case tr.Key != "":
		key = tr.Key
	case tr.Kind == "device" || tr.Kind == "worklist":
		key = tr.Kind + ":" + tr.Device.ID
	}
	if tr.OutageID != 0 {
		var ticketID int64
		err := tx.QueryRowContext(ctx, `SELECT ticket_id FROM ticket_outages WHERE outage_id = $1`, tr.OutageID).Scan(&ticketID)
		if err == nil {
			t, err := lockTicket(ctx, tx, Scope{}, fmt.Sprint(ticketID))
			return &t, err // the outage already has its ticket: a repeat
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("outage %d ticket: %w", tr.OutageID, err)
		}
	}
	for range 2 {
		t, err := s.OpenAutoTx(ctx, tx, key)
		if err != nil {
			return nil, err
		}
		if t != nil {
			return t, s.attach(ctx, tx, t, tr)
		}
		in, err := s.triggerTicket(ctx, tx, tr, key)
		if err != nil {
			return nil, err
		}
		nt, ok, err := s.open(ctx, tx, in)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // another consumer opened it meanwhile: attach to that one
		}
		if tr.OutageID != 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_outages (outage_id, ticket_id, attached_at) VALUES ($1, $2, $3)`,
				tr.OutageID, nt.ID, tr.At); err != nil {
				return nil, fmt.Errorf("link outage %d: %w", tr.OutageID, err)
			}
		}
		return &nt, nil
	}
	return nil, fmt.Errorf("open ticket of %s: lost the race twice", key)
}

// raiseAlert opens the subject's ticket, or updates the open one: its
// title, a timeline entry, and its severity when the alert is graver (a
// person may have lowered it; the probes only ever raise it). A ticket
// solved awaiting confirmation is reopened: the fault is back.
func (s *Store) raiseAlert(ctx context.Context, tx *sqlx.Tx, tr Trigger) (*Ticket, error) {
	a := *tr.Alert
	for range 2 {
		t, err := s.OpenAutoTx(ctx, tx, a.Key)
		if err != nil {
			return nil, err
		}
		if t != nil {
			return t, s.updateAlert(ctx, tx, t, tr.At, a)
		}
		in := openInput{CustomerID: tr.CustomerID, SiteID: tr.SiteID, DeviceIDs: []string{tr.Device.ID}, Title: a.Title, Severity: a.Severity,
			Source: SourceProbe, AutoKey: a.Key, OpenedAt: tr.At, Author: System.String(), Data: a.Data}
		var prev int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM tickets WHERE auto_key = $1 AND closed_at IS NOT NULL ORDER BY id DESC LIMIT 1`, a.Key).Scan(&prev)
		if err == nil {
			in.PreviousTicketID = &prev
		}
		nt, ok, err := s.open(ctx, tx, in)
		if err != nil {
			return nil, err
		}
		if ok {
			return &nt, nil
		}
	}
	return nil, fmt.Errorf("open ticket of %s: lost the race twice", a.Key)
}

func (s *Store) updateAlert(ctx context.Context, tx *sqlx.Tx, t *Ticket, at time.Time, a Alert) error {
	if a.Title != t.Title {
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET title = $2, updated_at = $3 WHERE id = $1`, t.ID, a.Title, at); err != nil {
			return fmt.Errorf("update title: %w", err)
		}
	}
	if err := addEvent(ctx, tx, t.ID, at, System.String(), a.Kind, a.Text, a.Data); err != nil {
		return err
	}
	if t.Status == StatusSolved {
		if err := cancelTasks(ctx, tx, t.ID, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'reopened', updated_at = $2 WHERE id = $1`, t.ID, at); err != nil {
			return fmt.Errorf("reopen: %w", err)
		}
		t.Status = StatusReopened
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		if err := addEvent(ctx, tx, t.ID, at, System.String(), "reopened", notify.FaultBackText(lang), nil); err != nil {
			return err
		}
	}
	if a.Severity < 1 || a.Severity >= t.Severity {
		return nil
	}
	if err := s.apply(ctx, tx, System, t, "severity", ActionInput{Severity: a.Severity, Text: a.Text}, at); err != nil {
		return err
	}
	t.Severity = a.Severity
	return s.recompute(ctx, tx, t)
}

// OpenAutoTx locks the open automatic ticket of a subject, if any.
func (s *Store) OpenAutoTx(ctx context.Context, tx *sqlx.Tx, key string) (*Ticket, error) {
	t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE auto_key = $1 AND closed_at IS NULL FOR UPDATE`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open ticket of %s: %w", key, err)
	}
	return &t, nil
}

func (s *Store) triggerTicket(ctx context.Context, tx *sqlx.Tx, tr Trigger, key string) (openInput, error) {
	in := openInput{CustomerID: tr.CustomerID, SiteID: tr.SiteID, Source: tr.Source, AutoKey: key, OpenedAt: tr.At,
		Author: System.String(), Data: tr.Data}
	siteName, lang, err := assets.SiteAndLanguageTx(ctx, tx, tr.SiteID)
	if err != nil {
		return in, err
	}
	switch tr.Kind {
	case "collector":
		// The NOC's own incident: hidden from the hospital, never billed.
		in.NOCOnly, in.Severity = true, 2
		in.Title = notify.MonitoringLostTitle(lang, siteNames(ctx, tx, tr.Data, siteName))
	case "device":
		in.DeviceIDs = []string{tr.Device.ID}
		in.Severity = outageSeverity(*tr.Device)
		in.Title = notify.AutoTitle(lang, tr.Device.Name, siteName, 1)
	case "worklist":
		in.DeviceIDs = []string{tr.Device.ID}
		in.Severity = 2
		in.Title = notify.WorklistTitle(lang, tr.Device.Name, siteName)
	default:
		devices, err := s.inv.InTx(tx).Devices(ctx, assets.DeviceFilter{Scope: assets.Scope{CustomerID: tr.CustomerID}, SiteID: tr.SiteID})
		if err != nil {
			return in, err
		}
		in.Severity = 2
		for _, d := range devices {
			if coreServer(d) {
				in.Severity = 1
			}
		}
		// The gateway first: it decides coverage of the site ticket.
		in.DeviceIDs = tr.Affected
		if tr.Device != nil {
			in.DeviceIDs = append([]string{tr.Device.ID}, without(tr.Affected, tr.Device.ID)...)
		}
		in.Title = notify.AutoTitle(lang, "", siteName, len(in.DeviceIDs))
	}
	var prev int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM tickets WHERE auto_key = $1 AND closed_at IS NOT NULL ORDER BY id DESC LIMIT 1`, key).Scan(&prev)
	switch {
	case err == nil:
		in.PreviousTicketID = &prev
	case !errors.Is(err, sql.ErrNoRows):
		return in, fmt.Errorf("previous ticket of %s: %w", key, err)
	}
	return in, nil
}

func without(ids []string, id string) []string {
	out := make([]string, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// attach records a new outage or alert on the subject's open ticket.
func (s *Store) attach(ctx context.Context, tx *sqlx.Tx, t *Ticket, tr Trigger) error {
	if tr.OutageID != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_outages (outage_id, ticket_id, attached_at) VALUES ($1, $2, $3)
			ON CONFLICT (outage_id) DO NOTHING`, tr.OutageID, t.ID, tr.At); err != nil {
			return fmt.Errorf("attach outage %d: %w", tr.OutageID, err)
		}
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	text := notify.AttachedText(lang, tr.Source == SourceAlertmanager)
	if err := addEvent(ctx, tx, t.ID, tr.At, System.String(), "outage_attached", text, tr.Data); err != nil {
		return err
	}
	if t.Status != StatusSolved {
		return nil
	}
	// Solved, awaiting confirmation, and down again: the solution did not hold.
	if err := cancelTasks(ctx, tx, t.ID, tr.At); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'reopened', updated_at = $2 WHERE id = $1`, t.ID, tr.At); err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	t.Status = StatusReopened
	return addEvent(ctx, tx, t.ID, tr.At, System.String(), "reopened", notify.FaultBackText(lang), nil)
}

// Words writes a timeline entry in the language of the ticket's customer
// (notify's wording functions): the core reads the language only when
// there is a ticket to write on.
type Words func(lang string) string

// RestoreTx records "service restored" (in words) on the ticket of an
// outage (or the subject's open ticket) and moves it to solved, awaiting
// the customer's confirmation: the pre-closure protocol starts.
func (s *Store) RestoreTx(ctx context.Context, tx *sqlx.Tx, key string, outageID int64, at time.Time, words Words, data map[string]any) error {
	var t *Ticket
	if outageID != 0 {
		var ticketID int64
		err := tx.QueryRowContext(ctx, `SELECT ticket_id FROM ticket_outages WHERE outage_id = $1`, outageID).Scan(&ticketID)
		switch {
		case err == nil:
			tk, err := lockTicket(ctx, tx, Scope{}, fmt.Sprint(ticketID))
			if err != nil {
				return err
			}
			t = &tk
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("outage %d ticket: %w", outageID, err)
		}
	}
	if t == nil {
		var err error
		if t, err = s.OpenAutoTx(ctx, tx, key); err != nil {
			return err
		}
	}
	if t == nil || t.Status == StatusClosed {
		return nil // nothing open about it (e.g. closed by the NOC meanwhile)
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	text := words(lang)
	if t.Status == StatusSolved {
		return addEvent(ctx, tx, t.ID, at, System.String(), "service_restored", text, data)
	}
	if err := s.solve(ctx, tx, t, at, System.String(), "service_restored", text, false); err != nil {
		return err
	}
	return s.recompute(ctx, tx, t)
}

// siteNames names the sites a collector's event lists, or the event's own.
func siteNames(ctx context.Context, tx *sqlx.Tx, data map[string]any, fallback string) string {
	detail, _ := data["detail"].(map[string]any)
	ids, _ := detail["sites"].([]any)
	var sites []string
	for _, id := range ids {
		if s, ok := id.(string); ok {
			sites = append(sites, s)
		}
	}
	if names, err := assets.SiteNamesTx(ctx, tx, sites); err == nil && len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return fallback
}

// ResolveAutoTx closes the subject's open ticket as resolved: a ticket that
// nobody at the hospital confirms (a collector's loss is the NOC's own).
func (s *Store) ResolveAutoTx(ctx context.Context, tx *sqlx.Tx, key string, at time.Time, words Words, data map[string]any) error {
	t, err := s.OpenAutoTx(ctx, tx, key)
	if err != nil || t == nil {
		return err
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	text := words(lang)
	if err := addEvent(ctx, tx, t.ID, at, System.String(), "service_restored", text, data); err != nil {
		return err
	}
	return s.closeTicket(ctx, tx, t, at, System.String(), "resolved", text, nil)
}
