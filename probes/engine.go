package probes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
)

// Inventory is what the engine reads of the inventory.
type Inventory interface {
	Devices(ctx context.Context, f assets.DeviceFilter) ([]assets.Device, error)
	Sites(ctx context.Context, sc assets.Scope, includeRetired bool) ([]assets.Site, error)
}

// Config tunes the engine. Zero values take the defaults noted.
type Config struct {
	Clock   clockwork.Clock // default: the real clock
	Probers map[string]Prober
	Log     *slog.Logger
	Metrics *Metrics // nil: no metrics
	// SuccessesToUp, FlapTransitions and FlapWindow complete each device's
	// Policy (FailuresToDown comes from the device's retries).
	SuccessesToUp   int
	FlapTransitions int
	FlapWindow      time.Duration
	// GatewayCacheTTL: how long an inline check of a site's gateway is
	// trusted, so a storm of failing devices probes the gateway once.
	GatewayCacheTTL time.Duration
	// StatusWriteEvery: an unchanged status is still written this often
	// (last probe instant, uptime, detail); changes are written at once.
	StatusWriteEvery time.Duration
	// RefreshFlushEvery: how often the due refreshes of unchanged statuses
	// are written, all in one statement (FlushRefreshes). Default 5 s.
	RefreshFlushEvery time.Duration
	// What the ingest of a collector's stream applies as serve does: the
	// trap rules (nil: DefaultTrapRules) and the conditions in memory the
	// traps it records change (nil: none kept here), and the working
	// hours an empty worklist is judged by (nil: always working).
	TrapRules      *TrapRules
	TrapConditions *TrapConditions
	WorkingHours   WorkingHours
}

// Engine probes devices, runs the state machine and persists decisions.
// Checks of different devices run concurrently; checks of one device are
// serialised.
type Engine struct {
	cfg   Config
	store *Store
	inv   Inventory

	mu           sync.RWMutex
	devices      map[string]assets.Device
	siteDevices  map[string][]string
	gateways     map[string]string // site -> gateway device
	statuses     map[string]Status
	deviceOutage map[string]int64
	siteOutage   map[string]int64
	windows      []*Window
	locks        map[string]*sync.Mutex
	lastWrite    map[string]time.Time
	// refreshes are unchanged statuses due for their periodic write,
	// batched by FlushRefreshes: ten thousand devices refreshing once a
	// minute would otherwise be ~170 transactions a second that change
	// nothing anyone acts on. Only bookkeeping (last probe instant, uptime,
	// detail) waits here; every change is committed before Check returns.
	refreshes map[string]Status
	gwCache   map[string]gatewayCheck
	started   time.Time
	// remote maps the sites probed by a collector to it: their devices are
	// decided from the results it pushes (Ingest), never probed from here.
	remote      map[string]int64
	collectorMu sync.Map // collector id -> *sync.Mutex: one ingest at a time

	// pending are decisions the database did not take when they were made
	// (it was down): kept in order, with the instants of the probe results
	// that made them, and written by FlushPending when it answers again.
	// The engine's memory already reflects them, so the next probes build
	// on them instead of re-deciding later.
	pendMu      sync.Mutex
	pending     []*pendingWrite
	lastPending map[string]*pendingWrite // device -> its queued status-only write, to coalesce
	flushMu     sync.Mutex
}

type gatewayCheck struct {
	failing bool
	at      time.Time
}

// NewEngine recovers the persisted state and returns a ready engine; call
// Sync to load the inventory.
func NewEngine(ctx context.Context, store *Store, inv Inventory, cfg Config) (*Engine, error) {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SuccessesToUp == 0 {
		cfg.SuccessesToUp = DefaultPolicy.SuccessesToUp
	}
	if cfg.FlapTransitions == 0 {
		cfg.FlapTransitions = DefaultPolicy.FlapTransitions
	}
	if cfg.FlapWindow == 0 {
		cfg.FlapWindow = DefaultPolicy.FlapWindow
	}
	if cfg.GatewayCacheTTL == 0 {
		cfg.GatewayCacheTTL = 2 * time.Second
	}
	if cfg.StatusWriteEvery == 0 {
		cfg.StatusWriteEvery = time.Minute
	}
	if cfg.RefreshFlushEvery == 0 {
		cfg.RefreshFlushEvery = 5 * time.Second
	}
	if cfg.TrapRules == nil {
		cfg.TrapRules = DefaultTrapRules()
	}
	snap, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: store, inv: inv, statuses: snap.Statuses, deviceOutage: snap.DeviceOutages,
		siteOutage: snap.SiteOutages, devices: map[string]assets.Device{}, siteDevices: map[string][]string{},
		gateways: map[string]string{}, locks: map[string]*sync.Mutex{}, lastWrite: map[string]time.Time{},
		refreshes: map[string]Status{}, gwCache: map[string]gatewayCheck{}, started: cfg.Clock.Now(),
		lastPending: map[string]*pendingWrite{}}
	e.updateOutageGauges()
	return e, nil
}

