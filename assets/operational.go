package assets

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Operational statuses of a device. Out of service means the device must
// not be used on patients (a failed electrical safety test): it stays in
// the inventory and keeps being probed, but raises no outage while out.
const (
	InService    = "in_service"
	OutOfService = "out_of_service"
)

// OperationalStatus is whether a device may be used, why, and since when.
type OperationalStatus struct {
	Status string     `json:"status"`
	Reason string     `json:"reason,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
}

// OutOfService reports whether the device was taken out of service.
func (d Device) OutOfService() bool { return d.Operational.Status == OutOfService }

// SetOperationalStatusTx takes a device out of service or puts it back,
// in the caller's transaction (the test record that decides it commits
// with it). It reports whether the status changed: setting the status a
// device already has keeps its reason and instant.
func SetOperationalStatusTx(ctx context.Context, tx *sqlx.Tx, deviceID, status, reason string, at time.Time) (bool, error) {
	if status != InService && status != OutOfService {
		return false, fmt.Errorf("assets: operational status %q: want %s or %s", status, InService, OutOfService)
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 500 {
		reason = reason[:500]
	}
	res, err := tx.ExecContext(ctx, `UPDATE devices SET operational_status = $2, operational_reason = $3, operational_since = $4,
		updated_at = $4 WHERE id = $1 AND operational_status <> $2`, deviceID, status, strings.ToValidUTF8(reason, ""), at)
	if err != nil {
		return false, fmt.Errorf("assets: set operational status of %s: %w", deviceID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("assets: set operational status of %s: %w", deviceID, err)
	}
	return n == 1, nil
}
