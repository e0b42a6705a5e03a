package assets

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Problem is one mistake in an inventory file, located by line and key.
type Problem struct {
	File string
	Line int
	Key  string // the offending key, as a path: customers[0].sites[1].kind
	Msg  string
}

func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Key, p.Msg)
}

// InvalidFileError lists every mistake found in an inventory file. Nothing
// is imported from a file that has one.
type InvalidFileError struct{ Problems []Problem }

func (e *InvalidFileError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s) in the inventory:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// ParseOptions carries what the parser cannot know by itself.
type ParseOptions struct {
	// KnownPolicy reports whether an SLA policy name exists; nil accepts any.
	KnownPolicy func(name string) bool
}

// ParseFile decodes and validates an inventory file strictly: unknown keys,
// wrong types, dangling references and impossible values are all reported,
// each with its line, in one *InvalidFileError.
func ParseFile(name string, data []byte, opts ParseOptions) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &InvalidFileError{Problems: []Problem{syntaxProblem(name, err)}}
	}
	var f File
	var problems []Problem
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &InvalidFileError{Problems: []Problem{syntaxProblem(name, err)}}
		}
		// yaml.v3 keeps decoding past type errors, so f holds the rest.
		for _, msg := range te.Errors {
			problems = append(problems, typeProblem(name, msg))
		}
	}
	v := validator{file: name, root: &root, opts: opts}
	v.text(&root, nil)
	v.check(&f)
	// A value that failed to decode also fails validation (as missing);
	// report only the root cause.
	// A line whose text is refused (a NUL in a key) is told as such, not
	// as the decoder's echo of the bad bytes.
	problems = slices.DeleteFunc(problems, func(p Problem) bool { return v.badText[p.Line] })
	decodeFailed := map[int]bool{}
	for _, p := range problems {
		decodeFailed[p.Line] = true
	}
	for _, p := range v.problems {
		if !decodeFailed[p.Line] {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &InvalidFileError{Problems: problems}
	}
	return &f, nil
}

var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownKeyRE  = regexp.MustCompile(`^field (\S+) not found in type assets\.(\w+)$`)
	friendlyTypes = map[string]string{
		"File": "the file root", "FileCustomer": "a customer", "FileSite": "a site", "FileDevice": "a device",
		"FileDICOM": "dicom", "FileSNMP": "snmp", "FileTCP": "tcp", "FileHeartbeat": "heartbeat",
		"FileWorklist": "worklist", "FileHL7": "hl7",
		"FileProbe": "probe", "FileContract": "a contract", "FileContact": "a contact", "FileWarranty": "a warranty window", "FileHourBank": "hour_bank",
	}
)

func syntaxProblem(file string, err error) Problem {
	p := typeProblem(file, err.Error())
	p.Msg = "invalid YAML: " + p.Msg
	return p
}

func typeProblem(file, msg string) Problem {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return Problem{File: file, Line: 1, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if u := unknownKeyRE.FindStringSubmatch(rest); u != nil {
		return Problem{File: file, Line: line, Key: u[1], Msg: "unknown key (not allowed in " + friendlyTypes[u[2]] + ")"}
	}
	rest = strings.ReplaceAll(rest, "!!str", "string")
	rest = strings.ReplaceAll(rest, "!!int", "integer")
	rest = strings.ReplaceAll(rest, "!!map", "mapping")
	rest = strings.ReplaceAll(rest, "!!seq", "list")
	return Problem{File: file, Line: line, Msg: rest}
}

// Vocabulary of the inventory.
var (
	SiteKinds      = []string{"hospital", "centre", "department"}
	DeviceKinds    = []string{"pacs", "ris", "broker", "modality", "biomedical", "network"}
	coreKinds      = []string{"pacs", "ris", "broker"}
	authProtocols  = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	privProtocols  = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
	warrantyCovers = []string{"support", "manufacturing_defects"}
	idRE           = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	modalityRE     = regexp.MustCompile(`^[A-Z]{2,3}$`)
	domainRE       = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	hl7TypeRE      = regexp.MustCompile(`^[A-Z0-9]{3}\^[A-Z0-9]{3}(\^[A-Z0-9_]{3,7})?$`)
)

const (
	// DefaultProbeInterval and DefaultProbeRetries apply when a device says nothing.
	DefaultProbeInterval = 60 * time.Second
	DefaultProbeRetries  = 3
	// DefaultCallingAE is the AE title Vigía presents in C-ECHO.
	DefaultCallingAE = "VIGIA"
	// MinHeartbeatToken keeps guessable tokens out.
	MinHeartbeatToken = 16
)

type validator struct {
	file     string
	root     *yaml.Node
	opts     ParseOptions
	problems []Problem
	badText  map[int]bool // lines with a scalar refused by text
}

// path is a location in the file: mapping keys and sequence indexes.
type path []any

func (p path) with(elems ...any) path { return append(slices.Clone(p), elems...) }

func (p path) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	return b.String()
}

