package maintenance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
)

// OutageConsumer turns the probes' device_events into tickets. Each event
// is claimed with FOR UPDATE SKIP LOCKED, acted on, and marked handled in
// the same transaction, so several consumers (or a restarted one) never act
// twice; the ticket rows' unique indexes make any remaining race a no-op.
type OutageConsumer struct {
	store *Store
	now   func() time.Time
	log   *slog.Logger
}

// NewOutageConsumer returns a consumer; now stamps handled_at only (the
// tickets take their instants from the events).
func NewOutageConsumer(store *Store, now func() time.Time, log *slog.Logger) *OutageConsumer {
	return &OutageConsumer{store: store, now: now, log: log}
}

type deviceEvent struct {
	ID         int64
	Kind       string
	CustomerID string
	SiteID     string
	DeviceID   sql.NullString
	OutageID   sql.NullInt64
	Detail     []byte
	At         time.Time
}

// RunOnce handles every unhandled event and returns how many it handled.
func (c *OutageConsumer) RunOnce(ctx context.Context) (int, error) {
	n := 0
	var deferred []int64
	for {
		id, handled, err := c.one(ctx, deferred)
		if err != nil {
			return n, err
		}
		if id == 0 {
			return n, nil
		}
		if handled {
			n++
		} else {
			deferred = append(deferred, id)
		}
	}
}

// Run consumes events every interval until ctx ends.
func (c *OutageConsumer) Run(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if n, err := c.RunOnce(ctx); err != nil {
			c.log.Warn("outage consumer failed", "err", err)
		} else if n > 0 {
			c.log.Info("device events turned into tickets", "count", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (c *OutageConsumer) one(ctx context.Context, deferred []int64) (int64, bool, error) {
	var ev deviceEvent
	handled := false
	err := c.store.inTx(ctx, "consume device event", func(tx *sqlx.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id, kind, customer_id, site_id, device_id, outage_id, detail, at FROM device_events
			WHERE handled_at IS NULL AND NOT (id = ANY ($1)) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, int64s(deferred)).
			Scan(&ev.ID, &ev.Kind, &ev.CustomerID, &ev.SiteID, &ev.DeviceID, &ev.OutageID, &ev.Detail, &ev.At)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		// Events of one subject are applied in order: if an earlier one is
		// still unhandled (another consumer holds it), leave this for later.
		var earlier bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM device_events WHERE handled_at IS NULL AND id < $1
			AND ((kind LIKE 'site%' AND $2 LIKE 'site%' AND site_id = $3) OR (kind NOT LIKE 'site%' AND $2 NOT LIKE 'site%' AND device_id = $4)))`,
			ev.ID, ev.Kind, ev.SiteID, ev.DeviceID).Scan(&earlier); err != nil {
			return fmt.Errorf("order check: %w", err)
		}
		if earlier {
			return nil
		}
		if err := c.handle(ctx, tx, ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.ID, ev.Kind, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE device_events SET handled_at = $2 WHERE id = $1`, ev.ID, c.now()); err != nil {
			return fmt.Errorf("mark event %d handled: %w", ev.ID, err)
		}
		handled = true
		return nil
	})
	return ev.ID, handled, err
}

// trigger is an outage or a firing alert, from either source.
type trigger struct {
	Source     string
	Kind       string // device, site or collector
	Key        string // the subject, when not the device or site (collector:ID)
	CustomerID string
	SiteID     string
	Device     *assets.Device // the device down, or the site's gateway
	Affected   []string       // site incidents: the devices made unreachable
	OutageID   int64          // 0 for alerts
	At         time.Time
	What       string         // timeline wording of the cause
	Data       map[string]any // timeline data
}

