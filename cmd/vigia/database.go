package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgserver"
)

// dbFlags are the database flags every command that touches the store shares.
type dbFlags struct {
	url     string
	dataDir string
	// ownCluster makes close stop the private cluster even when it was
	// already running (left behind by a killed vigia), as long as no other
	// client is connected: `vigia serve` owns it, one-shot commands do not.
	ownCluster bool
	// opened is the URL open connected to (the private cluster's when url
	// was empty), for further handles on the same database.
	opened string
}

func (f *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "database-url", os.Getenv("DATABASE_URL"),
		"PostgreSQL URL (env DATABASE_URL); empty: a private cluster under --data-dir/pg")
	fs.StringVar(&f.dataDir, "data-dir", envOr("VIGIA_DATA_DIR", "var"),
		"directory for Vigía's local state, including the private PostgreSQL (env VIGIA_DATA_DIR)")
}

// open connects to the configured database, starting the private cluster
// when no URL is given, and applies pending migrations. close undoes what
// open did: it stops the private cluster only if this call started it.
func (f *dbFlags) open(ctx context.Context, log *slog.Logger) (conn *sqlx.DB, closeFn func(), err error) {
	url := f.url
	stop := func() {}
	if url == "" {
		c, err := pgserver.Open(filepath.Join(f.dataDir, "pg"), pgserver.Options{
			Log: func(format string, a ...any) { log.Info(fmt.Sprintf(format, a...)) },
		})
		if err != nil {
			return nil, nil, err
		}
		started, err := c.Start(ctx)
		if err != nil {
			return nil, nil, err
		}
		if started || f.ownCluster {
			stop = func() {
				if !started && clientsConnected(c) {
					return
				}
				if err := c.Stop(context.Background()); err != nil {
					log.Error("stopping the private PostgreSQL", "err", err)
				}
			}
		}
		if err := c.CreateDatabase(ctx, "vigia"); err != nil {
			stop()
			return nil, nil, err
		}
		url = c.URL("vigia")
	}
	conn, err = db.Open(ctx, url)
	if err != nil {
		stop()
		return nil, nil, err
	}
	f.opened = url
	if applied, err := db.Migrate(ctx, conn); err != nil {
		conn.Close()
		stop()
		return nil, nil, err
	} else if len(applied) > 0 {
		log.Info("database migrated", "applied", applied)
	}
	return conn, func() { conn.Close(); stop() }, nil
}

// clientsConnected reports whether anyone besides us uses the cluster.
func clientsConnected(c *pgserver.Cluster) bool {
	conn, err := sqlx.Open("postgres", c.URL("postgres"))
	if err != nil {
		return true
	}
	defer conn.Close()
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`); err != nil {
		return true
	}
	return n > 0
}

// newLogger logs to stderr; secrets never reach it because their types
// print as <secret>.
func newLogger(stderr io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("unknown log level %q (debug, info, warn, error)", level)
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l})), nil
}
