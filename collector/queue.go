package collector

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigia-noc/vigia/probes"
)

// Queue is the collector's store and forward: checks wait on disk, in
// sequence order, until the NOC has applied them. It is a directory of
// segment files, each a run of records
//
//	length uint32 | crc32c(payload) uint32 | payload (JSON of a record)
//
// appended and fsync'd one by one; a segment is deleted once every record
// in it is acknowledged, or dropped whole (oldest first, counted) when the
// queue outgrows its bounds. A torn record at the end of the last segment
// (a crash mid-append) is cut off on open.
type Queue struct {
	dir          string
	maxBytes     int64
	maxAge       time.Duration
	segmentBytes int64

	mu       sync.Mutex
	segments []*segment // oldest first; the last one is appended to
	file     *os.File   // the last segment, open for appends
	nextSeq  int64
	acked    int64 // every record up to this sequence is applied at the NOC
	dropped  int64 // records dropped by the bounds since open
	// rotateNext starts a new segment at the next append.
	rotateNext bool
	// readFrom is where the first unacknowledged record starts, when
	// known (its seq is acked's): Batch reads on from there instead of
	// decoding a segment's acknowledged records again at every push.
	// batchEnd is where the last batch handed out ends, for Ack.
	readFrom, batchEnd position
}

// position is the end of record seq in a segment file: where the next
// record starts.
type position struct {
	path   string
	offset int64
	seq    int64
}

type segment struct {
	path   string
	first  int64 // sequence of its first record
	last   int64
	count  int
	bytes  int64
	oldest time.Time // enqueue instant of its first record
	newest time.Time
}

