package assets

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// DeviceFilter narrows a device listing.
type DeviceFilter struct {
	Scope
	SiteID         string
	Kind           string
	IncludeRetired bool
}

// Customers lists the customers in scope.
func (s *Store) Customers(ctx context.Context, sc Scope) ([]Customer, error) {
	var out []Customer
	err := s.q.SelectContext(ctx, &out, `SELECT id, name, country, time_zone, language, retired_at, created_at
		FROM customers WHERE ($1 = '' OR id = $1) ORDER BY id`, sc.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("assets: list customers: %w", err)
	}
	return out, nil
}

// Customer returns one customer in scope.
func (s *Store) Customer(ctx context.Context, sc Scope, id string) (Customer, error) {
	var c Customer
	err := s.q.GetContext(ctx, &c, `SELECT id, name, country, time_zone, language, retired_at, created_at
		FROM customers WHERE id = $1 AND ($2 = '' OR id = $2)`, id, sc.CustomerID)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("assets: get customer %s: %w", id, err)
	}
	return c, nil
}

// CustomerActive reports whether customer id exists and is not retired:
// only such a customer may be given console users (auth.Customers).
func (s *Store) CustomerActive(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := s.q.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1 AND retired_at IS NULL)`, id); err != nil {
		return false, fmt.Errorf("assets: look up customer %s: %w", id, err)
	}
	return ok, nil
}

const siteColumns = `id, customer_id, name, kind, city, address, contact, gateway_device_id, retired_at`

// Sites lists the sites in scope.
func (s *Store) Sites(ctx context.Context, sc Scope, includeRetired bool) ([]Site, error) {
	var out []Site
	err := s.q.SelectContext(ctx, &out, `SELECT `+siteColumns+` FROM sites
		WHERE ($1 = '' OR customer_id = $1) AND ($2 OR retired_at IS NULL) ORDER BY customer_id, id`, sc.CustomerID, includeRetired)
	if err != nil {
		return nil, fmt.Errorf("assets: list sites: %w", err)
	}
	return out, nil
}

// Site returns one site in scope.
func (s *Store) Site(ctx context.Context, sc Scope, id string) (Site, error) {
	var st Site
	err := s.q.GetContext(ctx, &st, `SELECT `+siteColumns+` FROM sites WHERE id = $1 AND ($2 = '' OR customer_id = $2)`, id, sc.CustomerID)
	if errors.Is(err, sql.ErrNoRows) {
		return st, ErrNotFound
	}
	if err != nil {
		return st, fmt.Errorf("assets: get site %s: %w", id, err)
	}
	return st, nil
}

const deviceSelect = `SELECT id, customer_id, site_id, name, kind, modality, core, manufacturer, model, serial, install_date, warranty_end,
	dicom_host, dicom_port, dicom_called_ae, dicom_calling_ae, dicom_tls,
	snmp_host, snmp_port, snmp_version, snmp_community, snmp_user, snmp_auth_proto, snmp_auth_pass, snmp_priv_proto, snmp_priv_pass,
	tcp_host, tcp_port, heartbeat_grace_seconds, probe_interval_seconds, probe_retries, retired_at,
	dicom_worklist, hl7_host, hl7_port, hl7_sending_app, hl7_receiving_app, hl7_message_type,
	operational_status, operational_reason, operational_since, created_at FROM devices`

// deviceRow is the flat shape of a devices row.
type deviceRow struct {
	ID, CustomerID, SiteID, Name, Kind, Modality string
	Core                                         bool
	Manufacturer, Model, Serial                  string
	InstallDate, WarrantyEnd                     *time.Time
	DICOMHost                                    sql.NullString
	DICOMPort                                    sql.NullInt64
	DICOMCalled, DICOMCalling                    sql.NullString
	DICOMTLS                                     bool
	SNMPHost                                     sql.NullString
	SNMPPort                                     sql.NullInt64
	SNMPVersion, SNMPCommunity, SNMPUser         sql.NullString
	SNMPAuthProto, SNMPAuthPass                  sql.NullString
	SNMPPrivProto, SNMPPrivPass                  sql.NullString
	TCPHost                                      sql.NullString
	TCPPort                                      sql.NullInt64
	HeartbeatGrace                               sql.NullInt64
	ProbeInterval, ProbeRetries                  int
	RetiredAt                                    *time.Time
	DICOMWorklist                                []byte
	HL7Host                                      sql.NullString
	HL7Port                                      sql.NullInt64
	HL7Sending, HL7Receiving, HL7MessageType     sql.NullString
	Operational, OperationalReason               string
	OperationalSince                             *time.Time
	CreatedAt                                    time.Time
}

type scanner interface{ Scan(dest ...any) error }

func scanDevice(r scanner) (Device, error) {
	var x deviceRow
	err := r.Scan(&x.ID, &x.CustomerID, &x.SiteID, &x.Name, &x.Kind, &x.Modality, &x.Core, &x.Manufacturer, &x.Model, &x.Serial,
		&x.InstallDate, &x.WarrantyEnd, &x.DICOMHost, &x.DICOMPort, &x.DICOMCalled, &x.DICOMCalling, &x.DICOMTLS,
		&x.SNMPHost, &x.SNMPPort, &x.SNMPVersion, &x.SNMPCommunity, &x.SNMPUser, &x.SNMPAuthProto, &x.SNMPAuthPass,
		&x.SNMPPrivProto, &x.SNMPPrivPass, &x.TCPHost, &x.TCPPort, &x.HeartbeatGrace, &x.ProbeInterval, &x.ProbeRetries, &x.RetiredAt,
		&x.DICOMWorklist, &x.HL7Host, &x.HL7Port, &x.HL7Sending, &x.HL7Receiving, &x.HL7MessageType,
		&x.Operational, &x.OperationalReason, &x.OperationalSince, &x.CreatedAt)
	if err != nil {
		return Device{}, err
	}
	d := Device{ID: x.ID, CustomerID: x.CustomerID, SiteID: x.SiteID, Name: x.Name, Kind: x.Kind, Modality: x.Modality, Core: x.Core,
		Manufacturer: x.Manufacturer, Model: x.Model, Serial: x.Serial, InstallDate: x.InstallDate, WarrantyEnd: x.WarrantyEnd,
		Probe: ProbeSettings{Interval: time.Duration(x.ProbeInterval) * time.Second, Retries: x.ProbeRetries}, RetiredAt: x.RetiredAt,
		Operational: OperationalStatus{Status: x.Operational, Reason: x.OperationalReason, Since: x.OperationalSince},
		CreatedAt:   x.CreatedAt}
	if x.DICOMHost.Valid {
		d.DICOM = &DICOMEndpoint{Host: x.DICOMHost.String, Port: int(x.DICOMPort.Int64), CalledAE: x.DICOMCalled.String,
			CallingAE: x.DICOMCalling.String, TLS: x.DICOMTLS}
		if len(x.DICOMWorklist) > 0 {
			var w WorklistCheck
			if err := json.Unmarshal(x.DICOMWorklist, &w); err != nil {
				return Device{}, fmt.Errorf("worklist of %s: %w", x.ID, err)
			}
			d.DICOM.Worklist = &w
		}
	}
	if x.HL7Host.Valid {
		d.HL7 = &HL7Endpoint{Host: x.HL7Host.String, Port: int(x.HL7Port.Int64), SendingApp: x.HL7Sending.String,
			ReceivingApp: x.HL7Receiving.String, MessageType: x.HL7MessageType.String}
	}
	if x.SNMPHost.Valid {
		d.SNMP = &SNMPEndpoint{Host: x.SNMPHost.String, Port: int(x.SNMPPort.Int64), Version: x.SNMPVersion.String,
			Community: NewSecret(x.SNMPCommunity.String), User: x.SNMPUser.String,
			AuthProtocol: x.SNMPAuthProto.String, AuthPassphrase: NewSecret(x.SNMPAuthPass.String),
			PrivProtocol: x.SNMPPrivProto.String, PrivPassphrase: NewSecret(x.SNMPPrivPass.String)}
	}
	if x.TCPHost.Valid {
		d.TCP = &TCPEndpoint{Host: x.TCPHost.String, Port: int(x.TCPPort.Int64)}
	}
	if x.HeartbeatGrace.Valid {
		d.Heartbeat = &HeartbeatEndpoint{Grace: time.Duration(x.HeartbeatGrace.Int64) * time.Second}
	}
	return d, nil
}

// Devices lists the devices matching f.
func (s *Store) Devices(ctx context.Context, f DeviceFilter) ([]Device, error) {
	rows, err := s.q.QueryContext(ctx, deviceSelect+`
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR site_id = $2) AND ($3 = '' OR kind = $3) AND ($4 OR retired_at IS NULL)
		ORDER BY customer_id, site_id, id`, f.CustomerID, f.SiteID, f.Kind, f.IncludeRetired)
	if err != nil {
		return nil, fmt.Errorf("assets: list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("assets: list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("assets: list devices: %w", err)
	}
	return out, nil
}

// DeviceSummaries lists the devices matching f with what identifies them
// to people (id, customer, site, name, kind, modality, core, manufacturer,
// model, serial and, for a DICOM node, its AE title), and nothing of their
// endpoints' addresses or secrets: the cheap read for a board of ten
// thousand devices.
func (s *Store) DeviceSummaries(ctx context.Context, f DeviceFilter) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, customer_id, site_id, name, kind, modality, core, manufacturer, model, serial,
		dicom_called_ae, retired_at, created_at FROM devices
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR site_id = $2) AND ($3 = '' OR kind = $3) AND ($4 OR retired_at IS NULL)
		ORDER BY customer_id, site_id, id`, f.CustomerID, f.SiteID, f.Kind, f.IncludeRetired)
	if err != nil {
		return nil, fmt.Errorf("assets: list device summaries: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		var ae sql.NullString
		if err := rows.Scan(&d.ID, &d.CustomerID, &d.SiteID, &d.Name, &d.Kind, &d.Modality, &d.Core, &d.Manufacturer, &d.Model,
			&d.Serial, &ae, &d.RetiredAt, &d.CreatedAt); err != nil {
			return nil, fmt.Errorf("assets: list device summaries: %w", err)
		}
		if ae.Valid {
			d.DICOM = &DICOMEndpoint{CalledAE: ae.String}
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("assets: list device summaries: %w", err)
	}
	return out, nil
}

// Device returns one device in scope.
func (s *Store) Device(ctx context.Context, sc Scope, id string) (Device, error) {
	d, err := scanDevice(s.q.QueryRowContext(ctx, deviceSelect+` WHERE id = $1 AND ($2 = '' OR customer_id = $2)`, id, sc.CustomerID))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("assets: get device %s: %w", id, err)
	}
	return d, nil
}