// line finds the line of the node at p, or of its deepest existing parent.
func (v *validator) line(p path) int {
	n := v.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range p {
		var next *yaml.Node
		switch e := e.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						next = n.Content[i+1]
						line = n.Content[i].Line
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && e < len(n.Content) {
				next = n.Content[e]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// maxScalar bounds every value of the file, in bytes; ids are further
// bounded by maxID.
const (
	maxScalar = 8000
	maxID     = 100
)

// text reports every scalar (key or value) PostgreSQL could not store or
// compare: a NUL (YAML's "\0" escape), invalid UTF-8, or more than
// maxScalar bytes; each at its own line and key.
func (v *validator) text(n *yaml.Node, p path) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			if n.Kind == yaml.SequenceNode {
				v.text(c, p.with(i))
			} else {
				v.text(c, p)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			v.scalar(k, p.with(k.Value))
			v.text(n.Content[i+1], p.with(k.Value))
		}
	case yaml.ScalarNode:
		v.scalar(n, p)
	}
}

func (v *validator) scalar(n *yaml.Node, p path) {
	var msg string
	switch {
	case strings.IndexByte(n.Value, 0) >= 0:
		msg = "contains a NUL character"
	case !utf8.ValidString(n.Value):
		msg = "not valid UTF-8"
	case len(n.Value) > maxScalar:
		msg = fmt.Sprintf("longer than %d bytes", maxScalar)
	default:
		return
	}
	// The key itself may be the bad scalar: print it safely, and short.
	key := path{}
	for _, e := range p {
		if s, ok := e.(string); ok {
			s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\0`), "?")
			if len(s) > maxID {
				s = strings.ToValidUTF8(s[:maxID], "") + "…"
			}
			e = s
		}
		key = append(key, e)
	}
	v.problems = append(v.problems, Problem{File: v.file, Line: n.Line, Key: key.String(), Msg: msg})
	if v.badText == nil {
		v.badText = map[int]bool{}
	}
	v.badText[n.Line] = true
}

func (v *validator) errorf(p path, format string, a ...any) {
	if v.badText[v.line(p)] {
		return // the line's text is already refused; its meaning cannot be judged
	}
	v.problems = append(v.problems, Problem{File: v.file, Line: v.line(p), Key: p.String(), Msg: fmt.Sprintf(format, a...)})
}

func (v *validator) id(p path, id string, seen map[string]path, what string) {
	switch {
	case id == "":
		v.errorf(p, "missing %s id", what)
	case len(id) > maxID:
		v.errorf(p, "%s id longer than %d bytes", what, maxID)
	case !idRE.MatchString(id):
		v.errorf(p, "%q is not a valid id (lower-case letters, digits, '.', '_', '-')", id)
	case seen[id] != nil:
		v.errorf(p, "duplicate %s id %q (first at line %d)", what, id, v.line(seen[id]))
	default:
		seen[id] = p
	}
}

func (v *validator) oneOf(p path, got string, allowed []string, what string) {
	if !slices.Contains(allowed, got) {
		if got == "" {
			v.errorf(p, "missing %s (one of %s)", what, strings.Join(allowed, ", "))
			return
		}
		v.errorf(p, "unknown %s %q (want one of %s)", what, got, strings.Join(allowed, ", "))
	}
}

func (v *validator) required(p path, got, what string) {
	if strings.TrimSpace(got) == "" {
		v.errorf(p, "missing %s", what)
	}
}

func (v *validator) port(p path, port int) {
	if port < 1 || port > 65535 {
		v.errorf(p, "port %d out of range 1-65535", port)
	}
}

func (v *validator) check(f *File) {
	if len(f.Customers) == 0 && len(v.problems) == 0 {
		v.errorf(path{"customers"}, "the inventory lists no customers")
	}
	customers, sites, devices, contracts := map[string]path{}, map[string]path{}, map[string]path{}, map[string]path{}
	emails, domains := map[string]path{}, map[string]path{}
	for ci := range f.Customers {
		c := &f.Customers[ci]
		cp := path{"customers", ci}
		v.id(cp.with("id"), c.ID, customers, "customer")
		v.required(cp.with("name"), c.Name, "name")
		if len(c.Country) != 2 || strings.ToUpper(c.Country) != c.Country {
			v.errorf(cp.with("country"), "country %q: want an ISO 3166 alpha-2 code such as CO, PE or MX", c.Country)
		}
		if c.TimeZone == "" {
			v.errorf(cp.with("time_zone"), "missing time_zone (IANA name such as America/Bogota)")
		} else if _, err := time.LoadLocation(c.TimeZone); err != nil {
			v.errorf(cp.with("time_zone"), "unknown time zone %q", c.TimeZone)
		}
		if c.Language != "" {
			v.oneOf(cp.with("language"), c.Language, []string{"es", "en"}, "language")
		}
		if c.NotifyEmail != "" {
			if _, err := mail.ParseAddressList(c.NotifyEmail); err != nil {
				v.errorf(cp.with("notify_email"), "%q is not a list of e-mail addresses: %v", c.NotifyEmail, err)
			}
		}
		v.contacts(cp, c, emails, domains)
		customerDevices := map[string]string{} // device id -> site id
		for si := range c.Sites {
			s := &c.Sites[si]
			sp := cp.with("sites", si)
			v.id(sp.with("id"), s.ID, sites, "site")
			v.required(sp.with("name"), s.Name, "name")
			v.oneOf(sp.with("kind"), s.Kind, SiteKinds, "site kind")
			for di := range s.Devices {
				d := &s.Devices[di]
				dp := sp.with("devices", di)
				v.id(dp.with("id"), d.ID, devices, "device")
				customerDevices[d.ID] = s.ID
				v.device(dp, d)
			}
			if s.Gateway != "" && !slices.ContainsFunc(s.Devices, func(d FileDevice) bool { return d.ID == s.Gateway }) {
				v.errorf(sp.with("gateway"), "gateway %q is not a device of this site", s.Gateway)
			}
		}
		for ki := range c.Contracts {
			v.contract(cp.with("contracts", ki), &c.Contracts[ki], contracts, customerDevices)
		}
	}
}

// contacts checks a customer's contacts and e-mail domains: an address or
// a domain names one customer only, or a message could not tell whose it is.
func (v *validator) contacts(cp path, c *FileCustomer, emails, domains map[string]path) {
	for i := range c.Contacts {
		k := &c.Contacts[i]
		kp := cp.with("contacts", i)
		v.required(kp.with("name"), k.Name, "name")
		addr, err := mail.ParseAddress(k.Email)
		switch {
		case k.Email == "":
			v.errorf(kp.with("email"), "missing email")
		case err != nil || addr.Address != k.Email || addr.Name != "" || len(k.Email) > 254:
			v.errorf(kp.with("email"), "%q is not an e-mail address (name@example.org, nothing else)", k.Email)
		case emails[strings.ToLower(k.Email)] != nil:
			v.errorf(kp.with("email"), "duplicate contact e-mail %q (first at line %d)", k.Email, v.line(emails[strings.ToLower(k.Email)]))
		default:
			emails[strings.ToLower(k.Email)] = kp.with("email")
		}
		if k.Language != "" {
			v.oneOf(kp.with("language"), k.Language, []string{"es", "en"}, "language")
		}
		if len(k.Name) > 200 || len(k.Phone) > 50 || len(k.Role) > 100 {
			v.errorf(kp, "name (200), phone (50) or role (100) too long")
		}
	}
	for i, d := range c.EmailDomains {
		dp := cp.with("email_domains", i)
		switch {
		case !domainRE.MatchString(d) || len(d) > 253:
			v.errorf(dp, "%q is not a domain name (lower case, such as hospital.example.pe)", d)
		case domains[d] != nil:
			v.errorf(dp, "duplicate e-mail domain %q (first at line %d)", d, v.line(domains[d]))
		default:
			domains[d] = dp
		}
	}
}

func (v *validator) device(dp path, d *FileDevice) {
	v.required(dp.with("name"), d.Name, "name")
	v.oneOf(dp.with("kind"), d.Kind, DeviceKinds, "device kind")
	switch {
	case d.Kind == "modality" && !modalityRE.MatchString(d.Modality):
		v.errorf(dp.with("modality"), "a modality needs its DICOM modality code (CT, MR, US, CR, DX, MG, NM…), got %q", d.Modality)
	case d.Kind != "modality" && d.Modality != "":
		v.errorf(dp.with("modality"), "only devices of kind modality have a modality code")
	}
	if d.Role != "" {
		v.oneOf(dp.with("role"), d.Role, []string{"core"}, "role")
		if d.Role == "core" && !slices.Contains(coreKinds, d.Kind) {
			v.errorf(dp.with("role"), "only pacs, ris and broker servers can be core, not %s", d.Kind)
		}
	}
	if x := d.DICOM; x != nil {
		p := dp.with("dicom")
		v.required(p.with("host"), x.Host, "host")
		v.port(p.with("port"), x.Port)
		v.aeTitle(p.with("called_ae"), x.CalledAE, true)
		v.aeTitle(p.with("calling_ae"), x.CallingAE, false)
		if w := x.Worklist; w != nil {
			if w.Modality != "" && !modalityRE.MatchString(w.Modality) {
				v.errorf(p.with("worklist", "modality"), "a worklist modality is a DICOM modality code (CT, MR, US…), got %q", w.Modality)
			}
			v.aeTitle(p.with("worklist", "station_ae"), w.StationAE, false)
		}
	}
	if x := d.HL7; x != nil {
		p := dp.with("hl7")
		v.required(p.with("host"), x.Host, "host")
		v.port(p.with("port"), x.Port)
		for _, f := range []struct{ key, value string }{{"sending_app", x.SendingApp}, {"receiving_app", x.ReceivingApp}} {
			if len(f.value) > 180 || strings.ContainsAny(f.value, "|^~\\&\r\n") {
				v.errorf(p.with(f.key), "an HL7 application name has at most 180 characters and none of | ^ ~ \\ & or line breaks")
			}
		}
		if x.MessageType != "" && !hl7TypeRE.MatchString(x.MessageType) {
			v.errorf(p.with("message_type"), "an HL7 message type is TYPE^EVENT, e.g. NMD^N02 or ADT^A01, got %q", x.MessageType)
		}
	}
	if x := d.SNMP; x != nil {
		p := dp.with("snmp")
		v.required(p.with("host"), x.Host, "host")
		if x.Port != 0 {
			v.port(p.with("port"), x.Port)
		}
		switch x.Version {
		case "v2c":
			if x.Community.IsZero() {
				v.errorf(p.with("community"), "SNMP v2c needs a community")
			}
			if x.User != "" {
				v.errorf(p.with("user"), "a USM user is for SNMP v3, not v2c")
			}
		case "v3":
			v.required(p.with("user"), x.User, "USM user")
			if !x.Community.IsZero() {
				v.errorf(p.with("community"), "SNMP v3 uses a USM user, not a community")
			}
			if x.AuthProtocol != "" {
				v.oneOf(p.with("auth_protocol"), x.AuthProtocol, authProtocols, "auth protocol")
				if len(x.AuthPassphrase.Reveal()) < 8 {
					v.errorf(p.with("auth_passphrase"), "an SNMP v3 passphrase has at least 8 characters")
				}
			}
			if x.PrivProtocol != "" {
				v.oneOf(p.with("priv_protocol"), x.PrivProtocol, privProtocols, "priv protocol")
				if x.AuthProtocol == "" {
					v.errorf(p.with("priv_protocol"), "privacy (authPriv) needs an auth_protocol too")
				}
				if len(x.PrivPassphrase.Reveal()) < 8 {
					v.errorf(p.with("priv_passphrase"), "an SNMP v3 passphrase has at least 8 characters")
				}
			}
		default:
			v.oneOf(p.with("version"), x.Version, []string{"v2c", "v3"}, "SNMP version")
		}
	}
	if x := d.TCP; x != nil {
		v.required(dp.with("tcp", "host"), x.Host, "host")
		v.port(dp.with("tcp", "port"), x.Port)
	}
	if x := d.Heartbeat; x != nil {
		if x.Grace.Duration <= 0 {
			v.errorf(dp.with("heartbeat", "grace"), "missing grace (how long silence is tolerated, e.g. 5m)")
		}
		if len(x.Token.Reveal()) < MinHeartbeatToken {
			v.errorf(dp.with("heartbeat", "token"), "a heartbeat token has at least %d characters", MinHeartbeatToken)
		}
	}
	if x := d.Probe; x != nil {
		if x.Interval.Duration != 0 && x.Interval.Duration < time.Second {
			v.errorf(dp.with("probe", "interval"), "probe interval under 1s")
		}
		if x.Retries != nil && (*x.Retries < 0 || *x.Retries > 10) {
			v.errorf(dp.with("probe", "retries"), "retries %d out of range 0-10", *x.Retries)
		}
	}
}

// aeTitle checks an application entity title: 1-16 characters of the
// default character repertoire, no backslash, not only spaces (PS3.5).
func (v *validator) aeTitle(p path, ae string, required bool) {
	if ae == "" {
		if required {
			v.errorf(p, "missing AE title")
		}
		return
	}
	if len(ae) > 16 || strings.TrimSpace(ae) == "" || strings.ContainsFunc(ae, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '\\' }) {
		v.errorf(p, "%q is not a valid AE title (1-16 printable ASCII characters, no backslash)", ae)
	}
}

func (v *validator) contract(kp path, k *FileContract, seen map[string]path, customerDevices map[string]string) {
	v.id(kp.with("id"), k.ID, seen, "contract")
	if k.SLAPolicy == "" {
		v.errorf(kp.with("sla_policy"), "missing sla_policy")
	} else if v.opts.KnownPolicy != nil && !v.opts.KnownPolicy(k.SLAPolicy) {
		v.errorf(kp.with("sla_policy"), "unknown SLA policy %q (see `vigia sla policies`)", k.SLAPolicy)
	}
	if !k.Devices.set {
		v.errorf(kp.with("devices"), "missing devices (\"all\" or a list of this customer's device ids)")
	}
	covered := map[string]bool{}
	for i, id := range k.Devices.IDs {
		if _, ok := customerDevices[id]; !ok {
			v.errorf(kp.with("devices", i), "%q is not a device of this customer", id)
		}
		covered[id] = true
	}
	if k.Start == nil {
		v.errorf(kp.with("start"), "missing start date")
	}
	if k.End == nil {
		v.errorf(kp.with("end"), "missing end date")
	}
	if k.Start != nil && k.End != nil && k.End.Before(k.Start.Time) {
		v.errorf(kp.with("end"), "end %s is before start %s", k.End, k.Start)
	}
	for i, w := range k.Warranty {
		wp := kp.with("warranty", i)
		v.oneOf(wp.with("covers"), w.Covers, warrantyCovers, "warranty coverage")
		if w.From == nil || w.To == nil {
			v.errorf(wp, "a warranty window needs from and to dates")
		} else if w.To.Before(w.From.Time) {
			v.errorf(wp.with("to"), "to %s is before from %s", w.To, w.From)
		}
		for j, id := range w.Devices {
			if _, ok := customerDevices[id]; !ok || (!k.Devices.All && !covered[id]) {
				v.errorf(wp.with("devices", j), "%q is not a device of this contract", id)
			}
		}
	}
	if h := k.HourBank; h != nil {
		if h.Hours <= 0 {
			v.errorf(kp.with("hour_bank", "hours"), "an hour bank needs a positive number of hours")
		}
		if h.ValidMonths < 0 {
			v.errorf(kp.with("hour_bank", "valid_months"), "valid_months must be positive")
		}
	}
}
