package imaptest

import (
	"testing"
	"time"
)

// The harness itself: a message appended is there, unseen, with its date.
func TestAppendAndCount(t *testing.T) {
	s := Start(t)
	s.Append(t, "INBOX", time.Date(2026, 11, 13, 22, 30, 0, 0, time.UTC), []byte("From: a@b.test\r\nSubject: hi\r\nMessage-ID: <1@b.test>\r\n\r\nbody\r\n"))
	if total, seen := s.Count(t, "INBOX"); total != 1 || seen != 0 {
		t.Fatalf("INBOX holds %d (%d seen), want 1 unseen", total, seen)
	}
	if total, _ := s.Count(t, "Archive"); total != 0 {
		t.Fatalf("Archive holds %d, want none", total)
	}
}
