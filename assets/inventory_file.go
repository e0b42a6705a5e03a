package assets

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// The inventory file: customers hold their sites (which hold their devices)
// and their contracts. Ids are stable: re-importing the same file changes
// nothing, and an id that disappears is retired, not deleted.

// File is the root of an inventory file.
type File struct {
	Customers []FileCustomer `yaml:"customers"`
}

// FileCustomer is a hospital network.
type FileCustomer struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Country  string `yaml:"country"`   // ISO 3166 alpha-2: CO, PE, MX…
	TimeZone string `yaml:"time_zone"` // IANA, e.g. America/Bogota
	Language string `yaml:"language"`  // es (default) or en, for notifications
	// NotifyEmail receives outage and ticket notifications: one address or
	// a comma-separated list.
	NotifyEmail string `yaml:"notify_email"`
	// Contacts are the people who write for the customer: a message from
	// one of them is theirs; EmailDomains catch the rest of the staff
	// (seed 001 accepts requests only by e-mail).
	Contacts     []FileContact  `yaml:"contacts"`
	EmailDomains []string       `yaml:"email_domains"`
	Sites        []FileSite     `yaml:"sites"`
	Contracts    []FileContract `yaml:"contracts"`
}

// FileContact is a person who writes for a customer.
type FileContact struct {
	Name     string `yaml:"name"`
	Email    string `yaml:"email"`
	Phone    string `yaml:"phone"`
	Role     string `yaml:"role"`
	Language string `yaml:"language"` // es or en; default the customer's
}

// FileSite is a hospital, centre or department.
type FileSite struct {
	ID      string       `yaml:"id"`
	Name    string       `yaml:"name"`
	Kind    string       `yaml:"kind"` // hospital, centre, department
	City    string       `yaml:"city"`
	Address string       `yaml:"address"`
	Contact string       `yaml:"contact"`
	Gateway string       `yaml:"gateway"` // id of the site's uplink device
	Devices []FileDevice `yaml:"devices"`
}

// FileDevice is one watched device.
type FileDevice struct {
	ID           string         `yaml:"id"`
	Name         string         `yaml:"name"`
	Kind         string         `yaml:"kind"`     // pacs, ris, broker, modality, biomedical, network
	Modality     string         `yaml:"modality"` // CT, MR, US… for kind modality
	Role         string         `yaml:"role"`     // core, or empty
	Manufacturer string         `yaml:"manufacturer"`
	Model        string         `yaml:"model"`
	Serial       string         `yaml:"serial"`
	InstallDate  *Date          `yaml:"install_date"`
	WarrantyEnd  *Date          `yaml:"warranty_end"`
	DICOM        *FileDICOM     `yaml:"dicom"`
	SNMP         *FileSNMP      `yaml:"snmp"`
	TCP          *FileTCP       `yaml:"tcp"`
	Heartbeat    *FileHeartbeat `yaml:"heartbeat"`
	HL7          *FileHL7       `yaml:"hl7"`
	Probe        *FileProbe     `yaml:"probe"`
}

// FileDICOM is a DICOM node answering C-ECHO.
type FileDICOM struct {
	Host      string        `yaml:"host"`
	Port      int           `yaml:"port"`
	CalledAE  string        `yaml:"called_ae"`
	CallingAE string        `yaml:"calling_ae"`
	TLS       bool          `yaml:"tls"`
	Worklist  *FileWorklist `yaml:"worklist"`
}

// FileWorklist is the modality worklist query of a broker or RIS.
type FileWorklist struct {
	Modality    string `yaml:"modality"`   // CT, MR…; empty: any
	StationAE   string `yaml:"station_ae"` // scheduled station AE title; empty: any
	ExpectItems bool   `yaml:"expect_items"`
}

// FileHL7 is an HL7 v2 interface engine over MLLP.
type FileHL7 struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	SendingApp   string `yaml:"sending_app"`   // MSH-3, default VIGIA
	ReceivingApp string `yaml:"receiving_app"` // MSH-5
	MessageType  string `yaml:"message_type"`  // MSH-9, default NMD^N02
}

// FileSNMP is an SNMP agent, v2c (community) or v3 (USM user).
type FileSNMP struct {
	Host           string `yaml:"host"`
	Port           int    `yaml:"port"`
	Version        string `yaml:"version"` // v2c or v3
	Community      Secret `yaml:"community"`
	User           string `yaml:"user"`
	AuthProtocol   string `yaml:"auth_protocol"` // SHA, SHA224, SHA256, SHA384, SHA512, MD5
	AuthPassphrase Secret `yaml:"auth_passphrase"`
	PrivProtocol   string `yaml:"priv_protocol"` // AES, AES192, AES256, DES
	PrivPassphrase Secret `yaml:"priv_passphrase"`
}

// FileTCP is a plain port check, for gear with nothing better.
type FileTCP struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

// FileHeartbeat is a device or on-site agent that posts to Vigía.
type FileHeartbeat struct {
	Grace Duration `yaml:"grace"`
	Token Secret   `yaml:"token"`
}

// FileProbe tunes how often and how insistently a device is probed.
type FileProbe struct {
	Interval Duration `yaml:"interval"`
	Retries  *int     `yaml:"retries"`
}

// FileContract is a support contract.
type FileContract struct {
	ID        string         `yaml:"id"`
	Plan      string         `yaml:"plan"`
	SLAPolicy string         `yaml:"sla_policy"`
	Devices   DeviceSelector `yaml:"devices"`
	Start     *Date          `yaml:"start"`
	End       *Date          `yaml:"end"`
	Activated *Date          `yaml:"activated"` // close act signed and first invoice issued
	PaidUp    *bool          `yaml:"paid_up"`   // "cartera al día"; default true
	Warranty  []FileWarranty `yaml:"warranty"`
	HourBank  *FileHourBank  `yaml:"hour_bank"`
}

// FileWarranty is a warranty window of a contract.
type FileWarranty struct {
	From    *Date    `yaml:"from"`
	To      *Date    `yaml:"to"`
	Covers  string   `yaml:"covers"`  // support, manufacturing_defects
	Devices []string `yaml:"devices"` // empty: all the contract's devices
}

// FileHourBank is a plan that sells hours (seed 001, seed 003).
type FileHourBank struct {
	Hours       int   `yaml:"hours"`
	ValidMonths int   `yaml:"valid_months"`
	WholeHours  *bool `yaml:"whole_hours"` // bill whole hours only; default true
}

// DeviceSelector is "all" or a list of device ids.
type DeviceSelector struct {
	All bool
	IDs []string
	set bool
}

func (d *DeviceSelector) UnmarshalYAML(n *yaml.Node) error {
	d.set = true
	if n.Kind == yaml.ScalarNode && n.Value == "all" {
		d.All = true
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return n.Decode(&d.IDs)
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: devices: want \"all\" or a list of device ids", n.Line)}}
}

// Date is a calendar date (no time of day, no zone): contract dates are
// read in the customer's time zone when compared with an instant.
type Date struct{ time.Time }

func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.Parse(time.DateOnly, n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a date (want YYYY-MM-DD)", n.Line, n.Value)}}
	}
	d.Time = t
	return nil
}

func (d *Date) String() string {
	if d == nil {
		return ""
	}
	return d.Format(time.DateOnly)
}

// Duration is a Go duration written as "30s", "5m", "1h30m".
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v <= 0 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a positive duration (e.g. 30s, 5m)", n.Line, n.Value)}}
	}
	d.Duration = v
	return nil
}
