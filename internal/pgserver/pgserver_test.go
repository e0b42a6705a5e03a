package pgserver

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// TestLifecycle runs the real binaries: create, start, reuse, stop, and a
// restart that finds the data written before.
func TestLifecycle(t *testing.T) {
	parent := t.TempDir()
	// The unprivileged postgres user must be able to traverse to the data dir.
	for _, d := range []string{parent, filepath.Dir(parent)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Durable settings: the crash below must not lose a committed row.
	c, err := Open(filepath.Join(parent, "pg"), Options{})
	if errors.Is(err, ErrBinariesMissing) {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { c.Stop(context.Background()) })

	started, err := c.Start(ctx)
	if err != nil || !started {
		t.Fatalf("first Start = %v, %v; want started", started, err)
	}
	if again, err := c.Start(ctx); err != nil || again {
		t.Fatalf("second Start = %v, %v; want reuse of the running cluster", again, err)
	}
	if err := c.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatalf("CreateDatabase must be idempotent: %v", err)
	}
	exec := func(q string) {
		t.Helper()
		db, err := sql.Open("postgres", c.URL("vigia"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)

	// A crash (immediate stop) and a restart keep committed data.
	if err := c.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Running(ctx) {
		t.Fatal("cluster still running after Kill")
	}
	if started, err := c.Start(ctx); err != nil || !started {
		t.Fatalf("restart = %v, %v", started, err)
	}
	db, err := sql.Open("postgres", c.URL("vigia"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: v=%d err=%v", v, err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Running(ctx) {
		t.Fatal("cluster still running after Stop")
	}
}

func TestOpenRejectsOverlongSocketPath(t *testing.T) {
	long := filepath.Join("/tmp", strings.Repeat("d", 60), strings.Repeat("e", 60))
	_, err := Open(long, Options{})
	if errors.Is(err, ErrBinariesMissing) {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	if err == nil || !strings.Contains(err.Error(), "too long for a unix socket") {
		t.Fatalf("Open(%q) = %v; want the socket-path error", long, err)
	}
}

// A synchronous standby made with pg_basebackup holds every row the primary
// committed; promoted after the primary is killed, it takes writes, and a
// multi-host read-write URL finds it without being changed.
func TestStandbyPromotedAfterPrimaryKilled(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{parent, filepath.Dir(parent)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	primary, err := Open(filepath.Join(parent, "a"), Options{})
	if errors.Is(err, ErrBinariesMissing) {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	if err != nil {
		t.Fatal(err)
	}
	standby, err := Open(filepath.Join(parent, "b"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() { primary.Remove(context.Background()); standby.Remove(context.Background()) })
	if _, err := primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := primary.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	if err := standby.StandbyOf(ctx, primary, "standby"); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Start(ctx); err != nil {
		b, _ := os.ReadFile(filepath.Join(standby.Dir, "server.log"))
		t.Fatalf("%v\n%s", err, b)
	}
	if err := primary.WaitForStandby(ctx, "standby"); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", FailoverURL("vigia", primary, standby))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	query := func(q string) (string, error) {
		var s string
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := db.QueryRowContext(qctx, q).Scan(&s)
		return s, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t AS SELECT 'before'::text AS v`); err != nil {
		t.Fatal(err)
	}

	if err := primary.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := query(`SELECT v FROM t`); err == nil {
		t.Fatal("a read-write connection succeeded with the primary dead and the standby not promoted")
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := query(`SELECT v FROM t`); err != nil || v != "before" {
		t.Fatalf("after promotion: %q, %v; want the row committed before the kill", v, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t VALUES ('after')`); err != nil {
		t.Fatalf("the promoted standby refuses writes: %v", err)
	}
}
