package probes

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// EventStorageTrend is published when a volume's forecast changes what its
// ticket says: it starts filling within the threshold, its rounded days or
// severity change, or it stops.
const EventStorageTrend = "storage_trend"

// StorageTrend turns the fixed disks the SNMP prober reads into a forecast:
// it keeps one hrStorage sample per volume per SampleEvery, fits a straight
// line (least squares) to the samples of the last Window, and says when the
// line reaches the volume's size. A volume predicted full within Threshold
// publishes a storage_trend event (the ticketing stage opens one ticket per
// volume); the event is published again only when the rounded days or the
// severity change, and once more when the trend stops filling the volume.
//
// The trend is the prober's helper, not a prober: it judges nothing of the
// device's state (the percentage threshold of the SNMP prober does).
type StorageTrend struct {
	cfg   StorageTrendConfig
	db    *sqlx.DB
	gauge *prometheus.GaugeVec

	mu   sync.Mutex
	last map[string]time.Time // device\x00volume -> last sample kept
}

// StorageTrendConfig tunes the forecast. Zero values take the defaults
// noted.
type StorageTrendConfig struct {
	Clock clockwork.Clock // default: the real clock
	Log   *slog.Logger
	// Window is how far back samples are fitted. Default 14 days.
	Window time.Duration
	// SampleEvery keeps at most one sample per volume per step. Default 1 h.
	SampleEvery time.Duration
	// MinSpan is how far apart the oldest and newest samples in the window
	// must be before anything is predicted. Default 1 day: a line through
	// an afternoon says nothing about weeks.
	MinSpan time.Duration
	// Threshold: a volume predicted full sooner opens a ticket. Default 14 days.
	Threshold time.Duration
	// Urgent: predicted full sooner is severity UrgentSeverity (default 3 days, Sev 2).
	Urgent time.Duration
	// Severity of a ticket between Urgent and Threshold. Default 3.
	Severity int
	// UrgentSeverity. Default 2.
	UrgentSeverity int
	// Registerer receives vigia_storage_full_in_seconds; nil: no metric.
	Registerer prometheus.Registerer
}

// NewStorageTrend returns a trend writing to db.
func NewStorageTrend(db *sqlx.DB, cfg StorageTrendConfig) *StorageTrend {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	day := 24 * time.Hour
	cfg.Window = cmp0(cfg.Window, 14*day)
	cfg.SampleEvery = cmp0(cfg.SampleEvery, time.Hour)
	cfg.MinSpan = cmp0(cfg.MinSpan, day)
	cfg.Threshold = cmp0(cfg.Threshold, 14*day)
	cfg.Urgent = cmp0(cfg.Urgent, 3*day)
	cfg.Severity = cmp0(cfg.Severity, 3)
	cfg.UrgentSeverity = cmp0(cfg.UrgentSeverity, 2)
	t := &StorageTrend{cfg: cfg, db: db, last: map[string]time.Time{}}
	if cfg.Registerer != nil {
		t.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vigia_storage_full_in_seconds",
			Help: "Seconds until the volume is full at its least-squares trend; absent while the volume is not filling."},
			[]string{"customer", "site", "device", "volume"})
		cfg.Registerer.MustRegister(t.gauge)
	}
	return t
}

