package assets

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// ErrNotFound is returned when a row does not exist or is outside the
// caller's scope: the two must look the same to the caller.
var ErrNotFound = httpx.Kind(http.StatusNotFound, "not_found", "not found", "not found")

// Scope limits reads to one customer; the zero value sees every customer.
type Scope struct{ CustomerID string }

// Store reads and writes the inventory in PostgreSQL.
type Store struct {
	db *sqlx.DB
	q  queryer // reads: db, or the transaction of a view made by InTx
}

// queryer is what the reads need of a pool or a transaction.
type queryer interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db, q: db} }

// InTx is a view of s whose reads run in tx. A caller holding a
// transaction reads the inventory through it instead of taking a second
// pooled connection: requests that each hold one connection and wait for
// another exhaust the pool and wait on each other.
func (s *Store) InTx(tx *sqlx.Tx) *Store { return &Store{db: s.db, q: tx} }

// ImportSummary counts what an import changed.
type ImportSummary struct {
	Created   map[string]int `json:"created"`
	Updated   map[string]int `json:"updated"`
	Unchanged map[string]int `json:"unchanged"`
	Retired   map[string]int `json:"retired"`
}

func newSummary() ImportSummary {
	return ImportSummary{Created: map[string]int{}, Updated: map[string]int{}, Unchanged: map[string]int{}, Retired: map[string]int{}}
}

// Import writes a parsed inventory in one transaction: rows are created or
// updated by their stable ids, and the sites, devices and contracts of the
// file's customers that the file no longer lists are retired at now. With
// dryRun the transaction is rolled back, so the summary is exact and nothing
// changes.
func (s *Store) Import(ctx context.Context, f *File, now time.Time, dryRun bool) (ImportSummary, error) {
	sum := newSummary()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return sum, fmt.Errorf("assets: import: begin: %w", err)
	}
	defer tx.Rollback()
	// Two imports at once would each retire what the other adds.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigia.assets.import'))`); err != nil {
		return sum, fmt.Errorf("assets: import: lock: %w", err)
	}
	var customerIDs, siteIDs, deviceIDs, contractIDs []string
	for _, c := range f.Customers {
		customerIDs = append(customerIDs, c.ID)
		lang := c.Language
		if lang == "" {
			lang = "es"
		}
		domains := pq.StringArray{}
		for _, d := range c.EmailDomains {
			domains = append(domains, strings.ToLower(d))
		}
		if err := upsert(ctx, tx, &sum, "customer", "customers", []string{"id", "name", "country", "time_zone", "language", "notify_email", "email_domains"},
			c.ID, c.Name, c.Country, c.TimeZone, lang, c.NotifyEmail, domains); err != nil {
			return sum, err
		}
	}
	if err := importContacts(ctx, tx, &sum, f, customerIDs); err != nil {
		return sum, err
	}
	for _, c := range f.Customers {
		for _, st := range c.Sites {
			siteIDs = append(siteIDs, st.ID)
			if err := upsert(ctx, tx, &sum, "site", "sites",
				[]string{"id", "customer_id", "name", "kind", "city", "address", "contact", "gateway_device_id"},
				st.ID, c.ID, st.Name, st.Kind, st.City, st.Address, st.Contact, nullString(st.Gateway)); err != nil {
				return sum, err
			}
			for _, d := range st.Devices {
				deviceIDs = append(deviceIDs, d.ID)
				if err := upsert(ctx, tx, &sum, "device", "devices", deviceColumns, deviceValues(c.ID, st.ID, &d)...); err != nil {
					return sum, err
				}
			}
		}
		for _, k := range c.Contracts {
			contractIDs = append(contractIDs, k.ID)
			if err := s.importContract(ctx, tx, &sum, c.ID, &k); err != nil {
				return sum, err
			}
		}
	}
	// Each statement names its table in full, so the ownership test sees it.
	const retire = ` SET retired_at = $1, updated_at = $1 WHERE customer_id = ANY($2) AND retired_at IS NULL AND NOT (id = ANY($3))`
	for _, r := range []struct {
		what, update string
		keep         []string
	}{
		{"site", `UPDATE sites` + retire, siteIDs},
		{"device", `UPDATE devices` + retire, deviceIDs},
		{"contract", `UPDATE contracts` + retire, contractIDs},
	} {
		res, err := tx.ExecContext(ctx, r.update, now, pq.Array(customerIDs), pq.Array(r.keep))
		if err != nil {
			return sum, fmt.Errorf("assets: import: retire %ss: %w", r.what, err)
		}
		n, _ := res.RowsAffected()
		sum.Retired[r.what] += int(n)
	}
	if dryRun {
		return sum, nil
	}
	if err := tx.Commit(); err != nil {
		return sum, fmt.Errorf("assets: import: commit: %w", err)
	}
	return sum, nil
}