// DeviceByHeartbeatToken finds the active device whose heartbeat token is token.
func (s *Store) DeviceByHeartbeatToken(ctx context.Context, token string) (Device, error) {
	d, err := scanDevice(s.q.QueryRowContext(ctx, deviceSelect+` WHERE heartbeat_token_sha256 = $1 AND retired_at IS NULL`, HashToken(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("assets: device by heartbeat token: %w", err)
	}
	return d, nil
}

// Contracts lists the contracts in scope (with their devices and
// warranties); retired contracts only when asked.
func (s *Store) Contracts(ctx context.Context, sc Scope, includeRetired bool) ([]Contract, error) {
	return s.contracts(ctx, `WHERE ($1 = '' OR c.customer_id = $1) AND ($2 OR c.retired_at IS NULL)`, sc.CustomerID, includeRetired)
}

// Contract returns one contract in scope.
func (s *Store) Contract(ctx context.Context, sc Scope, id string) (Contract, error) {
	ks, err := s.contracts(ctx, `WHERE c.id = $2 AND ($1 = '' OR c.customer_id = $1)`, sc.CustomerID, id)
	if err != nil {
		return Contract{}, err
	}
	if len(ks) == 0 {
		return Contract{}, ErrNotFound
	}
	return ks[0], nil
}

func (s *Store) contracts(ctx context.Context, where string, args ...any) ([]Contract, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT c.id, c.customer_id, c.plan, c.sla_policy, c.all_devices, c.starts_on, c.ends_on,
		c.activated_on, c.paid_up, c.hour_bank_hours, c.hour_bank_valid_months, c.hour_bank_whole_hours, c.retired_at,
		COALESCE((SELECT array_agg(device_id ORDER BY device_id) FROM contract_devices d WHERE d.contract_id = c.id), '{}'),
		COALESCE((SELECT json_agg(json_build_object('starts_on', w.starts_on, 'ends_on', w.ends_on, 'covers', w.covers, 'device_ids', w.device_ids)
			ORDER BY w.ordinal) FROM contract_warranties w WHERE w.contract_id = c.id), '[]')
		FROM contracts c `+where+` ORDER BY c.customer_id, c.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("assets: list contracts: %w", err)
	}
	defer rows.Close()
	var out []Contract
	for rows.Next() {
		var k Contract
		var hours, months sql.NullInt64
		var whole bool
		var warranties []byte
		if err := rows.Scan(&k.ID, &k.CustomerID, &k.Plan, &k.SLAPolicy, &k.AllDevices, &k.StartsOn, &k.EndsOn, &k.ActivatedOn, &k.PaidUp,
			&hours, &months, &whole, &k.RetiredAt, pq.Array(&k.DeviceIDs), &warranties); err != nil {
			return nil, fmt.Errorf("assets: list contracts: %w", err)
		}
		if hours.Valid {
			k.HourBank = &HourBank{Hours: int(hours.Int64), ValidMonths: int(months.Int64), WholeHours: whole}
		}
		if k.Warranties, err = decodeWarranties(warranties); err != nil {
			return nil, fmt.Errorf("assets: contract %s warranties: %w", k.ID, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// CoverageOf answers coverage for each of the given devices at instant at.
func (s *Store) CoverageOf(ctx context.Context, devices []Device, at time.Time) (map[string]Coverage, error) {
	byCustomer := map[string][]Contract{}
	locs := map[string]*time.Location{}
	out := make(map[string]Coverage, len(devices))
	for _, d := range devices {
		if _, ok := locs[d.CustomerID]; !ok {
			c, err := s.Customer(ctx, Scope{}, d.CustomerID)
			if err != nil {
				return nil, err
			}
			locs[d.CustomerID] = c.Location()
			ks, err := s.Contracts(ctx, Scope{CustomerID: d.CustomerID}, false)
			if err != nil {
				return nil, err
			}
			byCustomer[d.CustomerID] = ks
		}
		out[d.ID] = Evaluate(d.ID, byCustomer[d.CustomerID], locs[d.CustomerID], at)
	}
	return out, nil
}
