package maintenance

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/maintenance/notify"
)

// notice is what notify is told about t: keys and typed values, which it
// words in the customer's language.
func (t *Ticket) notice() notify.Ticket {
	return notify.Ticket{ID: t.ID, Number: t.Number, CustomerID: t.CustomerID, SiteID: t.SiteID, DeviceIDs: t.DeviceIDs,
		Title: t.Title, Status: t.Status, SLAPolicy: t.SLAPolicy, AutoKey: t.AutoKey, CloseReason: t.CloseReason,
		Severity: t.Severity, Automatic: t.Source == SourceProbe || t.Source == SourceAlertmanager, Billable: t.Billable, NOCOnly: t.NOCOnly,
		ResponseDueAt: t.ResponseDueAt, SolvedAt: t.SolvedAt, KBLinks: t.KBLinks}
}

// enqueue has notify queue the notifications of event key of t, in tx, to
// the customer's addresses and the NOC's webhooks.
func (s *Store) enqueue(ctx context.Context, tx *sqlx.Tx, key string, t *Ticket, n notify.Notice, at time.Time) error {
	return notify.EnqueueTicket(ctx, tx, key, s.webhooks, t.notice(), n, at)
}