func (c *OutageConsumer) handle(ctx context.Context, tx *sqlx.Tx, ev deviceEvent) error {
	s := c.store
	var detail map[string]any
	json.Unmarshal(ev.Detail, &detail)
	data := map[string]any{"device_event_id": ev.ID}
	if len(detail) > 0 {
		data["detail"] = detail
	}
	if ev.OutageID.Valid {
		data["outage_id"] = ev.OutageID.Int64
	}
	switch ev.Kind {
	case "device_down", "site_down":
		tr := trigger{Source: SourceProbe, Kind: "device", CustomerID: ev.CustomerID, SiteID: ev.SiteID, OutageID: ev.OutageID.Int64,
			At: ev.At, Data: data}
		if ev.DeviceID.Valid {
			d, err := s.inv.Device(ctx, assets.Scope{}, ev.DeviceID.String)
			if err != nil {
				return fmt.Errorf("device %s: %w", ev.DeviceID.String, err)
			}
			tr.Device = &d
		}
		if ev.Kind == "site_down" {
			tr.Kind = "site"
			if ev.OutageID.Valid {
				var affected pq.StringArray
				if err := tx.QueryRowContext(ctx, `SELECT affected_device_ids FROM outages WHERE id = $1`, ev.OutageID.Int64).Scan(&affected); err != nil {
					return fmt.Errorf("outage %d: %w", ev.OutageID.Int64, err)
				}
				tr.Affected = affected
			}
		} else if tr.Device == nil {
			return errors.New("device_down without a device")
		}
		_, err := s.raise(ctx, tx, tr)
		return err
	case "monitoring_lost":
		// A collector silent past its grace: one ticket for the NOC, not
		// the hospital's, and none per device (they show unknown).
		tr := trigger{Source: SourceProbe, Kind: "collector", Key: collectorKey(detail), CustomerID: ev.CustomerID,
			SiteID: ev.SiteID, At: ev.At, Data: data}
		_, err := s.raise(ctx, tx, tr)
		return err
	case "monitoring_restored":
		// Nobody at the hospital knows of this ticket, so there is no one
		// to confirm a solution with: it closes as resolved.
		t, err := openAuto(ctx, tx, collectorKey(detail))
		if err != nil || t == nil {
			return err
		}
		const text = "monitoring restored: the collector's results arrive again"
		if err := addEvent(ctx, tx, t.ID, ev.At, System.String(), "service_restored", text, data); err != nil {
			return err
		}
		return s.closeTicket(ctx, tx, t, ev.At, System.String(), "resolved", text, nil)
	case "device_up", "site_up":
		key := "site:" + ev.SiteID
		if ev.Kind == "device_up" {
			key = "device:" + ev.DeviceID.String
		}
		return s.restore(ctx, tx, key, ev.OutageID.Int64, ev.At, "service restored", data)
	default:
		// flapping, misconfiguration and reboots annotate an open ticket of
		// the device; they open none.
		if !ev.DeviceID.Valid {
			return nil
		}
		t, err := openAuto(ctx, tx, "device:"+ev.DeviceID.String)
		if err != nil || t == nil {
			return err
		}
		return addEvent(ctx, tx, t.ID, ev.At, System.String(), ev.Kind, eventText[ev.Kind], data)
	}
}

var eventText = map[string]string{
	"flapping_started": "the device is flapping",
	"flapping_stopped": "the device stopped flapping",
	"misconfigured":    "the device's probe is misconfigured",
	"rebooted":         "the device rebooted",
}

