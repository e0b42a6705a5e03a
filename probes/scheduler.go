package probes

import (
	"container/heap"
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

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

// schedulerSlack is how early a check may start: due checks are handed
// out in batches, one wake-up of the dispatcher per batch, instead of a
// timer per device. Ten milliseconds is nothing against a probe interval.
const schedulerSlack = 10 * time.Millisecond

// stopTimeout bounds how long Run waits for running checks after ctx ends.
const stopTimeout = 15 * time.Second

// Scheduler runs each device's check on its own interval: spread over the
// interval so ten thousand devices do not fire together, never two checks
// of one device at once (a check still running when its next one is due
// skips that one), and at most Concurrency checks at a time.
//
// It is a heap of due instants, one dispatcher goroutine and a fixed pool
// of workers: one hand-off per check. (gocron, which runs the service
// desk's jobs, was used here first; at ten thousand devices its half a
// dozen goroutine hand-offs per run were a large part of vigia's CPU.)
type Scheduler struct {
	engine *Engine
	cfg    SchedulerConfig

	mu   sync.Mutex
	jobs map[string]*probeJob
	due  dueHeap
	// wake tells the dispatcher the heap changed under it.
	wake chan struct{}
	// waiting counts checks handed out and not yet started by a worker.
	waiting atomic.Int64
	// scheduled mirrors len(jobs) for readers outside the lock.
	scheduled atomic.Int64
	resync    chan struct{}
	// lateness is how long after its due instant each check started.
	lateness prometheus.Histogram
}

// probeJob is one device's place in the schedule.
type probeJob struct {
	id       string
	interval time.Duration
	next     time.Time
	index    int       // in the heap; -1 when removed
	running  bool      // handed out and not finished
	dueAt    time.Time // the due instant it was handed out for
}

// NewScheduler prepares a scheduler on the engine's clock.
func NewScheduler(e *Engine, cfg SchedulerConfig) (*Scheduler, error) {
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 256
	}
	if cfg.SyncEvery == 0 {
		cfg.SyncEvery = 15 * time.Second
	}
	return &Scheduler{engine: e, cfg: cfg, jobs: map[string]*probeJob{}, wake: make(chan struct{}, 1),
		resync: make(chan struct{}, 1),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigia_probe_start_lateness_seconds",
			Help:    "How long after its due instant each device check started: probing falling behind its schedule.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})}, nil
}

// TriggerSync asks Run to sync now (when leases change hands) instead of
// at the next SyncEvery.
func (sc *Scheduler) TriggerSync() {
	select {
	case sc.resync <- struct{}{}:
	default:
	}
}

// Run syncs the inventory, schedules every device, and keeps them in step
// with the inventory until ctx ends; then it waits (a bounded time) for
// the checks running.
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
	// Decisions the database could not take when they were made are
	// written, with their instants, as soon as it answers again, and
	// tried once more after the last check has stopped.
	pendingCtx, stopPending := context.WithCancel(context.WithoutCancel(ctx))
	pendingDone := make(chan struct{})
	go func() {
		defer close(pendingDone)
		sc.engine.RunPending(pendingCtx, time.Second)
	}()
	defer func() {
		stopPending()
		<-pendingDone
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := sc.engine.FlushPending(flushCtx); err != nil {
			sc.engine.cfg.Log.Warn("decisions not written at stop", "waiting", sc.engine.Pending(), "err", err)
		}
	}()
	defer func() {
		stopRefreshes()
		<-refreshed
	}()

	work := make(chan *probeJob)
	var workers sync.WaitGroup
	for range sc.cfg.Concurrency {
		workers.Go(func() {
			for j := range work {
				sc.waiting.Add(-1)
				// The dispatcher wrote dueAt before the hand-off.
				sc.lateness.Observe(max(0, sc.engine.cfg.Clock.Now().Sub(j.dueAt)).Seconds())
				sc.check(ctx, j.id)
				sc.mu.Lock()
				j.running = false
				sc.mu.Unlock()
			}
		})
	}
	defer func() {
		close(work)
		stopped := make(chan struct{})
		go func() { workers.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(stopTimeout):
			sc.engine.cfg.Log.Warn("device checks still running at stop", "timeout", stopTimeout)
		}
	}()

	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		sc.dispatch(ctx, work)
	}()
	defer func() { <-dispatched }()

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