// Sync reloads the inventory and the maintenance windows. It returns the
// active devices, for the scheduler.
func (e *Engine) Sync(ctx context.Context) ([]assets.Device, error) {
	devices, err := e.inv.Devices(ctx, assets.DeviceFilter{})
	if err != nil {
		return nil, err
	}
	sites, err := e.inv.Sites(ctx, assets.Scope{}, false)
	if err != nil {
		return nil, err
	}
	windows, err := e.store.Windows(ctx, e.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	remote, err := e.store.remoteSites(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remote = remote
	old := e.devices
	e.devices = make(map[string]assets.Device, len(devices))
	e.siteDevices = map[string][]string{}
	for _, d := range devices {
		e.devices[d.ID] = d
		e.siteDevices[d.SiteID] = append(e.siteDevices[d.SiteID], d.ID)
		if e.locks[d.ID] == nil {
			e.locks[d.ID] = &sync.Mutex{}
		}
		if _, ok := e.statuses[d.ID]; !ok {
			e.statuses[d.ID] = Status{State: StateUnknown, Since: e.cfg.Clock.Now()}
		}
	}
	for id, d := range old {
		if _, ok := e.devices[id]; !ok && e.cfg.Metrics != nil {
			e.cfg.Metrics.forget(d)
		}
	}
	e.gateways = map[string]string{}
	for _, s := range sites {
		if s.GatewayDeviceID != nil {
			e.gateways[s.ID] = *s.GatewayDeviceID
		}
	}
	e.windows = windows
	return devices, nil
}

// Adopt reads the persisted state of devices this instance just took over,
// and every open outage, since another instance may have changed them.
func (e *Engine) Adopt(ctx context.Context, ids []string) error {
	snap, err := e.store.LoadDevices(ctx, ids)
	if err != nil {
		return err
	}
	waiting := e.pendingDevices()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		// A decision of ours still waiting for the database is newer than
		// what the database holds.
		if st, ok := snap.Statuses[id]; ok && !waiting[id] {
			e.statuses[id] = st
		}
		delete(e.lastWrite, id)
	}
	for dev, id := range e.deviceOutage {
		if _, ok := snap.DeviceOutages[dev]; !ok && id == pendingOutage {
			snap.DeviceOutages[dev] = id
		}
	}
	for site, id := range e.siteOutage {
		if _, ok := snap.SiteOutages[site]; !ok && id == pendingOutage {
			snap.SiteOutages[site] = id
		}
	}
	e.deviceOutage, e.siteOutage = snap.DeviceOutages, snap.SiteOutages
	return nil
}

// Status returns what the engine believes of a device.
func (e *Engine) Status(id string) (Status, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	st, ok := e.statuses[id]
	return st, ok
}

func (e *Engine) policy(d assets.Device) Policy {
	return Policy{FailuresToDown: d.Probe.Retries + 1, SuccessesToUp: e.cfg.SuccessesToUp,
		FlapTransitions: e.cfg.FlapTransitions, FlapWindow: e.cfg.FlapWindow}
}

// ProbeTimeout bounds one probe of a device: a third of its interval,
// between 1 and 10 seconds, so retries fit inside the detection bound.
func ProbeTimeout(d assets.Device) time.Duration {
	return min(max(d.Probe.Interval/3, time.Second), 10*time.Second)
}

// RetryDelay is the wait between confirmation retries of a failing device:
// shorter than its interval, so a real outage is confirmed quickly.
func RetryDelay(d assets.Device) time.Duration {
	return min(max(d.Probe.Interval/time.Duration(d.Probe.Retries+2), 500*time.Millisecond), 5*time.Second)
}

// Check probes one device now, retrying a failure at a shorter interval
// until it is confirmed or cleared, and persists what it decides.
func (e *Engine) Check(ctx context.Context, id string) error {
	e.mu.RLock()
	d, ok := e.devices[id]
	lock := e.locks[id]
	remote := e.remote[d.SiteID] != 0
	e.mu.RUnlock()
	if !ok || remote {
		// A device behind a collector is decided from the results it
		// pushes only (a trap heard here for it must not probe it).
		return nil
	}
	lock.Lock()
	defer lock.Unlock()
	pol := e.policy(d)
	for attempt := 0; ; attempt++ {
		results := e.probeAll(ctx, d)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		prev, _ := e.Status(id)
		obs := e.observe(ctx, d, prev, pol, results)
		dec := Step(prev, obs, pol)
		if err := e.persist(ctx, d, prev, dec, results); err != nil {
			return err
		}
		next := dec.Next
		confirmed := next.State.bad() || next.Failures >= pol.FailuresToDown
		if obs.Outcome != Failed || confirmed || obs.InMaintenance || attempt >= pol.FailuresToDown {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.cfg.Clock.After(RetryDelay(d)):
		}
	}
}

// probeAll runs every prober that applies to the device.
func (e *Engine) probeAll(ctx context.Context, d assets.Device) []Result {
	results := ProbeDevice(ctx, e.cfg.Probers, d, e.cfg.Clock)
	if e.cfg.Metrics != nil {
		for _, r := range results {
			e.cfg.Metrics.observeResult(r)
		}
	}
	return results
}

// ProbeDevice runs every prober that applies to d, in name order, within
// ProbeTimeout(d), each result stamped with the instant it came in. A
// collector runs its checks with it too.
func ProbeDevice(ctx context.Context, probers map[string]Prober, d assets.Device, clock clockwork.Clock) []Result {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout(d))
	defer cancel()
	var results []Result
	for _, name := range sortedProbers(probers) {
		p := probers[name]
		if !p.Applies(d) {
			continue
		}
		r := p.Probe(ctx, d)
		if r.Prober == "" {
			r.Prober = name
		}
		// At PostgreSQL's precision, so the evidence and the rows agree.
		r.At = clock.Now().Round(time.Microsecond)
		results = append(results, r)
	}
	return results
}

