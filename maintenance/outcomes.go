package maintenance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// SLA outcomes, as recorded in sla_outcomes.
const (
	OutcomeMet      = "met"
	OutcomeBreached = "breached"
)

// Outcome is how one clock of a ticket ended: met with Margin to spare, or
// breached, Margin being then negative (the lateness).
type Outcome struct {
	TicketID   int64         `json:"ticket_id"`
	Number     string        `json:"ticket"`
	Clock      string        `json:"clock"`
	Outcome    string        `json:"outcome"`
	Due        time.Time     `json:"due_at"`
	Stopped    time.Time     `json:"stopped_at"`
	Margin     time.Duration `json:"-"`
	CustomerID string        `json:"customer_id"`
	Policy     string        `json:"sla_policy"`
	Severity   int           `json:"severity"`
	// Restart is the start of a clock restarted by a severity change; zero
	// for the ticket's first clock.
	Restart time.Time `json:"restart,omitzero"`
}

// clockOutcomes lists the outcomes of the clocks of sc that stopped: the
// response at responded, the resolution at resolved. A clock stopped while
// a pause held it is met, with the time it had left as margin.
func clockOutcomes(sc sla.Schedule, responded, resolved *time.Time) []Outcome {
	var out []Outcome
	for _, c := range []struct {
		name string
		c    sla.Clock
		stop *time.Time
	}{{ClockResponse, sc.Response, responded}, {ClockResolution, sc.Resolution, resolved}} {
		if !c.c.Defined || c.stop == nil {
			continue
		}
		o := Outcome{Clock: c.name, Stopped: *c.stop, Outcome: OutcomeMet}
		if c.c.Grace {
			o.Restart = c.c.From
		}
		switch {
		case c.c.Paused:
			o.Due, o.Margin = c.stop.Add(c.c.Remaining), c.c.Remaining
		default:
			o.Due, o.Margin = c.c.Due, c.c.Due.Sub(*c.stop)
		}
		if o.Margin < 0 {
			o.Outcome = OutcomeBreached
		}
		out = append(out, o)
	}
	return out
}

// supersededOutcomes lists the clocks a grace restart replaced after they
// had breached: the severity change ended them late, by as much as the
// change came after their due instant. (A replaced clock that was not yet
// due simply gives way to the new one.)
func supersededOutcomes(p sla.Policy, in sla.Input, sc sla.Schedule) []Outcome {
	if len(in.Changes) == 0 || (!sc.Response.Grace && !sc.Resolution.Grace) {
		return nil
	}
	changes := slices.Clone(in.Changes)
	slices.SortStableFunc(changes, func(a, b sla.SeverityChange) int { return a.At.Compare(b.At) })
	last := changes[len(changes)-1]
	before := in
	before.Changes = changes[:len(changes)-1]
	prev, err := p.Due(before)
	if err != nil {
		return nil
	}
	var out []Outcome
	for _, c := range []struct {
		name      string
		old       sla.Clock
		restarted bool
	}{{ClockResponse, prev.Response, sc.Response.Grace}, {ClockResolution, prev.Resolution, sc.Resolution.Grace}} {
		if !c.restarted || !c.old.Defined || c.old.Paused || !c.old.Due.Before(last.At) {
			continue
		}
		o := Outcome{Clock: c.name, Outcome: OutcomeBreached, Due: c.old.Due, Stopped: last.At, Margin: c.old.Due.Sub(last.At)}
		if c.old.Grace {
			o.Restart = c.old.From
		}
		out = append(out, o)
	}
	return out
}

