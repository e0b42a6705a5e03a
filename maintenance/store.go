package maintenance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/maintenance/calendar"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// Store keeps tickets in PostgreSQL. Every change is one transaction that
// locks the ticket row, writes the change and its timeline entry, rewrites
// the cached SLA due instants and enqueues the notifications.
type Store struct {
	db       *sqlx.DB
	inv      *assets.Store
	policies *sla.Set
	webhooks []string
}

// Options configure a Store.
type Options struct {
	// Policies are the SLA policies; nil means sla.Presets().
	Policies *sla.Set
	// WebhookURLs receive a signed copy of every notification (the NOC's
	// chat or paging integration); their secrets live with the Sender.
	WebhookURLs []string
}

// NewStore returns a ticket store over db, reading the inventory through inv.
func NewStore(db *sqlx.DB, inv *assets.Store, opts Options) *Store {
	if opts.Policies == nil {
		opts.Policies = sla.Presets()
	}
	return &Store{db: db, inv: inv, policies: opts.Policies, webhooks: opts.WebhookURLs}
}

// Scope confines reads and writes to one customer ("" for NOC staff).
type Scope struct{ CustomerID string }

func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	if err := db.InTx(ctx, s.db, fn); err != nil {
		// A broken constraint is told by the value at fault, never by
		// PostgreSQL's wording (which names tables and constraints).
		if v, ok := db.AsViolation(err); ok {
			sentinel := ErrInvalid
			if v.Kind == db.Unique {
				sentinel = ErrConflict
			}
			return fmt.Errorf("maintenance: %s: %w", what, sentinel.Wrap(v))
		}
		return fmt.Errorf("maintenance: %s: %w", what, err)
	}
	return nil
}

const ticketColumns = `id, number, customer_id, site_id, device_ids, title, description, category, requester, severity,
	opened_severity, source, status, pending_reason, assignee, billable, billable_reason, contract_id, sla_policy, auto_key,
	previous_ticket_id, opened_at, acknowledged_at, solved_at, solve_round, closed_at, close_reason, kb_links,
	response_due_at, response_warn_at, resolution_due_at, report_due_at, created_by, updated_at, noc_only`

type scanner interface{ Scan(dest ...any) error }

func scanTicket(r scanner) (Ticket, error) {
	var t Ticket
	var site, pending, contract, autoKey, closeReason sql.NullString
	var prev sql.NullInt64
	var devices, kb pq.StringArray
	err := r.Scan(&t.ID, &t.Number, &t.CustomerID, &site, &devices, &t.Title, &t.Description, &t.Category, &t.Requester,
		&t.Severity, &t.OpenedSeverity, &t.Source, &t.Status, &pending, &t.Assignee, &t.Billable, &t.BillableReason,
		&contract, &t.SLAPolicy, &autoKey, &prev, &t.OpenedAt, &t.AcknowledgedAt, &t.SolvedAt, &t.SolveRound, &t.ClosedAt,
		&closeReason, &kb, &t.ResponseDueAt, &t.ResponseWarnAt, &t.ResolutionDueAt, &t.ReportDueAt, &t.CreatedBy, &t.UpdatedAt, &t.NOCOnly)
	if err != nil {
		return t, err
	}
	t.SiteID, t.PendingReason, t.ContractID, t.AutoKey, t.CloseReason = site.String, pending.String, contract.String, autoKey.String, closeReason.String
	t.DeviceIDs, t.KBLinks = []string(devices), []string(kb)
	if t.DeviceIDs == nil {
		t.DeviceIDs = []string{}
	}
	if prev.Valid {
		t.PreviousTicketID = &prev.Int64
	}
	return t, nil
}

// lockTicket reads a ticket in scope and locks it for the transaction. ref
// is the numeric id or the number (VG-2026-000042).
func lockTicket(ctx context.Context, tx *sqlx.Tx, sc Scope, ref string) (Ticket, error) {
	id, byNumber := parseRef(ref)
	t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE (($1::bigint <> 0 AND id = $1::bigint) OR ($1::bigint = 0 AND number = $2)) AND ($3 = '' OR (customer_id = $3 AND NOT noc_only)) FOR UPDATE`, id, byNumber, sc.CustomerID))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("lock ticket %s: %w", ref, err)
	}
	return t, nil
}

func parseRef(ref string) (int64, string) {
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil && id > 0 {
		return id, ""
	}
	return 0, ref
}

func addEvent(ctx context.Context, tx *sqlx.Tx, ticketID int64, at time.Time, author, kind, text string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("timeline data: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_events (ticket_id, at, author, kind, text, data) VALUES ($1, $2, $3, $4, $5, $6)`,
		ticketID, at, author, kind, text, raw); err != nil {
		return fmt.Errorf("timeline %s: %w", kind, err)
	}
	return nil
}