func cmp0[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// StorageForecast is the fitted trend of one volume.
type StorageForecast struct {
	Volume    string
	Samples   int
	UsedBytes float64 // the line's value now
	SizeBytes int64
	// BytesPerDay is the slope; Filling is false when it is not positive
	// or the samples span less than MinSpan.
	BytesPerDay float64
	Filling     bool
	FullAt      time.Time
	FullIn      time.Duration
}

// storageSample is one reading of a volume.
type storageSample struct {
	At   time.Time `db:"at"`
	Used int64     `db:"used_bytes"`
	Size int64     `db:"size_bytes"`
}

// fitStorage fits used bytes against time by least squares and extrapolates
// to the newest sample's size. It is pure, for tests.
func fitStorage(samples []storageSample, now time.Time, minSpan time.Duration) StorageForecast {
	f := StorageForecast{Samples: len(samples)}
	if len(samples) < 2 {
		return f
	}
	t0 := samples[0].At
	var sx, sy float64
	for _, s := range samples {
		sx += s.At.Sub(t0).Seconds()
		sy += float64(s.Used)
	}
	n := float64(len(samples))
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for _, s := range samples {
		dx := s.At.Sub(t0).Seconds() - mx
		sxy += dx * (float64(s.Used) - my)
		sxx += dx * dx
	}
	last := samples[len(samples)-1]
	f.SizeBytes = last.Size
	if sxx == 0 || last.At.Sub(t0) < minSpan {
		return f
	}
	slope := sxy / sxx // bytes per second
	f.BytesPerDay = slope * 86400
	f.UsedBytes = my + slope*(now.Sub(t0).Seconds()-mx)
	if slope <= 0 {
		return f
	}
	left := math.Max(float64(last.Size)-f.UsedBytes, 0) / slope
	if left > float64(math.MaxInt64/int64(time.Second)) {
		return f // centuries away: not filling in any sense that matters
	}
	f.Filling = true
	f.FullIn = time.Duration(left * float64(time.Second))
	f.FullAt = now.Add(f.FullIn)
	return f
}

// observe keeps a sample of each volume due one, and re-judges those
// volumes' trends. Errors are logged: a forecast not made never fails a
// probe.
func (t *StorageTrend) observe(ctx context.Context, d assets.Device, vols []snmpVolume) {
	now := t.cfg.Clock.Now()
	var due []snmpVolume
	t.mu.Lock()
	for _, v := range vols {
		key := d.ID + "\x00" + v.Name
		if last, seen := t.last[key]; !seen || now.Sub(last) >= t.cfg.SampleEvery {
			due = append(due, v)
		}
	}
	t.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if err := t.record(ctx, d, due, now); err != nil {
		t.cfg.Log.Warn("storage trend not updated", "device", d.ID, "err", err)
		return
	}
	t.mu.Lock()
	for _, v := range due {
		t.last[d.ID+"\x00"+v.Name] = now
	}
	t.mu.Unlock()
}

// StorageTrendDetail is a storage_trend event's detail: every volume of the
// device whose verdict changed, in one event (events without an outage are
// unique by device, kind and instant).
type StorageTrendDetail struct {
	Volumes []VolumeTrend `json:"volumes"`
}

// VolumeTrend is one volume's verdict: what the ticketing stage needs to
// word and grade its ticket.
type VolumeTrend struct {
	Volume      string    `json:"volume"`
	Filling     bool      `json:"filling"`
	FullAt      time.Time `json:"full_at,omitzero"`
	Days        int       `json:"days"`
	Severity    int       `json:"severity,omitempty"`
	UsedBytes   int64     `json:"used_bytes"`
	SizeBytes   int64     `json:"size_bytes"`
	BytesPerDay int64     `json:"bytes_per_day"`
}

// record writes the samples and, in the same transaction, the volumes' new
// verdicts and one event for those that changed.
func (t *StorageTrend) record(ctx context.Context, d assets.Device, vols []snmpVolume, now time.Time) error {
	forecasts := make([]StorageForecast, 0, len(vols))
	err := db.InTx(ctx, t.db, func(tx *sqlx.Tx) error {
		var changed []VolumeTrend
		for _, v := range vols {
			if v.SizeBytes == 0 || v.SizeBytes > math.MaxInt64 || v.UsedBytes > math.MaxInt64 {
				continue // no agent has such a disk: a bogus row
			}
			volume := storableText(v.Name)
			if _, err := tx.ExecContext(ctx, `INSERT INTO storage_samples (device_id, volume, at, used_bytes, size_bytes)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, d.ID, volume, now, int64(v.UsedBytes), int64(v.SizeBytes)); err != nil {
				return fmt.Errorf("save sample of %s: %w", volume, err)
			}
			// Readings older than twice the window serve no forecast (the
			// margin lets the window be widened without starting over).
			if _, err := tx.ExecContext(ctx, `DELETE FROM storage_samples WHERE device_id = $1 AND volume = $2 AND at < $3`,
				d.ID, volume, now.Add(-2*t.cfg.Window)); err != nil {
				return fmt.Errorf("prune samples of %s: %w", volume, err)
			}
			var samples []storageSample
			if err := tx.SelectContext(ctx, &samples, `SELECT at, used_bytes, size_bytes FROM storage_samples
				WHERE device_id = $1 AND volume = $2 AND at > $3 AND at <= $4 ORDER BY at`,
				d.ID, volume, now.Add(-t.cfg.Window), now); err != nil {
				return fmt.Errorf("read samples of %s: %w", volume, err)
			}
			f := fitStorage(samples, now, t.cfg.MinSpan)
			f.Volume = volume
			forecasts = append(forecasts, f)
			vt, ch, err := t.judge(ctx, tx, d, f, now)
			if err != nil {
				return err
			}
			if ch {
				changed = append(changed, vt)
			}
		}
		if len(changed) == 0 {
			return nil
		}
		b, err := json.Marshal(StorageTrendDetail{Volumes: changed})
		if err != nil {
			return err
		}
		return insertEvent(ctx, tx, EventStorageTrend, d, 0, b, now)
	})
	if err != nil {
		return err
	}
	for _, f := range forecasts {
		if f.Filling && f.FullIn < t.cfg.Threshold {
			t.cfg.Log.Warn("storage filling", "device", d.ID, "volume", f.Volume, "full_in", f.FullIn.Round(time.Hour), "full_at", f.FullAt)
		}
		if t.gauge == nil {
			continue
		}
		lv := []string{d.CustomerID, d.SiteID, d.ID, f.Volume}
		if f.Filling {
			t.gauge.WithLabelValues(lv...).Set(f.FullIn.Seconds())
		} else {
			t.gauge.DeleteLabelValues(lv...)
		}
	}
	return nil
}

// judge compares the forecast with the volume's last verdict, saves the new
// one, and reports whether a ticket about it would read differently.
func (t *StorageTrend) judge(ctx context.Context, tx *sqlx.Tx, d assets.Device, f StorageForecast, now time.Time) (VolumeTrend, bool, error) {
	var prev struct {
		Filling  bool          `db:"filling"`
		Days     sql.NullInt64 `db:"days"`
		Severity sql.NullInt64 `db:"severity"`
	}
	err := tx.GetContext(ctx, &prev, `SELECT filling, days, severity FROM storage_trends WHERE device_id = $1 AND volume = $2 FOR UPDATE`,
		d.ID, f.Volume)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return VolumeTrend{}, false, fmt.Errorf("read trend verdict of %s: %w", f.Volume, err)
	}
	alarm := f.Filling && f.FullIn < t.cfg.Threshold
	vt := VolumeTrend{Volume: f.Volume, Filling: alarm, UsedBytes: int64(math.Round(f.UsedBytes)), SizeBytes: f.SizeBytes,
		BytesPerDay: int64(math.Round(f.BytesPerDay))}
	var fullAt, days, sev any
	if alarm {
		vt.FullAt = f.FullAt.UTC()
		vt.Days = int(math.Round(f.FullIn.Hours() / 24))
		vt.Severity = t.cfg.Severity
		if f.FullIn < t.cfg.Urgent {
			vt.Severity = t.cfg.UrgentSeverity
		}
		fullAt, days, sev = vt.FullAt, vt.Days, vt.Severity
	}
	changed := alarm != prev.Filling || (alarm && (int64(vt.Days) != prev.Days.Int64 || int64(vt.Severity) != prev.Severity.Int64))
	if _, err := tx.ExecContext(ctx, `INSERT INTO storage_trends (device_id, volume, filling, full_at, days, severity, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, volume) DO UPDATE SET filling = EXCLUDED.filling,
		full_at = EXCLUDED.full_at, days = EXCLUDED.days, severity = EXCLUDED.severity, updated_at = EXCLUDED.updated_at`,
		d.ID, f.Volume, alarm, fullAt, days, sev, now); err != nil {
		return vt, false, fmt.Errorf("save trend verdict of %s: %w", f.Volume, err)
	}
	return vt, changed, nil
}

// Forecasts fits the trend of every volume of a device now, for people
// (the console) and tests.
func (t *StorageTrend) Forecasts(ctx context.Context, deviceID string) ([]StorageForecast, error) {
	now := t.cfg.Clock.Now()
	var rows []struct {
		Volume string `db:"volume"`
		storageSample
	}
	if err := t.db.SelectContext(ctx, &rows, `SELECT volume, at, used_bytes, size_bytes FROM storage_samples
		WHERE device_id = $1 AND at > $2 AND at <= $3 ORDER BY volume, at`, deviceID, now.Add(-t.cfg.Window), now); err != nil {
		return nil, fmt.Errorf("probes: storage samples of %s: %w", deviceID, err)
	}
	var out []StorageForecast
	for i := 0; i < len(rows); {
		j := i
		var s []storageSample
		for ; j < len(rows) && rows[j].Volume == rows[i].Volume; j++ {
			s = append(s, rows[j].storageSample)
		}
		f := fitStorage(s, now, t.cfg.MinSpan)
		f.Volume = rows[i].Volume
		out = append(out, f)
		i = j
	}
	return out, nil
}
