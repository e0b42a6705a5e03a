// Package intake turns what happens outside the ticket core into automatic
// tickets: the probes' device events (outages, worklists, traps, storage
// forecasts) and Alertmanager's alerts, each through the core's one entry
// point, maintenance.Store.RaiseTx (and RestoreTx on the way back). E-mail
// intake (mailintake) calls the core the same way.
package intake

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// OutageConsumer turns the probes' device_events into tickets. Each event
// is claimed with FOR UPDATE SKIP LOCKED, acted on, and marked handled in
// the same transaction, so several consumers (or a restarted one) never act
// twice; the ticket rows' unique indexes make any remaining race a no-op.
type OutageConsumer struct {
	tickets *maintenance.Store
	inv     *assets.Store
	now     func() time.Time
	log     *slog.Logger
}

// NewOutageConsumer returns a consumer; now stamps handled_at only (the
// tickets take their instants from the events).
func NewOutageConsumer(tickets *maintenance.Store, inv *assets.Store, now func() time.Time, log *slog.Logger) *OutageConsumer {
	return &OutageConsumer{tickets: tickets, inv: inv, now: now, log: log}
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
	err := c.tickets.InTx(ctx, "consume device event", func(tx *sqlx.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id, kind, customer_id, site_id, device_id, outage_id, detail, at FROM device_events
			WHERE handled_at IS NULL AND NOT (id = ANY ($1)) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, pq.Int64Array(append([]int64{}, deferred...))).
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

func (c *OutageConsumer) handle(ctx context.Context, tx *sqlx.Tx, ev deviceEvent) error {
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
		tr := maintenance.Trigger{Source: maintenance.SourceProbe, Kind: "device", CustomerID: ev.CustomerID, SiteID: ev.SiteID, OutageID: ev.OutageID.Int64,
			At: ev.At, Data: data}
		if ev.DeviceID.Valid {
			d, err := c.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID.String)
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
		_, err := c.tickets.RaiseTx(ctx, tx, tr)
		return err
	case "worklist_failing":
		// Seed 000: trouble with scheduling or the worklist is a Sev 2
		// incident. The device answers (degraded), so no outage: the
		// ticket is keyed on the device's worklist.
		if !ev.DeviceID.Valid {
			return errors.New("worklist_failing without a device")
		}
		d, err := c.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID.String)
		if err != nil {
			return fmt.Errorf("device %s: %w", ev.DeviceID.String, err)
		}
		_, err = c.tickets.RaiseTx(ctx, tx, maintenance.Trigger{Source: maintenance.SourceProbe, Kind: "worklist", CustomerID: ev.CustomerID, SiteID: ev.SiteID,
			Device: &d, At: ev.At, Data: data})
		return err
	case "monitoring_lost":
		// A collector silent past its grace: one ticket for the NOC, not
		// the hospital's, and none per device (they show unknown).
		_, err := c.tickets.RaiseTx(ctx, tx, maintenance.Trigger{Source: maintenance.SourceProbe, Kind: "collector",
			Key: collectorKey(detail), CustomerID: ev.CustomerID, SiteID: ev.SiteID, At: ev.At, Data: data})
		return err
	case "monitoring_restored":
		// Nobody at the hospital knows of this ticket, so there is no one
		// to confirm a solution with: it closes as resolved.
		return c.tickets.ResolveAutoTx(ctx, tx, collectorKey(detail), ev.At, "monitoring restored: the collector's results arrive again", data)
	case "worklist_restored":
		return c.tickets.RestoreTx(ctx, tx, "worklist:"+ev.DeviceID.String, 0, ev.At, notify.WorklistRestoredText, data)
	case "device_up", "site_up":
		key := "site:" + ev.SiteID
		if ev.Kind == "device_up" {
			key = "device:" + ev.DeviceID.String
		}
		return c.tickets.RestoreTx(ctx, tx, key, ev.OutageID.Int64, ev.At, "service restored", data)
	case "trap_alarm", "trap_cleared", "storage_trend":
		return c.handleDeviceAlert(ctx, tx, ev, data)
	default:
		// flapping, misconfiguration and reboots annotate an open ticket of
		// the device; they open none.
		if !ev.DeviceID.Valid {
			return nil
		}
		t, err := c.tickets.OpenAutoTx(ctx, tx, "device:"+ev.DeviceID.String)
		if err != nil || t == nil {
			return err
		}
		return maintenance.AddEventTx(ctx, tx, t.ID, ev.At, maintenance.System.String(), ev.Kind, notify.DeviceEventText(ev.Kind), data)
	}
}

// collectorKey is the ticket subject of a collector's loss.
func collectorKey(detail map[string]any) string {
	return fmt.Sprintf("collector:%v", detail["collector_id"])
}