// openInput is what opening a ticket needs, whatever its source.
type openInput struct {
	CustomerID, SiteID string
	DeviceIDs          []string
	Title, Description string
	Category           string
	Requester          string
	Severity           int
	Source             string
	AutoKey            string
	PreviousTicketID   *int64
	OpenedAt           time.Time
	Author             string
	Data               map[string]any // added to the "opened" timeline entry
	// NOCOnly: the NOC's own incident (a collector lost): the customer
	// neither sees it nor is notified, and it is never billed.
	NOCOnly bool
}

// terms decides billable flag, reason, contract and SLA policy from the
// coverage of the ticket's first device at opening. A ticket without a
// device is covered when a contract in force covers any of the customer's
// devices.
//
// The inventory is read in tx: a second pooled connection taken while the
// transaction holds one starves the pool when many tickets open at once.
func (s *Store) terms(ctx context.Context, tx *sqlx.Tx, customerID string, deviceIDs []string, at time.Time) (assets.Coverage, string, error) {
	inv := s.inv.InTx(tx)
	var devices []assets.Device
	if len(deviceIDs) > 0 {
		d, err := inv.Device(ctx, assets.Scope{}, deviceIDs[0])
		if err != nil {
			return assets.Coverage{}, "", fmt.Errorf("device %s: %w", deviceIDs[0], err)
		}
		devices = []assets.Device{d}
	} else {
		ds, err := inv.Devices(ctx, assets.DeviceFilter{Scope: assets.Scope{CustomerID: customerID}})
		if err != nil {
			return assets.Coverage{}, "", err
		}
		devices = ds
	}
	cov, err := inv.CoverageOf(ctx, devices, at)
	if err != nil {
		return assets.Coverage{}, "", err
	}
	var chosen assets.Coverage
	found := false
	for _, d := range devices {
		c := cov[d.ID]
		if !found || (c.Covered() && !chosen.Covered()) {
			chosen, found = c, true
		}
	}
	if !found {
		chosen = assets.Evaluate("", nil, time.UTC, at) // no devices, no contract: billable, no_contract
	}
	policy := chosen.SLAPolicy
	if policy == "" {
		ks, err := inv.Contracts(ctx, assets.Scope{CustomerID: customerID}, false)
		if err != nil {
			return assets.Coverage{}, "", err
		}
		var latest *assets.Contract
		for i := range ks {
			if latest == nil || ks[i].EndsOn.After(latest.EndsOn) {
				latest = &ks[i]
			}
		}
		if latest != nil {
			policy = latest.SLAPolicy
		}
	}
	if _, err := s.policies.Lookup(policy); policy == "" || err != nil {
		policy = DefaultPolicy
	}
	return chosen, policy, nil
}

