package maintenance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
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

// storageTrendDetail is the detail of storage_trend events (probes'
// StorageTrendDetail, read here without importing the probes).
type storageTrendDetail struct {
	Volumes []struct {
		Volume      string    `json:"volume"`
		Filling     bool      `json:"filling"`
		FullAt      time.Time `json:"full_at"`
		Days        int       `json:"days"`
		Severity    int       `json:"severity"`
		UsedBytes   int64     `json:"used_bytes"`
		SizeBytes   int64     `json:"size_bytes"`
		BytesPerDay int64     `json:"bytes_per_day"`
	} `json:"volumes"`
}

// alert is one subject's ticket to open or update.
type alert struct {
	Key      string
	Severity int
	Title    string
	Kind     string // timeline kind of an update
	Text     string // timeline text of an update
	Data     map[string]any
}

// handleDeviceAlert applies trap_alarm, trap_cleared and storage_trend.
func (s *Store) handleDeviceAlert(ctx context.Context, tx *sqlx.Tx, ev deviceEvent, data map[string]any) error {
	if !ev.DeviceID.Valid {
		return errors.New(ev.Kind + " without a device")
	}
	d, err := s.inv.InTx(tx).Device(ctx, assets.Scope{}, ev.DeviceID.String)
	if err != nil {
		return fmt.Errorf("device %s: %w", ev.DeviceID.String, err)
	}
	var siteName, lang string
	if err := tx.QueryRowContext(ctx, `SELECT s.name, c.language FROM sites s JOIN customers c ON c.id = s.customer_id WHERE s.id = $1`,
		ev.SiteID).Scan(&siteName, &lang); err != nil {
		return fmt.Errorf("site %s: %w", ev.SiteID, err)
	}
	en := lang == "en"
	switch ev.Kind {
	case "trap_alarm", "trap_cleared":
		var det trapAlarmDetail
		if err := json.Unmarshal(ev.Detail, &det); err != nil || det.Condition == "" {
			return fmt.Errorf("%s detail: %v", ev.Kind, err)
		}
		key := "trap:" + d.ID + ":" + det.Condition
		if ev.Kind == "trap_cleared" {
			text := "la condición se despejó (trap " + det.TrapOID + ")"
			if en {
				text = "the condition cleared (trap " + det.TrapOID + ")"
			}
			return s.restore(ctx, tx, key, 0, ev.At, text, data)
		}
		title := fmt.Sprintf("%s: %s en %s", det.TextES, d.Name, siteName)
		if en {
			title = fmt.Sprintf("%s: %s at %s", det.TextEN, d.Name, siteName)
		}
		return s.raiseAlert(ctx, tx, d, ev, alert{Key: key, Severity: det.Severity, Title: title, Kind: "trap_repeated",
			Text: title, Data: data})
	case "storage_trend":
		var det storageTrendDetail
		if err := json.Unmarshal(ev.Detail, &det); err != nil {
			return fmt.Errorf("storage_trend detail: %w", err)
		}
		for _, v := range det.Volumes {
			key := "storage:" + d.ID + ":" + v.Volume
			vdata := map[string]any{"device_event_id": data["device_event_id"], "volume": v.Volume, "full_at": v.FullAt,
				"days": v.Days, "used_bytes": v.UsedBytes, "size_bytes": v.SizeBytes, "bytes_per_day": v.BytesPerDay}
			if !v.Filling {
				text := "la tendencia ya no llena el volumen " + v.Volume + " antes del umbral"
				if en {
					text = "the trend no longer fills volume " + v.Volume + " within the threshold"
				}
				if err := s.restore(ctx, tx, key, 0, ev.At, text, vdata); err != nil {
					return err
				}
				continue
			}
			title := storageTitle(en, d, v.Volume, v.Days)
			if err := s.raiseAlert(ctx, tx, d, ev, alert{Key: key, Severity: v.Severity, Title: title, Kind: "storage_forecast",
				Text: storageForecastText(en, v.Days, v.FullAt), Data: vdata}); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("not a device alert: %s", ev.Kind)
}

// storageTitle reads "PACS storage full in ~9 days (/data, PACS central)".
func storageTitle(en bool, d assets.Device, volume string, days int) string {
	what := strings.ToUpper(d.Kind)
	if d.Kind != "pacs" && d.Kind != "ris" {
		what = d.Kind
	}
	if en {
		unit := "days"
		if days == 1 {
			unit = "day"
		}
		return fmt.Sprintf("%s storage full in ~%d %s (%s, %s)", what, days, unit, volume, d.Name)
	}
	unit := "días"
	if days == 1 {
		unit = "día"
	}
	return fmt.Sprintf("Almacenamiento del %s lleno en ~%d %s (%s, %s)", what, days, unit, volume, d.Name)
}

func storageForecastText(en bool, days int, fullAt time.Time) string {
	if en {
		return fmt.Sprintf("forecast updated: full in ~%d days (%s UTC)", days, fullAt.UTC().Format("2006-01-02 15:04"))
	}
	return fmt.Sprintf("pronóstico actualizado: lleno en ~%d días (%s UTC)", days, fullAt.UTC().Format("2006-01-02 15:04"))
}

// raiseAlert opens the subject's ticket, or updates the open one: its
// title, a timeline entry, and its severity when the alert is graver (a
// person may have lowered it; the probes only ever raise it). A ticket
// solved awaiting confirmation is reopened: the fault is back.
func (s *Store) raiseAlert(ctx context.Context, tx *sqlx.Tx, d assets.Device, ev deviceEvent, a alert) error {
	for range 2 {
		t, err := openAuto(ctx, tx, a.Key)
		if err != nil {
			return err
		}
		if t != nil {
			return s.updateAlert(ctx, tx, t, ev.At, a)
		}
		in := openInput{CustomerID: ev.CustomerID, SiteID: ev.SiteID, DeviceIDs: []string{d.ID}, Title: a.Title, Severity: a.Severity,
			Source: SourceProbe, AutoKey: a.Key, OpenedAt: ev.At, Author: System.String(), Data: a.Data}
		var prev int64
		err = tx.QueryRowContext(ctx, `SELECT id FROM tickets WHERE auto_key = $1 AND closed_at IS NOT NULL ORDER BY id DESC LIMIT 1`, a.Key).Scan(&prev)
		if err == nil {
			in.PreviousTicketID = &prev
		}
		if _, ok, err := s.open(ctx, tx, in); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("open ticket of %s: lost the race twice", a.Key)
}

func (s *Store) updateAlert(ctx context.Context, tx *sqlx.Tx, t *Ticket, at time.Time, a alert) error {
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
		if err := addEvent(ctx, tx, t.ID, at, System.String(), "reopened", "the fault is back while awaiting confirmation", nil); err != nil {
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