// dispatch hands due checks to the workers until ctx ends. When every
// worker is busy it waits, and the checks falling due meanwhile wait with
// it (vigia_probe_queue_waiting): each device at most once.
func (sc *Scheduler) dispatch(ctx context.Context, work chan<- *probeJob) {
	clock := sc.engine.cfg.Clock
	var ready []*probeJob
	for {
		sc.mu.Lock()
		now := clock.Now()
		ready = ready[:0]
		for len(sc.due) > 0 && !sc.due[0].next.After(now.Add(schedulerSlack)) {
			j := sc.due[0]
			due := j.next
			for !j.next.After(now.Add(schedulerSlack)) {
				j.next = j.next.Add(j.interval)
			}
			heap.Fix(&sc.due, 0)
			if !j.running {
				j.running, j.dueAt = true, due
				ready = append(ready, j)
			}
		}
		sleep := time.Hour
		if len(sc.due) > 0 {
			sleep = sc.due[0].next.Sub(now)
		}
		sc.mu.Unlock()

		sc.waiting.Add(int64(len(ready)))
		for i, j := range ready {
			select {
			case work <- j:
			case <-ctx.Done():
				sc.waiting.Add(-int64(len(ready) - i))
				return
			}
		}

		t := clock.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-sc.wake:
		case <-t.Chan():
		}
		t.Stop()
	}
}

// Sync reloads the inventory and adds, reschedules or removes devices.
func (sc *Scheduler) Sync(ctx context.Context) error {
	devices, err := sc.engine.Sync(ctx)
	if err != nil {
		return err
	}
	var mine []assets.Device
	var adopted []string
	sc.mu.Lock()
	for _, d := range devices {
		if sc.cfg.Owns != nil && !sc.cfg.Owns(d.ID) {
			continue
		}
		// A collector probes it, inside its hospital's network.
		if sc.engine.Remote(d) {
			continue
		}
		mine = append(mine, d)
		if _, had := sc.jobs[d.ID]; !had {
			adopted = append(adopted, d.ID)
		}
	}
	sc.mu.Unlock()
	// Devices taken over from another instance carry the state that
	// instance wrote: read it before their first check here.
	if len(adopted) > 0 && sc.cfg.Owns != nil {
		if err := sc.engine.Adopt(ctx, adopted); err != nil {
			return err
		}
	}
	now := sc.engine.cfg.Clock.Now()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	seen := make(map[string]bool, len(mine))
	for _, d := range mine {
		seen[d.ID] = true
		// The importer refuses intervals under a second; the floor keeps
		// the dispatcher's catch-up loop finite whatever the database says.
		interval := max(d.Probe.Interval, time.Second)
		j, ok := sc.jobs[d.ID]
		if ok && j.interval == interval {
			continue
		}
		first := now.Add(jitter(d.ID, interval))
		if ok {
			j.interval, j.next = interval, first
			heap.Fix(&sc.due, j.index)
			continue
		}
		j = &probeJob{id: d.ID, interval: interval, next: first}
		sc.jobs[d.ID] = j
		heap.Push(&sc.due, j)
	}
	for id, j := range sc.jobs {
		if !seen[id] {
			heap.Remove(&sc.due, j.index)
			delete(sc.jobs, id)
		}
	}
	sc.scheduled.Store(int64(len(sc.jobs)))
	select {
	case sc.wake <- struct{}{}:
	default:
	}
	return nil
}

// RegisterMetrics exposes the scheduler's backlog and size: checks waiting
// for a free worker mean probing is falling behind.
func (sc *Scheduler) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_probe_queue_waiting",
			Help: "Device checks due but waiting for a free slot (a probe backlog)."},
			func() float64 { return float64(sc.waiting.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigia_probe_devices_scheduled",
			Help: "Devices this instance probes."},
			func() float64 { return float64(sc.scheduled.Load()) }),
		sc.lateness,
	)
}

// Scheduled returns how many devices have a place in the schedule.
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

// dueHeap orders jobs by their next due instant.
type dueHeap []*probeJob

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(a, b int) bool { return h[a].next.Before(h[b].next) }
func (h dueHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].index, h[b].index = a, b
}
func (h *dueHeap) Push(x any) {
	j := x.(*probeJob)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *dueHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	j.index = -1
	*h = old[:len(old)-1]
	return j
}