// open inserts a new ticket with its first timeline entry, due instants and
// notifications. For automatic tickets (AutoKey set) it returns ok=false
// when another transaction opened one for the same subject first.
func (s *Store) open(ctx context.Context, tx *sqlx.Tx, in openInput) (Ticket, bool, error) {
	cov, policy, err := s.terms(ctx, tx, in.CustomerID, in.DeviceIDs, in.OpenedAt)
	if err != nil {
		return Ticket{}, false, fmt.Errorf("coverage: %w", err)
	}
	year := in.OpenedAt.UTC().Year()
	var seq int
	if err := tx.QueryRowContext(ctx, `INSERT INTO ticket_counters (year, last) VALUES ($1, 1)
		ON CONFLICT (year) DO UPDATE SET last = ticket_counters.last + 1 RETURNING last`, year).Scan(&seq); err != nil {
		return Ticket{}, false, fmt.Errorf("number: %w", err)
	}
	number := fmt.Sprintf("VG-%d-%06d", year, seq)
	billable, reason := !cov.Covered(), cov.Reason
	if in.NOCOnly {
		billable, reason = false, "noc_internal"
	}
	devices := in.DeviceIDs
	if devices == nil {
		devices = []string{}
	}
	t, err := scanTicket(tx.QueryRowContext(ctx, `INSERT INTO tickets (number, customer_id, site_id, device_ids, title, description,
		category, requester, severity, opened_severity, source, status, billable, billable_reason, contract_id, sla_policy,
		auto_key, previous_ticket_id, opened_at, created_by, updated_at, noc_only)
		VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7, $8, $9, $9, $10, 'new', $11, $12, NULLIF($13, ''), $14, NULLIF($15, ''), $16, $17, $18, $17, $19)
		ON CONFLICT (auto_key) WHERE closed_at IS NULL AND auto_key IS NOT NULL DO NOTHING
		RETURNING `+ticketColumns,
		number, in.CustomerID, in.SiteID, pq.StringArray(devices), in.Title, in.Description, in.Category, in.Requester, in.Severity,
		in.Source, billable, reason, cov.ContractID, policy, in.AutoKey, in.PreviousTicketID, in.OpenedAt, in.Author, in.NOCOnly))
	if errors.Is(err, sql.ErrNoRows) {
		return Ticket{}, false, nil
	}
	if err != nil {
		return Ticket{}, false, fmt.Errorf("insert ticket: %w", err)
	}
	data := map[string]any{"severity": t.Severity, "source": t.Source, "billable": t.Billable, "billable_reason": t.BillableReason,
		"sla_policy": t.SLAPolicy}
	for k, v := range in.Data {
		data[k] = v
	}
	text := in.Title
	if t.Billable {
		text += " — " + cov.TextES + " (facturable)"
	}
	if err := addEvent(ctx, tx, t.ID, in.OpenedAt, in.Author, "opened", text, data); err != nil {
		return t, false, err
	}
	if err := s.recompute(ctx, tx, &t); err != nil {
		return t, false, err
	}
	if err := s.enqueue(ctx, tx, fmt.Sprintf("ticket:%s:opened", t.Number), &t, notify.Notice{Kind: notify.Opened}, in.OpenedAt); err != nil {
		return t, false, err
	}
	return t, true, nil
}

