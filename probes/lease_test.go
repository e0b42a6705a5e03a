package probes

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

// Two instances share the shards exactly; when one dies, the other holds
// every shard within one lease period; a newcomer gets its fair share.
func TestLeasesShareAndTakeOver(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ttl := 900 * time.Millisecond
	a, b := NewLeaser(db, "a", ttl, nil), NewLeaser(db, "b", ttl, nil)
	step := func(ls ...*Leaser) {
		t.Helper()
		for _, l := range ls {
			if err := l.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	disjointAndComplete := func(want int, ls ...*Leaser) {
		t.Helper()
		seen := map[int]string{}
		for _, l := range ls {
			for _, s := range l.Owned() {
				if other, dup := seen[s]; dup {
					t.Fatalf("shard %d owned by %s and %s", s, other, l.id)
				}
				seen[s] = l.id
			}
		}
		if len(seen) != want {
			t.Fatalf("%d shards owned, want %d", len(seen), want)
		}
	}
	step(a)
	if n := len(a.Owned()); n != Shards {
		t.Fatalf("a alone owns %d shards, want all %d", n, Shards)
	}
	// b joins: a gives back half on its next round, b claims it.
	step(b, a, b)
	disjointAndComplete(Shards, a, b)
	if na, nb := len(a.Owned()), len(b.Owned()); na != Shards/2 || nb != Shards/2 {
		t.Fatalf("shares %d/%d, want %d each", na, nb, Shards/2)
	}
	// a dies (stops renewing): within one TTL, b holds everything.
	deadline := time.Now().Add(ttl + ttl/3 + 200*time.Millisecond)
	for len(b.Owned()) < Shards {
		if time.Now().After(deadline) {
			t.Fatalf("b owns %d shards one lease period after a died", len(b.Owned()))
		}
		time.Sleep(ttl / 3)
		step(b)
	}
	// Devices hash onto shards the same way everywhere.
	owners := 0
	for i := range 100 {
		if b.Owns(fmt.Sprintf("dev-%d", i)) {
			owners++
		}
	}
	if owners != 100 {
		t.Errorf("b owns %d of 100 devices", owners)
	}
	// Graceful stop releases at once.
	c := NewLeaser(db, "c", ttl, nil)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(cctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	step(c)
	if n := len(c.Owned()); n != Shards {
		t.Errorf("after b's graceful stop, c claims %d shards at once, want %d", n, Shards)
	}
}
