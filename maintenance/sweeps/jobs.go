// Package sweeps runs the service desk's periodic work on gocron: the
// pre-closure protocol and the SLA watch (when, and over which tickets;
// the ticket core, owner of the tickets, their closure tasks and SLA marks,
// makes the changes), the preventive plans (kept here, their work orders
// opened through the ticket core as the biomedical service opens its own),
// and the delivery of notify's outbox.
package sweeps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// JobsConfig configures the service desk's periodic jobs.
type JobsConfig struct {
	Store      *maintenance.Store
	Preventive *Preventive          // nil: no preventive plans are swept
	Sender     *notify.Sender       // nil: the outbox is not sent from here
	Metrics    *maintenance.Metrics // nil: no breach counter
	// Elector makes the jobs leader-only in a multi-instance deployment
	// (internal/leader); nil runs them on this instance unconditionally.
	Elector gocron.Elector
	Now     func() time.Time
	Log     *slog.Logger
	// Intervals; zero means the default in parentheses.
	SweepEvery      time.Duration // pre-closure tasks (30 s)
	WatchEvery      time.Duration // SLA marks (30 s)
	PreventiveEvery time.Duration // preventive work orders (10 min)
	SendEvery       time.Duration // outbox (2 s)
}

// Jobs runs the pre-closure sweeper, the SLA watcher, the preventive sweep
// and the outbox sender as gocron jobs, each in singleton mode (a slow run
// is never stacked with the next) and, with an Elector, on the leader only.
type Jobs struct {
	s   gocron.Scheduler
	log *slog.Logger
}

// NewJobs registers the jobs; Run starts them.
func NewJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Store == nil || cfg.Now == nil || cfg.Log == nil {
		return nil, errors.New("maintenance: jobs need a store, a clock and a logger")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SweepEvery, 30*time.Second)
	def(&cfg.WatchEvery, 30*time.Second)
	def(&cfg.PreventiveEvery, 10*time.Minute)
	def(&cfg.SendEvery, 2*time.Second)
	opts := []gocron.SchedulerOption{gocron.WithStopTimeout(15 * time.Second)}
	if cfg.Elector != nil {
		opts = append(opts, gocron.WithDistributedElector(cfg.Elector))
	}
	s, err := gocron.NewScheduler(opts...)
	if err != nil {
		return nil, fmt.Errorf("maintenance: jobs: %w", err)
	}
	log := cfg.Log
	sweeper := NewPreClosureSweeper(cfg.Store, log)
	watcher := NewSLAWatcher(cfg.Store, cfg.Metrics, log)
	type job struct {
		name  string
		every time.Duration
		run   func(ctx context.Context, now time.Time) (int, error)
	}
	jobs := []job{
		{"pre-closure sweep", cfg.SweepEvery, sweeper.RunDue},
		{"sla watch", cfg.WatchEvery, watcher.RunDue},
	}
	if cfg.Preventive != nil {
		jobs = append(jobs, job{"preventive sweep", cfg.PreventiveEvery, NewPreventiveSweeper(cfg.Preventive, log).RunDue})
	}
	if cfg.Sender != nil {
		jobs = append(jobs, job{"outbox send", cfg.SendEvery, cfg.Sender.SendDue})
	}
	for _, j := range jobs {
		_, err := s.NewJob(gocron.DurationJob(j.every), gocron.NewTask(func(ctx context.Context) {
			n, err := j.run(ctx, cfg.Now())
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("job failed", "job", j.name, "err", err)
			case n > 0:
				log.Info("job done", "job", j.name, "count", n)
			}
		}), gocron.WithName(j.name), gocron.WithSingletonMode(gocron.LimitModeReschedule),
			gocron.WithStartAt(gocron.WithStartImmediately()))
		if err != nil {
			s.Shutdown()
			return nil, fmt.Errorf("maintenance: job %s: %w", j.name, err)
		}
	}
	return &Jobs{s: s, log: log}, nil
}

// Run runs the jobs until ctx ends, then waits for running ones to finish.
func (j *Jobs) Run(ctx context.Context) error {
	j.s.Start()
	<-ctx.Done()
	if err := j.s.Shutdown(); err != nil {
		return fmt.Errorf("maintenance: jobs: shutdown: %w", err)
	}
	return nil
}

// RunScheduled registers the jobs of cfg and runs them until ctx ends.
func RunScheduled(ctx context.Context, cfg JobsConfig) error {
	j, err := NewJobs(cfg)
	if err != nil {
		return err
	}
	return j.Run(ctx)
}
