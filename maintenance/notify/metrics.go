package notify

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
)

// NewCollector returns the outbox gauges (pending rows and the age of the
// oldest, by channel), read from db at each scrape with the clock now. A
// failed query reports the family as invalid, which the /metrics handler
// logs and leaves out: the rest of the scrape is served.
func NewCollector(db *sqlx.DB, now func() time.Time) prometheus.Collector {
	return &collector{db: db, now: now, timeout: 5 * time.Second}
}

type collector struct {
	db      *sqlx.DB
	now     func() time.Time
	timeout time.Duration
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxAgeDesc
}

// Collect reads the outbox with one GROUP BY under its own deadline.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
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
