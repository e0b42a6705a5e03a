package biomed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Test types: the recurrent test and the test after repair (IEC 62353).
var TestTypes = []string{"recurrent", "after_repair"}

// Instrument is the safety analyser a test was made with.
type Instrument struct {
	Model        string `json:"model"`
	Serial       string `json:"serial"`
	CalibratedOn string `json:"calibrated_on"` // YYYY-MM-DD: its own calibration
}

// TestInput is one electrical safety test of a device on a visit.
type TestInput struct {
	DeviceID     string       `json:"device"`
	Type         string       `json:"type"`         // recurrent | after_repair
	Class        string       `json:"device_class"` // I | II
	AppliedPart  string       `json:"applied_part"` // none | B | BF | CF
	Method       string       `json:"method"`       // direct | alternative | differential
	Instrument   Instrument   `json:"instrument"`
	Accessories  []string     `json:"accessories"` // tested with the device (cables, probes)
	Measurements Measurements `json:"measurements"`
}

// SafetyTest is a stored test record with its verdict.
type SafetyTest struct {
	ID           int64        `json:"id"`
	VisitID      int64        `json:"visit_id"`
	DeviceID     string       `json:"device_id"`
	CustomerID   string       `json:"customer_id"`
	Type         string       `json:"type"`
	Class        string       `json:"device_class"`
	AppliedPart  string       `json:"applied_part"`
	Method       string       `json:"method"`
	Instrument   Instrument   `json:"instrument"`
	Accessories  []string     `json:"accessories"`
	Evaluation   Evaluation   `json:"evaluation"`
	Passed       bool         `json:"passed"`
	Ticket       string       `json:"ticket,omitempty"` // the Sev 2 ticket a failure opened
	TicketID     *int64       `json:"ticket_id,omitempty"`
	RecordedBy   string       `json:"recorded_by"`
	TestedAt     time.Time    `json:"tested_at"`
	Measurements Measurements `json:"measurements"`
}

// failures describes the failed checks in language l.
func failures(l string, ev Evaluation) string {
	var out []string
	for _, c := range ev.Checks {
		if !c.Pass && c.Limit != nil {
			out = append(out, notify.SafetyFailure(l, c.Quantity, c.Value, c.Unit, *c.Limit))
		}
	}
	return strings.Join(out, "; ")
}

// FailedTestSeverity is the severity of the ticket a failed test opens.
const FailedTestSeverity = 2

// InstrumentValidity is how long a safety analyser's own calibration is
// accepted for.
const InstrumentValidity = 12

