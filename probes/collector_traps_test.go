package probes

import (
	"strings"
	"testing"
	"time"
)

func forwardedTrap(seq int64, device string, at time.Time, oid string, varbinds ...TrapVarbind) RemoteCheck {
	return RemoteCheck{Seq: seq, Device: device, Trap: &Trap{At: at, Source: "10.0.0.2:1162", Version: "v2c", OID: oid, Varbinds: varbinds}}
}

// A trap a collector forwards is recorded once, at the instant the
// collector heard it, by the rules serve's listener applies; the condition
// it raises weighs on the device's next check in the stream, and the one
// clearing it lifts it.
func TestIngestForwardedTrap(t *testing.T) {
	h := newCollectorHarness(t)
	t0 := h.clock.Now().Add(-10 * time.Minute)
	h.ingest(check(1, "a2", OK, t0), check(2, "a2", OK, t0.Add(time.Minute)))
	if s, _ := h.engine.Status("a2"); s.State != StateUp {
		t.Fatalf("a2 is %s", s.State)
	}
	heard := t0.Add(90 * time.Second)
	onBattery := forwardedTrap(3, "a2", heard, ".1.3.6.1.2.1.33.2.1")
	for range 2 { // the batch pushed again: a lost answer
		h.ingest(onBattery, check(4, "a2", OK, heard.Add(time.Second)))
	}
	var row struct {
		N      int       `db:"n"`
		At     time.Time `db:"at"`
		Rule   string    `db:"rule"`
		Since  time.Time `db:"since"`
		Source string    `db:"source"`
	}
	if err := h.db.Get(&row, `SELECT count(*) OVER () AS n, t.at, t.rule, c.since, t.source FROM device_traps t
		JOIN device_trap_conditions c ON c.device_id = t.device_id AND c.condition = t.condition WHERE t.device_id = 'a2'`); err != nil {
		t.Fatal(err)
	}
	if row.N != 1 || !row.At.Equal(heard) || !row.Since.Equal(heard) || row.Rule != "upsTrapOnBattery" || row.Source != "10.0.0.2:1162" {
		t.Errorf("trap recorded %+v, want once at %s by upsTrapOnBattery", row, heard)
	}
	st, _ := h.engine.Status("a2")
	if st.State != StateDegraded || !strings.Contains(st.LastDetail, "UPS running on battery") {
		t.Errorf("a2 after its trap: %s %q, want degraded on battery", st.State, st.LastDetail)
	}
	if n := h.count(`SELECT count(*) FROM collector_results WHERE device_id = 'a2' AND outcome = 'trap' AND at = $1`, heard); n != 1 {
		t.Errorf("%d stream rows for the trap", n)
	}

	mains := forwardedTrap(5, "a2", heard.Add(time.Minute), ".1.3.6.1.2.1.33.2.4",
		TrapVarbind{OID: ".1.3.6.1.2.1.33.1.6.2.1.2.1", Type: "ObjectIdentifier", Value: ".1.3.6.1.2.1.33.1.6.3.2"})
	h.ingest(mains, check(6, "a2", OK, heard.Add(61*time.Second)), check(7, "a2", OK, heard.Add(62*time.Second)))
	if n := h.count(`SELECT count(*) FROM device_trap_conditions WHERE device_id = 'a2'`); n != 0 {
		t.Errorf("%d conditions standing after the return to mains", n)
	}
	if s, _ := h.engine.Status("a2"); s.State != StateUp {
		t.Errorf("a2 back on mains is %s", s.State)
	}
}

func TestValidForwardedTrap(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ok := Trap{At: now, Source: "10.0.0.2:1162", Version: "v2c", OID: ".1.3.6.1.6.3.1.1.5.1",
		Varbinds: []TrapVarbind{{OID: ".1.3.6.1.2.1.1.5.0", Type: "OctetString", Value: "ups"}}}
	for _, tc := range []struct {
		name   string
		change func(*Trap)
		want   string
	}{
		{"valid", func(*Trap) {}, ""},
		{"no instant", func(t *Trap) { t.At = time.Time{} }, "instant"},
		{"ahead of the NOC", func(t *Trap) { t.At = now.Add(time.Hour) }, "ahead of the NOC's clock"},
		{"unknown version", func(t *Trap) { t.Version = "v4" }, "version"},
		{"too many varbinds", func(t *Trap) { t.Varbinds = make([]TrapVarbind, maxTrapVarbinds+1) }, "more than 64 varbinds"},
		{"a long value", func(t *Trap) { t.Varbinds[0].Value = strings.Repeat("x", maxTrapValueBytes+1) }, "value 1024"},
		{"a NUL", func(t *Trap) { t.Varbinds[0].Value = "a\x00b" }, "without NUL"},
		{"a long OID", func(t *Trap) { t.OID = "." + strings.Repeat("1.", 200) }, "trap oid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := ok
			tr.Varbinds = append([]TrapVarbind(nil), ok.Varbinds...)
			tc.change(&tr)
			err := validCheck(RemoteCheck{Seq: 1, Device: "a2", Trap: &tr}, now)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	both := RemoteCheck{Seq: 1, Device: "a2", Trap: &ok, Results: []Result{{Prober: "tcp", Outcome: OK, At: now}}}
	if err := validCheck(both, now); err == nil {
		t.Error("a check with results and a trap is accepted")
	}
}

func TestCutText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"añb", 2, "a"}, // ñ is two bytes: not split
	} {
		if got := cutText(tc.in, tc.n); got != tc.want {
			t.Errorf("cutText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
