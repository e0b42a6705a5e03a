package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
)

// Every state and reason is reported, 0 when no row has it, so a panel
// or an alert never sees a series vanish and come back.
var (
	visitStates = []string{VisitProposed, VisitScheduled, VisitEnRoute, VisitOnSite, VisitDone, VisitEquipmentUnavailable, VisitCancelled}
	caseStates  = []string{CaseOpened, CaseWaiting, CaseAnswered, CaseClosed}
	waitReasons = []string{WaitCustomer, WaitManufacturer, WaitSpareParts, WaitImport, WaitThirdParty}
)

var (
	visitsDesc = prometheus.NewDesc("vigia_visits", "Field visits, by state.", []string{"state"}, nil)
	partsDesc  = prometheus.NewDesc("vigia_part_requests", "Spare part requests, by state.", []string{"state"}, nil)
	casesDesc  = prometheus.NewDesc("vigia_manufacturer_cases", "Cases opened with manufacturers, by state.", []string{"state"}, nil)
	waitsDesc  = prometheus.NewDesc("vigia_ticket_waits_open",
		"Open waits holding tickets (spare parts, imports, manufacturers, customers, third parties), by reason.", []string{"reason"}, nil)
	waitAgeDesc = prometheus.NewDesc("vigia_ticket_wait_oldest_age_seconds",
		"How long the oldest open wait of each reason has lasted (0 when none is open).", []string{"reason"}, nil)
)

// RegisterMetrics registers dispatch's gauges on reg. They are read from
// db at each scrape, with a short timeout, so every instance reports the
// same truth.
func RegisterMetrics(reg prometheus.Registerer, db *sqlx.DB) {
	reg.MustRegister(&collector{db: db, now: time.Now, timeout: 5 * time.Second})
}

// collector reads each gauge with one GROUP BY. A failed query reports its
// family as invalid, which the /metrics handler logs and leaves out: the
// rest of the scrape is served, and no zero pretends all is quiet.
type collector struct {
	db      *sqlx.DB
	now     func() time.Time
	timeout time.Duration
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{visitsDesc, partsDesc, casesDesc, waitsDesc, waitAgeDesc} {
		ch <- d
	}
}

// stateQuery counts the rows of table by state, with a 0 for every state
// listed in $1. table is one of ours, never input.
func stateQuery(table string) string {
	return fmt.Sprintf(`SELECT s, count(x.state) FROM unnest($1::text[]) s LEFT JOIN %s x ON x.state = s GROUP BY s ORDER BY s`, table)
}

// waitsQuery: the age is computed from the injected clock ($2), the one
// the rows were written with, not the database's now().
const waitsQuery = `SELECT r, count(w.id), COALESCE(EXTRACT(EPOCH FROM $2::timestamptz - min(w.started_at)), 0)::float8
	FROM unnest($1::text[]) r LEFT JOIN waits w ON w.reason = r AND w.ended_at IS NULL
	GROUP BY r ORDER BY r`

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, g := range []struct {
		desc   *prometheus.Desc
		table  string
		states []string
	}{{visitsDesc, "visits", visitStates}, {partsDesc, "part_requests", allPartStates}, {casesDesc, "manufacturer_cases", caseStates}} {
		rows, err := c.rows(ctx, 1, stateQuery(g.table), pq.StringArray(g.states))
		if err != nil {
			ch <- prometheus.NewInvalidMetric(g.desc, fmt.Errorf("dispatch: %s by state: %w", g.table, err))
			continue
		}
		for _, r := range rows {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, r.values[0], r.label)
		}
	}
	rows, err := c.rows(ctx, 2, waitsQuery, pq.StringArray(waitReasons), c.now())
	if err != nil {
		err = fmt.Errorf("dispatch: open waits: %w", err)
		ch <- prometheus.NewInvalidMetric(waitsDesc, err)
		ch <- prometheus.NewInvalidMetric(waitAgeDesc, err)
		return
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(waitsDesc, prometheus.GaugeValue, r.values[0], r.label)
		// A wait started after now (clock skew between instances) has not
		// lasted a negative time.
		ch <- prometheus.MustNewConstMetric(waitAgeDesc, prometheus.GaugeValue, max(r.values[1], 0), r.label)
	}
}

// labelled is one result row: a label value and n numbers.
type labelled struct {
	label  string
	values []float64
}

// rows runs q and reads every row before anything is reported, so a
// failure half-way reports nothing rather than part of a family.
func (c *collector) rows(ctx context.Context, n int, q string, args ...any) ([]labelled, error) {
	rs, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []labelled
	for rs.Next() {
		r := labelled{values: make([]float64, n)}
		dest := []any{&r.label}
		for i := range r.values {
			dest = append(dest, &r.values[i])
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}
