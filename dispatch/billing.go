package dispatch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Billing modes of a ticket's work.
const (
	modeCovered  = "covered"   // part of the contract
	modeHourBank = "hour_bank" // taken from the contract's bank of hours
	modeBillable = "billable"  // per-event work the customer pays
)

// Billable reasons beyond the coverage reasons of assets.
const (
	ReasonCustomerFault     = "customer_fault"      // seed 000 limits: diagnosis of a fault the customer caused
	ReasonMisuse            = "misuse"              // seed 000 §10
	ReasonHourBankExpired   = "hour_bank_expired"   // seed 003: the póliza expires after its validity
	ReasonHourBankExhausted = "hour_bank_exhausted" // seed 001: "la asesoría adicional se cobra por hora"
	ReasonTravel            = "travel"              // seed 004: on-site support outside the home city
	ReasonApprovedQuote     = "approved_quote"      // a part the customer approved at its quoted price
)

// bankPeriod is one validity period of a contract's hour bank: [Start, End)
// as calendar dates. Unused hours expire with their period (seed 003: "la
// vigencia de la póliza expira ... después de haber transcurrido 1 año";
// seed 001: monthly plans renew each month).
type bankPeriod struct {
	Start, End time.Time // UTC midnights
}

// periodOf returns the bank period of contract k containing day (a UTC
// midnight of the customer's calendar date). Periods of ValidMonths run
// from the contract's start and end with the contract.
func periodOf(k assets.Contract, day time.Time) (bankPeriod, bool) {
	if k.HourBank == nil || day.Before(k.StartsOn) || day.After(k.EndsOn) {
		return bankPeriod{}, false
	}
	months := k.HourBank.ValidMonths
	last := k.EndsOn.AddDate(0, 0, 1)
	if months <= 0 {
		return bankPeriod{Start: k.StartsOn, End: last}, true
	}
	for i := 0; ; i++ {
		start := k.StartsOn.AddDate(0, i*months, 0)
		end := k.StartsOn.AddDate(0, (i+1)*months, 0)
		if end.After(last) {
			end = last
		}
		if day.Before(end) {
			return bankPeriod{Start: start, End: end}, true
		}
		if !end.Before(last) {
			return bankPeriod{}, false
		}
	}
}

// dayIn is the calendar date of at in loc, as a UTC midnight (how contract
// dates are stored).
func dayIn(at time.Time, loc *time.Location) time.Time {
	y, m, d := at.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// billingTerms is how a ticket's work at an instant is billed.
type billingTerms struct {
	Mode     string
	Reason   string
	Contract *assets.Contract // with an hour bank, for modeHourBank
	Period   bankPeriod
	Customer assets.Customer
}

// terms decides how work on ticket t at instant at is billed: a customer-
// caused fault or misuse, or a ticket opened billable (non-contract device,
// expired, unpaid or unactivated contract) is per-event work; a covered
// ticket whose contract has an hour bank takes from the bank while its
// period lasts; anything else is covered.
func (s *Store) terms(ctx context.Context, tx *sqlx.Tx, t ticketRef, at time.Time) (billingTerms, error) {
	c, err := s.inv.InTx(tx).Customer(ctx, assets.Scope{}, t.CustomerID)
	if err != nil {
		return billingTerms{}, fmt.Errorf("customer %s: %w", t.CustomerID, err)
	}
	bt := billingTerms{Customer: c}
	var cause string
	err = tx.QueryRowContext(ctx, `SELECT cause FROM billing_flags WHERE ticket_id = $1`, t.ID).Scan(&cause)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return bt, fmt.Errorf("billing flag: %w", err)
	}
	switch {
	case cause != "":
		bt.Mode, bt.Reason = modeBillable, cause
		return bt, nil
	case t.CloseReason == maintenance.CloseMisuse:
		bt.Mode, bt.Reason = modeBillable, ReasonMisuse
		return bt, nil
	case t.Billable:
		bt.Mode, bt.Reason = modeBillable, t.BillableReason
		return bt, nil
	case t.ContractID == "":
		bt.Mode, bt.Reason = modeCovered, assets.ReasonWarrantySupport
		return bt, nil
	}
	k, err := s.inv.InTx(tx).Contract(ctx, assets.Scope{}, t.ContractID)
	if err != nil {
		return bt, fmt.Errorf("contract %s: %w", t.ContractID, err)
	}
	if k.HourBank == nil {
		bt.Mode, bt.Reason = modeCovered, assets.ReasonContract
		return bt, nil
	}
	p, ok := periodOf(k, dayIn(at, c.Location()))
	if !ok {
		bt.Mode, bt.Reason = modeBillable, ReasonHourBankExpired
		return bt, nil
	}
	bt.Mode, bt.Reason, bt.Contract, bt.Period = modeHourBank, "hour_bank", &k, p
	return bt, nil
}

