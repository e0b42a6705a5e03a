package maintenance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/probes"
)

// What a later stage of the flow (the biomedical service) opens in its own
// transaction, so that the record that caused a ticket (a failed safety
// test, a matched safety alert, a work order) commits with it or not at all.

// SourceBiomed marks a ticket opened by the biomedical service.
const SourceBiomed = "biomed"

// SystemInput is a ticket Vigía opens by itself.
type SystemInput struct {
	CustomerID, SiteID string
	DeviceIDs          []string
	Title, Description string
	Category           string
	Severity           int
	Source             string // SourceBiomed or SourcePreventive
	// AutoKey, when set, allows one open ticket per key: OpenSystemTx then
	// answers ok=false when one is open already.
	AutoKey  string
	OpenedAt time.Time
	Author   string
	Data     map[string]any
}

// OpenSystemTx opens a ticket in the caller's transaction.
func (s *Store) OpenSystemTx(ctx context.Context, tx *sqlx.Tx, in SystemInput) (Ticket, bool, error) {
	switch {
	case in.Severity < 1 || in.Severity > 4:
		return Ticket{}, false, invalid("severity must be 1 to 4")
	case in.Source != SourceBiomed && in.Source != SourcePreventive:
		return Ticket{}, false, invalid("source must be biomed or preventive")
	case in.Title == "" || len(in.Title) > 200:
		return Ticket{}, false, invalid("title is required (at most 200 characters)")
	}
	if in.Author == "" {
		in.Author = author("vigia", in.Source)
	}
	t, ok, err := s.open(ctx, tx, openInput{CustomerID: in.CustomerID, SiteID: in.SiteID, DeviceIDs: in.DeviceIDs,
		Title: in.Title, Description: in.Description, Category: in.Category, Severity: in.Severity, Source: in.Source,
		AutoKey: in.AutoKey, OpenedAt: in.OpenedAt, Author: in.Author, Data: in.Data})
	if err != nil {
		return t, false, fmt.Errorf("maintenance: open %s ticket: %w", in.Source, err)
	}
	return t, ok, nil
}

// PreventiveSeverity is the severity of a preventive work order: planned
// work, no service down (Sev 4). Under a policy with a Sev 4 response
// target (desk-standard, helpdesk-co) the NOC acknowledges the order when
// it books the visit.
const PreventiveSeverity = 4

const dateLayout = "2006-01-02"

// WorkOrderInput is a preventive work order on one device, due on a day of
// the customer's calendar.
type WorkOrderInput struct {
	CustomerID, SiteID, DeviceID string
	Title, Description           string
	Due                          time.Time // the day (its date is read in Location)
	Location                     *time.Location
	OpenedAt                     time.Time
	Author                       string
	Data                         map[string]any // the ticket's opening event
	WindowData                   map[string]any // added to the visit's event (the plan of a preventive sweep)
}

// OpenWorkOrderTx opens a Sev 4 preventive work order and a maintenance
// window on its device for the whole due day in the customer's zone, so
// probes raise no outage during the visit, in the caller's transaction.
// It returns the ticket and the window's id.
func (s *Store) OpenWorkOrderTx(ctx context.Context, tx *sqlx.Tx, in WorkOrderInput) (Ticket, int64, error) {
	if in.Location == nil {
		return Ticket{}, 0, errors.New("maintenance: work order without a time zone")
	}
	if in.Author == "" {
		in.Author = author("vigia", "preventive")
	}
	t, ok, err := s.open(ctx, tx, openInput{CustomerID: in.CustomerID, SiteID: in.SiteID, DeviceIDs: []string{in.DeviceID},
		Title: in.Title, Description: in.Description, Category: "preventive", Severity: PreventiveSeverity,
		Source: SourcePreventive, OpenedAt: in.OpenedAt, Author: in.Author, Data: in.Data})
	if err == nil && !ok {
		err = errors.New("work order not inserted")
	}
	if err != nil {
		return t, 0, fmt.Errorf("maintenance: open work order: %w", err)
	}
	windowID, err := dayWindowTx(ctx, tx, t, in.DeviceID, in.Due, in.Location, in.Author, in.OpenedAt, in.WindowData)
	return t, windowID, err
}

// dayWindowTx opens a maintenance window on device for the whole day due
// in loc and notes it on the ticket's timeline.
func dayWindowTx(ctx context.Context, tx *sqlx.Tx, t Ticket, deviceID string, due time.Time, loc *time.Location,
	who string, now time.Time, data map[string]any) (int64, error) {
	start := time.Date(due.Year(), due.Month(), due.Day(), 0, 0, 0, 0, loc)
	end := time.Date(due.Year(), due.Month(), due.Day()+1, 0, 0, 0, 0, loc)
	w := &probes.Window{Scope: "device", ScopeID: deviceID, Reason: "preventive maintenance, ticket " + t.Number, StartsAt: start, EndsAt: end}
	if err := probes.AddWindowTx(ctx, tx, w, who, now); err != nil {
		return 0, err
	}
	windowID := w.ID
	event := map[string]any{"window_id": windowID, "starts_at": start, "ends_at": end}
	for k, v := range data {
		event[k] = v
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return 0, fmt.Errorf("work order %s: %w", t.Number, err)
	}
	if err := addEvent(ctx, tx, t.ID, now, who, "preventive_visit",
		notify.PreventiveVisitText(lang, due.Format(dateLayout), start.Format(time.RFC3339), end.Format(time.RFC3339)), event); err != nil {
		return 0, err
	}
	return windowID, nil
}

// TicketsByID returns the tickets of ids (for the biomedical service's
// reports: a work order's or an alert's ticket and its closure).
func (s *Store) TicketsByID(ctx context.Context, ids []int64) (map[int64]Ticket, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+ticketColumns+` FROM tickets WHERE id = ANY ($1)`, pq.Int64Array(ids))
	if err != nil {
		return nil, fmt.Errorf("maintenance: tickets by id: %w", err)
	}
	defer rows.Close()
	out := map[int64]Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, fmt.Errorf("maintenance: tickets by id: %w", err)
		}
		out[t.ID] = t
	}
	return out, rows.Err()
}