// RecordTests records the electrical safety tests made on a visit (on
// site, or after its outcome), staff only. Each is judged by the limits;
// a failed test takes its device out of service in the inventory and opens
// one Sev 2 ticket for it (one while it is open, however many tests
// fail); a passed test puts a device that was out of service back in
// service. All of it commits together or not at all.
func (s *Store) RecordTests(ctx context.Context, a auth.Actor, visitID int64, tests []TestInput, now time.Time) ([]SafetyTest, error) {
	if !a.IsProvider() {
		return nil, ErrForbidden.Errorf("safety tests are recorded by the provider's staff")
	}
	if len(tests) == 0 || len(tests) > 50 {
		return nil, invalid("1 to 50 tests")
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	v, err := s.visits.Visit(ctx, auth.Actor{Name: a.Name, Role: a.Role, CustomerID: a.CustomerID, EngineerID: a.EngineerID}, visitID)
	if errors.Is(err, dispatch.ErrNotFound) {
		return nil, ErrNotFound.Errorf("visit %d", visitID)
	}
	if err != nil {
		return nil, err
	}
	if v.State != dispatch.VisitOnSite && v.State != dispatch.VisitDone {
		return nil, ErrConflict.Errorf("tests are recorded on site or after the outcome; the visit is %s", v.State)
	}
	evals := make([]Evaluation, len(tests))
	for i := range tests {
		t := &tests[i]
		if evals[i], err = s.checkTest(t, v, now); err != nil {
			return nil, invalid("test %d (%s): %v", i+1, t.DeviceID, err)
		}
	}
	var out []SafetyTest
	err = s.inTx(ctx, fmt.Sprintf("safety tests of visit %d", visitID), func(tx *sqlx.Tx) error {
		for i, in := range tests {
			rec, err := s.insertTest(ctx, tx, a, v, in, evals[i], now)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

func (s *Store) checkTest(t *TestInput, v dispatch.Visit, now time.Time) (Evaluation, error) {
	t.Instrument.Model, t.Instrument.Serial = strings.TrimSpace(t.Instrument.Model), strings.TrimSpace(t.Instrument.Serial)
	cal, err := time.Parse(dateLayout, t.Instrument.CalibratedOn)
	switch {
	case !slices.Contains(v.DeviceIDs, t.DeviceID):
		return Evaluation{}, fmt.Errorf("device %q is not on visit %d", t.DeviceID, v.ID)
	case !slices.Contains(TestTypes, t.Type):
		return Evaluation{}, fmt.Errorf("type must be recurrent or after_repair")
	case t.Instrument.Model == "" || t.Instrument.Serial == "" || len(t.Instrument.Model) > 100 || len(t.Instrument.Serial) > 100:
		return Evaluation{}, fmt.Errorf("instrument model and serial are required (at most 100 characters)")
	case err != nil:
		return Evaluation{}, fmt.Errorf("instrument calibrated_on must be a date YYYY-MM-DD")
	case cal.After(now):
		return Evaluation{}, fmt.Errorf("the instrument's calibration date is in the future")
	case addMonths(cal, InstrumentValidity).Before(now.Add(-24 * time.Hour)):
		return Evaluation{}, fmt.Errorf("the instrument's calibration (%s) is more than %d months old: its readings cannot be relied on",
			t.Instrument.CalibratedOn, InstrumentValidity)
	case len(t.Accessories) > 50:
		return Evaluation{}, fmt.Errorf("at most 50 accessories")
	}
	for _, acc := range t.Accessories {
		if strings.TrimSpace(acc) == "" || len(acc) > 200 {
			return Evaluation{}, fmt.Errorf("accessories are 1 to 200 characters")
		}
	}
	return s.limits.Evaluate(t.Class, t.AppliedPart, t.Method, t.Measurements)
}

func (s *Store) insertTest(ctx context.Context, tx *sqlx.Tx, a auth.Actor, v dispatch.Visit, in TestInput, ev Evaluation, now time.Time) (SafetyTest, error) {
	m, err := json.Marshal(struct {
		Measurements Measurements `json:"measurements"`
		Checks       []Check      `json:"checks"`
	}{in.Measurements, ev.Checks})
	if err != nil {
		return SafetyTest{}, err
	}
	rec := SafetyTest{VisitID: v.ID, DeviceID: in.DeviceID, CustomerID: v.CustomerID, Type: in.Type, Class: in.Class,
		AppliedPart: in.AppliedPart, Method: in.Method, Instrument: in.Instrument, Accessories: nonNil(in.Accessories),
		Evaluation: ev, Passed: ev.Passed, RecordedBy: a.String(), TestedAt: now, Measurements: in.Measurements}
	err = tx.QueryRowContext(ctx, `INSERT INTO biomed_safety_tests (visit_id, device_id, customer_id, test_type, device_class, applied_part,
		method, instrument_model, instrument_serial, instrument_calibrated_on, accessories, measurements, passed, limits_version,
		recorded_by, tested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id`,
		v.ID, in.DeviceID, v.CustomerID, in.Type, in.Class, in.AppliedPart, in.Method, in.Instrument.Model, in.Instrument.Serial,
		in.Instrument.CalibratedOn, pq.StringArray(rec.Accessories), m, ev.Passed, ev.Version, rec.RecordedBy, now).Scan(&rec.ID)
	if isUniqueViolation(err) {
		return rec, ErrConflict.Errorf("visit %d already has a %s test of %s", v.ID, in.Type, in.DeviceID)
	}
	if err != nil {
		return rec, fmt.Errorf("test of %s: %w", in.DeviceID, err)
	}
	d, err := s.inv.Device(ctx, assets.Scope{}, in.DeviceID)
	if err != nil {
		return rec, err
	}
	if ev.Passed {
		if _, err := assets.SetOperationalStatusTx(ctx, tx, d.ID, assets.InService,
			"", now); err != nil {
			return rec, err
		}
		return rec, nil
	}
	cu, err := s.inv.Customer(ctx, assets.Scope{}, d.CustomerID)
	if err != nil {
		return rec, err
	}
	l := lang(cu.Language)
	failed := failures(l, ev)
	reason := notify.SafetyFailedReason(l, in.Type, rec.ID, failed)
	title := notify.SafetyFailedTitle(l, d.Name, d.Serial)
	text := notify.SafetyFailedText(l, in.Type, v.ID, failed)
	if _, err := assets.SetOperationalStatusTx(ctx, tx, d.ID, assets.OutOfService, reason, now); err != nil {
		return rec, err
	}
	t, ok, err := s.tickets.OpenSystemTx(ctx, tx, maintenance.SystemInput{CustomerID: d.CustomerID, SiteID: d.SiteID,
		DeviceIDs: []string{d.ID}, Title: cut(title, 200), Description: text, Category: "safety_test", Severity: FailedTestSeverity,
		Source: maintenance.SourceBiomed, AutoKey: "biomed:out-of-service:" + d.ID, OpenedAt: now, Author: a.String(),
		Data: map[string]any{"safety_test": rec.ID, "visit": v.ID}})
	if err != nil {
		return rec, err
	}
	if ok {
		rec.Ticket, rec.TicketID = t.Number, &t.ID
		if _, err := tx.ExecContext(ctx, `UPDATE biomed_safety_tests SET ticket_id = $2 WHERE id = $1`, rec.ID, t.ID); err != nil {
			return rec, fmt.Errorf("link ticket: %w", err)
		}
	}
	return rec, nil
}

// TestFilter narrows a listing of test records.
type TestFilter struct {
	CustomerID, DeviceID string
	From, To             time.Time // zero: unbounded
	FailedOnly           bool
}

// Tests lists test records in a's scope, newest first.
func (s *Store) Tests(ctx context.Context, a auth.Actor, f TestFilter) ([]SafetyTest, error) {
	customerID, err := scope(a, f.CustomerID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	to := f.To
	if to.IsZero() {
		to = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.id, s.visit_id, s.device_id, s.customer_id, s.test_type, s.device_class, s.applied_part,
		s.method, s.instrument_model, s.instrument_serial, s.instrument_calibrated_on, s.accessories, s.measurements, s.passed,
		s.limits_version, s.ticket_id, s.recorded_by, s.tested_at
		FROM biomed_safety_tests s
		WHERE ($1 = '' OR s.customer_id = $1) AND ($2 = '' OR s.device_id = $2) AND s.tested_at >= $3 AND s.tested_at < $4
		AND (NOT $5 OR NOT s.passed) ORDER BY s.tested_at DESC, s.id DESC LIMIT 1000`, customerID, f.DeviceID, f.From, to, f.FailedOnly)
	if err != nil {
		return nil, fmt.Errorf("biomed: safety tests: %w", err)
	}
	defer rows.Close()
	out := []SafetyTest{}
	for rows.Next() {
		var r SafetyTest
		var acc pq.StringArray
		var m []byte
		var cal time.Time
		if err := rows.Scan(&r.ID, &r.VisitID, &r.DeviceID, &r.CustomerID, &r.Type, &r.Class, &r.AppliedPart, &r.Method,
			&r.Instrument.Model, &r.Instrument.Serial, &cal, &acc, &m, &r.Passed, &r.Evaluation.Version, &r.TicketID,
			&r.RecordedBy, &r.TestedAt); err != nil {
			return nil, fmt.Errorf("biomed: safety tests: %w", err)
		}
		var body struct {
			Measurements Measurements `json:"measurements"`
			Checks       []Check      `json:"checks"`
		}
		if err := json.Unmarshal(m, &body); err != nil {
			return nil, fmt.Errorf("biomed: safety test %d: %w", r.ID, err)
		}
		r.Instrument.CalibratedOn, r.Accessories, r.Measurements = cal.Format(dateLayout), []string(acc), body.Measurements
		r.Evaluation.Checks, r.Evaluation.Passed = body.Checks, r.Passed
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("biomed: safety tests: %w", err)
	}
	var ids []int64
	for _, r := range out {
		if r.TicketID != nil {
			ids = append(ids, *r.TicketID)
		}
	}
	tickets, err := s.tickets.TicketsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, r := range out {
		if r.TicketID != nil {
			out[i].Ticket = tickets[*r.TicketID].Number
		}
	}
	return out, nil
}
