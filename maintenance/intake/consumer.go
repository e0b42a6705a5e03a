// Package intake turns what happens outside the ticket core into automatic
// tickets: the probes' device events (outages, worklists, traps, storage
// forecasts) and Alertmanager's alerts, each through the core's one entry
// point, maintenance.Store.RaiseTx (and RestoreTx on the way back). E-mail
// intake (mailintake) calls the core the same way.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/probes"
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
	var ev probes.DeviceEvent
	handled := false
	err := c.tickets.InTx(ctx, "consume device event", func(tx *sqlx.Tx) error {
		var ok bool
		var err error
		if ev, ok, err = probes.NextUnhandledEventTx(ctx, tx, deferred); err != nil || !ok {
			return err
		}
		// Events of one subject are applied in order: if an earlier one is
		// still unhandled (another consumer holds it), leave this for later.
		earlier, err := probes.EarlierUnhandledTx(ctx, tx, ev)
		if err != nil || earlier {
			return err
		}
		if err := c.handle(ctx, tx, ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", ev.ID, ev.Kind, err)
		}
		if err := probes.MarkEventHandledTx(ctx, tx, ev.ID, c.now()); err != nil {
			return err
		}
		handled = true
		return nil
	})
	return ev.ID, handled, err
}

func (c *OutageConsumer) handle(ctx context.Context, tx *sqlx.Tx, ev probes.DeviceEvent) error {
	var detail map[string]any
	json.Unmarshal(ev.Detail, &detail)
	data := map[string]any{"device_event_id": ev.ID}
	if len(detail) > 0 {
		data["detail"] = detail
	}
	if ev.OutageID != 0 {
		data["outage_id"] = ev.OutageID
	}
	switch ev.Kind {
	case "device_down", "site_down":
		tr := maintenance.Trigger{Source: maintenance.SourceProbe, Kind: "device", CustomerID: ev.CustomerID, SiteID: ev.SiteID, OutageID: ev.OutageID,
			At: ev.At, Data: data}
		if ev.DeviceID != "" {
			d, err := c.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID)
			if err != nil {
				return fmt.Errorf("device %s: %w", ev.DeviceID, err)
			}
			tr.Device = &d
		}
		if ev.Kind == "site_down" {
			tr.Kind = "site"
			if ev.OutageID != 0 {
				affected, err := probes.OutageAffectedTx(ctx, tx, ev.OutageID)
				if err != nil {
					return err
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
		if ev.DeviceID == "" {
			return errors.New("worklist_failing without a device")
		}
		d, err := c.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID)
		if err != nil {
			return fmt.Errorf("device %s: %w", ev.DeviceID, err)
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
		return c.tickets.ResolveAutoTx(ctx, tx, collectorKey(detail), ev.At, notify.MonitoringRestoredText, data)
	case "worklist_restored":
		return c.tickets.RestoreTx(ctx, tx, "worklist:"+ev.DeviceID, 0, ev.At, notify.WorklistRestoredText, data)
	case "device_up", "site_up":
		key := "site:" + ev.SiteID
		if ev.Kind == "device_up" {
			key = "device:" + ev.DeviceID
		}
		return c.tickets.RestoreTx(ctx, tx, key, ev.OutageID, ev.At, func(lang string) string { return notify.ServiceRestoredText(lang, false) }, data)
	case "trap_alarm", "trap_cleared", "storage_trend":
		return c.handleDeviceAlert(ctx, tx, ev, data)
	default:
		// flapping, misconfiguration and reboots annotate an open ticket of
		// the device; they open none.
		if ev.DeviceID == "" {
			return nil
		}
		t, err := c.tickets.OpenAutoTx(ctx, tx, "device:"+ev.DeviceID)
		if err != nil || t == nil {
			return err
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		return maintenance.AddEventTx(ctx, tx, t.ID, ev.At, maintenance.System.String(), ev.Kind, notify.DeviceEventText(lang, ev.Kind), data)
	}
}

// collectorKey is the ticket subject of a collector's loss.
func collectorKey(detail map[string]any) string {
	return fmt.Sprintf("collector:%v", detail["collector_id"])
}
