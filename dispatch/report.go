package dispatch

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Report is a customer's billing for one month (in the customer's zone):
// the billable lines, the work done and each hour bank's state.
type Report struct {
	CustomerID   string        `json:"customer"`
	CustomerName string        `json:"customer_name"`
	Month        string        `json:"month"`
	TimeZone     string        `json:"time_zone"`
	Currency     string        `json:"currency"`
	Lines        []Line        `json:"lines"`
	TotalCents   int64         `json:"total_cents"`
	Unquoted     int           `json:"unquoted_lines"` // billable work done without an approved quote
	Work         WorkSummary   `json:"work"`
	HourBanks    []BankSummary `json:"hour_banks"`
}

// Line is one billable line.
type Line struct {
	At             time.Time `json:"at"`
	Ticket         string    `json:"ticket"`
	Source         string    `json:"source"` // work | travel | part
	Description    string    `json:"description"`
	Quantity       float64   `json:"quantity"`
	UnitPriceCents int64     `json:"unit_price_cents"`
	AmountCents    int64     `json:"amount_cents"`
	Reason         string    `json:"reason"`
	Unquoted       bool      `json:"unquoted,omitempty"`
}

// WorkSummary is the time worked in the month, by how it is billed.
type WorkSummary struct {
	Entries         int `json:"entries"`
	Minutes         int `json:"minutes"`
	CoveredMinutes  int `json:"covered_minutes"`
	BankMinutes     int `json:"hour_bank_minutes"`
	BillableMinutes int `json:"billable_minutes"`
}

// BankSummary is an hour bank as of the month's last day (or its last
// period, when it has expired).
type BankSummary struct {
	ContractID      string  `json:"contract"`
	PeriodStart     string  `json:"period_start"`
	PeriodEnd       string  `json:"period_end"` // last day of validity
	Hours           int     `json:"hours"`
	ConsumedInMonth float64 `json:"consumed_hours_in_month"`
	ConsumedPeriod  float64 `json:"consumed_hours_in_period"`
	Remaining       float64 `json:"remaining_hours"`
	Warning         bool    `json:"warning"` // at or above the warning threshold
	Expired         bool    `json:"expired"`
}

