package db_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// longKey is a value whose foreign-key violation makes PostgreSQL send an
// ErrorResponse longer than lib/pq's 30 000-byte limit for pre-protocol
// errors (its Detail quotes the key: "Key (engineer)=(xxx…) is not present").
var longKey = strings.Repeat("x", 30_000)

const reproSchema = `CREATE TABLE repro_engineers (id text PRIMARY KEY);
	CREATE TABLE repro_tickets (id bigint PRIMARY KEY);
	CREATE TABLE repro_work (ticket bigint REFERENCES repro_tickets, engineer text REFERENCES repro_engineers);
	INSERT INTO repro_tickets VALUES (1);`

// recordWork is what POST /api/v1/work-entries did with a 30 KB engineer
// id: lock the ticket, insert the entry (a foreign-key violation), roll
// back. It reports the insert's error and how Rollback ended.
func recordWork(ctx context.Context, conn *sql.DB) (insertErr, rollbackErr error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err, nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT id FROM repro_tickets WHERE id = $1::bigint FOR UPDATE`, 1); err != nil {
		return err, tx.Rollback()
	}
	_, insertErr = tx.ExecContext(ctx, `INSERT INTO repro_work (ticket, engineer) VALUES ($1::bigint, $2)`, 1, longKey)
	return insertErr, tx.Rollback()
}

// TestLibPQLongErrorDesync reproduces the lib/pq bug behind issue #14's
// hang with the plain driver, then shows that db.Open's connections come
// out of it promptly, discarded, with nothing left idle in transaction.
func TestLibPQLongErrorDesync(t *testing.T) {
	url := pgtest.URL(t)
	guarded, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer guarded.Close()
	if _, err := guarded.Exec(reproSchema); err != nil {
		t.Fatal(err)
	}

	t.Run("plain lib/pq hangs", func(t *testing.T) {
		plain, err := sql.Open("postgres", url+"&application_name=repro_plain")
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		plain.SetMaxOpenConns(1)
		type result struct{ insert, rollback error }
		done := make(chan result, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		go func() {
			i, r := recordWork(ctx, plain)
			done <- result{i, r}
		}()
		select {
		case r := <-done:
			t.Fatalf("lib/pq no longer desynchronises (insert: %v, rollback: %v): "+
				"the guard in internal/db may be simplified", r.insert, r.rollback)
		case <-time.After(5 * time.Second):
			// Stuck in Rollback although its context expired 3 s ago.
		}
		var state string
		if err := guarded.Get(&state, `SELECT state FROM pg_stat_activity WHERE application_name = 'repro_plain'`); err != nil {
			t.Fatal(err)
		}
		t.Logf("the plain connection's session is %q", state)
		// Ending the session closes the socket, which frees the reader.
		if _, err := guarded.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'repro_plain'`); err != nil {
			t.Fatal(err)
		}
		r := <-done
		var pqErr *pq.Error
		if r.insert == nil || errors.As(r.insert, &pqErr) || !strings.Contains(r.insert.Error(), "server error") {
			t.Errorf("insert error %v: want lib/pq's misparsed 'server error', not a *pq.Error", r.insert)
		}
	})

	t.Run("db.Open discards the connection", func(t *testing.T) {
		guarded.SetMaxOpenConns(1)
		var pidBefore int
		if err := guarded.Get(&pidBefore, `SELECT pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		insertErr, rollbackErr := recordWork(ctx, guarded.DB)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %s", took)
		}
		if insertErr == nil {
			t.Fatal("the insert succeeded")
		}
		t.Logf("insert: %v; rollback: %v", insertErr, rollbackErr)
		// The next statement runs on a fresh session, at once.
		var pidAfter int
		if err := guarded.GetContext(ctx, &pidAfter, `SELECT pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		if pidAfter == pidBefore {
			t.Error("the broken connection went back to the pool")
		}
		// The ticket's lock went with the old session.
		if _, err := guarded.ExecContext(ctx, `SELECT id FROM repro_tickets WHERE id = 1 FOR UPDATE NOWAIT`); err != nil {
			t.Errorf("the ticket is still locked: %v", err)
		}
		assertNoIdleInTransaction(t, guarded)
	})

	t.Run("session limits", func(t *testing.T) {
		for setting, want := range map[string]string{"statement_timeout": "30s", "idle_in_transaction_session_timeout": "30s"} {
			var got string
			if err := guarded.Get(&got, `SELECT current_setting($1)`, setting); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s = %s, want %s", setting, got, want)
			}
		}
	})
}

func assertNoIdleInTransaction(t *testing.T, conn *sqlx.DB) {
	t.Helper()
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND state LIKE 'idle in transaction%'`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d sessions idle in transaction", n)
	}
}
