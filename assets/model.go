// Package assets is Vigía's inventory: customers (hospital networks), their
// sites and devices, and the support contracts that decide whether work on a
// device is covered or billable.
package assets

import (
	"strconv"
	"time"
)

// Customer is a hospital network.
type Customer struct {
	ID        string     `db:"id" json:"id"`
	Name      string     `db:"name" json:"name"`
	Country   string     `db:"country" json:"country"`
	TimeZone  string     `db:"time_zone" json:"time_zone"`
	Language  string     `db:"language" json:"language"`
	RetiredAt *time.Time `db:"retired_at" json:"retired_at,omitempty"`
	// CreatedAt is when the customer first entered the inventory (reports
	// are not sent for months that ended before it).
	CreatedAt time.Time `db:"created_at" json:"-"`
}

// Location returns the customer's time zone (UTC if it cannot be loaded,
// which validation on import prevents).
func (c Customer) Location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Site is a hospital, centre or department of a customer.
type Site struct {
	ID              string     `db:"id" json:"id"`
	CustomerID      string     `db:"customer_id" json:"customer_id"`
	Name            string     `db:"name" json:"name"`
	Kind            string     `db:"kind" json:"kind"`
	City            string     `db:"city" json:"city"`
	Address         string     `db:"address" json:"address"`
	Contact         string     `db:"contact" json:"contact"`
	GatewayDeviceID *string    `db:"gateway_device_id" json:"gateway_device_id,omitempty"`
	RetiredAt       *time.Time `db:"retired_at" json:"retired_at,omitempty"`
}

// Device is one watched device with its endpoints.
type Device struct {
	ID           string             `json:"id"`
	CustomerID   string             `json:"customer_id"`
	SiteID       string             `json:"site_id"`
	Name         string             `json:"name"`
	Kind         string             `json:"kind"`
	Modality     string             `json:"modality,omitempty"`
	Core         bool               `json:"core"`
	Manufacturer string             `json:"manufacturer,omitempty"`
	Model        string             `json:"model,omitempty"`
	Serial       string             `json:"serial,omitempty"`
	InstallDate  *time.Time         `json:"install_date,omitempty"`
	WarrantyEnd  *time.Time         `json:"warranty_end,omitempty"`
	DICOM        *DICOMEndpoint     `json:"dicom,omitempty"`
	SNMP         *SNMPEndpoint      `json:"snmp,omitempty"`
	TCP          *TCPEndpoint       `json:"tcp,omitempty"`
	Heartbeat    *HeartbeatEndpoint `json:"heartbeat,omitempty"`
	HL7          *HL7Endpoint       `json:"hl7,omitempty"`
	Probe        ProbeSettings      `json:"probe"`
	RetiredAt    *time.Time         `json:"retired_at,omitempty"`
	// Operational says whether the device may be used on patients.
	Operational OperationalStatus `json:"operational"`
	// CreatedAt is when the device entered the inventory: a device never
	// probed has been of unknown state since then. Not part of the
	// device's JSON.
	CreatedAt time.Time `json:"-"`
}

// DICOMEndpoint is where a device answers C-ECHO.
type DICOMEndpoint struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	CalledAE  string `json:"called_ae"`
	CallingAE string `json:"calling_ae"`
	TLS       bool   `json:"tls"`
	// Worklist, when set, queries the node's modality worklist too (a
	// broker or RIS): C-ECHO proves it answers, not that modalities get
	// their patients.
	Worklist *WorklistCheck `json:"worklist,omitempty"`
}

// WorklistCheck is a worklist query a device's probe makes: today's
// scheduled steps for a modality and/or station.
type WorklistCheck struct {
	Modality  string `json:"modality,omitempty"`
	StationAE string `json:"station_ae,omitempty"`
	// ExpectItems: an empty answer during the customer's working hours
	// means the worklist is failing.
	ExpectItems bool `json:"expect_items"`
}

// HL7Endpoint is an HL7 v2 interface engine reached over MLLP (a RIS or
// PACS interface): the probe sends a health message and wants its ACK.
type HL7Endpoint struct {
	Host         string `json:"host"`
	Port         int    `json:"port"`
	SendingApp   string `json:"sending_app"`
	ReceivingApp string `json:"receiving_app"`
	MessageType  string `json:"message_type"`
}

// SNMPEndpoint is a device's SNMP agent.
type SNMPEndpoint struct {
	Host           string `json:"host"`
	Port           int    `json:"port"`
	Version        string `json:"version"`
	Community      Secret `json:"community,omitzero"`
	User           string `json:"user,omitempty"`
	AuthProtocol   string `json:"auth_protocol,omitempty"`
	AuthPassphrase Secret `json:"auth_passphrase,omitzero"`
	PrivProtocol   string `json:"priv_protocol,omitempty"`
	PrivPassphrase Secret `json:"priv_passphrase,omitzero"`
}

// TCPEndpoint is a plain port check.
type TCPEndpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// HeartbeatEndpoint says how long a device's silence is tolerated. Its
// token is kept only as a hash.
type HeartbeatEndpoint struct {
	Grace time.Duration `json:"grace_seconds"`
}

// MarshalJSON writes the grace in seconds.
func (h HeartbeatEndpoint) MarshalJSON() ([]byte, error) {
	return []byte(`{"grace_seconds":` + strconv.Itoa(int(h.Grace/time.Second)) + `}`), nil
}

// ProbeSettings says how often and how insistently a device is probed.
type ProbeSettings struct {
	Interval time.Duration `json:"-"`
	Retries  int           `json:"retries"`
}

// MarshalJSON writes the interval in seconds.
func (p ProbeSettings) MarshalJSON() ([]byte, error) {
	return []byte(`{"interval_seconds":` + strconv.Itoa(int(p.Interval/time.Second)) + `,"retries":` + strconv.Itoa(p.Retries) + `}`), nil
}

// Contract is a support contract between the company and a customer.
type Contract struct {
	ID          string     `json:"id"`
	CustomerID  string     `json:"customer_id"`
	Plan        string     `json:"plan,omitempty"`
	SLAPolicy   string     `json:"sla_policy"`
	AllDevices  bool       `json:"all_devices"`
	DeviceIDs   []string   `json:"device_ids,omitempty"`
	StartsOn    time.Time  `json:"starts_on"`
	EndsOn      time.Time  `json:"ends_on"`
	ActivatedOn *time.Time `json:"activated_on,omitempty"`
	PaidUp      bool       `json:"paid_up"`
	Warranties  []Warranty `json:"warranties,omitempty"`
	HourBank    *HourBank  `json:"hour_bank,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
}

// Warranty is a window in which a contract's devices are under warranty.
type Warranty struct {
	StartsOn  time.Time `json:"starts_on"`
	EndsOn    time.Time `json:"ends_on"`
	Covers    string    `json:"covers"` // support | manufacturing_defects
	DeviceIDs []string  `json:"device_ids,omitempty"`
}

// HourBank is a plan that sells hours (seeds 001 and 003).
type HourBank struct {
	Hours       int  `json:"hours"`
	ValidMonths int  `json:"valid_months"`
	WholeHours  bool `json:"whole_hours"`
}