// Report builds the billing report of customerID for month (YYYY-MM).
// Customers may read only their own; engineers none.
func (s *Store) Report(ctx context.Context, a auth.Actor, customerID, month string) (Report, error) {
	if a.IsEngineer() {
		return Report{}, ErrForbidden.Errorf("billing is for the NOC and the customer")
	}
	if a.IsCustomer() && customerID != a.CustomerID {
		return Report{}, ErrNotFound.Errorf("customer %q", customerID)
	}
	first, err := time.Parse("2006-01", month)
	if err != nil {
		return Report{}, invalid("month must be YYYY-MM")
	}
	c, err := s.inv.Customer(ctx, assets.Scope{}, customerID)
	if err != nil {
		return Report{}, ErrNotFound.Errorf("customer %q", customerID)
	}
	loc := c.Location()
	from := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, loc)
	to := from.AddDate(0, 1, 0)
	r := Report{CustomerID: c.ID, CustomerName: c.Name, Month: month, TimeZone: loc.String(), Currency: s.rules.currency(c.Country),
		Lines: []Line{}, HourBanks: []BankSummary{}}

	rows, err := s.db.QueryContext(ctx, `SELECT b.at, b.ticket_id, b.source, b.description, b.quantity::float8, b.unit_price_cents,
		b.amount_cents, b.reason, b.unquoted FROM billable_lines b
		WHERE b.customer_id = $1 AND b.at >= $2 AND b.at < $3 ORDER BY b.at, b.id`, c.ID, from, to)
	if err != nil {
		return r, fmt.Errorf("dispatch: report lines: %w", err)
	}
	var ticketIDs []int64
	for rows.Next() {
		var l Line
		var ticketID int64
		if err := rows.Scan(&l.At, &ticketID, &l.Source, &l.Description, &l.Quantity, &l.UnitPriceCents, &l.AmountCents, &l.Reason, &l.Unquoted); err != nil {
			rows.Close()
			return r, fmt.Errorf("dispatch: report lines: %w", err)
		}
		l.At = l.At.In(loc)
		r.Lines = append(r.Lines, l)
		ticketIDs = append(ticketIDs, ticketID)
		r.TotalCents += l.AmountCents
		if l.Unquoted {
			r.Unquoted++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("dispatch: report lines: %w", err)
	}
	numbers, err := maintenance.TicketNumbers(ctx, s.db, ticketIDs)
	if err != nil {
		return r, fmt.Errorf("dispatch: report lines: %w", err)
	}
	for i := range r.Lines {
		r.Lines[i].Ticket = numbers[ticketIDs[i]]
	}

	if err := s.db.QueryRowContext(ctx, `SELECT count(*),
		COALESCE(sum(ceil(extract(epoch FROM w.ended_at - w.started_at) / 60)), 0)::int,
		COALESCE(sum(ceil(extract(epoch FROM w.ended_at - w.started_at) / 60)) FILTER (WHERE w.mode = 'covered'), 0)::int,
		COALESCE(sum(ceil(extract(epoch FROM w.ended_at - w.started_at) / 60)) FILTER (WHERE w.mode = 'hour_bank'), 0)::int,
		COALESCE(sum(ceil(extract(epoch FROM w.ended_at - w.started_at) / 60)) FILTER (WHERE w.mode = 'billable'), 0)::int
		FROM work_entries w WHERE w.customer_id = $1 AND w.ended_at >= $2 AND w.ended_at < $3`,
		c.ID, from, to).Scan(&r.Work.Entries, &r.Work.Minutes, &r.Work.CoveredMinutes, &r.Work.BankMinutes, &r.Work.BillableMinutes); err != nil {
		return r, fmt.Errorf("dispatch: report work: %w", err)
	}

	contracts, err := s.inv.Contracts(ctx, assets.Scope{CustomerID: c.ID}, false)
	if err != nil {
		return r, fmt.Errorf("dispatch: report contracts: %w", err)
	}
	lastDay := dayIn(to.Add(-time.Nanosecond), loc)
	firstDay := dayIn(from, loc)
	for _, k := range contracts {
		if k.HourBank == nil || k.StartsOn.After(lastDay) {
			continue
		}
		p, ok := periodOf(k, lastDay)
		expired := !ok
		if !ok {
			// Expired before the month ended: report its last period if it
			// overlapped the month, so the month's consumption shows.
			if p, ok = periodOf(k, k.EndsOn); !ok || p.End.Before(firstDay) {
				continue
			}
		}
		bs := BankSummary{ContractID: k.ID, PeriodStart: p.Start.Format(time.DateOnly), PeriodEnd: p.End.AddDate(0, 0, -1).Format(time.DateOnly),
			Hours: k.HourBank.Hours, Expired: expired}
		var inMonth, inPeriod int
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(sum(minutes) FILTER (WHERE at >= $3 AND at < $4), 0),
			COALESCE(sum(minutes) FILTER (WHERE period_start = $2), 0) FROM hour_bank_uses WHERE contract_id = $1`,
			k.ID, p.Start, from, to).Scan(&inMonth, &inPeriod); err != nil {
			return r, fmt.Errorf("dispatch: report hour bank %s: %w", k.ID, err)
		}
		bs.ConsumedInMonth, bs.ConsumedPeriod = float64(inMonth)/60, float64(inPeriod)/60
		if !expired {
			bs.Remaining = float64(k.HourBank.Hours*60-inPeriod) / 60
		}
		bs.Warning = inPeriod*100 >= k.HourBank.Hours*60*s.rules.HourBankWarnPercent
		r.HourBanks = append(r.HourBanks, bs)
	}
	return r, nil
}

// money writes cents as units with two decimals.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func hoursText(h float64) string { return strconv.FormatFloat(h, 'f', -1, 64) }

// WriteCSV writes the report as CSV: one "line" row per billable line, a
// "total" row, then one "hour_bank" row per bank. The first column says
// which, so the file loads into one sheet.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"section", "date", "ticket", "source", "description", "quantity", "unit_price", "amount", "currency", "reason", "unquoted"}}
	for _, l := range r.Lines {
		rows = append(rows, []string{"line", l.At.Format("2006-01-02 15:04"), l.Ticket, l.Source, l.Description, hoursText(l.Quantity),
			money(l.UnitPriceCents), money(l.AmountCents), r.Currency, l.Reason, strconv.FormatBool(l.Unquoted)})
	}
	rows = append(rows, []string{"total", r.Month, "", "", fmt.Sprintf("%d lines, %d unquoted", len(r.Lines), r.Unquoted), "", "",
		money(r.TotalCents), r.Currency, "", ""})
	rows = append(rows, []string{"hour_bank", "contract", "period_start", "period_end", "hours", "consumed_in_month", "consumed_in_period",
		"remaining", "warning", "expired", ""})
	for _, b := range r.HourBanks {
		rows = append(rows, []string{"hour_bank", b.ContractID, b.PeriodStart, b.PeriodEnd, strconv.Itoa(b.Hours), hoursText(b.ConsumedInMonth),
			hoursText(b.ConsumedPeriod), hoursText(b.Remaining), strconv.FormatBool(b.Warning), strconv.FormatBool(b.Expired), ""})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("dispatch: report csv: %w", err)
	}
	return nil
}
