// Package leader elects one Vigía instance to run the periodic jobs that
// must not run everywhere at once, with a PostgreSQL session advisory lock.
//
// Elector implements gocron's Elector: the instance whose dedicated
// connection holds pg_try_advisory_lock(key) is the leader, until that
// connection dies (the server then releases the lock and another instance
// takes it on its next try). An Elector rather than a Locker because the
// leader stays the leader: jobs do not migrate between instances on every
// tick (which a per-run Locker does, and whose run times drift apart so
// that two instances run the same job one after the other), and the cost
// is one idle connection per instance.
//
// The lock is a guard against duplicated work, not the safety net: every
// job is also idempotent in the database (unique keys, SKIP LOCKED), so
// the short overlap possible when a partitioned leader's session has not
// yet been ended by the server costs nothing but effort.
package leader

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// ErrNotLeader is returned by IsLeader on instances that are not the leader.
var ErrNotLeader = errors.New("leader: another instance is the leader")

// Elector holds an advisory lock on its own connection.
type Elector struct {
	db  *sql.DB
	key int64

	mu   sync.Mutex
	conn *sql.Conn // non-nil while this instance holds the lock
}

// New returns an elector for the election called name (every instance of
// one deployment uses the same name) on db.
func New(db *sql.DB, name string) *Elector {
	h := fnv.New64a()
	h.Write([]byte("vigia/leader/" + name))
	return &Elector{db: db, key: int64(h.Sum64())}
}

// Key is the advisory lock key (for pg_locks: classid is its high 32 bits,
// objid its low 32 bits, objsubid 1).
func (e *Elector) Key() int64 { return e.key }

// IsLeader returns nil when this instance holds the lock, trying to take it
// when it does not. A held lock is re-checked on its connection each call:
// if the session was lost (server restart, terminated backend, network),
// this instance stops being the leader at once rather than at its next
// failed query.
func (e *Elector) IsLeader(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		var held bool
		err := e.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
			AND pid = pg_backend_pid() AND granted AND classid = (($1::bigint >> 32) & 4294967295)::oid
			AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1)`, e.key).Scan(&held)
		if err == nil && held {
			return nil
		}
		e.drop()
		if err != nil {
			return fmt.Errorf("leader: lost the session: %w", err)
		}
		return fmt.Errorf("leader: lock no longer held: %w", ErrNotLeader)
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("leader: connect: %w", err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, e.key).Scan(&got); err != nil {
		discard(conn)
		return fmt.Errorf("leader: try lock: %w", err)
	}
	if !got {
		conn.Close() // holds nothing: back to the pool
		return ErrNotLeader
	}
	e.conn = conn
	return nil
}

// Resign gives up leadership (if held) by closing the session, so another
// instance can take over at once; the next IsLeader may take it again.
func (e *Elector) Resign() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		// Unlock first: the server notices a closed socket only later, and
		// the successor should not wait for that.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, e.key)
		cancel()
	}
	e.drop()
}

func (e *Elector) drop() {
	if e.conn != nil {
		discard(e.conn)
		e.conn = nil
	}
}

// discard closes conn's physical connection instead of returning it to the
// pool: a pooled session still holding the lock would keep it forever.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
