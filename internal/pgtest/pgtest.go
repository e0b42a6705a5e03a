// Package pgtest gives tests a real, throwaway PostgreSQL database.
//
// `make test` starts one private cluster (internal/pgserver) and exports
// VIGIA_TEST_DATABASE_URL, an administrative URL on it; every call to DB
// creates a fresh database there, migrated, and drops it when the test ends.
// Run outside `make test`, the helper starts (or reuses) a private cluster
// of its own under the system temporary directory and leaves it running for
// the next run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgserver"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// EnvURL names the variable holding the administrative URL of the test cluster.
const EnvURL = "VIGIA_TEST_DATABASE_URL"

var (
	once     sync.Once
	adminURL string
	template string
	setupErr error
)

// DB returns a connection to a new, fully migrated database that is dropped
// when the test ends.
func DB(t testing.TB) *sqlx.DB {
	t.Helper()
	u := URL(t)
	conn, err := db.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// URL creates a new, fully migrated database and returns its URL; the
// database is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if errors.Is(setupErr, pgserver.ErrBinariesMissing) {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := "t_" + randomHex(8)
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Cloning a migrated template is much faster than migrating each time.
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sqlx.Open("postgres", adminURL)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return withDatabase(adminURL, name)
}

func setup() {
	adminURL = os.Getenv(EnvURL)
	if adminURL == "" {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("vigia-pgtest-%d", os.Getuid()))
		c, err := pgserver.Open(dir, pgserver.Options{Fast: true})
		if err != nil {
			setupErr = err
			return
		}
		if _, err := c.Start(context.Background()); err != nil {
			setupErr = err
			return
		}
		adminURL = c.URL("postgres")
	}
	// One migrated template per test process; dropped by the next process
	// that happens to reuse the name is impossible since names are random.
	template = "tmpl_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := sqlx.Open("postgres", adminURL)
	if err != nil {
		setupErr = err
		return
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+template); err != nil {
		setupErr = fmt.Errorf("create template database (is the test cluster running? %s=%q): %w", EnvURL, redact(adminURL), err)
		return
	}
	conn, err := db.Open(ctx, withDatabase(adminURL, template))
	if err != nil {
		setupErr = err
		return
	}
	_, err = db.Migrate(ctx, conn)
	conn.Close()
	if err != nil {
		setupErr = err
		return
	}
	// Templates must have no connections while cloned; mark it so and let
	// the cluster's owner clean it up with the cluster.
	admin.ExecContext(ctx, `ALTER DATABASE `+template+` WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`)
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
