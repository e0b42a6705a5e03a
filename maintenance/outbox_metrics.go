package maintenance

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
)

// outboxChannels are the outbox's channels (its CHECK constraint): each
// is reported, with 0 when nothing waits, so an alert on the age never
// sees a series vanish and come back.
var outboxChannels = []string{"email", "webhook"}

var (
	outboxPendingDesc = prometheus.NewDesc("vigia_outbox_pending",
		"Notifications in the outbox not sent yet, by channel.", []string{"channel"}, nil)
	outboxAgeDesc = prometheus.NewDesc("vigia_outbox_oldest_pending_age_seconds",
		"Age of the oldest unsent notification, by channel (0 when none waits): a growing age is a stuck outbox.",
		[]string{"channel"}, nil)
	pausedDesc = prometheus.NewDesc("vigia_sla_paused_tickets",
		"Open tickets whose SLA is paused, by customer and reason (a pause with several reasons counts under each; 0 for every active customer and reason).",
		[]string{"customer", "reason"}, nil)
)

// RegisterOutboxMetrics registers the outbox and SLA pause gauges on reg;
// like NewMetrics' gauges they are read from db at each scrape.
func RegisterOutboxMetrics(reg prometheus.Registerer, db *sqlx.DB) {
	reg.MustRegister(newOutboxCollector(db, time.Now))
}

func newOutboxCollector(db *sqlx.DB, now func() time.Time) *outboxCollector {
	return &outboxCollector{db: db, now: now, timeout: 5 * time.Second}
}

// outboxCollector reads the outbox and the running pauses with one
// GROUP BY each. A failed query reports that family as invalid, which the
// /metrics handler logs and leaves out: the rest of the scrape is served.
type outboxCollector struct {
	db      *sqlx.DB
	now     func() time.Time
	timeout time.Duration
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxAgeDesc
	ch <- pausedDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collectOutbox(ctx, ch)
	c.collectPauses(ctx, ch)
}

func (c *outboxCollector) collectOutbox(ctx context.Context, ch chan<- prometheus.Metric) {
	// The age is computed here, from the injected clock, not from the
	// database's now(): the same clock the rows were written with.
	rows, err := c.db.QueryContext(ctx, `SELECT ch, count(o.id),
			COALESCE(EXTRACT(EPOCH FROM $2::timestamptz - min(o.created_at)), 0)::float8
		FROM unnest($1::text[]) ch LEFT JOIN outbox o ON o.channel = ch AND o.sent_at IS NULL
		GROUP BY ch ORDER BY ch`, pq.StringArray(outboxChannels), c.now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxPendingDesc, err)
		return
	}
	defer rows.Close()
	type row struct {
		channel string
		n, age  float64
	}
	var out []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.channel, &r.n, &r.age); err != nil {
			ch <- prometheus.NewInvalidMetric(outboxPendingDesc, err)
			return
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(outboxPendingDesc, err)
		return
	}
	for _, r := range out {
		ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, r.n, r.channel)
		// A row created after now (clock skew between instances) is not
		// negative time waiting.
		ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, max(r.age, 0), r.channel)
	}
}

// pausedQuery counts the open tickets under each reason of their running
// pause, with a 0 for every active customer and reason.
const pausedQuery = `SELECT c.id, r.reason, count(DISTINCT p.ticket_id)
	FROM customers c CROSS JOIN unnest($1::text[]) r (reason)
	LEFT JOIN (SELECT t.customer_id, p.ticket_id, unnest(` + pauseReasons + `) AS reason
		FROM ticket_pauses p JOIN tickets t ON t.id = p.ticket_id
		WHERE p.ended_at IS NULL AND t.status <> 'closed') p ON p.customer_id = c.id AND p.reason = r.reason
	WHERE c.retired_at IS NULL
	GROUP BY 1, 2 ORDER BY 1, 2`

func (c *outboxCollector) collectPauses(ctx context.Context, ch chan<- prometheus.Metric) {
	rows, err := c.db.QueryContext(ctx, pausedQuery, pq.StringArray(PauseReasons))
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