// billingMode is terms for the scheduling check: a bank with nothing left
// is per-event work too.
func (s *Store) billingMode(ctx context.Context, tx *sqlx.Tx, t ticketRef, at time.Time) (string, string, error) {
	bt, err := s.terms(ctx, tx, t, at)
	if err != nil || bt.Mode != modeHourBank {
		return bt.Mode, bt.Reason, err
	}
	used, err := bankUsed(ctx, tx, bt.Contract.ID, bt.Period)
	if err != nil {
		return "", "", err
	}
	if used >= bt.Contract.HourBank.Hours*60 {
		return modeBillable, ReasonHourBankExhausted, nil
	}
	return bt.Mode, bt.Reason, nil
}

func bankUsed(ctx context.Context, q queryer, contractID string, p bankPeriod) (int, error) {
	var used int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(sum(minutes), 0) FROM hour_bank_uses WHERE contract_id = $1 AND period_start = $2`,
		contractID, p.Start).Scan(&used); err != nil {
		return 0, fmt.Errorf("hour bank of %s: %w", contractID, err)
	}
	return used, nil
}

// approvedQuote reports whether the ticket has a quote the customer approved.
func approvedQuote(ctx context.Context, tx *sqlx.Tx, ticketID int64) (bool, error) {
	var ok bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM quotes WHERE ticket_id = $1 AND state = 'approved')`, ticketID).Scan(&ok); err != nil {
		return false, fmt.Errorf("quotes: %w", err)
	}
	return ok, nil
}

// hourPrice is the unit price of billable hours on a ticket: its latest
// approved quote's, else the list price of the customer's currency.
func (s *Store) hourPrice(ctx context.Context, tx *sqlx.Tx, ticketID int64, currency string) (int64, error) {
	var price int64
	err := tx.QueryRowContext(ctx, `SELECT hour_price_cents FROM quotes WHERE ticket_id = $1 AND state = 'approved'
		ORDER BY decided_at DESC, id DESC LIMIT 1`, ticketID).Scan(&price)
	if errors.Is(err, sql.ErrNoRows) {
		return s.rules.HourPriceCents[currency], nil
	}
	if err != nil {
		return 0, fmt.Errorf("quote price: %w", err)
	}
	return price, nil
}

