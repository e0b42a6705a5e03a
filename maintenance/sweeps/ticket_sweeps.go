package sweeps

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/vigia-noc/vigia/maintenance"
)

// PreClosureSweeper performs the due tasks of the pre-closure protocol
// (contact attempts, closing as accepted), each through the ticket core's
// PerformDueClosureTask. RunDue is idempotent and safe to run from several
// instances at once: a task is claimed under its ticket's lock, skipping
// tickets another sweeper holds.
type PreClosureSweeper struct {
	tickets *maintenance.Store
	log     *slog.Logger
}

// NewPreClosureSweeper returns the pre-closure sweeper over tickets.
func NewPreClosureSweeper(tickets *maintenance.Store, log *slog.Logger) *PreClosureSweeper {
	return &PreClosureSweeper{tickets: tickets, log: log}
}

// RunDue performs every task due at or before now and returns how many it
// performed.
func (w *PreClosureSweeper) RunDue(ctx context.Context, now time.Time) (int, error) {
	n := 0
	var skip []int64
	for {
		taskID, done, err := w.tickets.PerformDueClosureTask(ctx, now, skip)
		if err != nil {
			return n, err
		}
		if taskID == 0 {
			return n, nil
		}
		if done {
			n++
		} else {
			skip = append(skip, taskID)
		}
	}
}

// SLAWatcher has the ticket core record the SLA warnings, escalations and
// breaches that tickets passed (RecordSLAMarks: each once, with a timeline
// entry and a notification to the NOC's webhooks) and counts breaches in
// vigia_sla_breaches_total.
type SLAWatcher struct {
	tickets *maintenance.Store
	metrics *maintenance.Metrics
	log     *slog.Logger
	// CatchUp is how long after closing a ticket is still examined, so that
	// a breach that happened while no watcher ran (a restart, a deploy) is
	// still recorded.
	CatchUp time.Duration
}

// NewSLAWatcher returns a watcher over tickets; metrics may be nil.
func NewSLAWatcher(tickets *maintenance.Store, metrics *maintenance.Metrics, log *slog.Logger) *SLAWatcher {
	return &SLAWatcher{tickets: tickets, metrics: metrics, log: log, CatchUp: 48 * time.Hour}
}

// RunDue examines every open ticket (and those closed within CatchUp) at
// now and records the marks they passed; it returns how many marks and
// clock outcomes it recorded. Several watchers may run at once: each
// ticket is examined under its row lock, skipped if another holds it, and
// the unique keys do the rest.
func (w *SLAWatcher) RunDue(ctx context.Context, now time.Time) (int, error) {
	ids, err := w.tickets.WatchedTickets(ctx, now.Add(-w.CatchUp))
	if err != nil {
		return 0, err
	}
	// One ticket that cannot be computed (a policy removed from the
	// presets) must not hide the others' breaches.
	n := 0
	var errs []error
	for _, id := range ids {
		marks, outcomes, err := w.tickets.RecordSLAMarks(ctx, id, now)
		if err != nil {
			if ctx.Err() != nil {
				return n, err
			}
			errs = append(errs, err)
			continue
		}
		// Counted after commit: a rolled-back mark is not a breach.
		for _, m := range marks {
			if m.Kind == maintenance.MarkBreach {
				w.metrics.Breach(m.CustomerID, m.Policy, m.Clock)
			}
			w.log.Info("sla mark recorded", "ticket", id, "clock", m.Clock, "kind", m.Kind, "level", m.Level, "instant", m.Instant)
		}
		n += len(marks) + outcomes
	}
	return n, errors.Join(errs...)
}
