package reports

import (
	"context"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Monthly is the report a hospital receives for a month of its contract.
type Monthly struct {
	CustomerID   string `json:"customer_id"`
	CustomerName string `json:"customer_name"`
	Language     string `json:"language"`
	Month        string `json:"month"`
	TimeZone     string `json:"time_zone"`
	// The period: the month in the customer's zone, up to the report's
	// instant when the month is not over.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`

	Availability Availability `json:"availability"`
	// BySeverity counts, per severity, the tickets opened in the month and
	// the clocks that ended in it.
	BySeverity []SeverityRow `json:"by_severity"`
	Tickets    []TicketRow   `json:"tickets"`
	// Outcomes are the clocks that ended in the month, with their margin
	// (met) or lateness (breached) in seconds.
	Outcomes []OutcomeRow `json:"outcomes"`
	Pauses   []PauseRow   `json:"pauses"`
	Visits   []VisitRow   `json:"visits"`
	Parts    []PartRow    `json:"parts"`

	HourBanks []dispatch.BankSummary `json:"hour_banks"`
	Currency  string                 `json:"currency"`
	Billable  []dispatch.Line        `json:"billable_lines"`
	// BillableTotalCents adds the billable lines up.
	BillableTotalCents int64 `json:"billable_total_cents"`

	// Biomedical is the biomedical service of the month, absent for a
	// customer without any.
	Biomedical *biomed.Summary `json:"biomedical,omitempty"`
}

// SeverityRow is one severity's tickets and clocks in the month.
type SeverityRow struct {
	Severity           int `json:"severity"`
	Opened             int `json:"opened"`
	ResponseMet        int `json:"response_met"`
	ResponseBreached   int `json:"response_breached"`
	ResolutionMet      int `json:"resolution_met"`
	ResolutionBreached int `json:"resolution_breached"`
}

// TicketRow is a ticket opened in the month.
type TicketRow struct {
	Number   string    `json:"ticket"`
	Severity int       `json:"severity"`
	Title    string    `json:"title"`
	Opened   time.Time `json:"opened_at"`
	Status   string    `json:"status"`
}

// OutcomeRow is one clock that ended in the month.
type OutcomeRow struct {
	Ticket        string    `json:"ticket"`
	Severity      int       `json:"severity"`
	Clock         string    `json:"clock"`
	Outcome       string    `json:"outcome"`
	Due           time.Time `json:"due_at"`
	Stopped       time.Time `json:"stopped_at"`
	MarginSeconds int64     `json:"margin_seconds"` // negative: late by as much
}

// PauseRow is the time tickets' SLA clocks were held for one reason.
type PauseRow struct {
	Reason  string  `json:"reason"`
	Pauses  int     `json:"pauses"`
	Seconds int64   `json:"seconds"`
	Hours   float64 `json:"hours"` // Seconds in hours, two decimals
}

// VisitRow is a field visit of the month.
type VisitRow struct {
	ID                int64     `json:"id"`
	Ticket            string    `json:"ticket"`
	SiteID            string    `json:"site_id"`
	Purpose           string    `json:"purpose"`
	State             string    `json:"state"`
	At                time.Time `json:"at"`
	Engineers         []string  `json:"engineers"`
	TimeOnSiteMinutes int       `json:"time_on_site_minutes"`
	WorkPerformed     string    `json:"work_performed,omitempty"`
}

// PartRow is a part used on a visit of the month.
type PartRow struct {
	Visit        int64  `json:"visit"`
	Ticket       string `json:"ticket"`
	Manufacturer string `json:"manufacturer,omitempty"`
	PartNumber   string `json:"part_number"`
	Quantity     int    `json:"quantity"`
}

// PauseReasons are the reasons a clock is held, in report order.
var PauseReasons = []string{"customer", "manufacturer", "spare_parts", "import", "third_party"}

var monthRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// MonthPeriod returns [first instant, first instant of the next month) of
// month (YYYY-MM) in loc.
func MonthPeriod(month string, loc *time.Location) (time.Time, time.Time, error) {
	if !monthRE.MatchString(month) {
		return time.Time{}, time.Time{}, ErrInvalid.Errorf("month %q is not YYYY-MM", month)
	}
	m, _ := time.Parse("2006-01", month)
	from := time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 1, 0), nil
}