// record is one queued check with the instant it was queued.
type record struct {
	Queued time.Time          `json:"queued"`
	Check  probes.RemoteCheck `json:"check"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

const (
	recordHeader = 8
	maxRecord    = 1 << 20 // a check is far smaller; larger is corruption
	ackFile      = "acked"
)

// QueueOptions bound the queue.
type QueueOptions struct {
	MaxBytes     int64         // default 256 MiB
	MaxAge       time.Duration // default 7 days
	SegmentBytes int64         // default 4 MiB
}

// OpenQueue opens (or creates) the queue in dir and recovers what it held.
func OpenQueue(dir string, o QueueOptions) (*Queue, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 256 << 20
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 4 << 20
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("collector: queue directory: %w", err)
	}
	q := &Queue{dir: dir, maxBytes: o.MaxBytes, maxAge: o.MaxAge, segmentBytes: o.SegmentBytes}
	if b, err := os.ReadFile(filepath.Join(dir, ackFile)); err == nil {
		if q.acked, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return nil, fmt.Errorf("collector: queue %s: %w", ackFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("collector: queue: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		return nil, fmt.Errorf("collector: queue: %w", err)
	}
	slices.Sort(names) // zero-padded first sequence: name order is sequence order
	q.nextSeq = q.acked + 1
	for i, name := range names {
		seg, err := scanSegment(name, i == len(names)-1)
		if err != nil {
			return nil, err
		}
		if seg.count == 0 || seg.last <= q.acked {
			if err := os.Remove(name); err != nil {
				return nil, fmt.Errorf("collector: queue: %w", err)
			}
			continue
		}
		q.segments = append(q.segments, seg)
		q.nextSeq = max(q.nextSeq, seg.last+1)
	}
	return q, nil
}

// scanSegment reads a segment's records; in the last segment a torn or
// corrupt tail is truncated away (it was never acknowledged to anyone).
func scanSegment(path string, last bool) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("collector: queue: %w", err)
	}
	defer f.Close()
	seg := &segment{path: path}
	r := bufio.NewReader(f)
	var good int64
	for {
		rec, n, err := readRecord(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !last {
				return nil, fmt.Errorf("collector: queue segment %s corrupt at byte %d: %w", path, good, err)
			}
			if err := f.Truncate(good); err != nil {
				return nil, fmt.Errorf("collector: queue: cut torn record: %w", err)
			}
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("collector: queue: %w", err)
			}
			break
		}
		good += n
		seg.add(rec, n)
	}
	return seg, nil
}

func (s *segment) add(rec record, n int64) {
	if s.count == 0 {
		s.first, s.oldest = rec.Check.Seq, rec.Queued
	}
	s.last, s.newest = rec.Check.Seq, rec.Queued
	s.count++
	s.bytes += n
}

func readRecord(r *bufio.Reader) (record, int64, error) {
	var rec record
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return rec, 0, errors.New("torn header")
		}
		return rec, 0, err
	}
	size := binary.LittleEndian.Uint32(h[:4])
	if size == 0 || size > maxRecord {
		return rec, 0, fmt.Errorf("record length %d", size)
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return rec, 0, errors.New("torn record")
	}
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(h[4:]) {
		return rec, 0, errors.New("checksum mismatch")
	}
	if err := json.Unmarshal(payload, &rec); err != nil {
		return rec, 0, fmt.Errorf("record: %w", err)
	}
	return rec, int64(recordHeader + size), nil
}

// SetFloor makes the next sequence number at least floor+1: the NOC's
// last applied number, for a collector whose disk was wiped or replaced
// (its new results must not look like repeats).
func (q *Queue) SetFloor(floor int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if floor >= q.nextSeq {
		q.nextSeq = floor + 1
		// A segment holds consecutive numbers: the next one starts anew.
		q.rotateNext = true
	}
}

// Append numbers a check, writes it and fsyncs it before returning.
func (q *Queue) Append(ch probes.RemoteCheck, now time.Time) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch.Seq = q.nextSeq
	payload, err := json.Marshal(record{Queued: now, Check: ch})
	if err != nil {
		return 0, fmt.Errorf("collector: queue: %w", err)
	}
	if len(payload) > maxRecord {
		return 0, fmt.Errorf("collector: queue: a check of %d bytes is too large", len(payload))
	}
	buf := make([]byte, recordHeader+len(payload))
	binary.LittleEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	copy(buf[recordHeader:], payload)
	tail := q.tail()
	switch {
	case tail == nil || tail.bytes+int64(len(buf)) > q.segmentBytes || q.rotateNext:
		if err := q.rotate(ch.Seq); err != nil {
			return 0, err
		}
		q.rotateNext = false
		tail = q.tail()
	case q.file == nil:
		// After a restart: append to the last segment recovered.
		f, err := os.OpenFile(tail.path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, fmt.Errorf("collector: queue: %w", err)
		}
		q.file = f
	}
	if _, err := q.file.Write(buf); err != nil {
		return 0, fmt.Errorf("collector: queue append: %w", err)
	}
	if err := q.file.Sync(); err != nil {
		return 0, fmt.Errorf("collector: queue fsync: %w", err)
	}
	tail.add(record{Queued: now, Check: ch}, int64(len(buf)))
	q.nextSeq++
	q.enforce(now)
	return ch.Seq, nil
}

func (q *Queue) tail() *segment {
	if len(q.segments) == 0 {
		return nil
	}
	return q.segments[len(q.segments)-1]
}

// rotate starts a new segment whose first record is seq.
func (q *Queue) rotate(seq int64) error {
	if q.file != nil {
		q.file.Close()
		q.file = nil
	}
	path := filepath.Join(q.dir, fmt.Sprintf("%020d.seg", seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("collector: queue new segment: %w", err)
	}
	if err := syncDir(q.dir); err != nil {
		f.Close()
		return err
	}
	q.file = f
	q.segments = append(q.segments, &segment{path: path})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("collector: queue: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("collector: queue: sync directory: %w", err)
	}
	return nil
}

// enforce drops the oldest segments while the queue is over its size or
// holds records older than its age: the newest results are the ones that
// still decide anything. The segment being appended to is never dropped.
func (q *Queue) enforce(now time.Time) {
	for len(q.segments) > 1 {
		oldest := q.segments[0]
		var total int64
		for _, s := range q.segments {
			total += s.bytes
		}
		if total <= q.maxBytes && now.Sub(oldest.newest) <= q.maxAge {
			return
		}
		unacked := 0
		if oldest.last > q.acked {
			unacked = int(oldest.last - max(q.acked, oldest.first-1))
			unacked = min(unacked, oldest.count)
		}
		q.dropped += int64(unacked)
		os.Remove(oldest.path)
		q.segments = q.segments[1:]
	}
}

// Batch returns the oldest unacknowledged checks, at most max of them and
// about maxBytes of JSON.
func (q *Queue) Batch(limit int, maxBytes int) ([]probes.RemoteCheck, error) {
	q.mu.Lock()
	// Copies: appends go on while the files are read.
	segs := make([]segment, len(q.segments))
	for i, s := range q.segments {
		segs[i] = *s
	}
	acked, from := q.acked, q.readFrom
	q.mu.Unlock()
	var out []probes.RemoteCheck
	var end position
	size := 0
	for _, s := range segs {
		if s.last <= acked {
			continue
		}
		f, err := os.Open(s.path)
		if errors.Is(err, os.ErrNotExist) {
			continue // dropped meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("collector: queue read: %w", err)
		}
		var offset int64
		if from.path == s.path && from.seq == acked {
			if offset, err = f.Seek(from.offset, io.SeekStart); err != nil {
				f.Close()
				return nil, fmt.Errorf("collector: queue read: %w", err)
			}
		}
		r := bufio.NewReader(f)
		for {
			rec, sz, err := readRecord(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// The last segment may end in an append still being written.
				break
			}
			if rec.Check.Seq > s.last {
				break // appended after the snapshot
			}
			offset += sz
			if rec.Check.Seq <= acked {
				continue
			}
			if len(out) > 0 && (len(out) >= limit || size+int(sz) > maxBytes) {
				f.Close()
				q.setBatchEnd(end)
				return out, nil
			}
			out = append(out, rec.Check)
			size += int(sz)
			end = position{path: s.path, offset: offset, seq: rec.Check.Seq}
		}
		f.Close()
	}
	q.setBatchEnd(end)
	return out, nil
}

func (q *Queue) setBatchEnd(p position) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batchEnd = p
}

// Ack records that every check up to seq is applied at the NOC, durably,
// and deletes the segments that hold nothing else.
func (q *Queue) Ack(seq int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if seq <= q.acked {
		return nil
	}
	tmp := filepath.Join(q.dir, ackFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(seq, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("collector: queue ack: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("collector: queue ack: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(q.dir, ackFile)); err != nil {
		return fmt.Errorf("collector: queue ack: %w", err)
	}
	if err := syncDir(q.dir); err != nil {
		return err
	}
	q.acked = seq
	if q.batchEnd.seq == seq {
		q.readFrom = q.batchEnd
	}
	for len(q.segments) > 1 && q.segments[0].last <= seq {
		os.Remove(q.segments[0].path)
		q.segments = q.segments[1:]
	}
	return nil
}

// QueueStats is what the queue holds.
type QueueStats struct {
	Depth   int           // checks not yet applied at the NOC
	Bytes   int64         // on disk
	Oldest  time.Duration // age of the oldest check waiting
	Dropped int64         // checks dropped by the bounds since open
	NextSeq int64
}

// Stats reports the queue's depth, size, oldest age and drops.
func (q *Queue) Stats(now time.Time) QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := QueueStats{Dropped: q.dropped, NextSeq: q.nextSeq}
	for _, s := range q.segments {
		st.Bytes += s.bytes
		if s.count == 0 || s.last <= q.acked {
			continue
		}
		// Sequence numbers run without gaps inside a segment.
		st.Depth += min(s.count, int(s.last-max(q.acked, s.first-1)))
		if st.Oldest == 0 {
			// Its first record is the oldest waiting, at worst.
			st.Oldest = now.Sub(s.oldest)
		}
	}
	return st
}

// Close closes the segment being appended to.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.file == nil {
		return nil
	}
	err := q.file.Close()
	q.file = nil
	return err
}