// clockInput reads a ticket's pauses and severity changes as sla.Input.
func clockInput(ctx context.Context, tx *sqlx.Tx, t *Ticket) (sla.Input, error) {
	in := sla.Input{Opened: t.OpenedAt, Severity: t.OpenedSeverity}
	rows, err := tx.QueryContext(ctx, `SELECT started_at, ended_at FROM ticket_pauses WHERE ticket_id = $1 ORDER BY started_at`, t.ID)
	if err != nil {
		return in, fmt.Errorf("read pauses: %w", err)
	}
	for rows.Next() {
		var from time.Time
		var to *time.Time
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return in, fmt.Errorf("read pauses: %w", err)
		}
		iv := calendar.Interval{From: from}
		if to != nil {
			iv.To = *to
		}
		in.Pauses = append(in.Pauses, iv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return in, fmt.Errorf("read pauses: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT at, to_severity FROM ticket_severity_changes WHERE ticket_id = $1 ORDER BY at, id`, t.ID)
	if err != nil {
		return in, fmt.Errorf("read severity changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c sla.SeverityChange
		if err := rows.Scan(&c.At, &c.Severity); err != nil {
			return in, fmt.Errorf("read severity changes: %w", err)
		}
		in.Changes = append(in.Changes, c)
	}
	return in, rows.Err()
}

// schedule computes the ticket's SLA from its rows.
func (s *Store) schedule(ctx context.Context, tx *sqlx.Tx, t *Ticket) (sla.Schedule, sla.Policy, error) {
	p, err := s.policies.Lookup(t.SLAPolicy)
	if err != nil {
		return sla.Schedule{}, p, fmt.Errorf("ticket %s: %w", t.Number, err)
	}
	in, err := clockInput(ctx, tx, t)
	if err != nil {
		return sla.Schedule{}, p, err
	}
	sc, err := p.Due(in)
	if err != nil {
		return sc, p, fmt.Errorf("ticket %s: due: %w", t.Number, err)
	}
	return sc, p, nil
}

// recompute rewrites the cached due instants from the rows.
func (s *Store) recompute(ctx context.Context, tx *sqlx.Tx, t *Ticket) error {
	sc, p, err := s.schedule(ctx, tx, t)
	if err != nil {
		return err
	}
	t.ResponseDueAt, t.ResponseWarnAt, t.ResolutionDueAt = timePtr(sc.Response.Due), timePtr(sc.Response.Warning), timePtr(sc.Resolution.Due)
	t.ReportDueAt = nil
	if t.Category == ReportCategory {
		if due, ok := p.ReportDue(t.OpenedAt); ok {
			t.ReportDueAt = timePtr(due)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET response_due_at = $2, response_warn_at = $3, resolution_due_at = $4,
		report_due_at = $5 WHERE id = $1`, t.ID, t.ResponseDueAt, t.ResponseWarnAt, t.ResolutionDueAt, t.ReportDueAt); err != nil {
		return fmt.Errorf("cache due instants: %w", err)
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// ListFilter narrows a ticket listing. Results come newest first; Cursor
// is the id of the last ticket of the previous page.
type ListFilter struct {
	Scope
	Status, CustomerID, SiteID, DeviceID string
	Severity                             int
	Limit                                int
	Cursor                               int64
}

// List returns one page of tickets and the cursor of the next (0: none).
func (s *Store) List(ctx context.Context, f ListFilter) ([]Ticket, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+ticketColumns+` FROM tickets
		WHERE ($1 = '' OR (customer_id = $1 AND NOT noc_only)) AND ($2 = '' OR customer_id = $2) AND ($3 = '' OR status = $3)
		AND ($4::int = 0 OR severity = $4::int) AND ($5 = '' OR site_id = $5) AND ($6 = '' OR $6 = ANY (device_ids))
		AND ($7::bigint = 0 OR id < $7::bigint)
		ORDER BY id DESC LIMIT $8`, f.Scope.CustomerID, f.CustomerID, f.Status, f.Severity, f.SiteID, f.DeviceID, f.Cursor, f.Limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("maintenance: list tickets: %w", err)
	}
	defer rows.Close()
	out := []Ticket{}
	for rows.Next() {
		t, err := scanTicket(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("maintenance: list tickets: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("maintenance: list tickets: %w", err)
	}
	var next int64
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// Detail is a ticket with everything that happened to it and its SLA now.
type Detail struct {
	Ticket
	Timeline        []Event          `json:"timeline"`
	Pauses          []Pause          `json:"pauses"`
	SeverityChanges []SeverityChange `json:"severity_changes"`
	ClosureTasks    []ClosureTask    `json:"closure_tasks"`
	OutageIDs       []int64          `json:"outage_ids"`
	Schedule        ScheduleView     `json:"schedule"`
}

// Get returns a ticket in scope with its timeline, pauses and schedule at now.
func (s *Store) Get(ctx context.Context, sc Scope, ref string, now time.Time) (Detail, error) {
	var d Detail
	err := s.inTx(ctx, "show ticket "+ref, func(tx *sqlx.Tx) error {
		id, byNumber := parseRef(ref)
		t, err := scanTicket(tx.QueryRowContext(ctx, `SELECT `+ticketColumns+` FROM tickets
			WHERE (($1::bigint <> 0 AND id = $1::bigint) OR ($1::bigint = 0 AND number = $2)) AND ($3 = '' OR (customer_id = $3 AND NOT noc_only))`, id, byNumber, sc.CustomerID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		d.Ticket = t
		if d.Timeline, err = timeline(ctx, tx, t.ID); err != nil {
			return err
		}
		if d.Pauses, err = pauses(ctx, tx, t.ID); err != nil {
			return err
		}
		if d.SeverityChanges, err = severityChanges(ctx, tx, t.ID); err != nil {
			return err
		}
		if d.ClosureTasks, err = closureTasks(ctx, tx, t.ID); err != nil {
			return err
		}
		d.OutageIDs = []int64{}
		if err := tx.SelectContext(ctx, &d.OutageIDs, `SELECT outage_id FROM ticket_outages WHERE ticket_id = $1 ORDER BY outage_id`, t.ID); err != nil {
			return fmt.Errorf("outages: %w", err)
		}
		schedule, _, err := s.schedule(ctx, tx, &t)
		if err != nil {
			return err
		}
		d.Schedule = viewSchedule(schedule, &t, now)
		return nil
	})
	return d, err
}

func timeline(ctx context.Context, tx *sqlx.Tx, id int64) ([]Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, at, author, kind, text, data FROM ticket_events WHERE ticket_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var raw []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Author, &e.Kind, &e.Text, &raw); err != nil {
			return nil, fmt.Errorf("timeline: %w", err)
		}
		if err := json.Unmarshal(raw, &e.Data); err != nil {
			return nil, fmt.Errorf("timeline data: %w", err)
		}
		if len(e.Data) == 0 {
			e.Data = nil
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func pauses(ctx context.Context, tx *sqlx.Tx, id int64) ([]Pause, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, reason, `+pauseReasons+`, note, started_at, ended_at, started_by, COALESCE(ended_by, '')
		FROM ticket_pauses WHERE ticket_id = $1 ORDER BY started_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("pauses: %w", err)
	}
	defer rows.Close()
	out := []Pause{}
	for rows.Next() {
		var p Pause
		var reasons pq.StringArray
		if err := rows.Scan(&p.ID, &p.Reason, &reasons, &p.Note, &p.StartedAt, &p.EndedAt, &p.StartedBy, &p.EndedBy); err != nil {
			return nil, fmt.Errorf("pauses: %w", err)
		}
		p.Reasons = []string(reasons)
		out = append(out, p)
	}
	return out, rows.Err()
}

func severityChanges(ctx context.Context, tx *sqlx.Tx, id int64) ([]SeverityChange, error) {
	rows, err := tx.QueryContext(ctx, `SELECT at, from_severity, to_severity, reason, author FROM ticket_severity_changes
		WHERE ticket_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("severity changes: %w", err)
	}
	defer rows.Close()
	out := []SeverityChange{}
	for rows.Next() {
		var c SeverityChange
		if err := rows.Scan(&c.At, &c.From, &c.To, &c.Reason, &c.Author); err != nil {
			return nil, fmt.Errorf("severity changes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func closureTasks(ctx context.Context, tx *sqlx.Tx, id int64) ([]ClosureTask, error) {
	rows, err := tx.QueryContext(ctx, `SELECT round, seq, kind, due_at, done_at, cancelled_at FROM closure_tasks
		WHERE ticket_id = $1 ORDER BY round, seq`, id)
	if err != nil {
		return nil, fmt.Errorf("closure tasks: %w", err)
	}
	defer rows.Close()
	out := []ClosureTask{}
	for rows.Next() {
		var c ClosureTask
		if err := rows.Scan(&c.Round, &c.Seq, &c.Kind, &c.DueAt, &c.DoneAt, &c.CancelledAt); err != nil {
			return nil, fmt.Errorf("closure tasks: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ScheduleView is the SLA of a ticket as the API shows it.
type ScheduleView struct {
	Policy     string    `json:"policy"`
	Severity   int       `json:"severity"`
	Start      time.Time `json:"start"`
	Response   ClockView `json:"response"`
	Resolution ClockView `json:"resolution"`
}

// ClockView is one SLA clock: met when the ticket did it in time, breached
// when it did not (or has not and the due instant is past).
type ClockView struct {
	Defined     bool       `json:"defined"`
	Target      string     `json:"target,omitempty"`
	From        *time.Time `json:"from,omitempty"` // the instant the clock counts from
	Due         *time.Time `json:"due,omitempty"`
	Warning     *time.Time `json:"warning,omitempty"`
	Paused      bool       `json:"paused,omitempty"`
	Remaining   string     `json:"remaining,omitempty"`
	Escalations []EscView  `json:"escalations,omitempty"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	Breached    bool       `json:"breached"`
}

// EscView is one escalation instant.
type EscView struct {
	Level int       `json:"level"`
	At    time.Time `json:"at"`
}

func viewSchedule(sc sla.Schedule, t *Ticket, now time.Time) ScheduleView {
	v := ScheduleView{Policy: sc.Policy, Severity: sc.Severity, Start: sc.Start}
	doneResolution := t.SolvedAt
	if t.Status != StatusSolved && t.Status != StatusClosed {
		doneResolution = nil
	}
	v.Response = viewClock(sc.Response, t.AcknowledgedAt, now)
	v.Resolution = viewClock(sc.Resolution, doneResolution, now)
	return v
}

func viewClock(c sla.Clock, done *time.Time, now time.Time) ClockView {
	v := ClockView{Defined: c.Defined, From: timePtr(c.From), Due: timePtr(c.Due), Warning: timePtr(c.Warning), Paused: c.Paused, DoneAt: done}
	if !c.Defined {
		return v
	}
	v.Target = c.Target.String()
	if c.Paused {
		v.Remaining = c.Remaining.String()
	}
	for _, e := range c.Escalations {
		v.Escalations = append(v.Escalations, EscView{Level: e.Level, At: e.At})
	}
	at := now
	if done != nil {
		at = *done
	}
	v.Breached = c.Breached(at)
	return v
}

// author names the principal in the timeline: "token name (role)".
func author(name, role string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return role
	}
	return name + " (" + role + ")"
}

func int64s(v []int64) pq.Int64Array {
	if v == nil {
		return pq.Int64Array{}
	}
	return pq.Int64Array(v)
}

// InTx runs fn in one ticket transaction: the stages that feed tickets
// (intake) record their own rows in it, so that they commit with the
// ticket they caused, or not at all. A broken constraint comes back as
// ErrInvalid or ErrConflict, never in PostgreSQL's words.
func (s *Store) InTx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	return s.inTx(ctx, what, fn)
}