func sortedProbers(m map[string]Prober) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// combine folds the probes of a device into one outcome: any failing probe
// means failed; then a refusal; then slowness.
func combine(results []Result) (Outcome, string, time.Duration) {
	rank := map[Outcome]int{Unknown: -1, OK: 0, Degraded: 1, Misconfigured: 2, Failed: 3}
	out, detail := OK, ""
	var uptime time.Duration
	for _, r := range results {
		if detail == "" || rank[r.Outcome] > rank[out] {
			out, detail = r.Outcome, r.Detail
		}
		if r.Uptime > 0 {
			uptime = r.Uptime
		}
	}
	if len(results) == 0 {
		return "", "no probe applies to this device", 0
	}
	return out, detail, uptime
}

func (e *Engine) observe(ctx context.Context, d assets.Device, prev Status, pol Policy, results []Result) Observation {
	// The observation is as old as its latest probe result: that instant,
	// not the commit's, is what a decision records.
	now := e.cfg.Clock.Now()
	for i, r := range results {
		if i == 0 || r.At.After(now) {
			now = r.At
		}
	}
	outcome, detail, uptime := combine(results)
	obs := Observation{At: now, Outcome: outcome, Detail: detail, Uptime: uptime, Worklist: worklistOf(results)}
	e.mu.RLock()
	gw := e.gateways[d.SiteID]
	siteDown := e.siteOutage[d.SiteID] != 0
	if gw == d.ID {
		obs.OutageOpen = siteDown
	} else {
		obs.OutageOpen = e.deviceOutage[d.ID] != 0
	}
	for _, w := range e.windows {
		if w.Covers(d) && w.Active(now) {
			obs.InMaintenance = true
			break
		}
	}
	// A device taken out of service (a failed safety test) is expected to
	// be off: it shows as maintenance and raises no outage or ticket.
	if d.OutOfService() {
		obs.InMaintenance = true
	}
	e.mu.RUnlock()
	if gw != "" && gw != d.ID && outcome == Failed {
		// About to be declared down? Ask the gateway first: one site
		// incident, not one outage per device.
		obs.GatewayDown = siteDown || (prev.Failures+1 >= pol.FailuresToDown && e.gatewayFailing(ctx, gw))
	}
	return obs
}

// gatewayFailing reports whether a site's gateway is failing, from its
// recorded failures or a fresh probe cached for GatewayCacheTTL.
func (e *Engine) gatewayFailing(ctx context.Context, gwID string) bool {
	now := e.cfg.Clock.Now()
	e.mu.RLock()
	gw, ok := e.devices[gwID]
	st := e.statuses[gwID]
	cached, hit := e.gwCache[gwID]
	e.mu.RUnlock()
	if !ok {
		return false
	}
	if st.State.bad() || st.Failures > 0 {
		return true
	}
	if hit && now.Sub(cached.at) < e.cfg.GatewayCacheTTL {
		return cached.failing
	}
	outcome, _, _ := combine(e.probeAll(ctx, gw))
	failing := outcome == Failed
	e.mu.Lock()
	e.gwCache[gwID] = gatewayCheck{failing: failing, at: now}
	e.mu.Unlock()
	return failing
}

