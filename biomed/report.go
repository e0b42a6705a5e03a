package biomed

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
)

// Work order states.
const (
	WOPlanned = "planned"      // in the plan, its lead time not begun
	WOOpen    = "open"         // its ticket is open, not yet due
	WOOnTime  = "done_on_time" // a visit was done by the due day
	WOLate    = "done_late"    // done after the due day
	WOOverdue = "overdue"      // due day passed, not done: missed
)

// WorkOrder is a planned or opened maintenance task on a device.
type WorkOrder struct {
	ID              int64      `json:"id"`
	CustomerID      string     `json:"customer_id"`
	DeviceID        string     `json:"device_id"`
	DeviceName      string     `json:"device_name"`
	ProgrammeID     string     `json:"programme"`
	TaskID          string     `json:"task"`
	Title           Text       `json:"title"`
	DueOn           string     `json:"due_on"`
	LeadDays        int        `json:"lead_days"`
	DurationMinutes int        `json:"duration_minutes"`
	Skills          []string   `json:"skills"`
	Checklist       []string   `json:"checklist"`
	TicketID        *int64     `json:"ticket_id,omitempty"`
	Ticket          string     `json:"ticket,omitempty"`
	DoneAt          *time.Time `json:"done_at,omitempty"`
	State           string     `json:"state"`
}

// WorkOrderFilter narrows a work order listing: due days in [From, To)
// (YYYY-MM-DD, empty: unbounded), or overdue ones only.
type WorkOrderFilter struct {
	CustomerID, DeviceID string
	From, To             string
	Overdue              bool
}