// WorkEntry is time spent on a ticket, remote or on site.
type WorkEntry struct {
	ID         int64     `json:"id"`
	TicketID   int64     `json:"ticket_id"`
	VisitID    *int64    `json:"visit_id,omitempty"`
	EngineerID string    `json:"engineer,omitempty"`
	Kind       string    `json:"kind"`
	Activity   string    `json:"activity,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	Minutes    int       `json:"minutes"`
	Note       string    `json:"note,omitempty"`
	Mode       string    `json:"mode"`
	Unquoted   bool      `json:"unquoted,omitempty"`
	// What the entry did to the bank and the bill.
	BankMinutes  int    `json:"bank_minutes,omitempty"`
	BilledHours  int    `json:"billed_hours,omitempty"`
	Reason       string `json:"reason,omitempty"`
	BankWarning  bool   `json:"hour_bank_warning,omitempty"` // the bank reached the warning threshold
	BankLeftMins *int   `json:"hour_bank_left_minutes,omitempty"`
}

// WorkInput records time spent on a ticket.
type WorkInput struct {
	TicketID   int64     `json:"ticket"`
	VisitID    int64     `json:"visit"`
	EngineerID string    `json:"engineer" max:"100"` // engineers record their own
	Kind       string    `json:"kind" max:"200"`     // remote | on_site
	Activity   string    `json:"activity" max:"200"` // update, diagnosis, repair…: the per-event minimum applies by activity
	StartedAt  time.Time `json:"started_at"`
	EndedAt    time.Time `json:"ended_at"`
	Note       string    `json:"note"`
	// WithoutQuote records billable per-event work that has no approved
	// quote; it is flagged in the report instead of refused.
	WithoutQuote bool `json:"without_quote"`
}

// RecordWork records a work entry (staff only) and bills it by the
// ticket's terms.
func (s *Store) RecordWork(ctx context.Context, a auth.Actor, in WorkInput, now time.Time) (WorkEntry, error) {
	if !a.IsProvider() {
		return WorkEntry{}, ErrForbidden.Errorf("the provider records work")
	}
	var e WorkEntry
	err := s.inTx(ctx, "record work", func(tx *sqlx.Tx) error {
		t, err := s.lockTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		e, err = s.recordWork(ctx, tx, a, t, in, now)
		return err
	})
	return e, err
}

func (s *Store) recordWork(ctx context.Context, tx *sqlx.Tx, a auth.Actor, t ticketRef, in WorkInput, now time.Time) (WorkEntry, error) {
	switch {
	case in.Kind != "remote" && in.Kind != "on_site":
		return WorkEntry{}, invalid("kind must be remote or on_site")
	case in.StartedAt.IsZero() || !in.EndedAt.After(in.StartedAt):
		return WorkEntry{}, invalid("started_at and ended_at are required, started_at first")
	case in.EndedAt.Sub(in.StartedAt) > 24*time.Hour:
		return WorkEntry{}, invalid("one entry covers at most 24 hours")
	case in.EndedAt.After(now.Add(time.Minute)):
		return WorkEntry{}, invalid("work cannot end in the future")
	}
	if a.IsEngineer() {
		if in.EngineerID != "" && in.EngineerID != a.EngineerID && in.VisitID == 0 {
			return WorkEntry{}, ErrForbidden.Errorf("engineers record their own work")
		}
		if in.EngineerID == "" {
			in.EngineerID = a.EngineerID
		}
	}
	bt, err := s.terms(ctx, tx, t, in.StartedAt)
	if err != nil {
		return WorkEntry{}, err
	}
	d := in.EndedAt.Sub(in.StartedAt)
	minutes := int((d + time.Minute - 1) / time.Minute)
	hours := int((d + time.Hour - 1) / time.Hour) // whole hours, rounded up: no fractions (seed 003)
	e := WorkEntry{TicketID: t.ID, EngineerID: in.EngineerID, Kind: in.Kind, Activity: in.Activity, StartedAt: in.StartedAt,
		EndedAt: in.EndedAt, Minutes: minutes, Note: in.Note, Mode: bt.Mode, Reason: bt.Reason}
	if in.VisitID != 0 {
		e.VisitID = &in.VisitID
	}
	quoted := true
	if bt.Mode == modeBillable {
		if quoted, err = approvedQuote(ctx, tx, t.ID); err != nil {
			return e, err
		}
		if !quoted && !in.WithoutQuote {
			return e, ErrRefused.Errorf("ticket %s is billable (%s) and has no approved quote; approve one (seeds 001, 003) or record with without_quote to flag it",
				t.Number, bt.Reason)
		}
		e.Unquoted = !quoted
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO work_entries (ticket_id, customer_id, visit_id, engineer_id, kind, activity, started_at, ended_at,
		note, mode, unquoted, created_by, created_at) VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
		t.ID, t.CustomerID, e.VisitID, e.EngineerID, e.Kind, e.Activity, e.StartedAt, e.EndedAt, e.Note, e.Mode, e.Unquoted, a.String(), now).Scan(&e.ID)
	if err != nil {
		return e, fmt.Errorf("insert work entry: %w", err)
	}
	currency := s.rules.currency(bt.Customer.Country)
	line := func(hours int, reason string, unquoted bool) error {
		price, err := s.hourPrice(ctx, tx, t.ID, currency)
		if err != nil {
			return err
		}
		e.BilledHours = hours
		desc := notify.WorkLineText(bt.Customer.Language, e.Kind, e.Activity, t.Number, hours)
		_, err = tx.ExecContext(ctx, `INSERT INTO billable_lines (customer_id, ticket_id, source, source_id, description, quantity,
			unit_price_cents, amount_cents, currency, reason, unquoted, at) VALUES ($1, $2, 'work', $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (source, source_id) DO NOTHING`,
			t.CustomerID, t.ID, e.ID, desc, hours, price, int64(hours)*price, currency, reason, unquoted, e.EndedAt)
		if err != nil {
			return fmt.Errorf("billable line: %w", err)
		}
		return nil
	}
	switch bt.Mode {
	case modeBillable:
		// Per-event work bills at least the activity's minimum (seed 001:
		// one hour an event, three for an update).
		if err := line(max(hours, s.rules.minimum(e.Activity)), bt.Reason, e.Unquoted); err != nil {
			return e, err
		}
	case modeHourBank:
		if err := s.takeFromBank(ctx, tx, t, bt, &e, d, line, now); err != nil {
			return e, err
		}
	}
	return e, nil
}

// takeFromBank consumes the intervention from the contract's bank: whole
// hours rounded up (seed 003) unless the bank allows fractions. What the
// bank cannot cover is billed by the hour (seed 001). The customer is
// warned once per period when the bank reaches the threshold.
func (s *Store) takeFromBank(ctx context.Context, tx *sqlx.Tx, t ticketRef, bt billingTerms, e *WorkEntry, d time.Duration,
	line func(int, string, bool) error, now time.Time) error {
	k := bt.Contract
	// One bank, one writer at a time: two interventions never both take
	// the last hour.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigia:hour_bank:' || $1))`, k.ID); err != nil {
		return fmt.Errorf("lock hour bank %s: %w", k.ID, err)
	}
	used, err := bankUsed(ctx, tx, k.ID, bt.Period)
	if err != nil {
		return err
	}
	need := int((d + time.Minute - 1) / time.Minute)
	if k.HourBank.WholeHours {
		need = int((d+time.Hour-1)/time.Hour) * 60
	}
	total := k.HourBank.Hours * 60
	take := min(need, max(total-used, 0))
	if take > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO hour_bank_uses (contract_id, period_start, period_end, work_entry_id, minutes, at)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, bt.Period.Start, bt.Period.End, e.ID, take, e.EndedAt); err != nil {
			return fmt.Errorf("hour bank use: %w", err)
		}
	}
	e.BankMinutes = take
	left := total - used - take
	e.BankLeftMins = &left
	if over := need - take; over > 0 {
		quoted, err := approvedQuote(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		e.Reason = ReasonHourBankExhausted
		if err := line((over+59)/60, ReasonHourBankExhausted, !quoted); err != nil {
			return err
		}
	}
	warnAt := total * s.rules.HourBankWarnPercent / 100
	if used+take >= warnAt {
		e.BankWarning = true
		if err := s.notifyHourBank(ctx, tx, t, bt, used+take, total, now); err != nil {
			return err
		}
	}
	return nil
}