// persist writes a decision (only what changed, or a periodic refresh) and
// then updates memory and metrics.
func (e *Engine) persist(ctx context.Context, d assets.Device, prev Status, dec Decision, results []Result) error {
	e.mu.RLock()
	isGateway := e.gateways[d.SiteID] == d.ID
	last := e.lastWrite[d.ID]
	e.mu.RUnlock()
	next := dec.Next
	if !dec.changes(prev) {
		// A live agent's uptime changes at every poll: it is kept in memory
		// and written with the periodic refresh, or at once with a reboot
		// event (an event is a change).
		if next.LastProbeAt.Sub(last) >= e.cfg.StatusWriteEvery {
			e.mu.Lock()
			e.refreshes[d.ID] = next
			e.lastWrite[d.ID] = next.LastProbeAt
			e.mu.Unlock()
		}
		e.remember(d, prev, next, results)
		return nil
	}
	switch {
	case isGateway && dec.OpenOutage:
		e.openSiteIncident(ctx, d, dec, results)
	case isGateway && dec.CloseOutage:
		at := next.LastProbeAt
		e.mu.Lock()
		delete(e.siteOutage, d.SiteID)
		e.mu.Unlock()
		e.write(ctx, &pendingWrite{device: d.ID, what: "end site incident",
			write: func(ctx context.Context) (Committed, error) {
				id, err := e.store.EndSiteIncident(ctx, d, next, dec, at, results)
				return Committed{EndedOutage: id}, err
			},
			done: func(c Committed) {
				e.cfg.Log.Info("site incident ended", "site", d.SiteID, "gateway", d.ID, "outage", c.EndedOutage, "at", at)
			}})
	default:
		// A gateway's own outage is its site incident, handled above.
		if isGateway {
			dec.OpenOutage, dec.CloseOutage = false, false
		}
		// Memory first: the next probe sees this decision whether or not
		// the database takes it now.
		e.mu.Lock()
		switch {
		case dec.OpenOutage:
			e.deviceOutage[d.ID] = pendingOutage
		case dec.CloseOutage:
			delete(e.deviceOutage, d.ID)
		}
		e.mu.Unlock()
		at := next.LastProbeAt
		e.write(ctx, &pendingWrite{device: d.ID, what: "device decision",
			change: &Change{Device: d, Status: next, Decision: dec, Evidence: results},
			done: func(c Committed) {
				e.mu.Lock()
				if c.OpenedOutage != 0 && e.deviceOutage[d.ID] == pendingOutage {
					e.deviceOutage[d.ID] = c.OpenedOutage
				}
				e.mu.Unlock()
				if c.OpenedOutage != 0 {
					e.cfg.Log.Info("device down", "device", d.ID, "outage", c.OpenedOutage, "at", at, "evidence", next.LastDetail)
				}
				if c.EndedOutage != 0 {
					e.cfg.Log.Info("device back up", "device", d.ID, "outage", c.EndedOutage, "at", at)
				}
			}})
	}
	e.mu.Lock()
	e.lastWrite[d.ID] = next.LastProbeAt
	// The commit carried everything a queued refresh would have.
	delete(e.refreshes, d.ID)
	e.mu.Unlock()
	e.remember(d, prev, next, results)
	e.updateOutageGauges()
	return nil
}

// FlushRefreshes writes the queued refreshes of unchanged statuses in one
// statement. A refresh never overwrites a newer probe's row (a change
// committed meanwhile, or another instance that took the device over).
// On failure the refreshes are queued again, unless a newer one came.
func (e *Engine) FlushRefreshes(ctx context.Context) error {
	e.mu.Lock()
	batch := e.refreshes
	e.refreshes = map[string]Status{}
	e.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := e.store.Refresh(ctx, batch); err != nil {
		e.mu.Lock()
		for id, st := range batch {
			if _, newer := e.refreshes[id]; !newer {
				e.refreshes[id] = st
			}
		}
		e.mu.Unlock()
		return err
	}
	return nil
}

// RunRefreshes flushes the queued refreshes every RefreshFlushEvery until
// ctx ends, and once more then, so a clean stop loses none.
func (e *Engine) RunRefreshes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := e.FlushRefreshes(flushCtx); err != nil {
				e.cfg.Log.Warn("status refreshes not written at stop", "err", err)
			}
			return
		case <-e.cfg.Clock.After(e.cfg.RefreshFlushEvery):
		}
		if err := e.FlushRefreshes(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Log.Warn("status refreshes not written; retrying", "err", err)
		}
	}
}

