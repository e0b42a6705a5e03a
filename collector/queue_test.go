package collector

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/probes"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func appendN(t *testing.T, q *Queue, n int, at time.Time) []int64 {
	t.Helper()
	var seqs []int64
	for i := range n {
		seq, err := q.Append(probes.RemoteCheck{Device: "d1", Results: []probes.Result{{Prober: "tcp", Outcome: probes.OK,
			At: at.Add(time.Duration(i) * time.Second), Detail: "rtt 1ms"}}}, at.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func batchSeqs(t *testing.T, q *Queue, limit int) []int64 {
	t.Helper()
	b, err := q.Batch(limit, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, c := range b {
		out = append(out, c.Seq)
	}
	return out
}

func TestQueueSurvivesRestartAndAcks(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, QueueOptions{SegmentBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	seqs := appendN(t, q, 30, t0)
	if seqs[0] != 1 || seqs[29] != 30 {
		t.Fatalf("sequence %v", seqs)
	}
	if got := batchSeqs(t, q, 10); len(got) != 10 || got[0] != 1 || got[9] != 10 {
		t.Errorf("first batch %v", got)
	}
	if err := q.Ack(10); err != nil {
		t.Fatal(err)
	}
	q.Close()

	// A crash: reopen from disk.
	q, err = OpenQueue(dir, QueueOptions{SegmentBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	st := q.Stats(t0.Add(time.Minute))
	if st.Depth != 20 || st.NextSeq != 31 || st.Oldest < 30*time.Second {
		t.Errorf("after restart %+v", st)
	}
	if got := batchSeqs(t, q, 100); len(got) != 20 || got[0] != 11 || got[19] != 30 {
		t.Errorf("after restart the batch is %v", got)
	}
	if seq, _ := q.Append(probes.RemoteCheck{Device: "d1", Results: []probes.Result{{Outcome: probes.OK, At: t0}}}, t0); seq != 31 {
		t.Errorf("numbering goes on at %d", seq)
	}
	if err := q.Ack(31); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(t0); st.Depth != 0 || st.Oldest != 0 {
		t.Errorf("all acknowledged: %+v", st)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("%d segments left after every record was acknowledged, want only the one appended to", len(segs))
	}
}

func TestQueueCutsATornTail(t *testing.T) {
	dir := t.TempDir()
	q, err := OpenQueue(dir, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 5, t0)
	q.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, '{', '"'}) // a record cut mid-write by a crash
	f.Close()
	q, err = OpenQueue(dir, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := batchSeqs(t, q, 100); len(got) != 5 {
		t.Errorf("after a torn append: %v", got)
	}
	if seq := appendN(t, q, 1, t0); seq[0] != 6 {
		t.Errorf("next sequence %d", seq[0])
	}
	if got := batchSeqs(t, q, 100); len(got) != 6 || got[5] != 6 {
		t.Errorf("append after the cut: %v", got)
	}
}

func TestQueueBoundsDropOldestAndCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     QueueOptions
		at       func(i int) time.Time
		wantDrop bool
	}{
		{"size", QueueOptions{MaxBytes: 2048, SegmentBytes: 512}, func(i int) time.Time { return t0 }, true},
		{"age", QueueOptions{MaxAge: time.Hour, SegmentBytes: 512}, func(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Minute) }, true},
		{"within bounds", QueueOptions{SegmentBytes: 512}, func(i int) time.Time { return t0 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := OpenQueue(t.TempDir(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 60 {
				if _, err := q.Append(probes.RemoteCheck{Device: "d1", Results: []probes.Result{{Outcome: probes.OK, At: tc.at(i)}}}, tc.at(i)); err != nil {
					t.Fatal(err)
				}
			}
			st := q.Stats(tc.at(59))
			got := batchSeqs(t, q, 1000)
			if int64(len(got))+st.Dropped != 60 || int64(st.Depth) != int64(len(got)) {
				t.Errorf("%d queued + %d dropped != 60 (depth %d)", len(got), st.Dropped, st.Depth)
			}
			if (st.Dropped > 0) != tc.wantDrop {
				t.Errorf("dropped %d", st.Dropped)
			}
			// The newest are kept, in order, without holes.
			if len(got) == 0 || got[len(got)-1] != 60 || got[0] != 60-int64(len(got))+1 {
				t.Errorf("kept %v", got)
			}
		})
	}
}

func TestQueueFloorAfterALostDisk(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 2, t0)
	q.SetFloor(500) // the NOC applied up to 500 from this collector's old disk
	q.SetFloor(3)   // lower floors change nothing
	seqs := appendN(t, q, 2, t0)
	if seqs[0] != 501 || seqs[1] != 502 {
		t.Errorf("after the floor: %v", seqs)
	}
	if got := batchSeqs(t, q, 100); len(got) != 4 || got[1] != 2 || got[2] != 501 {
		t.Errorf("queued %v", got)
	}
	if st := q.Stats(t0); st.Depth != 4 {
		t.Errorf("depth %d", st.Depth)
	}
}

// Pushes read on from the last acknowledged record while appends go on:
// every check is handed out in order, again until acknowledged, and never
// after.
func TestQueueBatchesWhileAppending(t *testing.T) {
	q, err := OpenQueue(t.TempDir(), QueueOptions{SegmentBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 5, t0)
	if got := batchSeqs(t, q, 3); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("first %v", got)
	}
	if got := batchSeqs(t, q, 3); len(got) != 3 || got[0] != 1 {
		t.Fatalf("unacknowledged, again: %v", got)
	}
	if err := q.Ack(3); err != nil {
		t.Fatal(err)
	}
	appendN(t, q, 2, t0)
	if got := batchSeqs(t, q, 100); len(got) != 4 || got[0] != 4 || got[3] != 7 {
		t.Fatalf("after the ack %v", got)
	}

	const total = 600
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range total - 7 {
			if _, err := q.Append(probes.RemoteCheck{Device: "d1", Results: []probes.Result{{Outcome: probes.OK, At: t0}}}, t0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	next := int64(4)
	for deadline := time.Now().Add(20 * time.Second); next <= total && time.Now().Before(deadline); {
		b, err := q.Batch(37, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b {
			if c.Seq != next {
				t.Fatalf("handed out %d, want %d", c.Seq, next)
			}
			next++
		}
		if len(b) > 0 {
			if err := q.Ack(b[len(b)-1].Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	if next != total+1 {
		t.Fatalf("delivered up to %d of %d", next-1, total)
	}
	if got := batchSeqs(t, q, 100); len(got) != 0 {
		t.Errorf("after every ack: %v", got)
	}
}
