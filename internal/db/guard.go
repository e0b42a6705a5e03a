package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// A connection whose protocol stream is out of step must never go back to
// the pool: every later read on it would parse garbage as message headers.
// lib/pq (v1.11.0 to at least v1.12.3) does that to itself on an
// ErrorResponse longer than 30 000 bytes, which PostgreSQL sends whenever
// an error quotes a long value (a foreign-key violation's "Key (x)=(…)" of a
// 30 KB id): pq takes it for a pre-protocol "could not fork" text, reads
// only up to the first NUL, returns a plain error and leaves the rest of the
// message in the stream, so that the next statement on that connection —
// typically the ROLLBACK — reads "VERROR…" as a message of type 'V' and
// length "ERRO" (≈1.1 GB) and blocks for ever, whatever its context says.
//
// guardedConnector wraps pq's connections so that any error that is not a
// server's *pq.Error (a protocol or network failure) marks the connection
// broken: every later call on it answers driver.ErrBadConn without touching
// the wire, and database/sql closes it instead of pooling it.
type guardedConnector struct{ pq *pq.Connector }

func (c guardedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.pq.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &guardedConn{c: dc}, nil
}

func (c guardedConnector) Driver() driver.Driver { return c.pq.Driver() }

// streamBroken reports whether err leaves the connection's stream in an
// unknown state: anything but an answer the server itself sent.
func streamBroken(err error) bool {
	if err == nil || errors.Is(err, driver.ErrSkip) || err == io.EOF {
		return false
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		// FATAL and PANIC end the session; pq notices, but say it anyway.
		return pqErr.Severity == pq.Efatal || pqErr.Severity == pq.Epanic
	}
	return true
}

type guardedConn struct {
	c      driver.Conn
	broken atomic.Bool
}

// check records err's verdict on the stream and returns err unchanged.
func (g *guardedConn) check(err error) error {
	if streamBroken(err) {
		g.broken.Store(true)
	}
	return err
}

func (g *guardedConn) Prepare(query string) (driver.Stmt, error) {
	return g.PrepareContext(context.Background(), query)
}

func (g *guardedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	st, err := g.c.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, g.check(err)
	}
	return &guardedStmt{s: st, g: g}, nil
}

func (g *guardedConn) Close() error { return g.c.Close() }

func (g *guardedConn) Begin() (driver.Tx, error) {
	return g.BeginTx(context.Background(), driver.TxOptions{})
}

func (g *guardedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	tx, err := g.c.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, g.check(err)
	}
	return &guardedTx{t: tx, g: g}, nil
}

func (g *guardedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	res, err := g.c.(driver.ExecerContext).ExecContext(ctx, query, args)
	return res, g.check(err)
}

func (g *guardedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	rows, err := g.c.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		return nil, g.check(err)
	}
	return &guardedRows{r: rows, g: g}, nil
}

func (g *guardedConn) Ping(ctx context.Context) error {
	if g.broken.Load() {
		return driver.ErrBadConn
	}
	return g.check(g.c.(driver.Pinger).Ping(ctx))
}

func (g *guardedConn) CheckNamedValue(nv *driver.NamedValue) error {
	return g.c.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (g *guardedConn) ResetSession(ctx context.Context) error {
	if g.broken.Load() {
		return driver.ErrBadConn
	}
	return g.c.(driver.SessionResetter).ResetSession(ctx)
}

func (g *guardedConn) IsValid() bool {
	return !g.broken.Load() && g.c.(driver.Validator).IsValid()
}

type guardedTx struct {
	t driver.Tx
	g *guardedConn
}

func (t *guardedTx) Commit() error {
	if t.g.broken.Load() {
		return driver.ErrBadConn
	}
	return t.g.check(t.t.Commit())
}

func (t *guardedTx) Rollback() error {
	if t.g.broken.Load() {
		// The server ends the transaction when database/sql closes the
		// connection; a ROLLBACK sent now would wait for ever on garbage.
		return driver.ErrBadConn
	}
	return t.g.check(t.t.Rollback())
}

type guardedStmt struct {
	s driver.Stmt
	g *guardedConn
}

func (s *guardedStmt) Close() error  { return s.s.Close() }
func (s *guardedStmt) NumInput() int { return s.s.NumInput() }

func (s *guardedStmt) Exec(args []driver.Value) (driver.Result, error) {
	return nil, errors.New("db: Exec without context")
}

func (s *guardedStmt) Query(args []driver.Value) (driver.Rows, error) {
	return nil, errors.New("db: Query without context")
}

func (s *guardedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	res, err := s.s.(driver.StmtExecContext).ExecContext(ctx, args)
	return res, s.g.check(err)
}

func (s *guardedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.g.broken.Load() {
		return nil, driver.ErrBadConn
	}
	rows, err := s.s.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, s.g.check(err)
	}
	return &guardedRows{r: rows, g: s.g}, nil
}

func (s *guardedStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.s.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return s.g.CheckNamedValue(nv)
}

type guardedRows struct {
	r driver.Rows
	g *guardedConn
}

func (r *guardedRows) Columns() []string { return r.r.Columns() }

func (r *guardedRows) Close() error {
	if r.g.broken.Load() {
		// pq drains the remaining rows on Close: nothing sane to read.
		return nil
	}
	return r.g.check(r.r.Close())
}

func (r *guardedRows) Next(dest []driver.Value) error {
	if r.g.broken.Load() {
		return driver.ErrBadConn
	}
	return r.g.check(r.r.Next(dest))
}

// readDeadlineDialer gives every read on a connection a deadline, so that
// a read the server will never answer (a stream out of step, a peer gone
// without a FIN) ends in an error instead of a goroutine parked for ever.
// The server answers every statement within statement_timeout; limit is
// longer than that.
type readDeadlineDialer struct {
	d     net.Dialer
	limit time.Duration
}

func (d readDeadlineDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d readDeadlineDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

func (d readDeadlineDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return deadlineConn{Conn: c, limit: d.limit}, nil
}

type deadlineConn struct {
	net.Conn
	limit time.Duration
}

func (c deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.limit)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}