// WorkOrders lists work orders in a's scope by due day, with their state
// at now in each customer's calendar. A work order is done when a visit on
// its ticket is done (dispatch).
func (s *Store) WorkOrders(ctx context.Context, a auth.Actor, f WorkOrderFilter, now time.Time) ([]WorkOrder, error) {
	customerID, err := scope(a, f.CustomerID)
	if err != nil {
		return nil, err
	}
	from, to := "0001-01-01", "9999-01-01"
	if f.From != "" {
		from = f.From
	}
	if f.To != "" {
		to = f.To
	}
	for _, d := range []string{from, to} {
		if _, err := time.Parse(dateLayout, d); err != nil {
			return nil, invalid("dates are YYYY-MM-DD")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT id, customer_id, device_id, programme_id, task_id, title_es, title_en, due_on, lead_days,
		duration_minutes, skills, checklist, ticket_id FROM biomed_work_orders
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR device_id = $2) AND due_on >= $3 AND due_on < $4
		ORDER BY due_on, customer_id, device_id, id LIMIT 5000`, customerID, f.DeviceID, from, to)
	if err != nil {
		return nil, fmt.Errorf("biomed: work orders: %w", err)
	}
	defer rows.Close()
	out := []WorkOrder{}
	var ticketIDs []int64
	for rows.Next() {
		var w WorkOrder
		var due time.Time
		var skills, checklist pq.StringArray
		if err := rows.Scan(&w.ID, &w.CustomerID, &w.DeviceID, &w.ProgrammeID, &w.TaskID, &w.Title.ES, &w.Title.EN, &due, &w.LeadDays,
			&w.DurationMinutes, &skills, &checklist, &w.TicketID); err != nil {
			return nil, fmt.Errorf("biomed: work orders: %w", err)
		}
		w.DueOn, w.Skills, w.Checklist = due.Format(dateLayout), skills, checklist
		if w.TicketID != nil {
			ticketIDs = append(ticketIDs, *w.TicketID)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	done, err := s.visits.FirstDoneVisits(ctx, ticketIDs)
	if err != nil {
		return nil, err
	}
	tickets, err := s.tickets.TicketsByID(ctx, ticketIDs)
	if err != nil {
		return nil, err
	}
	cs := s.customers()
	kept := out[:0]
	for _, w := range out {
		c, err := cs.get(ctx, w.CustomerID, now)
		if err != nil {
			return nil, err
		}
		w.State = WOPlanned
		if w.TicketID != nil {
			w.Ticket = tickets[*w.TicketID].Number
			w.State = WOOpen
			if at, ok := done[*w.TicketID]; ok {
				w.DoneAt = &at
				w.State = WOOnTime
				if at.In(c.loc).Format(dateLayout) > w.DueOn {
					w.State = WOLate
				}
			}
		}
		if w.DoneAt == nil && w.DueOn < c.today.Format(dateLayout) {
			w.State = WOOverdue
		}
		if f.Overdue && w.State != WOOverdue {
			continue
		}
		if d, err := s.inv.Device(ctx, assets.Scope{}, w.DeviceID); err == nil {
			w.DeviceName = d.Name
		}
		kept = append(kept, w)
	}
	return kept, nil
}

// Compliance counts a period's work orders by how they were done.
type Compliance struct {
	OnTime  int `json:"on_time"`
	Late    int `json:"late"`
	Missed  int `json:"missed"`
	Pending int `json:"pending"` // due later in the period, or its ticket still open
}

// Summary is the biomedical part of a customer's report for a period.
type Summary struct {
	CustomerID  string              `json:"customer_id"`
	From        time.Time           `json:"from"`
	To          time.Time           `json:"to"`
	Compliance  Compliance          `json:"preventive_compliance"`
	WorkOrders  []WorkOrder         `json:"work_orders"`
	Tests       []SafetyTest        `json:"safety_tests"`
	TestsFailed int                 `json:"safety_tests_failed"`
	Calibration []CalibrationStatus `json:"calibration"`
	Alerts      []AlertMatch        `json:"alerts"`
}

// Empty reports whether the customer has no biomedical service at all in
// the period (then reports leave the section out).
func (sm Summary) Empty() bool {
	return len(sm.WorkOrders) == 0 && len(sm.Tests) == 0 && len(sm.Calibration) == 0 && len(sm.Alerts) == 0
}

// Summary builds customerID's biomedical report for [from, to): the work
// orders due in it and how they were done, the safety tests made in it
// (failures counted), the calibration state at its end, and the alerts
// that affected the customer and were still open at its start or matched
// during it, with their closure.
func (s *Store) Summary(ctx context.Context, customerID string, from, to, now time.Time) (Summary, error) {
	cu, err := s.inv.Customer(ctx, assets.Scope{}, customerID)
	if err != nil {
		return Summary{}, ErrNotFound.Errorf("customer %s", customerID)
	}
	loc := cu.Location()
	sm := Summary{CustomerID: customerID, From: from.In(loc), To: to.In(loc)}
	staff := auth.Actor{Name: "report", Role: "noc"}
	if sm.WorkOrders, err = s.WorkOrders(ctx, staff, WorkOrderFilter{CustomerID: customerID, From: from.In(loc).Format(dateLayout),
		To: to.In(loc).Format(dateLayout)}, now); err != nil {
		return sm, err
	}
	for _, w := range sm.WorkOrders {
		switch w.State {
		case WOOnTime:
			sm.Compliance.OnTime++
		case WOLate:
			sm.Compliance.Late++
		case WOOverdue:
			sm.Compliance.Missed++
		default:
			sm.Compliance.Pending++
		}
	}
	if sm.Tests, err = s.Tests(ctx, staff, TestFilter{CustomerID: customerID, From: from, To: to}); err != nil {
		return sm, err
	}
	for i := range sm.Tests {
		sm.Tests[i].TestedAt = sm.Tests[i].TestedAt.In(loc)
		if !sm.Tests[i].Passed {
			sm.TestsFailed++
		}
	}
	at := to
	if now.Before(at) {
		at = now
	}
	if sm.Calibration, err = s.Calibrations(ctx, staff, customerID, at.Add(-time.Nanosecond)); err != nil {
		return sm, err
	}
	all, err := s.Matches(ctx, staff, customerID, time.Time{}, to)
	if err != nil {
		return sm, err
	}
	sm.Alerts = []AlertMatch{}
	for _, m := range all {
		if m.ClosedAt == nil || !m.ClosedAt.Before(from) {
			m.MatchedAt = m.MatchedAt.In(loc)
			sm.Alerts = append(sm.Alerts, m)
		}
	}
	return sm, nil
}

// WriteCSV writes the summary as one CSV sheet: the first column names the
// section of each row, the first row of each section its header.
func (sm Summary) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	day := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	rows := [][]string{{"section", "customer", "from", "to"},
		{"report", sm.CustomerID, sm.From.Format(time.RFC3339), sm.To.Format(time.RFC3339)},
		{"compliance", "on_time", "late", "missed", "pending"},
		{"compliance", strconv.Itoa(sm.Compliance.OnTime), strconv.Itoa(sm.Compliance.Late), strconv.Itoa(sm.Compliance.Missed),
			strconv.Itoa(sm.Compliance.Pending)},
		{"work_order", "id", "device_id", "programme", "task", "due_on", "state", "ticket", "done_at"}}
	for _, o := range sm.WorkOrders {
		rows = append(rows, []string{"work_order", strconv.FormatInt(o.ID, 10), o.DeviceID, o.ProgrammeID, o.TaskID, o.DueOn, o.State,
			o.Ticket, day(o.DoneAt)})
	}
	rows = append(rows, []string{"safety_test", "id", "visit", "device_id", "type", "class", "applied_part", "method", "passed",
		"failures", "instrument", "instrument_calibrated_on", "ticket", "tested_at", "limits"})
	for _, t := range sm.Tests {
		var failed []string
		for _, c := range t.Evaluation.Checks {
			if !c.Pass && c.Limit != nil {
				failed = append(failed, fmt.Sprintf("%s=%g>%g%s", c.Quantity, c.Value, *c.Limit, c.Unit))
			}
		}
		rows = append(rows, []string{"safety_test", strconv.FormatInt(t.ID, 10), strconv.FormatInt(t.VisitID, 10), t.DeviceID, t.Type,
			t.Class, t.AppliedPart, t.Method, strconv.FormatBool(t.Passed), strings.Join(failed, "; "),
			t.Instrument.Model + " " + t.Instrument.Serial, t.Instrument.CalibratedOn, t.Ticket, t.TestedAt.Format(time.RFC3339), t.Evaluation.Version})
	}
	rows = append(rows, []string{"calibration", "device_id", "every_months", "last_calibrated_on", "certificate", "due_on", "state"})
	for _, c := range sm.Calibration {
		rows = append(rows, []string{"calibration", c.DeviceID, strconv.Itoa(c.EveryMonths), c.LastCalibrated, c.Certificate, c.DueOn, c.State})
	}
	rows = append(rows, []string{"alert", "source", "reference", "date", "patient_risk", "device_id", "serial", "ticket", "ticket_status", "closed_at"})
	for _, m := range sm.Alerts {
		rows = append(rows, []string{"alert", m.Source, m.Reference, m.IssuedOn, strconv.FormatBool(m.PatientRisk), m.DeviceID, m.Serial,
			m.Ticket, m.Status, day(m.ClosedAt)})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("biomed: report csv: %w", err)
	}
	return nil
}
