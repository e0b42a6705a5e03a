package probes

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The functions below are what the ticket stage (maintenance and its
// intake) needs of the probes' tables, in its own transaction: the device
// events it turns into tickets, the devices an outage took down, and the
// maintenance window a preventive work order opens for its visit.

// DeviceEvent is one event the probes publish for the ticket stage.
type DeviceEvent struct {
	ID         int64
	Kind       string
	CustomerID string
	SiteID     string
	DeviceID   string // "" for an event of a site or a collector
	OutageID   int64  // 0 when no outage goes with it
	Detail     []byte // JSON
	At         time.Time
}

// NextUnhandledEventTx claims the oldest event not yet handled whose id is
// not in skip, locking it for tx and skipping events another transaction
// holds, so that several consumers never take the same one. ok is false
// when none is left.
func NextUnhandledEventTx(ctx context.Context, tx *sqlx.Tx, skip []int64) (ev DeviceEvent, ok bool, err error) {
	var device sql.NullString
	var outage sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT id, kind, customer_id, site_id, device_id, outage_id, detail, at FROM device_events
		WHERE handled_at IS NULL AND NOT (id = ANY ($1)) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, pq.Int64Array(append([]int64{}, skip...))).
		Scan(&ev.ID, &ev.Kind, &ev.CustomerID, &ev.SiteID, &device, &outage, &ev.Detail, &ev.At)
	if errors.Is(err, sql.ErrNoRows) {
		return ev, false, nil
	}
	if err != nil {
		return ev, false, fmt.Errorf("probes: claim device event: %w", err)
	}
	ev.DeviceID, ev.OutageID = device.String, outage.Int64
	return ev, true, nil
}

// EarlierUnhandledTx reports whether an event of ev's subject (its site for
// site events, its device otherwise) published before ev is still not
// handled: events of one subject are applied in order.
func EarlierUnhandledTx(ctx context.Context, tx *sqlx.Tx, ev DeviceEvent) (bool, error) {
	var device any
	if ev.DeviceID != "" {
		device = ev.DeviceID
	}
	var earlier bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM device_events WHERE handled_at IS NULL AND id < $1
		AND ((kind LIKE 'site%' AND $2 LIKE 'site%' AND site_id = $3) OR (kind NOT LIKE 'site%' AND $2 NOT LIKE 'site%' AND device_id = $4)))`,
		ev.ID, ev.Kind, ev.SiteID, device).Scan(&earlier); err != nil {
		return false, fmt.Errorf("probes: order of device event %d: %w", ev.ID, err)
	}
	return earlier, nil
}

// MarkEventHandledTx records that the ticket stage acted on event id at at.
func MarkEventHandledTx(ctx context.Context, tx *sqlx.Tx, id int64, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE device_events SET handled_at = $2 WHERE id = $1`, id, at); err != nil {
		return fmt.Errorf("probes: mark device event %d handled: %w", id, err)
	}
	return nil
}

// OutageAffectedTx returns the devices outage id took down with it (a site
// outage's devices behind the gateway).
func OutageAffectedTx(ctx context.Context, tx *sqlx.Tx, id int64) ([]string, error) {
	var affected pq.StringArray
	if err := tx.QueryRowContext(ctx, `SELECT affected_device_ids FROM outages WHERE id = $1`, id).Scan(&affected); err != nil {
		return nil, fmt.Errorf("probes: outage %d: %w", id, err)
	}
	return affected, nil
}

// AddWindowTx validates and stores a window created at at, in the caller's
// transaction (a preventive work order and the window of its visit commit
// together).
func AddWindowTx(ctx context.Context, tx *sqlx.Tx, w *Window, author string, at time.Time) error {
	return addWindow(ctx, tx, w, author, &at)
}
