package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/intake"
	"github.com/vigia-noc/vigia/probes"
)

// A PACS whose archive fills at a steady rate (with some daily wobble), as
// a real snmpd reports it, polled every simulated six hours on a driven
// clock: no ticket while the forecast is over 14 days, exactly one when it
// crosses, updated (title, timeline, severity 2 under 3 days) and never
// duplicated while the trend holds, and solved when the disk is cleaned.
// The forecast date stays within a day of the truth.
func TestStorageFillsUpOneTicket(t *testing.T) {
	const (
		units     = 4096
		size      = 250_000_000 // units: about 1 TB
		startUsed = 0.50        // of size
		perDay    = 0.015       // of size, per day: full 33⅓ days after the start
		step      = 6 * time.Hour
	)
	agent := snmptest.StartWithStorage(t, []snmptest.Volume{{Descr: "/archive", Units: units, Size: size, Used: size / 2}})
	conn := pgtest.DB(t)
	ctx := context.Background()
	inv := fmt.Sprintf(`
customers:
  - id: hsr
    name: Hospital San Rafael
    country: CO
    time_zone: America/Bogota
    language: en
    sites:
      - id: hsr-main
        name: Sede principal
        kind: hospital
        devices:
          - id: hsr-pacs
            name: PACS central
            kind: pacs
            role: core
            snmp: {host: 127.0.0.1, port: %d, version: v2c, community: %s}
            probe: {interval: 60s, retries: 1}
`, agent.Port, snmptest.Community)
	f, err := assets.ParseFile("inventory.yaml", []byte(inv), parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	store := assets.NewStore(conn)
	if _, err := store.Import(ctx, f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(start)
	reg := prometheus.NewRegistry()
	trend := probes.NewStorageTrend(conn, probes.StorageTrendConfig{Clock: clock, SampleEvery: step, Registerer: reg})
	snmp := probes.NewSNMPProber()
	snmp.Trend = trend
	engine, err := probes.NewEngine(ctx, probes.NewStore(conn), store, probes.Config{Clock: clock,
		Probers: map[string]probes.Prober{"snmp": snmp}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	tickets := maintenance.NewStore(conn, store, maintenance.Options{})
	consumer := intake.NewOutageConsumer(tickets, store, clock.Now, slog.New(slog.DiscardHandler))

	fullAt := start.Add(time.Duration((1 - startUsed) / perDay * float64(24*time.Hour)))
	type ticketRow struct {
		N        int    `db:"n"`
		Title    string `db:"title"`
		Severity int    `db:"severity"`
		Status   string `db:"status"`
	}
	read := func() ticketRow {
		t.Helper()
		var r ticketRow
		if err := conn.Get(&r, `SELECT count(*) OVER () AS n, title, severity, status FROM tickets
			WHERE auto_key = 'storage:hsr-pacs:/archive' ORDER BY id DESC LIMIT 1`); err != nil && !strings.Contains(err.Error(), "no rows") {
			t.Fatal(err)
		}
		return r
	}
	poll := func(used float64) {
		t.Helper()
		agent.SetStorage([]snmptest.Volume{{Descr: "/archive", Units: units, Size: size, Used: int64(used * size)}})
		if err := engine.Check(ctx, "hsr-pacs"); err != nil {
			t.Fatal(err)
		}
		if st, _ := engine.Status("hsr-pacs"); st.State != probes.StateUp && st.State != probes.StateDegraded {
			t.Fatalf("hsr-pacs is %s: %s", st.State, st.LastDetail)
		}
		if _, err := consumer.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var openedAt time.Time
	for now := start; fullAt.Sub(now) > 2*24*time.Hour; now = now.Add(step) {
		clock.Advance(now.Sub(clock.Now()))
		days := now.Sub(start).Hours() / 24
		// A daily wobble of ±0.3 % of the disk: studies arrive in the day.
		poll(startUsed + perDay*days + 0.003*math.Sin(2*math.Pi*days))
		left := fullAt.Sub(now)
		r := read()
		switch {
		case r.N == 0 && left < 13*24*time.Hour:
			t.Fatalf("no ticket with %s left", left)
		case r.N == 1 && openedAt.IsZero():
			openedAt = now
			if left > 15*24*time.Hour || left < 13*24*time.Hour {
				t.Errorf("ticket opened with %s left, want about 14 days", left)
			}
			if r.Severity != 3 {
				t.Errorf("opened with severity %d, want 3", r.Severity)
			}
			t.Logf("opened at %s (%.1f days left): %q", now.Format(time.RFC3339), left.Hours()/24, r.Title)
		case r.N > 1:
			t.Fatalf("%d tickets for one volume at %s", r.N, now)
		}
	}
	if openedAt.IsZero() {
		t.Fatal("no ticket")
	}
	r := read()
	if r.N != 1 || r.Severity != 2 || r.Status == "closed" {
		t.Errorf("two days before full: %d tickets, severity %d, %s; want 1, 2, open", r.N, r.Severity, r.Status)
	}
	if want := "PACS storage full in ~"; !strings.HasPrefix(r.Title, want) || !strings.Contains(r.Title, "(/archive, PACS central)") {
		t.Errorf("title %q", r.Title)
	}
	var updates int
	if err := conn.Get(&updates, `SELECT count(*) FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
		WHERE t.auto_key = 'storage:hsr-pacs:/archive' AND e.kind = 'storage_forecast'`); err != nil {
		t.Fatal(err)
	}
	if updates < 5 {
		t.Errorf("%d forecast updates on the ticket, want one per day", updates)
	}
	// Every forecast the ticket carries (at opening and each update),
	// against the truth.
	var forecasts []time.Time
	if err := conn.Select(&forecasts, `SELECT (e.data->>'full_at')::timestamptz FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
		WHERE t.auto_key = 'storage:hsr-pacs:/archive' AND e.data ? 'full_at' ORDER BY e.id`); err != nil {
		t.Fatal(err)
	}
	if len(forecasts) != updates+1 {
		t.Errorf("%d forecasts on the timeline, want the opening's and %d updates", len(forecasts), updates)
	}
	for _, predicted := range forecasts {
		if d := predicted.Sub(fullAt); d > 24*time.Hour || d < -24*time.Hour {
			t.Errorf("predicted full at %s, truth %s (off by %s)", predicted, fullAt, d)
		}
	}
	if v := fullIn(t, reg); v <= 0 || v > 3*86400 {
		t.Errorf("vigia_storage_full_in_seconds = %v, want under 3 days", v)
	}

	// The archive is cleaned: the trend goes down and the ticket is solved.
	now := clock.Now()
	for i := range 8 {
		now = now.Add(step)
		clock.Advance(step)
		poll(0.40 - 0.01*float64(i))
	}
	// Readings older than twice the window are gone.
	var oldest time.Time
	if err := conn.Get(&oldest, `SELECT min(at) FROM storage_samples WHERE device_id = 'hsr-pacs'`); err != nil {
		t.Fatal(err)
	}
	if limit := clock.Now().Add(-28 * 24 * time.Hour); oldest.Before(limit) {
		t.Errorf("oldest reading kept %s, want none before %s", oldest, limit)
	}
	if r := read(); r.N != 1 || r.Status != "solved" {
		t.Errorf("after cleaning: %d tickets, %s; want 1 solved", r.N, r.Status)
	}
	if v := fullIn(t, reg); v != -1 {
		t.Errorf("vigia_storage_full_in_seconds still %v after the trend turned", v)
	}
}

// fullIn is the PACS archive's vigia_storage_full_in_seconds; -1 when absent.
func fullIn(t *testing.T, reg *prometheus.Registry) float64 {
	v, ok := metricSamples(t, reg)[`vigia_storage_full_in_seconds{customer="hsr",device="hsr-pacs",site="hsr-main",volume="/archive"}`]
	if !ok {
		return -1
	}
	return v
}