// importContacts writes the file's contacts by their address and removes
// the contacts of the file's customers that it no longer lists (a contact
// has no history of its own: tickets keep the requester's address).
func importContacts(ctx context.Context, tx *sqlx.Tx, sum *ImportSummary, f *File, customerIDs []string) error {
	var keep []string
	for _, c := range f.Customers {
		for _, k := range c.Contacts {
			email := strings.ToLower(k.Email)
			keep = append(keep, email)
			lang := k.Language
			if lang == "" {
				lang = c.Language
			}
			if lang == "" {
				lang = "es"
			}
			var inserted bool
			err := tx.QueryRowContext(ctx, `INSERT INTO customer_contacts (customer_id, email, name, phone, role, language)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (email) DO UPDATE SET customer_id = EXCLUDED.customer_id, name = EXCLUDED.name, phone = EXCLUDED.phone,
					role = EXCLUDED.role, language = EXCLUDED.language
				WHERE (customer_contacts.customer_id, customer_contacts.name, customer_contacts.phone, customer_contacts.role, customer_contacts.language)
					IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.name, EXCLUDED.phone, EXCLUDED.role, EXCLUDED.language)
				RETURNING (xmax = 0)`, c.ID, email, k.Name, k.Phone, k.Role, lang).Scan(&inserted)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				sum.Unchanged["contact"]++
			case err != nil:
				return fmt.Errorf("assets: import contact of %s: %w", c.ID, err)
			case inserted:
				sum.Created["contact"]++
			default:
				sum.Updated["contact"]++
			}
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM customer_contacts WHERE customer_id = ANY($1) AND NOT (email = ANY($2))`,
		pq.Array(customerIDs), pq.Array(keep))
	if err != nil {
		return fmt.Errorf("assets: import: remove contacts: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		sum.Retired["contact"] += int(n)
	}
	return nil
}

var deviceColumns = []string{
	"id", "customer_id", "site_id", "name", "kind", "modality", "core", "manufacturer", "model", "serial", "install_date", "warranty_end",
	"dicom_host", "dicom_port", "dicom_called_ae", "dicom_calling_ae", "dicom_tls",
	"snmp_host", "snmp_port", "snmp_version", "snmp_community", "snmp_user", "snmp_auth_proto", "snmp_auth_pass", "snmp_priv_proto", "snmp_priv_pass",
	"tcp_host", "tcp_port", "heartbeat_grace_seconds", "heartbeat_token_sha256", "probe_interval_seconds", "probe_retries",
	"dicom_worklist", "hl7_host", "hl7_port", "hl7_sending_app", "hl7_receiving_app", "hl7_message_type",
}

func deviceValues(customerID, siteID string, d *FileDevice) []any {
	v := []any{d.ID, customerID, siteID, d.Name, d.Kind, d.Modality, d.Role == "core", d.Manufacturer, d.Model, d.Serial,
		dateOrNil(d.InstallDate), dateOrNil(d.WarrantyEnd)}
	if x := d.DICOM; x != nil {
		calling := x.CallingAE
		if calling == "" {
			calling = DefaultCallingAE
		}
		v = append(v, x.Host, x.Port, x.CalledAE, calling, x.TLS)
	} else {
		v = append(v, nil, nil, nil, nil, false)
	}
	if x := d.SNMP; x != nil {
		port := x.Port
		if port == 0 {
			port = 161
		}
		v = append(v, x.Host, port, x.Version, nullString(x.Community.Reveal()), nullString(x.User),
			nullString(x.AuthProtocol), nullString(x.AuthPassphrase.Reveal()), nullString(x.PrivProtocol), nullString(x.PrivPassphrase.Reveal()))
	} else {
		v = append(v, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	}
	if x := d.TCP; x != nil {
		v = append(v, x.Host, x.Port)
	} else {
		v = append(v, nil, nil)
	}
	if x := d.Heartbeat; x != nil {
		v = append(v, int(x.Grace.Seconds()), HashToken(x.Token.Reveal()))
	} else {
		v = append(v, nil, nil)
	}
	interval, retries := DefaultProbeInterval, DefaultProbeRetries
	if p := d.Probe; p != nil {
		if p.Interval.Duration > 0 {
			interval = p.Interval.Duration
		}
		if p.Retries != nil {
			retries = *p.Retries
		}
	}
	v = append(v, int(interval/time.Second), retries)
	var worklist any
	if x := d.DICOM; x != nil && x.Worklist != nil {
		b, _ := json.Marshal(WorklistCheck{Modality: x.Worklist.Modality, StationAE: x.Worklist.StationAE, ExpectItems: x.Worklist.ExpectItems})
		worklist = string(b)
	}
	v = append(v, worklist)
	if x := d.HL7; x != nil {
		sending, msgType := x.SendingApp, x.MessageType
		if sending == "" {
			sending = DefaultHL7SendingApp
		}
		if msgType == "" {
			msgType = DefaultHL7MessageType
		}
		return append(v, x.Host, x.Port, sending, x.ReceivingApp, msgType)
	}
	return append(v, nil, nil, nil, nil, nil)
}

// Defaults of an hl7 endpoint: we are VIGIA, and NMD^N02 (application
// management data) is the message type HL7 meant for such checks: an
// engine acknowledges it without admitting a patient.
const (
	DefaultHL7SendingApp  = "VIGIA"
	DefaultHL7MessageType = "NMD^N02"
)

func (s *Store) importContract(ctx context.Context, tx *sqlx.Tx, sum *ImportSummary, customerID string, k *FileContract) error {
	paid := k.PaidUp == nil || *k.PaidUp
	var hours, months any
	whole := true
	if h := k.HourBank; h != nil {
		hours, months = h.Hours, 12
		if h.ValidMonths > 0 {
			months = h.ValidMonths
		}
		if h.WholeHours != nil {
			whole = *h.WholeHours
		}
	}
	if err := upsert(ctx, tx, sum, "contract", "contracts",
		[]string{"id", "customer_id", "plan", "sla_policy", "all_devices", "starts_on", "ends_on", "activated_on", "paid_up",
			"hour_bank_hours", "hour_bank_valid_months", "hour_bank_whole_hours"},
		k.ID, customerID, k.Plan, k.SLAPolicy, k.Devices.All, dateOrNil(k.Start), dateOrNil(k.End), dateOrNil(k.Activated), paid,
		hours, months, whole); err != nil {
		return err
	}
	// The device list and warranty windows are part of the contract: they
	// are replaced as a whole, which is idempotent.
	if _, err := tx.ExecContext(ctx, `DELETE FROM contract_devices WHERE contract_id = $1`, k.ID); err != nil {
		return fmt.Errorf("assets: import contract %s: %w", k.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO contract_devices (contract_id, device_id) SELECT $1, unnest($2::text[])`,
		k.ID, pq.Array(k.Devices.IDs)); err != nil {
		return fmt.Errorf("assets: import contract %s devices: %w", k.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM contract_warranties WHERE contract_id = $1`, k.ID); err != nil {
		return fmt.Errorf("assets: import contract %s: %w", k.ID, err)
	}
	for i, w := range k.Warranty {
		if _, err := tx.ExecContext(ctx, `INSERT INTO contract_warranties (contract_id, ordinal, starts_on, ends_on, covers, device_ids)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, i, dateOrNil(w.From), dateOrNil(w.To), w.Covers, pq.Array(emptyIfNil(w.Devices))); err != nil {
			return fmt.Errorf("assets: import contract %s warranty %d: %w", k.ID, i, err)
		}
	}
	return nil
}

