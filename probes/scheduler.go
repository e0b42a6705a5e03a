package probes

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
)

// SchedulerConfig tunes the scheduler.
type SchedulerConfig struct {
	// Concurrency bounds the device checks running at once (default 256):
	// probes wait on the network, not the CPU, but sockets are finite.
	Concurrency uint
	// SyncEvery reloads the inventory and maintenance windows (default 15s).
	SyncEvery time.Duration
	// Owns, when set, says whether this instance probes a device (for
	// several instances sharing the work); nil probes every device.
	Owns func(deviceID string) bool
}

// Scheduler runs each device's check on its own interval with gocron:
// spread over the interval so ten thousand devices do not fire together,
// and in singleton mode so a slow check never overlaps itself.
type Scheduler struct {
	engine *Engine
	cfg    SchedulerConfig
	s      gocron.Scheduler
	jobs   map[string]scheduled
	// scheduled mirrors len(jobs) for readers outside Sync's goroutine.
	scheduled atomic.Int64
	resync    chan struct{}
}

// TriggerSync asks Run to sync now (when leases change hands) instead of
// at the next SyncEvery.
func (sc *Scheduler) TriggerSync() {
	select {
	case sc.resync <- struct{}{}:
	default:
	}
}

type scheduled struct {
	id       uuid.UUID
	interval time.Duration
}

// NewScheduler prepares a scheduler on the engine's clock.
func NewScheduler(e *Engine, cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 256
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = 15 * time.Second
	}
	s, err := gocron.NewScheduler(gocron.WithClock(e.cfg.Clock), gocron.WithLimitConcurrentJobs(cfg.Concurrency, gocron.LimitModeWait),
		gocron.WithStopTimeout(15*time.Second))
	if err != nil {
		return nil, fmt.Errorf("probes: scheduler: %w", err)
	}
	return &Scheduler{engine: e, cfg: cfg, s: s, jobs: map[string]scheduled{}, resync: make(chan struct{}, 1)}, nil
}

// Run syncs the inventory, schedules every device, and keeps them in step
// with the inventory until ctx ends.
func (sc *Scheduler) Run(ctx context.Context) error {
	if err := sc.Sync(ctx); err != nil {
		return err
	}
	// Status refreshes are flushed in the background and once more after
	// the last check has stopped (defers run last in, first out).
	refreshCtx, stopRefreshes := context.WithCancel(context.WithoutCancel(ctx))
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		sc.engine.RunRefreshes(refreshCtx)
	}()
	defer func() {
		stopRefreshes()
		<-refreshed
	}()
	sc.s.Start()
	defer sc.s.Shutdown()
	clock := sc.engine.cfg.Clock
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sc.resync:
		case <-clock.After(sc.cfg.SyncEvery):
		}
		if err := sc.Sync(ctx); err != nil && !errors.Is(err, context.Canceled) {
			sc.engine.cfg.Log.Error("inventory sync failed; keeping the current schedule", "err", err)
		}
	}
}

// Sync reloads the inventory and adds, reschedules or removes jobs.
func (sc *Scheduler) Sync(ctx context.Context) error {
	devices, err := sc.engine.Sync(ctx)
	if err != nil {
		return err
	}
	var mine []assets.Device
	var adopted []string
	for _, d := range devices {
		if sc.cfg.Owns != nil && !sc.cfg.Owns(d.ID) {
			continue
		}
		mine = append(mine, d)
		if _, had := sc.jobs[d.ID]; !had {
			adopted = append(adopted, d.ID)
		}
	}
	// Devices taken over from another instance carry the state that
	// instance wrote: read it before their first check here.
	if len(adopted) > 0 && sc.cfg.Owns != nil {
		if err := sc.engine.Adopt(ctx, adopted); err != nil {
			return err
		}
	}
	clock := sc.engine.cfg.Clock
	seen := map[string]bool{}
	for _, d := range mine {
		seen[d.ID] = true
		if j, ok := sc.jobs[d.ID]; ok && j.interval == d.Probe.Interval {
			continue
		} else if ok {
			sc.s.RemoveJob(j.id)
		}
		id, interval := d.ID, d.Probe.Interval
		// Scheduling thousands of jobs takes a while, so a small jitter may
		// already be past when its job is created: gocron must accept it.
		first := clock.Now().Add(jitter(id, interval))
		job, err := sc.s.NewJob(gocron.DurationJob(interval),
			gocron.NewTask(func(ctx context.Context) { sc.check(ctx, id) }),
			gocron.WithSingletonMode(gocron.LimitModeReschedule),
			gocron.WithStartAt(gocron.WithStartDateTimePast(first)),
			gocron.WithName("probe "+id))
		if err != nil {
			return fmt.Errorf("probes: schedule %s: %w", id, err)
		}
		sc.jobs[id] = scheduled{id: job.ID(), interval: interval}
	}
	for id, j := range sc.jobs {
		if !seen[id] {
			sc.s.RemoveJob(j.id)
			delete(sc.jobs, id)
		}
	}
	sc.scheduled.Store(int64(len(sc.jobs)))
	return nil
}

// RegisterMetrics exposes the scheduler's backlog and size: checks waiting
// for a free slot mean probing is falling behind.
func (sc *Scheduler) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_probe_queue_waiting",
			Help: "Device checks due but waiting for a free slot (a probe backlog)."},
			func() float64 { return float64(sc.s.JobsWaitingInQueue()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_probe_devices_scheduled",
			Help: "Devices this instance probes."},
			func() float64 { return float64(sc.scheduled.Load()) }),
	)
}

// Scheduled returns how many devices have a job.
func (sc *Scheduler) Scheduled() int { return int(sc.scheduled.Load()) }

func (sc *Scheduler) check(ctx context.Context, id string) {
	if err := sc.engine.Check(ctx, id); err != nil && !errors.Is(err, context.Canceled) {
		sc.engine.cfg.Log.Error("device check failed", "device", id, "err", err)
	}
}

// jitter spreads first runs over the interval, the same for a device on
// every start, so restarts do not bunch checks together either.
func jitter(id string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	if interval <= 0 {
		return 0
	}
	return time.Duration(h.Sum64() % uint64(interval))
}