// travelLine bills a visit's trip outside the lead engineer's home city
// (seed 004), once per visit.
func (s *Store) travelLine(ctx context.Context, tx *sqlx.Tx, v Visit, t ticketRef, now time.Time) error {
	if !v.Travel {
		return nil
	}
	c, err := s.inv.InTx(tx).Customer(ctx, assets.Scope{}, t.CustomerID)
	if err != nil {
		return fmt.Errorf("customer %s: %w", t.CustomerID, err)
	}
	site, err := s.inv.InTx(tx).Site(ctx, assets.Scope{}, v.SiteID)
	if err != nil {
		return fmt.Errorf("site %s: %w", v.SiteID, err)
	}
	desc := notify.TravelLineText(c.Language, v.TravelFrom, site.City, v.ID, t.Number, v.TravelPriceCents == 0)
	if _, err := tx.ExecContext(ctx, `INSERT INTO billable_lines (customer_id, ticket_id, source, source_id, description, quantity,
		unit_price_cents, amount_cents, currency, reason, at) VALUES ($1, $2, 'travel', $3, $4, 1, $5, $5, $6, $7, $8)
		ON CONFLICT (source, source_id) DO NOTHING`,
		t.CustomerID, t.ID, v.ID, desc, v.TravelPriceCents, s.rules.currency(c.Country), ReasonTravel, now); err != nil {
		return fmt.Errorf("travel line: %w", err)
	}
	return nil
}