// upsert inserts or updates one row by id and counts what happened. A row
// is only touched (updated_at, un-retired) when a value really changed.
func upsert(ctx context.Context, tx *sqlx.Tx, sum *ImportSummary, what, table string, cols []string, vals ...any) error {
	ph := make([]string, len(cols))
	set := make([]string, 0, len(cols))
	for i, c := range cols {
		ph[i] = fmt.Sprintf("$%d", i+1)
		if c != "id" {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	cur := table + "." + strings.Join(cols, ", "+table+".")
	q := fmt.Sprintf(`INSERT INTO %[1]s (%[2]s) VALUES (%[3]s)
		ON CONFLICT (id) DO UPDATE SET %[4]s, retired_at = NULL, updated_at = now()
		WHERE (%[5]s, %[1]s.retired_at) IS DISTINCT FROM (EXCLUDED.%[6]s, NULL)
		RETURNING (xmax = 0)`,
		table, strings.Join(cols, ", "), strings.Join(ph, ", "), strings.Join(set, ", "), cur, strings.Join(cols, ", EXCLUDED."))
	var inserted bool
	err := tx.QueryRowxContext(ctx, q, vals...).Scan(&inserted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		sum.Unchanged[what]++
	case err != nil:
		return fmt.Errorf("assets: import %s %v: %w", what, vals[0], err)
	case inserted:
		sum.Created[what]++
	default:
		sum.Updated[what]++
	}
	return nil
}

// HashToken is how heartbeat and API tokens are kept: they are long random
// strings, so a plain SHA-256 is enough and lets lookups use an index.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func dateOrNil(d *Date) any {
	if d == nil {
		return nil
	}
	return d.Format(time.DateOnly)
}

func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