// openSiteIncident marks the site's other devices unreachable and opens one
// site incident for them all.
func (e *Engine) openSiteIncident(ctx context.Context, gw assets.Device, dec Decision, results []Result) {
	at := dec.Next.LastProbeAt
	e.mu.RLock()
	members := slices.Clone(e.siteDevices[gw.SiteID])
	e.mu.RUnlock()
	affected := map[string]Status{}
	transitions := map[string]*Transition{}
	var held []*sync.Mutex
	defer func() {
		for _, l := range held {
			l.Unlock()
		}
	}()
	for _, id := range members {
		if id == gw.ID {
			continue
		}
		e.mu.RLock()
		l := e.locks[id]
		e.mu.RUnlock()
		// Only this site's gateway locks this site's devices, and a device
		// check never takes another lock, so this cannot deadlock.
		l.Lock()
		held = append(held, l)
		st, _ := e.Status(id)
		if st.State != StateDown && st.State != StateMaintenance && st.State != StateUnreachable {
			transitions[id] = &Transition{From: st.State, To: StateUnreachable, At: at}
			st.State, st.Since = StateUnreachable, at
		}
		affected[id] = st
	}
	e.mu.Lock()
	if e.siteOutage[gw.SiteID] == 0 {
		e.siteOutage[gw.SiteID] = pendingOutage
	}
	for devID, st := range affected {
		prev := e.statuses[devID]
		e.statuses[devID] = st
		if e.cfg.Metrics != nil {
			e.cfg.Metrics.setState(e.devices[devID], prev.State, st.State, false, st.Flapping)
		}
	}
	e.mu.Unlock()
	cause := "gateway " + gw.ID + " down: " + dec.Next.LastDetail
	next := dec.Next
	e.write(ctx, &pendingWrite{device: gw.ID, what: "open site incident",
		write: func(ctx context.Context) (Committed, error) {
			id, err := e.store.OpenSiteIncident(ctx, gw, next, dec, affected, transitions, cause, at, results)
			return Committed{OpenedOutage: id}, err
		},
		done: func(c Committed) {
			e.mu.Lock()
			if e.siteOutage[gw.SiteID] == pendingOutage {
				e.siteOutage[gw.SiteID] = c.OpenedOutage
			}
			e.mu.Unlock()
			e.cfg.Log.Warn("site incident", "site", gw.SiteID, "gateway", gw.ID, "outage", c.OpenedOutage, "devices", len(affected), "at", at)
		}})
}

func (e *Engine) remember(d assets.Device, prev, next Status, results []Result) {
	outcome, _, _ := combine(results)
	e.mu.Lock()
	e.statuses[d.ID] = next
	if e.gateways[d.SiteID] == d.ID {
		// A gateway's own check is fresh word on its site's link: a failure
		// is remembered; a success is not, since the link may drop right
		// after and a failing device must then look again.
		if outcome == Failed {
			e.gwCache[d.ID] = gatewayCheck{failing: true, at: next.LastProbeAt}
		} else {
			delete(e.gwCache, d.ID)
		}
	}
	e.mu.Unlock()
	if e.cfg.Metrics != nil {
		answered := outcome == OK || outcome == Degraded || outcome == Misconfigured
		e.cfg.Metrics.setState(d, prev.State, next.State, answered, next.Flapping)
	}
}

func (e *Engine) updateOutageGauges() {
	if e.cfg.Metrics == nil {
		return
	}
	e.mu.RLock()
	nd, ns := len(e.deviceOutage), len(e.siteOutage)
	e.mu.RUnlock()
	e.cfg.Metrics.outagesOpen.WithLabelValues("device").Set(float64(nd))
	e.cfg.Metrics.outagesOpen.WithLabelValues("site").Set(float64(ns))
}

// String describes the engine for logs.
func (e *Engine) String() string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return fmt.Sprintf("probes engine: %d devices, %d open device outages, %d site incidents", len(e.devices), len(e.deviceOutage), len(e.siteOutage))
}

// changes reports whether a decision changes more than the bookkeeping of
// prev (last probe instant, uptime, detail): such a decision is committed
// at once; the rest waits for the periodic refresh.
func (d Decision) changes(prev Status) bool {
	next := d.Next
	return d.Transition != nil || d.OpenOutage || d.CloseOutage || len(d.Events) > 0 ||
		next.Failures != prev.Failures || next.Successes != prev.Successes || next.Flapping != prev.Flapping ||
		next.WorklistFailing != prev.WorklistFailing ||
		len(next.RecentTransitions) != len(prev.RecentTransitions)
}