// openAuto locks the open automatic ticket of a subject, if any.
func openAuto(ctx context.Context, tx *sqlx.Tx, key string) (*Ticket, error) {
	t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE auto_key = $1 AND closed_at IS NULL FOR UPDATE`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open ticket of %s: %w", key, err)
	}
	return &t, nil
}

// raise opens the ticket for a trigger, or attaches the trigger to the
// subject's open ticket (reopening it if it was solved awaiting
// confirmation: the fault is back). A new ticket after a closed one links
// to it.
func (s *Store) raise(ctx context.Context, tx *sqlx.Tx, tr trigger) (*Ticket, error) {
	key := tr.Kind + ":" + tr.SiteID
	switch {
	case tr.Key != "":
		key = tr.Key
	case tr.Kind == "device":
		key = "device:" + tr.Device.ID
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
		t, err := openAuto(ctx, tx, key)
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

func (s *Store) triggerTicket(ctx context.Context, tx *sqlx.Tx, tr trigger, key string) (openInput, error) {
	in := openInput{CustomerID: tr.CustomerID, SiteID: tr.SiteID, Source: tr.Source, AutoKey: key, OpenedAt: tr.At,
		Author: System.String(), Data: tr.Data}
	var siteName, lang string
	if err := tx.QueryRowContext(ctx, `SELECT s.name, c.language FROM sites s JOIN customers c ON c.id = s.customer_id WHERE s.id = $1`,
		tr.SiteID).Scan(&siteName, &lang); err != nil {
		return in, fmt.Errorf("site %s: %w", tr.SiteID, err)
	}
	if tr.Kind == "collector" {
		in.NOCOnly, in.Severity = true, 2
		in.Title = monitoringLostTitle(lang, siteNames(ctx, tx, tr.Data, siteName))
	} else if tr.Kind == "device" {
		in.DeviceIDs = []string{tr.Device.ID}
		in.Severity = outageSeverity(*tr.Device)
		in.Title = autoTitle(lang, tr.Device.Name, siteName, 1)
	} else {
		devices, err := s.inv.Devices(ctx, assets.DeviceFilter{Scope: assets.Scope{CustomerID: tr.CustomerID}, SiteID: tr.SiteID})
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
		in.Title = autoTitle(lang, "", siteName, len(in.DeviceIDs))
	}
	var prev int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM tickets WHERE auto_key = $1 AND closed_at IS NOT NULL ORDER BY id DESC LIMIT 1`, key).Scan(&prev)
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
func (s *Store) attach(ctx context.Context, tx *sqlx.Tx, t *Ticket, tr trigger) error {
	if tr.OutageID != 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_outages (outage_id, ticket_id, attached_at) VALUES ($1, $2, $3)
			ON CONFLICT (outage_id) DO NOTHING`, tr.OutageID, t.ID, tr.At); err != nil {
			return fmt.Errorf("attach outage %d: %w", tr.OutageID, err)
		}
	}
	text := "new outage while the ticket is open"
	if tr.Source == SourceAlertmanager {
		text = "alert firing while the ticket is open"
	}
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
	return addEvent(ctx, tx, t.ID, tr.At, System.String(), "reopened", "the fault is back while awaiting confirmation", nil)
}

// restore records "service restored" on the ticket of an outage (or the
// subject's open ticket) and moves it to solved, awaiting the customer's
// confirmation: the pre-closure protocol starts.
func (s *Store) restore(ctx context.Context, tx *sqlx.Tx, key string, outageID int64, at time.Time, text string, data map[string]any) error {
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
		if t, err = openAuto(ctx, tx, key); err != nil {
			return err
		}
	}
	if t == nil || t.Status == StatusClosed {
		return nil // nothing open about it (e.g. closed by the NOC meanwhile)
	}
	if t.Status == StatusSolved {
		return addEvent(ctx, tx, t.ID, at, System.String(), "service_restored", text, data)
	}
	if err := s.solve(ctx, tx, t, at, System.String(), "service_restored", text, false); err != nil {
		return err
	}
	return s.recompute(ctx, tx, t)
}

// collectorKey is the ticket subject of a collector's loss.
func collectorKey(detail map[string]any) string {
	return fmt.Sprintf("collector:%v", detail["collector_id"])
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
	var names []string
	if len(sites) > 0 && tx.SelectContext(ctx, &names, `SELECT name FROM sites WHERE id = ANY ($1) ORDER BY name`, pq.Array(sites)) == nil && len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return fallback
}

func monitoringLostTitle(lang, sites string) string {
	if lang == "en" {
		return "Monitoring lost at " + sites
	}
	return "Monitorización perdida en " + sites
}
