package probes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// pendingOutage stands, in the engine's outage maps, for an outage decided
// but not yet committed.
const pendingOutage = -1

// maxPending bounds the decisions kept while the database is down. A
// device's counters-only updates are coalesced, so only changes of state
// (few, and slowed by flap detection) accumulate.
const maxPending = 100_000

// pendingAttempts is how often a write the database refuses (it answers
// with an error: a device deleted meanwhile, say) is retried before it is
// given up, so one bad write cannot hold back the others forever. A write
// that gets no answer (database down, slow, unreachable) is never given up.
const pendingAttempts = 3

// writeTimeout bounds one decision's write before it waits in memory: a
// database host that stopped answering must not hold the device's checks
// for a TCP connect timeout, while a site incident of thousands of devices
// on a loaded database still fits.
const writeTimeout = 30 * time.Second

// pendingWrite is one decision to commit: a device's own (change), or a
// site incident opened or ended (write). done runs once it is committed.
type pendingWrite struct {
	device   string
	what     string
	change   *Change
	write    func(ctx context.Context) (Committed, error)
	done     func(Committed)
	attempts int
}

// statusOnly reports whether w changes nothing but a device's counters:
// a newer one may replace it while it waits.
func (w *pendingWrite) statusOnly() bool {
	if w.change == nil {
		return false
	}
	d := w.change.Decision
	return d.Transition == nil && !d.OpenOutage && !d.CloseOutage && len(d.Events) == 0
}

func (w *pendingWrite) commit(ctx context.Context, s *Store) (Committed, error) {
	if w.change != nil {
		return s.Commit(ctx, *w.change)
	}
	return w.write(ctx)
}

// write commits w now, or queues it behind the writes already waiting
// (their order is kept: a site incident before its devices' later
// changes) or when the commit fails. It reports whether w was committed.
func (e *Engine) write(ctx context.Context, w *pendingWrite) bool {
	if e.queue(w, false) {
		return false
	}
	// Bounded: a database host that stopped answering must not hold the
	// device's checks for a TCP connect timeout.
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	c, err := w.commit(wctx, e.store)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.queue(w, true)
		}
		return false
	}
	if w.done != nil {
		w.done(c)
	}
	return true
}

// queue appends w when writes are waiting, or always when force is set;
// it reports whether w was queued.
func (e *Engine) queue(w *pendingWrite, force bool) bool {
	e.pendMu.Lock()
	defer e.pendMu.Unlock()
	if len(e.pending) == 0 && !force {
		return false
	}
	if len(e.pending) == 0 {
		e.cfg.Log.Warn("database not taking decisions: they wait in memory with their instants", "first", w.what, "device", w.device)
	}
	if last := e.lastPending[w.device]; last != nil && w.statusOnly() {
		last.change.Status = w.change.Status
		return true
	}
	if len(e.pending) >= maxPending {
		e.cfg.Log.Error("too many decisions waiting for the database; dropping one", "what", w.what, "device", w.device)
		return true
	}
	e.pending = append(e.pending, w)
	delete(e.lastPending, w.device)
	if w.statusOnly() {
		e.lastPending[w.device] = w
	}
	return true
}

// refused reports whether the database answered the write with an error
// about the write itself (bad data, a constraint, an unknown object), not
// about its own state: "starting up", "not accepting connections", a
// serialization failure or a lost connection only mean "later".
func refused(err error) bool {
	var pe *pq.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code.Class() {
	case "22", "23", "42": // data exception, integrity constraint, syntax or undefined object
		return true
	}
	return false
}

// Pending returns how many decisions wait for the database.
func (e *Engine) Pending() int {
	e.pendMu.Lock()
	defer e.pendMu.Unlock()
	return len(e.pending)
}

// pendingDevices lists the devices with a decision waiting.
func (e *Engine) pendingDevices() map[string]bool {
	e.pendMu.Lock()
	defer e.pendMu.Unlock()
	out := make(map[string]bool, len(e.pending))
	for _, w := range e.pending {
		out[w.device] = true
	}
	return out
}

// FlushPending writes the waiting decisions in order and returns how many
// it wrote; it stops at the first the database does not take.
func (e *Engine) FlushPending(ctx context.Context) (int, error) {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	n := 0
	for {
		e.pendMu.Lock()
		if len(e.pending) == 0 {
			e.pendMu.Unlock()
			if n > 0 {
				e.cfg.Log.Info("decisions made while the database was down are written", "count", n)
			}
			return n, nil
		}
		w := e.pending[0]
		// In flight: a newer status no longer folds into it.
		if e.lastPending[w.device] == w {
			delete(e.lastPending, w.device)
		}
		e.pendMu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		c, err := w.commit(wctx, e.store)
		cancel()
		if err != nil {
			if ctx.Err() != nil || !refused(err) {
				return n, fmt.Errorf("probes: %d decisions wait for the database: %w", e.Pending(), err)
			}
			w.attempts++
			if w.attempts < pendingAttempts {
				return n, fmt.Errorf("probes: write %s of %s: %w", w.what, w.device, err)
			}
			e.cfg.Log.Error("decision given up after retries", "what", w.what, "device", w.device, "err", err)
		}
		e.pendMu.Lock()
		e.pending = e.pending[1:]
		e.pendMu.Unlock()
		if err == nil {
			n++
			if w.done != nil {
				w.done(c)
			}
		}
	}
}

// RunPending flushes the waiting decisions every interval until ctx ends.
func (e *Engine) RunPending(ctx context.Context, every time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.cfg.Clock.After(every):
		}
		if e.Pending() == 0 {
			continue
		}
		if _, err := e.FlushPending(ctx); err != nil && ctx.Err() == nil {
			e.cfg.Log.Debug("decisions still waiting", "err", err)
		}
	}
}
