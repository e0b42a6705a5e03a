package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/probes"
)

// Device alerts are the probes' events that are not outages but still
// deserve a ticket of their own, one per subject, with the severity the
// probes gave: a trap condition with a severity (a UPS on low battery) and
// a volume predicted full (storage_trend). Their auto keys name the
// subject, so that a device's outage ticket and its alerts' tickets never
// swallow one another:
//
//	trap:<device>:<condition>
//	storage:<device>:<volume>

// trapAlarmDetail is the detail of trap_alarm and trap_cleared events.
type trapAlarmDetail struct {
	Condition string `json:"condition"`
	Severity  int    `json:"severity"`
	TextEN    string `json:"text_en"`
	TextES    string `json:"text_es"`
	TrapOID   string `json:"trap_oid"`
}

// handleDeviceAlert applies trap_alarm, trap_cleared and storage_trend.
func (c *OutageConsumer) handleDeviceAlert(ctx context.Context, tx *sqlx.Tx, ev probes.DeviceEvent, data map[string]any) error {
	if ev.DeviceID == "" {
		return errors.New(ev.Kind + " without a device")
	}
	d, err := c.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID)
	if err != nil {
		return fmt.Errorf("device %s: %w", ev.DeviceID, err)
	}
	siteName, lang, err := assets.SiteAndLanguageTx(ctx, tx, ev.SiteID)
	if err != nil {
		return err
	}
	switch ev.Kind {
	case "trap_alarm", "trap_cleared":
		var det trapAlarmDetail
		if err := json.Unmarshal(ev.Detail, &det); err != nil || det.Condition == "" {
			return fmt.Errorf("%s detail: %v", ev.Kind, err)
		}
		key := "trap:" + d.ID + ":" + det.Condition
		if ev.Kind == "trap_cleared" {
			return c.tickets.RestoreTx(ctx, tx, key, 0, ev.At, func(lang string) string { return notify.TrapClearedText(lang, det.TrapOID) }, data)
		}
		title := notify.TrapTitle(lang, det.TextES, det.TextEN, d.Name, siteName)
		return c.raise(ctx, tx, d, ev, maintenance.Alert{Key: key, Severity: det.Severity, Title: title, Kind: "trap_repeated",
			Text: title, Data: data})
	case "storage_trend":
		var det probes.StorageTrendDetail
		if err := json.Unmarshal(ev.Detail, &det); err != nil {
			return fmt.Errorf("storage_trend detail: %w", err)
		}
		for _, v := range det.Volumes {
			key := "storage:" + d.ID + ":" + v.Volume
			vdata := map[string]any{"device_event_id": data["device_event_id"], "volume": v.Volume, "full_at": v.FullAt,
				"days": v.Days, "used_bytes": v.UsedBytes, "size_bytes": v.SizeBytes, "bytes_per_day": v.BytesPerDay}
			if !v.Filling {
				if err := c.tickets.RestoreTx(ctx, tx, key, 0, ev.At, func(lang string) string { return notify.StorageCalmText(lang, v.Volume) }, vdata); err != nil {
					return err
				}
				continue
			}
			title := notify.StorageTitle(lang, d.Kind, d.Name, v.Volume, v.Days)
			if err := c.raise(ctx, tx, d, ev, maintenance.Alert{Key: key, Severity: v.Severity, Title: title, Kind: "storage_forecast",
				Text: notify.StorageForecastText(lang, v.Days, v.FullAt), Data: vdata}); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("not a device alert: %s", ev.Kind)
}

// raise opens or updates the subject's own ticket of alert a, through the
// ticket core's one entry point.
func (c *OutageConsumer) raise(ctx context.Context, tx *sqlx.Tx, d assets.Device, ev probes.DeviceEvent, a maintenance.Alert) error {
	_, err := c.tickets.RaiseTx(ctx, tx, maintenance.Trigger{Source: maintenance.SourceProbe, Kind: "alert", CustomerID: ev.CustomerID,
		SiteID: ev.SiteID, Device: &d, At: ev.At, Data: a.Data, Alert: &a})
	return err
}