// partLine bills an installed part at the unit price the customer approved.
func (s *Store) partLine(ctx context.Context, tx *sqlx.Tx, t ticketRef, requestID int64, now time.Time) error {
	c, err := s.inv.InTx(tx).Customer(ctx, assets.Scope{}, t.CustomerID)
	if err != nil {
		return fmt.Errorf("customer %s: %w", t.CustomerID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO billable_lines (customer_id, ticket_id, source, source_id, description, quantity,
		unit_price_cents, amount_cents, currency, reason, at)
		SELECT $1, $2, 'part', r.id, 'Repuesto ' || p.manufacturer || ' ' || p.part_number || ' (ticket ' || $3 || ')', r.quantity,
			r.quote_price_cents, r.quantity * r.quote_price_cents, $4, $5, $6
		FROM part_requests r JOIN parts p ON p.id = r.part_id WHERE r.id = $7 AND r.quote_price_cents IS NOT NULL
		ON CONFLICT (source, source_id) DO NOTHING`,
		t.CustomerID, t.ID, t.Number, s.rules.currency(c.Country), ReasonApprovedQuote, now, requestID); err != nil {
		return fmt.Errorf("part line: %w", err)
	}
	return nil
}

// WorkEntries lists work entries of a ticket (0: all) in a's scope;
// engineers see their own.
func (s *Store) WorkEntries(ctx context.Context, a auth.Actor, ticketID int64) ([]WorkEntry, error) {
	engineer := ""
	if a.IsEngineer() {
		engineer = a.EngineerID
		if engineer == "" {
			return []WorkEntry{}, nil
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT w.id, w.ticket_id, w.visit_id, COALESCE(w.engineer_id, ''), w.kind, w.activity, w.started_at,
		w.ended_at, w.note, w.mode, w.unquoted, COALESCE(u.minutes, 0), COALESCE(b.quantity, 0)::int, COALESCE(b.reason, '')
		FROM work_entries w
		LEFT JOIN hour_bank_uses u ON u.work_entry_id = w.id
		LEFT JOIN billable_lines b ON b.source = 'work' AND b.source_id = w.id
		WHERE ($1::bigint = 0 OR w.ticket_id = $1::bigint) AND ($2 = '' OR w.customer_id = $2) AND ($3 = '' OR w.engineer_id = $3)
		ORDER BY w.started_at, w.id`, ticketID, a.CustomerID, engineer)
	if err != nil {
		return nil, fmt.Errorf("dispatch: work entries: %w", err)
	}
	defer rows.Close()
	out := []WorkEntry{}
	for rows.Next() {
		var e WorkEntry
		if err := rows.Scan(&e.ID, &e.TicketID, &e.VisitID, &e.EngineerID, &e.Kind, &e.Activity, &e.StartedAt, &e.EndedAt, &e.Note,
			&e.Mode, &e.Unquoted, &e.BankMinutes, &e.BilledHours, &e.Reason); err != nil {
			return nil, fmt.Errorf("dispatch: work entries: %w", err)
		}
		e.Minutes = int((e.EndedAt.Sub(e.StartedAt) + time.Minute - 1) / time.Minute)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Quote is an estimate of per-event work for the customer to approve.
type Quote struct {
	ID             int64      `json:"id"`
	TicketID       int64      `json:"ticket_id"`
	Hours          int        `json:"hours"`
	HourPriceCents int64      `json:"hour_price_cents"`
	State          string     `json:"state"`
	Note           string     `json:"note,omitempty"`
	CreatedBy      string     `json:"created_by"`
	CreatedAt      time.Time  `json:"created_at"`
	DecidedBy      string     `json:"decided_by,omitempty"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
}

// QuoteInput proposes a quote.
type QuoteInput struct {
	TicketID       int64  `json:"ticket"`
	Hours          int    `json:"hours" max:"100000"`
	HourPriceCents int64  `json:"hour_price_cents" max:"10000000000000"`
	Note           string `json:"note"`
}

const quoteColumns = `id, ticket_id, hours, hour_price_cents, state, note, created_by, created_at, COALESCE(decided_by, ''), decided_at`

func scanQuote(r interface{ Scan(...any) error }) (Quote, error) {
	var q Quote
	err := r.Scan(&q.ID, &q.TicketID, &q.Hours, &q.HourPriceCents, &q.State, &q.Note, &q.CreatedBy, &q.CreatedAt, &q.DecidedBy, &q.DecidedAt)
	return q, err
}

// ProposeQuote records a quote for a ticket (NOC only).
func (s *Store) ProposeQuote(ctx context.Context, a auth.Actor, in QuoteInput, now time.Time) (Quote, error) {
	if !a.IsNOC() {
		return Quote{}, ErrForbidden.Errorf("the NOC quotes")
	}
	if in.Hours <= 0 || in.HourPriceCents < 0 {
		return Quote{}, invalid("a quote needs positive hours and a non-negative hour_price_cents")
	}
	var q Quote
	err := s.inTx(ctx, "propose quote", func(tx *sqlx.Tx) error {
		t, err := s.lockTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		q, err = scanQuote(tx.QueryRowContext(ctx, `INSERT INTO quotes (ticket_id, hours, hour_price_cents, state, note, created_by, created_at)
			VALUES ($1, $2, $3, 'proposed', $4, $5, $6) RETURNING `+quoteColumns, t.ID, in.Hours, in.HourPriceCents, in.Note, a.String(), now))
		if err != nil {
			return fmt.Errorf("insert quote: %w", err)
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		return maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "quote_proposed",
			notify.QuoteProposedText(lang, q.ID, in.Hours), map[string]any{"quote": q.ID})
	})
	return q, err
}

// DecideQuote approves or rejects a proposed quote: the customer of the
// ticket, or the NOC recording the customer's written approval.
func (s *Store) DecideQuote(ctx context.Context, a auth.Actor, id int64, approve bool, now time.Time) (Quote, error) {
	if a.IsEngineer() {
		return Quote{}, ErrForbidden.Errorf("the customer decides a quote")
	}
	state := "rejected"
	if approve {
		state = "approved"
	}
	var q Quote
	err := s.inTx(ctx, fmt.Sprintf("decide quote %d", id), func(tx *sqlx.Tx) error {
		var err error
		q, err = scanQuote(tx.QueryRowContext(ctx, `SELECT `+quoteColumns+` FROM quotes WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound.Errorf("quote %d", id)
		}
		if err != nil {
			return err
		}
		t, err := s.lockTicket(ctx, tx, a, q.TicketID)
		if err != nil {
			return err
		}
		if q.State != "proposed" {
			return conflict("quote %d is already %s", id, q.State)
		}
		q.State, q.DecidedBy, q.DecidedAt = state, a.String(), &now
		if _, err := tx.ExecContext(ctx, `UPDATE quotes SET state = $2, decided_by = $3, decided_at = $4 WHERE id = $1`, id, state, q.DecidedBy, now); err != nil {
			return fmt.Errorf("decide quote: %w", err)
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		return maintenance.AddEventTx(ctx, tx, q.TicketID, now, a.String(), "quote_"+state, notify.QuoteDecidedText(lang, id, state),
			map[string]any{"quote": id})
	})
	return q, err
}

// FlagInput marks a ticket's work billable because of its cause.
type FlagInput struct {
	TicketID int64  `json:"ticket"`
	Cause    string `json:"cause" max:"200"` // customer_fault | misuse
	Note     string `json:"note"`
}

// FlagBillable marks a ticket's work billable (NOC only): the customer
// caused the fault (seed 000 limits) or misused the system (seed 000 §10).
func (s *Store) FlagBillable(ctx context.Context, a auth.Actor, in FlagInput, now time.Time) error {
	if !a.IsNOC() {
		return ErrForbidden.Errorf("the NOC decides what is billable")
	}
	if in.Cause != ReasonCustomerFault && in.Cause != ReasonMisuse {
		return invalid("cause must be customer_fault or misuse")
	}
	return s.inTx(ctx, "flag billable", func(tx *sqlx.Tx) error {
		t, err := s.lockTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO billing_flags (ticket_id, cause, note, set_by, set_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (ticket_id) DO UPDATE SET cause = $2, note = $3, set_by = $4, set_at = $5`, t.ID, in.Cause, in.Note, a.String(), now); err != nil {
			return fmt.Errorf("billing flag: %w", err)
		}
		return maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "billable_flagged", in.Note, map[string]any{"cause": in.Cause})
	})
}
