package maintenance

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Metrics are the service desk's Prometheus metrics. The breach counter
// counts rows the watcher inserted; the gauges are read from the database
// at scrape time, so every instance reports the same truth and a restart
// loses nothing.
type Metrics struct {
	breaches *prometheus.CounterVec
}

// NewMetrics registers the service desk's metrics on reg; db is read at
// each scrape with a short timeout.
func NewMetrics(reg prometheus.Registerer, db *sqlx.DB) *Metrics {
	m := &Metrics{breaches: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigia_sla_breaches_total",
		Help: "SLA breaches recorded, by customer, policy and clock (response or resolution).",
	}, []string{"customer", "policy", "clock"})}
	reg.MustRegister(m.breaches, &ticketCollector{db: db, timeout: 5 * time.Second},
		&outcomeCollector{db: db, timeout: 5 * time.Second})
	return m
}

// Breach counts one breach the SLA watch recorded (m may be nil: no
// counter).
func (m *Metrics) Breach(customer, policy, clock string) {
	if m != nil {
		m.breaches.WithLabelValues(customer, policy, clock).Inc()
	}
}

var (
	openDesc = prometheus.NewDesc("vigia_tickets_open",
		"Tickets not closed, by customer, severity and status.", []string{"customer", "severity", "status"}, nil)
	atRiskDesc = prometheus.NewDesc("vigia_sla_at_risk_tickets",
		"Tickets whose running SLA clock passed a warning or escalation but is not breached, by customer (0 for every active customer).",
		[]string{"customer"}, nil)
)

// ticketCollector reads the ticket gauges with two GROUP BY queries.
type ticketCollector struct {
	db      *sqlx.DB
	timeout time.Duration
}

func (c *ticketCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- openDesc
	ch <- atRiskDesc
}

// atRiskQuery: a clock is at risk while it runs (response: no
// acknowledgement yet; resolution: not solved) and is not paused (a pending
// ticket waits on someone else), has a warning or escalation mark, and no
// breach mark.
const atRiskQuery = `SELECT c.id, count(DISTINCT t.id) FROM unnest($1::text[]) c (id)
	LEFT JOIN tickets t ON t.customer_id = c.id AND t.status NOT IN ('closed', 'solved', 'pending')
		AND EXISTS (SELECT 1 FROM sla_marks m WHERE m.ticket_id = t.id AND m.kind IN ('warning', 'escalation')
			AND (m.clock = 'resolution' OR t.acknowledged_at IS NULL)
			AND NOT EXISTS (SELECT 1 FROM sla_marks b WHERE b.ticket_id = t.id AND b.clock = m.clock AND b.kind = 'breach'))
	GROUP BY c.id ORDER BY c.id`

func (c *ticketCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, `SELECT customer_id, severity::text, status, count(*) FROM tickets
		WHERE status <> 'closed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	for rows.Next() {
		var customer, severity, status string
		var n float64
		if err := rows.Scan(&customer, &severity, &status, &n); err != nil {
			rows.Close()
			ch <- prometheus.NewInvalidMetric(openDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, n, customer, severity, status)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(openDesc, err)
		return
	}
	active, err := activeCustomers(ctx, c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(atRiskDesc, err)
		return
	}
	rows, err = c.db.QueryContext(ctx, atRiskQuery, active)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(atRiskDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var customer string
		var n float64
		if err := rows.Scan(&customer, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(atRiskDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(atRiskDesc, prometheus.GaugeValue, n, customer)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(atRiskDesc, err)
	}
}

// activeCustomers lists the customers that are not retired, which the
// gauges report (with a 0 when they have no ticket).
func activeCustomers(ctx context.Context, db *sqlx.DB) (pq.StringArray, error) {
	all, err := assets.NewStore(db).Customers(ctx, assets.Scope{})
	if err != nil {
		return nil, err
	}
	ids := pq.StringArray{}
	for _, c := range all {
		if c.RetiredAt == nil {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

var pausedDesc = prometheus.NewDesc("vigia_sla_paused_tickets",
	"Open tickets whose SLA is paused, by customer and reason (a pause with several reasons counts under each; 0 for every active customer and reason).",
	[]string{"customer", "reason"}, nil)

// RegisterOutboxMetrics registers notify's outbox gauges and the SLA pause
// gauges on reg; like NewMetrics' gauges they are read from db at each
// scrape.
func RegisterOutboxMetrics(reg prometheus.Registerer, db *sqlx.DB) {
	reg.MustRegister(newOutboxCollector(db, time.Now))
}

func newOutboxCollector(db *sqlx.DB, now func() time.Time) *outboxCollector {
	return &outboxCollector{outbox: notify.NewCollector(db, now), db: db, timeout: 5 * time.Second}
}

// outboxCollector reads the outbox (through notify) and the running pauses
// with one GROUP BY each. A failed query reports that family as invalid,
// which the /metrics handler logs and leaves out: the rest of the scrape
// is served.
type outboxCollector struct {
	outbox  prometheus.Collector
	db      *sqlx.DB
	timeout time.Duration
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	c.outbox.Describe(ch)
	ch <- pausedDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	c.outbox.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collectPauses(ctx, ch)
}

// pausedQuery counts the open tickets under each reason of their running
// pause, with a 0 for every active customer and reason.
const pausedQuery = `SELECT c.id, r.reason, count(DISTINCT p.ticket_id)
	FROM unnest($2::text[]) c (id) CROSS JOIN unnest($1::text[]) r (reason)
	LEFT JOIN (SELECT t.customer_id, p.ticket_id, unnest(` + pauseReasons + `) AS reason
		FROM ticket_pauses p JOIN tickets t ON t.id = p.ticket_id
		WHERE p.ended_at IS NULL AND t.status <> 'closed') p ON p.customer_id = c.id AND p.reason = r.reason
	GROUP BY 1, 2 ORDER BY 1, 2`

func (c *outboxCollector) collectPauses(ctx context.Context, ch chan<- prometheus.Metric) {
	active, err := activeCustomers(ctx, c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pausedDesc, err)
		return
	}
	rows, err := c.db.QueryContext(ctx, pausedQuery, pq.StringArray(PauseReasons), active)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pausedDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var customer, reason string
		var n float64
		if err := rows.Scan(&customer, &reason, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(pausedDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, n, customer, reason)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(pausedDesc, err)
	}
}
