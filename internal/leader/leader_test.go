package leader

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// instances opens n separate pools on one database, as n Vigía processes.
func instances(t *testing.T, n int) []*sqlx.DB {
	t.Helper()
	url := pgtest.URL(t)
	var out []*sqlx.DB
	for range n {
		conn, err := db.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		out = append(out, conn)
	}
	return out
}

// holderPID is the backend holding e's lock, seen from another session.
func holderPID(t *testing.T, conn *sqlx.DB, e *Elector) int {
	t.Helper()
	var pid int
	err := conn.Get(&pid, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, e.Key())
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestElectorSequence(t *testing.T) {
	dbs := instances(t, 3)
	ctx := context.Background()
	a, b := New(dbs[0].DB, "jobs"), New(dbs[1].DB, "jobs")
	other := New(dbs[1].DB, "another election")
	steps := []struct {
		name   string
		do     func(t *testing.T)
		e      *Elector
		leader bool
	}{
		{name: "first to ask leads", e: a, leader: true},
		{name: "second does not", e: b, leader: false},
		{name: "the leader is re-checked and stays", e: a, leader: true},
		{name: "elections by other names are independent", e: other, leader: true},
		{name: "still not while a holds it", e: b, leader: false},
		{name: "a's session is killed: a knows at its next check", e: a, leader: false, do: func(t *testing.T) {
			pid := holderPID(t, dbs[2], a)
			dbs[2].MustExec(`SELECT pg_terminate_backend($1, 5000)`, pid) // waits for the backend to exit
		}},
		{name: "b takes over", e: b, leader: true},
		{name: "a is now a follower", e: a, leader: false},
		{name: "b resigns: a takes over at once", e: a, leader: true, do: func(t *testing.T) { b.Resign() }},
		{name: "b follows", e: b, leader: false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				st.do(t)
			}
			err := st.e.IsLeader(ctx)
			if (err == nil) != st.leader {
				t.Fatalf("IsLeader: %v, want leader=%v", err, st.leader)
			}
		})
	}
	// A follower's failed try returns its connection to the pool without
	// leaving a lock behind: only the two leaders' sessions hold one.
	// (pg_locks is cluster-wide: count this test database's locks only.)
	var n int
	if err := dbs[2].Get(&n, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d advisory locks held, want 2 (a's and other's)", n)
	}
	if err := b.IsLeader(ctx); !errors.Is(err, ErrNotLeader) {
		t.Errorf("follower: %v, want ErrNotLeader", err)
	}
}

// TestTwoSchedulersNeverOverlap runs the same singleton job on two gocron
// schedulers, one per "instance", each with its own Elector on one
// database: the job never runs on both at once, only the leader runs it,
// and the follower takes over when the leader stops.
func TestTwoSchedulersNeverOverlap(t *testing.T) {
	dbs := instances(t, 2)
	var inFlight, overlaps atomic.Int32
	runs := [2]atomic.Int32{}
	type inst struct {
		s gocron.Scheduler
		e *Elector
	}
	var insts []inst
	for i := range 2 {
		e := New(dbs[i].DB, "maintenance-jobs")
		s, err := gocron.NewScheduler(gocron.WithDistributedElector(e))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.NewJob(gocron.DurationJob(10*time.Millisecond), gocron.NewTask(func() {
			if inFlight.Add(1) > 1 {
				overlaps.Add(1)
			}
			runs[i].Add(1)
			time.Sleep(15 * time.Millisecond)
			inFlight.Add(-1)
		}), gocron.WithSingletonMode(gocron.LimitModeReschedule), gocron.WithName("sweep"))
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst{s, e})
	}
	var once sync.Once
	stop := func(i int) {
		insts[i].s.Shutdown()
		insts[i].e.Resign()
	}
	t.Cleanup(func() { once.Do(func() { stop(0); stop(1) }) })
	for _, in := range insts {
		in.s.Start()
	}
	waitFor(t, func() bool { return runs[0].Load()+runs[1].Load() >= 10 })
	leader := 0
	if runs[1].Load() > 0 {
		leader = 1
	}
	follower := 1 - leader
	if runs[follower].Load() != 0 {
		t.Fatalf("both instances ran the job: %d and %d runs", runs[0].Load(), runs[1].Load())
	}
	stop(leader)
	waitFor(t, func() bool { return runs[follower].Load() >= 5 })
	once.Do(func() { stop(follower) })
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("the job ran on both instances at once %d times", n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