// recordOutcome writes o once per (ticket, clock, restart) with a timeline
// entry; it reports whether it was new.
func (s *Store) recordOutcome(ctx context.Context, tx *sqlx.Tx, t *Ticket, o Outcome, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO sla_outcomes (ticket_id, clock, restart_at, outcome, due_at, stopped_at,
		margin_seconds, customer_id, sla_policy, severity, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (ticket_id, clock, restart_at) DO NOTHING`,
		t.ID, o.Clock, restartValue(o.Restart), o.Outcome, o.Due, o.Stopped, marginSeconds(o.Margin), t.CustomerID, t.SLAPolicy, t.Severity, now)
	if err != nil {
		return false, fmt.Errorf("record %s outcome: %w", o.Clock, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	text := notify.SLAOutcomeText(o.Clock, t.Number, t.Severity, o.Outcome == OutcomeBreached, o.Margin)
	if err := addEvent(ctx, tx, t.ID, o.Stopped, author("vigia", "sla"), "sla_"+o.Outcome, text,
		map[string]any{"clock": o.Clock, "outcome": o.Outcome, "due_at": o.Due, "stopped_at": o.Stopped,
			"margin_seconds": marginSeconds(o.Margin), "recorded_at": now}); err != nil {
		return false, err
	}
	return true, nil
}

// marginSeconds rounds toward the breach side: a clock stopped half a
// second late is breached by 1 s, never "met with 0 s".
func marginSeconds(d time.Duration) int64 {
	if d < 0 {
		return -int64((-d + time.Second - 1) / time.Second)
	}
	return int64(d / time.Second)
}

// OutcomeFilter selects outcomes of one customer whose clock stopped in
// [From, To).
type OutcomeFilter struct {
	CustomerID string
	From, To   time.Time
}

// Outcomes lists the recorded SLA outcomes of f, oldest stop first: the
// read the contract reports use.
func (s *Store) Outcomes(ctx context.Context, f OutcomeFilter) ([]Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT o.ticket_id, t.number, o.clock, o.outcome, o.due_at, o.stopped_at, o.margin_seconds,
		o.customer_id, o.sla_policy, o.severity, CASE WHEN o.restart_at = '-infinity' THEN NULL ELSE o.restart_at END
		FROM sla_outcomes o JOIN tickets t ON t.id = o.ticket_id
		WHERE o.customer_id = $1 AND o.stopped_at >= $2 AND o.stopped_at < $3 ORDER BY o.stopped_at, o.id`, f.CustomerID, f.From, f.To)
	if err != nil {
		return nil, fmt.Errorf("maintenance: sla outcomes of %s: %w", f.CustomerID, err)
	}
	defer rows.Close()
	out := []Outcome{}
	for rows.Next() {
		var o Outcome
		var margin int64
		var restart pq.NullTime
		if err := rows.Scan(&o.TicketID, &o.Number, &o.Clock, &o.Outcome, &o.Due, &o.Stopped, &margin, &o.CustomerID,
			&o.Policy, &o.Severity, &restart); err != nil {
			return nil, fmt.Errorf("maintenance: sla outcomes of %s: %w", f.CustomerID, err)
		}
		o.Margin, o.Restart = time.Duration(margin)*time.Second, restart.Time
		out = append(out, o)
	}
	return out, rows.Err()
}

var outcomesDesc = prometheus.NewDesc("vigia_sla_outcomes_total",
	"SLA clocks ended, by outcome (met or breached), clock (response or resolution), severity and customer.",
	[]string{"outcome", "clock", "severity", "customer"}, nil)

// outcomeCollector counts sla_outcomes rows at scrape time: rows are never
// deleted, so the count only grows, and every instance reports the same.
type outcomeCollector struct {
	db      *sqlx.DB
	timeout time.Duration
}

func (c *outcomeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outcomesDesc }

func (c *outcomeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, `SELECT outcome, clock, severity, customer_id, count(*) FROM sla_outcomes
		GROUP BY outcome, clock, severity, customer_id`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outcomesDesc, fmt.Errorf("maintenance: count sla outcomes: %w", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		var outcome, clock, customer string
		var severity int
		var n float64
		if err := rows.Scan(&outcome, &clock, &severity, &customer, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(outcomesDesc, fmt.Errorf("maintenance: count sla outcomes: %w", err))
			return
		}
		ch <- prometheus.MustNewConstMetric(outcomesDesc, prometheus.CounterValue, n, outcome, clock, strconv.Itoa(severity), customer)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(outcomesDesc, fmt.Errorf("maintenance: count sla outcomes: %w", err))
	}
}
