// Package db opens Vigía's PostgreSQL database and applies its embedded
// migrations. PostgreSQL is the system of record: every state change that
// matters is a committed row.
package db

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Session limits set on every connection unless the URL sets them: no
// statement runs longer than StatementTimeout and no session sits idle in
// a transaction (holding its row locks) longer than IdleInTransaction.
const (
	StatementTimeout  = 30 * time.Second
	IdleInTransaction = 30 * time.Second
	// readLimit bounds any single wait for the server's answer: longer
	// than a statement may run, so it only ends reads that will never
	// complete.
	readLimit = StatementTimeout + 15*time.Second
)

// OpenHealth opens a handle of one connection for readiness checks: a ping
// through the main pool would wait behind every busy request and report a
// loaded instance as unready while its database answers.
func OpenHealth(ctx context.Context, url string) (*sqlx.DB, error) {
	h, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	h.SetMaxOpenConns(1)
	h.SetMaxIdleConns(1)
	return h, nil
}

// Open connects to url and checks the connection. Connections carry the
// session limits above, every read from the server has a deadline, and a
// connection whose protocol stream broke is discarded (see guard.go).
func Open(ctx context.Context, url string) (*sqlx.DB, error) {
	cfg, err := pq.NewConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: open: %w", err)
	}
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	for k, v := range map[string]time.Duration{
		"statement_timeout":                   StatementTimeout,
		"idle_in_transaction_session_timeout": IdleInTransaction,
	} {
		if _, set := cfg.Runtime[k]; !set {
			cfg.Runtime[k] = strconv.FormatInt(v.Milliseconds(), 10)
		}
	}
	connector, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open: %w", err)
	}
	connector.Dialer(readDeadlineDialer{limit: readLimit})
	db := sqlx.NewDb(sql.OpenDB(guardedConnector{pq: connector}), "postgres")
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("db: connect: %w", err)
	}
	return db, nil
}

// Migrate applies every pending migration. A PostgreSQL session advisory
// lock serialises instances that start together, so they never race.
func Migrate(ctx context.Context, db *sqlx.DB) ([]string, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 120))
	if err != nil {
		return nil, fmt.Errorf("db: migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, sub,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("db: migrate: %w", err)
	}
	applied := make([]string, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}
