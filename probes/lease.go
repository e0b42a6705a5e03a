package probes

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Shards is how many pieces the fleet is cut into for sharing between
// instances: enough to balance a handful of instances evenly.
const Shards = 64

// ShardOf is the shard a device belongs to, the same on every instance.
func ShardOf(deviceID string) int {
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % Shards)
}

// Leaser claims, renews and releases shard leases in PostgreSQL so that
// each device is probed by exactly one live instance. Each instance takes
// its fair share (shards / live instances); what a dead instance held
// expires after TTL and is claimed by the survivors.
type Leaser struct {
	db  *sqlx.DB
	id  string
	ttl time.Duration
	log *slog.Logger
	// OnChange is called (from Run's goroutine) when the owned set changes.
	OnChange func()

	mu    sync.RWMutex
	owned map[int]bool
}

// NewLeaser returns a leaser for instance id (unique per process).
func NewLeaser(db *sqlx.DB, id string, ttl time.Duration, log *slog.Logger) *Leaser {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Leaser{db: db, id: id, ttl: ttl, log: log, owned: map[int]bool{}}
}

// Owns reports whether this instance probes the device now.
func (l *Leaser) Owns(deviceID string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.owned[ShardOf(deviceID)]
}

// Owned returns the shards held now.
func (l *Leaser) Owned() []int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int, 0, len(l.owned))
	for s := range l.owned {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Run renews and rebalances every TTL/3 until ctx ends, then releases its
// shards so others take them at once.
func (l *Leaser) Run(ctx context.Context) error {
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		if err := l.Step(ctx); err != nil && ctx.Err() == nil {
			// Keep what we had until it expires: the database may be back
			// before then.
			l.log.Warn("probe leases not renewed", "err", err)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return l.release(rctx)
		case <-tick.C:
		}
	}
}

// Step performs one round: heartbeat, renew, claim up to the fair share,
// give back any excess.
func (l *Leaser) Step(ctx context.Context) error {
	host, _ := os.Hostname()
	ttl := fmt.Sprintf("%d milliseconds", l.ttl.Milliseconds())
	tx, err := l.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probes: leases: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO probe_instances (id, hostname) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, l.id, host); err != nil {
		return fmt.Errorf("probes: leases: heartbeat: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO probe_leases (shard) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING`, Shards); err != nil {
		return fmt.Errorf("probes: leases: shards: %w", err)
	}
	var live int
	if err := tx.GetContext(ctx, &live, `SELECT count(*) FROM probe_instances WHERE heartbeat_at > now() - $1::interval`, ttl); err != nil {
		return fmt.Errorf("probes: leases: instances: %w", err)
	}
	fair := (Shards + max(live, 1) - 1) / max(live, 1)
	var mine []int
	if err := tx.SelectContext(ctx, &mine, `UPDATE probe_leases SET expires_at = now() + $2::interval
		WHERE owner = $1 AND expires_at > now() RETURNING shard`, l.id, ttl); err != nil {
		return fmt.Errorf("probes: leases: renew: %w", err)
	}
	if need := fair - len(mine); need > 0 {
		var claimed []int
		if err := tx.SelectContext(ctx, &claimed, `UPDATE probe_leases SET owner = $1, expires_at = now() + $3::interval
			WHERE shard IN (SELECT shard FROM probe_leases WHERE expires_at <= now() OR owner IS NULL
				ORDER BY shard LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING shard`, l.id, need, ttl); err != nil {
			return fmt.Errorf("probes: leases: claim: %w", err)
		}
		mine = append(mine, claimed...)
	} else if need < 0 {
		// Too many (an instance joined): give back the excess now.
		slices.Sort(mine)
		extra := mine[fair:]
		if _, err := tx.ExecContext(ctx, `UPDATE probe_leases SET owner = NULL, expires_at = '-infinity'
			WHERE owner = $1 AND shard = ANY($2)`, l.id, pq.Array(extra)); err != nil {
			return fmt.Errorf("probes: leases: release: %w", err)
		}
		mine = mine[:fair]
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM probe_instances WHERE heartbeat_at < now() - interval '1 hour'`); err != nil {
		return fmt.Errorf("probes: leases: forget instances: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("probes: leases: commit: %w", err)
	}
	l.set(mine)
	return nil
}

func (l *Leaser) set(shards []int) {
	next := make(map[int]bool, len(shards))
	for _, s := range shards {
		next[s] = true
	}
	l.mu.Lock()
	changed := len(next) != len(l.owned)
	for s := range next {
		if !l.owned[s] {
			changed = true
		}
	}
	l.owned = next
	l.mu.Unlock()
	if changed {
		l.log.Info("probe shards", "instance", l.id, "owned", len(next))
		if l.OnChange != nil {
			l.OnChange()
		}
	}
}

func (l *Leaser) release(ctx context.Context) error {
	l.set(nil)
	_, err := l.db.ExecContext(ctx, `UPDATE probe_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1`, l.id)
	if err == nil {
		_, err = l.db.ExecContext(ctx, `DELETE FROM probe_instances WHERE id = $1`, l.id)
	}
	if err != nil {
		return fmt.Errorf("probes: leases: release on shutdown: %w", err)
	}
	return nil
}