// Monthly builds customerID's report for month (YYYY-MM, in the customer's
// zone).
func (r *Reporter) Monthly(ctx context.Context, customerID, month string) (Monthly, error) {
	cust, err := r.Inventory.Customer(ctx, assets.Scope{CustomerID: customerID}, customerID)
	if err != nil {
		return Monthly{}, ErrNotFound.Errorf("customer %q", customerID)
	}
	loc := cust.Location()
	from, to, err := MonthPeriod(month, loc)
	if err != nil {
		return Monthly{}, err
	}
	if r.Now != nil && to.After(r.Now()) {
		to = r.Now()
		if !from.Before(to) {
			return Monthly{}, ErrInvalid.Errorf("month %s has not started", month)
		}
	}
	m := Monthly{CustomerID: cust.ID, CustomerName: cust.Name, Language: cust.Language, Month: month, TimeZone: loc.String(),
		From: from.In(loc), To: to.In(loc), BySeverity: []SeverityRow{}, Tickets: []TicketRow{}, Outcomes: []OutcomeRow{},
		Pauses: []PauseRow{}, Visits: []VisitRow{}, Parts: []PartRow{}}
	if m.Availability, err = r.Availability(ctx, AvailabilityQuery{CustomerID: customerID, From: from, To: to}); err != nil {
		return m, err
	}
	m.Availability.From, m.Availability.To = m.Availability.From.In(loc), m.Availability.To.In(loc)
	for i := range m.Availability.Devices {
		for j := range m.Availability.Devices[i].Exclusions {
			e := &m.Availability.Devices[i].Exclusions[j]
			e.From, e.To = e.From.In(loc), e.To.In(loc)
		}
	}

	bySev := map[int]*SeverityRow{}
	sev := func(n int) *SeverityRow {
		if bySev[n] == nil {
			bySev[n] = &SeverityRow{Severity: n}
		}
		return bySev[n]
	}
	tickets, err := r.Tickets.TicketsOpened(ctx, customerID, from, to)
	if err != nil {
		return m, err
	}
	for _, t := range tickets {
		m.Tickets = append(m.Tickets, TicketRow{Number: t.Number, Severity: t.Severity, Title: t.Title, Opened: t.OpenedAt.In(loc), Status: t.Status})
		sev(t.Severity).Opened++
	}
	outcomes, err := r.Tickets.Outcomes(ctx, maintenance.OutcomeFilter{CustomerID: customerID, From: from, To: to})
	if err != nil {
		return m, err
	}
	for _, o := range outcomes {
		m.Outcomes = append(m.Outcomes, OutcomeRow{Ticket: o.Number, Severity: o.Severity, Clock: o.Clock, Outcome: o.Outcome,
			Due: o.Due.In(loc), Stopped: o.Stopped.In(loc), MarginSeconds: int64(o.Margin / time.Second)})
		row := sev(o.Severity)
		switch {
		case o.Clock == maintenance.ClockResponse && o.Outcome == maintenance.OutcomeMet:
			row.ResponseMet++
		case o.Clock == maintenance.ClockResponse:
			row.ResponseBreached++
		case o.Outcome == maintenance.OutcomeMet:
			row.ResolutionMet++
		default:
			row.ResolutionBreached++
		}
	}
	for n := 1; n <= 4; n++ {
		if row, ok := bySev[n]; ok {
			m.BySeverity = append(m.BySeverity, *row)
		}
	}

	pauses, err := r.Tickets.PausesBetween(ctx, customerID, from, to)
	if err != nil {
		return m, err
	}
	byReason := map[string]*PauseRow{}
	for _, p := range pauses {
		for _, reason := range p.Reasons {
			row := byReason[reason]
			if row == nil {
				row = &PauseRow{Reason: reason}
				byReason[reason] = row
			}
			row.Pauses++
			row.Seconds += int64(p.To.Sub(p.From) / time.Second)
		}
	}
	for _, reason := range PauseReasons {
		row := PauseRow{Reason: reason}
		if byReason[reason] != nil {
			row = *byReason[reason]
		}
		row.Hours = math.Round(float64(row.Seconds)/36) / 100
		m.Pauses = append(m.Pauses, row)
	}

	visits, err := r.Field.VisitsBetween(ctx, customerID, from, to)
	if err != nil {
		return m, err
	}
	for _, v := range visits {
		row := VisitRow{ID: v.ID, Ticket: v.TicketNumber, SiteID: v.SiteID, Purpose: v.Purpose, State: v.State, Engineers: []string{},
			WorkPerformed: v.WorkPerformed}
		switch {
		case v.ArrivedAt != nil:
			row.At = v.ArrivedAt.In(loc)
		case v.WindowStart != nil:
			row.At = v.WindowStart.In(loc)
		}
		if v.TimeOnSiteMin != nil {
			row.TimeOnSiteMinutes = *v.TimeOnSiteMin
		}
		for _, e := range v.Engineers {
			row.Engineers = append(row.Engineers, e.Name)
		}
		m.Visits = append(m.Visits, row)
		for _, p := range v.PartsUsed {
			m.Parts = append(m.Parts, PartRow{Visit: v.ID, Ticket: v.TicketNumber, Manufacturer: p.Manufacturer, PartNumber: p.PartNumber, Quantity: p.Quantity})
		}
	}

	bill, err := r.Field.Report(ctx, auth.Actor{Name: "report", Role: auth.RoleCustomer, CustomerID: customerID}, customerID, month)
	if errors.Is(err, dispatch.ErrNotFound) {
		return m, ErrNotFound.Errorf("customer %q", customerID)
	}
	if err != nil {
		return m, err
	}
	m.HourBanks, m.Currency, m.Billable, m.BillableTotalCents = bill.HourBanks, bill.Currency, bill.Lines, bill.TotalCents
	if m.Biomedical, err = r.biomedical(ctx, customerID, from, to); err != nil {
		return m, err
	}
	return m, nil
}

// deviceName finds a device's name in the availability rows.
func (m Monthly) deviceName(id string) string {
	if i := slices.IndexFunc(m.Availability.Devices, func(d DeviceAvailability) bool { return d.DeviceID == id }); i >= 0 {
		return m.Availability.Devices[i].DeviceName
	}
	return id
}

// lang is the report's language: Spanish unless the customer reads English.
func (m Monthly) lang() string {
	if strings.HasPrefix(m.Language, "en") {
		return "en"
	}
	return "es"
}
