package probes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/db"
)

// Collector is a `vigia collect` process as the NOC knows it: the sites
// it probes, inside one customer.
type Collector struct {
	ID         int64
	Name       string
	CustomerID string
	Sites      []string
	LastSeq    int64 // the highest sequence applied when it authenticated
}

// ErrUnknownCollector means a collector token is unknown or revoked.
var ErrUnknownCollector = errors.New("probes: unknown or revoked collector token")

// collectorTokenPrefix makes a collector token recognisable in a leaked file.
const collectorTokenPrefix = "vigia_col_"

func hashCollectorToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateCollector registers a collector for sites of one customer and
// returns its token in clear, the only time it is seen: only its SHA-256
// is stored. A site already probed by another collector is refused.
func (s *Store) CreateCollector(ctx context.Context, name, customerID string, sites []string, now time.Time) (string, int64, error) {
	if name == "" || len(name) > 200 {
		return "", 0, errors.New("probes: a collector's name is 1 to 200 characters")
	}
	if len(sites) == 0 {
		return "", 0, errors.New("probes: a collector probes at least one site")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", 0, fmt.Errorf("probes: random: %w", err)
	}
	token := collectorTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var id int64
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		for _, site := range sites {
			st, err := assets.NewStore(s.db).InTx(tx).Site(ctx, assets.Scope{CustomerID: customerID}, site)
			if errors.Is(err, assets.ErrNotFound) || (err == nil && st.RetiredAt != nil) {
				return fmt.Errorf("probes: no active site %q of customer %q", site, customerID)
			}
			if err != nil {
				return fmt.Errorf("probes: check site %s: %w", site, err)
			}
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO collectors (name, customer_id, token_sha256, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id`, name, customerID, hashCollectorToken(token), now).Scan(&id); err != nil {
			return fmt.Errorf("probes: create collector: %w", err)
		}
		for _, site := range sites {
			if _, err := tx.ExecContext(ctx, `INSERT INTO collector_sites (collector_id, site_id) VALUES ($1, $2)`, id, site); err != nil {
				var pe *pq.Error
				if errors.As(err, &pe) && pe.Code == "23505" {
					return fmt.Errorf("probes: site %q already has a collector", site)
				}
				return fmt.Errorf("probes: assign site %s: %w", site, err)
			}
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return token, id, nil
}

// AuthenticateCollector returns the collector of a clear token and
// records the contact (its last contact is what its loss is judged by). A
// collector lost until now is back: monitoring_restored is published in
// the same transaction (its devices stay unknown until its results say).
func (s *Store) AuthenticateCollector(ctx context.Context, token string, now time.Time) (Collector, error) {
	var c Collector
	err := db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		c = Collector{}
		var lost sql.NullTime
		err := tx.QueryRowContext(ctx, `WITH old AS (SELECT id, lost_at FROM collectors
				WHERE token_sha256 = $1 AND revoked_at IS NULL FOR UPDATE)
			UPDATE collectors c SET last_contact_at = GREATEST(c.last_contact_at, $2), lost_at = NULL FROM old
			WHERE c.id = old.id RETURNING c.id, c.name, c.customer_id, old.lost_at, c.last_seq`,
			hashCollectorToken(token), now).Scan(&c.ID, &c.Name, &c.CustomerID, &lost, &c.LastSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknownCollector
		}
		if err != nil {
			return fmt.Errorf("probes: authenticate collector: %w", err)
		}
		if err := tx.SelectContext(ctx, &c.Sites, `SELECT site_id FROM collector_sites WHERE collector_id = $1 ORDER BY site_id`, c.ID); err != nil {
			return fmt.Errorf("probes: sites of collector %d: %w", c.ID, err)
		}
		if !lost.Valid {
			return nil
		}
		return insertCollectorEvent(ctx, tx, "monitoring_restored", c, now, map[string]any{"collector": c.Name, "lost_at": lost.Time})
	})
	return c, err
}

// remoteSites maps every site probed by an active collector to it.
func (s *Store) remoteSites(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cs.site_id, cs.collector_id FROM collector_sites cs
		JOIN collectors c ON c.id = cs.collector_id WHERE c.revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("probes: sites of collectors: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var site string
		var id int64
		if err := rows.Scan(&site, &id); err != nil {
			return nil, fmt.Errorf("probes: sites of collectors: %w", err)
		}
		out[site] = id
	}
	return out, rows.Err()
}

// RemoteDevice is a device as a collector needs it: its endpoints with
// their secrets in clear (they travel over TLS and stay in the collector's
// memory), and the hash of its heartbeat token.
type RemoteDevice struct {
	ID                 string                `json:"id"`
	CustomerID         string                `json:"customer_id"`
	SiteID             string                `json:"site_id"`
	Name               string                `json:"name"`
	Kind               string                `json:"kind"`
	DICOM              *assets.DICOMEndpoint `json:"dicom,omitempty"`
	SNMP               *RemoteSNMP           `json:"snmp,omitempty"`
	TCP                *assets.TCPEndpoint   `json:"tcp,omitempty"`
	HeartbeatGrace     int                   `json:"heartbeat_grace_seconds,omitempty"`
	HeartbeatTokenHash string                `json:"heartbeat_token_sha256,omitempty"`
	IntervalSeconds    int                   `json:"interval_seconds"`
	Retries            int                   `json:"retries"`
	// TimeZone is the zone of the customer's contract calendar, for a
	// worklist's "today" (the collector queries; the NOC judges).
	TimeZone string `json:"time_zone,omitempty"`
}

// RemoteSNMP is an SNMP endpoint with its credentials in clear.
type RemoteSNMP struct {
	Host           string `json:"host"`
	Port           int    `json:"port"`
	Version        string `json:"version"`
	Community      string `json:"community,omitempty"`
	User           string `json:"user,omitempty"`
	AuthProtocol   string `json:"auth_protocol,omitempty"`
	AuthPassphrase string `json:"auth_passphrase,omitempty"`
	PrivProtocol   string `json:"priv_protocol,omitempty"`
	PrivPassphrase string `json:"priv_passphrase,omitempty"`
}

// Device turns a remote device back into the inventory's shape, secrets
// wrapped again.
func (r RemoteDevice) Device() assets.Device {
	d := assets.Device{ID: r.ID, CustomerID: r.CustomerID, SiteID: r.SiteID, Name: r.Name, Kind: r.Kind, DICOM: r.DICOM, TCP: r.TCP,
		Probe: assets.ProbeSettings{Interval: time.Duration(r.IntervalSeconds) * time.Second, Retries: r.Retries}}
	if r.SNMP != nil {
		d.SNMP = &assets.SNMPEndpoint{Host: r.SNMP.Host, Port: r.SNMP.Port, Version: r.SNMP.Version,
			Community: assets.NewSecret(r.SNMP.Community), User: r.SNMP.User, AuthProtocol: r.SNMP.AuthProtocol,
			AuthPassphrase: assets.NewSecret(r.SNMP.AuthPassphrase), PrivProtocol: r.SNMP.PrivProtocol,
			PrivPassphrase: assets.NewSecret(r.SNMP.PrivPassphrase)}
	}
	if r.HeartbeatGrace > 0 {
		d.Heartbeat = &assets.HeartbeatEndpoint{Grace: time.Duration(r.HeartbeatGrace) * time.Second}
	}
	return d
}

// CollectorConfig is what GET /api/v1/collector/config answers: the
// devices of the collector's sites. Version changes whenever any of it
// does (it is the hash of the rest), and is also the answer's ETag.
type CollectorConfig struct {
	Collector string         `json:"collector"`
	Version   string         `json:"version"`
	Sites     []string       `json:"sites"`
	Devices   []RemoteDevice `json:"devices"`
}

// DeviceSource lists the inventory's devices (the assets store, or a
// collector's fetched configuration).
type DeviceSource interface {
	Devices(ctx context.Context, f assets.DeviceFilter) ([]assets.Device, error)
}

// CollectorInventory is what a collector's configuration is built from (the
// assets store): its devices and their heartbeat tokens' hashes.
type CollectorInventory interface {
	DeviceSource
	HeartbeatTokenHashes(ctx context.Context, sites []string) (map[string]string, error)
}

// CollectorConfigFor builds a collector's configuration. zoneOf, when
// set, names the zone of a worklist device's calendar.
func (s *Store) CollectorConfigFor(ctx context.Context, inv CollectorInventory, c Collector, zoneOf func(assets.Device) string) (CollectorConfig, error) {
	cfg := CollectorConfig{Collector: c.Name, Sites: c.Sites, Devices: []RemoteDevice{}}
	hashes, err := inv.HeartbeatTokenHashes(ctx, c.Sites)
	if err != nil {
		return cfg, fmt.Errorf("probes: heartbeat tokens of collector %d: %w", c.ID, err)
	}
	for _, site := range c.Sites {
		devices, err := inv.Devices(ctx, assets.DeviceFilter{Scope: assets.Scope{CustomerID: c.CustomerID}, SiteID: site})
		if err != nil {
			return cfg, err
		}
		for _, d := range devices {
			r := RemoteDevice{ID: d.ID, CustomerID: d.CustomerID, SiteID: d.SiteID, Name: d.Name, Kind: d.Kind, DICOM: d.DICOM,
				TCP: d.TCP, IntervalSeconds: int(d.Probe.Interval / time.Second), Retries: d.Probe.Retries}
			if d.SNMP != nil {
				r.SNMP = &RemoteSNMP{Host: d.SNMP.Host, Port: d.SNMP.Port, Version: d.SNMP.Version,
					Community: d.SNMP.Community.Reveal(), User: d.SNMP.User, AuthProtocol: d.SNMP.AuthProtocol,
					AuthPassphrase: d.SNMP.AuthPassphrase.Reveal(), PrivProtocol: d.SNMP.PrivProtocol,
					PrivPassphrase: d.SNMP.PrivPassphrase.Reveal()}
			}
			if zoneOf != nil && d.DICOM != nil && d.DICOM.Worklist != nil {
				r.TimeZone = zoneOf(d)
			}
			if d.Heartbeat != nil {
				r.HeartbeatGrace = int(d.Heartbeat.Grace / time.Second)
				r.HeartbeatTokenHash = hashes[d.ID]
			}
			cfg.Devices = append(cfg.Devices, r)
		}
	}
	slices.SortFunc(cfg.Devices, func(a, b RemoteDevice) int { return strings.Compare(a.ID, b.ID) })
	body, err := json.Marshal(cfg)
	if err != nil {
		return cfg, fmt.Errorf("probes: collector config: %w", err)
	}
	sum := sha256.Sum256(body)
	cfg.Version = hex.EncodeToString(sum[:16])
	return cfg, nil
}

// CountRefused adds results a collector sent for devices outside its sites.
func (s *Store) CountRefused(ctx context.Context, collectorID int64, n int) error {
	_, err := s.db.ExecContext(ctx, `UPDATE collectors SET results_refused = results_refused + $2 WHERE id = $1`, collectorID, n)
	if err != nil {
		return fmt.Errorf("probes: count refused results of collector %d: %w", collectorID, err)
	}
	return nil
}

// CollectorStatus is a collector as the board shows it.
type CollectorStatus struct {
	ID            int64          `db:"id" json:"id"`
	Name          string         `db:"name" json:"name"`
	CustomerID    string         `db:"customer_id" json:"customer_id"`
	Sites         pq.StringArray `db:"sites" json:"sites"`
	LastContactAt *time.Time     `db:"last_contact_at" json:"last_contact_at,omitempty"`
	LastResultAt  *time.Time     `db:"last_result_at" json:"last_result_at,omitempty"`
	LastSeq       int64          `db:"last_seq" json:"last_seq"`
	LostAt        *time.Time     `db:"lost_at" json:"lost_at,omitempty"`
	Applied       int64          `db:"results_applied" json:"results_applied"`
	Refused       int64          `db:"results_refused" json:"results_refused"`
	Missing       int64          `db:"results_missing" json:"results_missing"`
}

// Lag is how far behind the collector's newest applied result is from its
// last contact: results it probed but has not delivered yet.
func (c CollectorStatus) Lag() time.Duration {
	if c.LastContactAt == nil || c.LastResultAt == nil || c.LastResultAt.After(*c.LastContactAt) {
		return 0
	}
	return c.LastContactAt.Sub(*c.LastResultAt)
}

// Collectors lists the active collectors in scope ("" for all customers).
func (s *Store) Collectors(ctx context.Context, customerID string) ([]CollectorStatus, error) {
	var out []CollectorStatus
	err := s.db.SelectContext(ctx, &out, `SELECT c.id, c.name, c.customer_id,
			COALESCE((SELECT array_agg(site_id ORDER BY site_id) FROM collector_sites WHERE collector_id = c.id), '{}') AS sites,
			c.last_contact_at, c.last_result_at, c.last_seq, c.lost_at, c.results_applied, c.results_refused, c.results_missing
		FROM collectors c WHERE c.revoked_at IS NULL AND ($1 = '' OR c.customer_id = $1) ORDER BY c.customer_id, c.name, c.id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("probes: list collectors: %w", err)
	}
	return out, nil
}

// activeDeviceSites maps the active devices among ids to their sites.
func (s *Store) activeDeviceSites(ctx context.Context, ids []string) (map[string]string, error) {
	out, err := assets.NewStore(s.db).ActiveDeviceSites(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("probes: sites of reported devices: %w", err)
	}
	return out, nil
}

// RevokeCollector disables a collector's token and frees its sites: the
// NOC probes them itself again (or another collector may take them).
func (s *Store) RevokeCollector(ctx context.Context, id int64, now time.Time) error {
	return db.InTx(ctx, s.db, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE collectors SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, now)
		if err != nil {
			return fmt.Errorf("probes: revoke collector %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("probes: no active collector %d", id)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM collector_sites WHERE collector_id = $1`, id); err != nil {
			return fmt.Errorf("probes: free the sites of collector %d: %w", id, err)
		}
		return nil
	})
}
