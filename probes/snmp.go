package probes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/assets"
)

// The SNMP prober reads, on every device with an SNMP endpoint:
//
//   - sysUpTime, into Result.Uptime (the state machine compares it with the
//     previous run to detect reboots; note that it is the agent's uptime, so
//     a restarted snmpd looks like a reboot, and it wraps after 497 days);
//   - ifAdminStatus, ifOperStatus and ifDescr from IF-MIB's ifTable, to list
//     interfaces that are administratively up but operationally down in
//     Facts["interfaces_down"];
//
// and on servers (kinds pacs, ris, broker by default) HOST-RESOURCES-MIB's
// hrStorageTable, keeping fixed disks only: a disk fuller than the threshold
// (90 %) makes the device Degraded.
//
// Tables are read column by column with GetBulk, all wanted columns in one
// request stream, so a 48-port switch costs about three round trips and no
// unwanted column is ever transferred. The prober remembers how many rows
// each device's tables had and asks for one more than that: an unchanged
// table comes back, its end included, in one answer no bigger than it
// needs (decoding the rows past the end is most of a small device's cost).
//
// Outcomes:
//   - OK / Degraded: the agent answered sysUpTime. A full disk degrades; a
//     table that cannot be read after sysUpTime answered degrades too (the
//     agent is alive but struggling). An interface down is only evidence:
//     switches have many unused ports, and a server whose only NIC is down
//     would not answer at all.
//   - Failed: no answer before the deadline, or the port is unreachable.
//     With v2c a wrong community is also silence (agents drop such requests
//     without a word), so it can only ever be Failed: that is the protocol's
//     nature. The same holds for a wrong v3 privacy passphrase with AES,
//     which net-snmp cannot tell from garbage and drops.
//   - Misconfigured: the agent refused us: a v3 Report (unknown user, wrong
//     digest, decryption error, unsupported security level), an access
//     error status, a view that hides sysUpTime, or an endpoint that cannot
//     be turned into a request (unknown protocol, missing passphrase). A
//     Report is never read as success; the unsigned ones gosnmp discards
//     are recovered by the session (see gosnmpSession.explain).
//
// Facts: interfaces_down ("eth1,eth2"), interfaces_truncated, and for
// servers storage_max_percent ("95.0"), storage_max_volume ("/data") and
// one "storage:<volume>" entry per fixed disk ("9.5 GiB/10.0 GiB (95.0%)").
//
// Every Probe builds its own gosnmp client: gosnmp.GoSNMP is not safe for
// concurrent use and its UsmSecurityParameters must never be used by two
// clients at once. What an SNMPv3 poll learnt of the agent's engine (its
// ID, boots and time, and the keys localised to it) is handed on to the
// device's next poll, never to two polls at once (see snmpEngines), so a
// steady poll skips RFC 3414 discovery: one round trip and a key
// localisation fewer. A poll that the remembered engine makes fail other
// than by silence is repeated once with a fresh discovery.

// OIDs the prober reads, with the leading dot gosnmp uses in answers.
const (
	oidSysUpTime          = ".1.3.6.1.2.1.1.3.0"
	oidIfDescr            = ".1.3.6.1.2.1.2.2.1.2"
	oidIfAdminStatus      = ".1.3.6.1.2.1.2.2.1.7"
	oidIfOperStatus       = ".1.3.6.1.2.1.2.2.1.8"
	oidHrStorageType      = ".1.3.6.1.2.1.25.2.3.1.2"
	oidHrStorageDescr     = ".1.3.6.1.2.1.25.2.3.1.3"
	oidHrStorageUnits     = ".1.3.6.1.2.1.25.2.3.1.4"
	oidHrStorageSize      = ".1.3.6.1.2.1.25.2.3.1.5"
	oidHrStorageUsed      = ".1.3.6.1.2.1.25.2.3.1.6"
	oidHrStorageFixedDisk = ".1.3.6.1.2.1.25.2.1.4"

	// USM statistics an agent reports instead of answering (RFC 3414).
	oidUsmStatsUnsupportedSecLevels = ".1.3.6.1.6.3.15.1.1.1.0"
	oidUsmStatsNotInTimeWindows     = ".1.3.6.1.6.3.15.1.1.2.0"
	oidUsmStatsUnknownUserNames     = ".1.3.6.1.6.3.15.1.1.3.0"
	oidUsmStatsUnknownEngineIDs     = ".1.3.6.1.6.3.15.1.1.4.0"
	oidUsmStatsWrongDigests         = ".1.3.6.1.6.3.15.1.1.5.0"
	oidUsmStatsDecryptionErrors     = ".1.3.6.1.6.3.15.1.1.6.0"
)

// IF-MIB status values.
const (
	ifStatusUp             = 1
	ifStatusDown           = 2
	ifStatusNotPresent     = 6
	ifStatusLowerLayerDown = 7
)

const (
	defaultSNMPTimeout          = 2 * time.Second
	defaultSNMPRetries          = 1
	defaultSNMPStorageThreshold = 90.0
	// snmpMaxVarbinds bounds one GetBulk answer (columns × repetitions),
	// like gosnmp's MaxOids: larger answers get fragmented or refused by
	// small agents.
	snmpMaxVarbinds = 60
	// snmpMaxRows stops a walk of a runaway table (a core switch with
	// thousands of VLAN interfaces): the facts then say it was truncated.
	snmpMaxRows = 2048
)

// snmpServerKinds are the device kinds whose storage is read by default:
// the servers, where a full disk stops the imaging workflow.
var snmpServerKinds = []string{"pacs", "ris", "broker"}

// errSNMPConfig marks an endpoint that cannot be turned into a request.
var errSNMPConfig = errors.New("snmp endpoint")

// snmpSession is what the prober needs from one SNMP client. It is used by
// one Probe call only, never shared.
type snmpSession interface {
	Get(oids []string) (*gosnmp.SnmpPacket, error)
	GetBulk(oids []string, maxRepetitions uint32) (*gosnmp.SnmpPacket, error)
	Close() error
}

// snmpDialer connects a fresh, configured client: gosnmpDial in production,
// a table-backed double in unit tests.
type snmpDialer func(ctx context.Context, g *gosnmp.GoSNMP) (snmpSession, error)

// SNMPProber polls a device's SNMP agent. Its fields are read-only once
// probing starts; Probe is safe for concurrent use.
type SNMPProber struct {
	// Timeout bounds one request attempt; ctx's deadline bounds the whole
	// probe and wins when it is sooner. Zero means 2 s.
	Timeout time.Duration
	// Retries is how often an unanswered request is resent (UDP loses
	// packets). NewSNMPProber sets 1.
	Retries int
	// StorageThreshold is the fixed-disk use, in percent, above which a
	// server is Degraded. Zero means 90.
	StorageThreshold float64
	// ServerKinds are the device kinds whose storage is read. Nil means
	// pacs, ris and broker.
	ServerKinds []string
	// Trend, when set, keeps the fixed disks' readings for the "full in N
	// days" forecast (storage_trend.go).
	Trend *StorageTrend

	dial snmpDialer
	// tableRows remembers, per device and table, the rows of the last
	// walk (string key → int): the size of the next first request.
	tableRows sync.Map
	engines   snmpEngines
}

// Tables the prober walks, for tableRows' keys.
const (
	tableIf        = "ifTable"
	tableHrStorage = "hrStorageTable"
)

func (p *SNMPProber) rowsHint(deviceID, table string) int {
	if n, ok := p.tableRows.Load(deviceID + "\x00" + table); ok {
		return n.(int)
	}
	return 0
}

func (p *SNMPProber) rememberRows(deviceID, table string, rows int) {
	p.tableRows.Store(deviceID+"\x00"+table, rows)
}

// NewSNMPProber returns a prober with the defaults above.
func NewSNMPProber() *SNMPProber {
	return &SNMPProber{Timeout: defaultSNMPTimeout, Retries: defaultSNMPRetries}
}

// Applies reports whether the device has an SNMP agent to poll.
func (p *SNMPProber) Applies(d assets.Device) bool {
	return d.SNMP != nil && d.SNMP.Host != ""
}

// Probe polls the agent once.
func (p *SNMPProber) Probe(ctx context.Context, d assets.Device) Result {
	start := time.Now()
	r := p.probe(ctx, d)
	r.Prober = "snmp"
	r.Duration = time.Since(start)
	return r
}

func (p *SNMPProber) probe(ctx context.Context, d assets.Device) Result {
	if d.SNMP == nil {
		return Result{Outcome: Misconfigured, Detail: "device has no SNMP endpoint"}
	}
	known := p.engines.take(d.ID, d.SNMP)
	r, g, err := p.poll(ctx, d, known)
	if known != nil && err != nil && !unreachable(err) {
		// Refused with what we remembered (the agent was replaced, or
		// its engine changed): discover it afresh. An agent that is not
		// there is not asked again: it is a down device.
		r, g, _ = p.poll(ctx, d, nil)
	}
	if g != nil && (r.Outcome == OK || r.Outcome == Degraded) {
		p.engines.keep(d.ID, d.SNMP, g)
	}
	return r
}

// poll reads the agent once. known, when set, is the engine an earlier poll
// of this device discovered. It returns the client used, for its engine,
// and the error that made the agent's answer unusable, if any.
func (p *SNMPProber) poll(ctx context.Context, d assets.Device, known *snmpEngine) (Result, *gosnmp.GoSNMP, error) {
	g, err := newGoSNMP(d.SNMP)
	if err != nil {
		return Result{Outcome: Misconfigured, Detail: err.Error()}, nil, err
	}
	known.useIn(g)
	g.Timeout = p.Timeout
	if g.Timeout <= 0 {
		g.Timeout = defaultSNMPTimeout
	}
	g.Retries = max(p.Retries, 0)

	dial := p.dial
	if dial == nil {
		dial = gosnmpDial
	}
	s, err := dial(ctx, g)
	if err != nil {
		o, detail := classifySNMPError(err)
		return Result{Outcome: o, Detail: "connect: " + detail}, nil, err
	}
	defer s.Close()

	pkt, err := s.Get([]string{oidSysUpTime})
	if err == nil {
		err = checkSNMPPacket(pkt, 1)
	}
	if err != nil {
		o, detail := classifySNMPError(err)
		return Result{Outcome: o, Detail: "sysUpTime: " + detail}, g, err
	}
	uptime, err := parseSysUpTime(pkt.Variables[0])
	if err != nil {
		o, detail := classifySNMPError(err)
		return Result{Outcome: o, Detail: "sysUpTime: " + detail}, g, err
	}

	r := Result{Outcome: OK, Uptime: uptime, Facts: map[string]string{}}
	details := []string{"sysUpTime " + uptime.String()}

	// The agent has answered: from here on a failure degrades (it is alive
	// but cannot serve a table) unless it is a refusal.
	degrade := func(what string, err error) {
		o, detail := classifySNMPError(err)
		if o == Failed {
			o = Degraded
		}
		r.Outcome = worseOutcome(r.Outcome, o)
		details = append(details, what+": "+detail)
	}

	if down, truncated, rows, err := interfacesDown(s, p.rowsHint(d.ID, tableIf)); err != nil {
		degrade("ifTable", err)
	} else {
		p.rememberRows(d.ID, tableIf, rows)
		if len(down) > 0 {
			r.Facts["interfaces_down"] = strings.Join(down, ",")
			details = append(details, "interfaces down: "+strings.Join(down, ","))
		}
		if truncated {
			r.Facts["interfaces_truncated"] = strconv.Itoa(snmpMaxRows)
		}
	}

	if p.isServer(d.Kind) {
		vols, rows, err := fixedDisks(s, p.rowsHint(d.ID, tableHrStorage))
		if err != nil {
			degrade("hrStorage", err)
		} else {
			p.rememberRows(d.ID, tableHrStorage, rows)
			if p.Trend != nil {
				p.Trend.observe(ctx, d, vols)
			}
			o, detail := p.judgeStorage(vols, r.Facts)
			r.Outcome = worseOutcome(r.Outcome, o)
			if detail != "" {
				details = append(details, detail)
			}
		}
	}

	r.Detail = strings.Join(details, "; ")
	if len(r.Facts) == 0 {
		r.Facts = nil
	}
	return r, g, nil
}

func (p *SNMPProber) isServer(kind string) bool {
	kinds := p.ServerKinds
	if kinds == nil {
		kinds = snmpServerKinds
	}
	return slices.Contains(kinds, kind)
}

// worseOutcome orders the outcomes an answering agent can reach.
func worseOutcome(a, b Outcome) Outcome {
	rank := map[Outcome]int{OK: 0, Degraded: 1, Failed: 2, Misconfigured: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// snmpReportError is a v3 Report PDU: the agent refused the request and
// said why in the single varbind's OID.
type snmpReportError struct{ oid string }

func (e snmpReportError) Error() string { return "agent sent a Report " + e.oid }

// snmpStatusError is a non-zero error-status in a response PDU.
type snmpStatusError struct{ status gosnmp.SNMPError }

func (e snmpStatusError) Error() string { return "agent answered " + e.status.String() }

// checkSNMPPacket rejects any answer that is not a usable response with at
// least want varbinds. A Report PDU is never success, whatever gosnmp did
// with it.
func checkSNMPPacket(pkt *gosnmp.SnmpPacket, want int) error {
	if pkt == nil {
		return errors.New("empty answer")
	}
	if pkt.PDUType == gosnmp.Report {
		oid := ""
		if len(pkt.Variables) > 0 {
			oid = pkt.Variables[0].Name
		}
		return snmpReportError{oid: oid}
	}
	if pkt.PDUType != gosnmp.GetResponse {
		return fmt.Errorf("unexpected %s PDU", pkt.PDUType)
	}
	if pkt.Error != gosnmp.NoError {
		return snmpStatusError{status: pkt.Error}
	}
	if len(pkt.Variables) < want {
		return fmt.Errorf("answer has %d varbinds, want %d", len(pkt.Variables), want)
	}
	return nil
}

// errSNMPNotInView: the agent answered but its view hides the object, which
// is the operator's access configuration, not an outage.
var errSNMPNotInView = errors.New("not in the agent's view")

// parseSysUpTime turns sysUpTime (TimeTicks, hundredths of a second) into a
// duration.
func parseSysUpTime(v gosnmp.SnmpPDU) (time.Duration, error) {
	switch v.Type {
	case gosnmp.TimeTicks:
		ticks := gosnmp.ToBigInt(v.Value)
		if ticks.Sign() < 0 || !ticks.IsUint64() || ticks.Uint64() > 1<<32-1 {
			return 0, fmt.Errorf("sysUpTime out of range: %s", ticks)
		}
		return time.Duration(ticks.Uint64()) * 10 * time.Millisecond, nil
	case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
		return 0, errSNMPNotInView
	default:
		return 0, fmt.Errorf("sysUpTime has type %s, want TimeTicks", v.Type)
	}
}

// classifySNMPError decides what an error means for the device and says it
// for people. Refusals (v3 Reports, access errors) are Misconfigured;
// silence and unreachability are Failed; an agent that answered strangely
// is Degraded.
func classifySNMPError(err error) (Outcome, string) {
	var report snmpReportError
	if errors.As(err, &report) {
		err = reportSentinel(report.oid)
	}
	var status snmpStatusError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errSNMPConfig):
		return Misconfigured, err.Error()
	case errors.Is(err, gosnmp.ErrUnknownUsername):
		return Misconfigured, "SNMPv3 user unknown to the agent (usmStatsUnknownUserNames)"
	case errors.Is(err, gosnmp.ErrWrongDigest):
		return Misconfigured, "SNMPv3 authentication failed: wrong auth passphrase or protocol (usmStatsWrongDigests)"
	case errors.Is(err, gosnmp.ErrDecryption):
		return Misconfigured, "SNMPv3 decryption failed: wrong privacy passphrase or protocol (usmStatsDecryptionErrors)"
	case errors.Is(err, gosnmp.ErrUnknownSecurityLevel):
		return Misconfigured, "security level not supported for this SNMPv3 user (usmStatsUnsupportedSecLevels)"
	case errors.Is(err, gosnmp.ErrNotInTimeWindow), errors.Is(err, gosnmp.ErrUnknownEngineID):
		// gosnmp already resynchronised once; a second refusal usually means
		// two agents share an engine ID (cloned configuration).
		return Misconfigured, "SNMPv3 engine refused us after resynchronisation (duplicate engine ID?): " + err.Error()
	case errors.Is(err, gosnmp.ErrUnknownSecurityModels), errors.Is(err, gosnmp.ErrInvalidMsgs),
		errors.Is(err, gosnmp.ErrUnknownPDUHandlers), errors.Is(err, gosnmp.ErrUnknownReportPDU):
		return Misconfigured, "agent refused the request: " + err.Error()
	case errors.As(err, &status):
		switch status.status {
		case gosnmp.NoAccess, gosnmp.AuthorizationError:
			return Misconfigured, "access denied: " + status.status.String()
		}
		return Degraded, err.Error()
	case errors.Is(err, errSNMPNotInView):
		return Misconfigured, err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, gosnmp.ErrMaxRetriesExceeded),
		isTimeout(err):
		return Failed, "no answer before the deadline (for v2c a wrong community is also silence)"
	case errors.Is(err, context.Canceled):
		return Failed, "probe cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return Failed, "port unreachable: no agent listening"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return Misconfigured, "host name does not resolve: " + dnsErr.Name
	}
	return Failed, err.Error()
}

// unreachable reports whether err means no agent answered at all:
// silence until the deadline, a closed port, or the probe called off.
func unreachable(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, gosnmp.ErrMaxRetriesExceeded) || errors.Is(err, syscall.ECONNREFUSED) || isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reportSentinel maps a Report's varbind to gosnmp's error for it, for the
// Reports gosnmp hands back as answers instead of errors.
func reportSentinel(oid string) error {
	switch oid {
	case oidUsmStatsUnsupportedSecLevels:
		return gosnmp.ErrUnknownSecurityLevel
	case oidUsmStatsNotInTimeWindows:
		return gosnmp.ErrNotInTimeWindow
	case oidUsmStatsUnknownUserNames:
		return gosnmp.ErrUnknownUsername
	case oidUsmStatsUnknownEngineIDs:
		return gosnmp.ErrUnknownEngineID
	case oidUsmStatsWrongDigests:
		return gosnmp.ErrWrongDigest
	case oidUsmStatsDecryptionErrors:
		return gosnmp.ErrDecryption
	}
	return fmt.Errorf("%w %s", gosnmp.ErrUnknownReportPDU, oid)
}

// walkColumns reads table columns with GetBulk, all of them in one request
// stream, and returns for each column its values by row index (the OID
// suffix after the column). A column ends when the agent leaves its
// subtree; truncated is set when a column exceeds snmpMaxRows. rowsHint,
// when positive, is the table's size at the last walk: the first request
// asks for one row more, enough to see the end of an unchanged table.
func walkColumns(s snmpSession, columns []string, rowsHint int) (rows []map[string]gosnmp.SnmpPDU, truncated bool, err error) {
	rows = make([]map[string]gosnmp.SnmpPDU, len(columns))
	cursor := slices.Clone(columns)
	active := make([]int, len(columns))
	for i := range columns {
		rows[i] = map[string]gosnmp.SnmpPDU{}
		active[i] = i
	}
	reps := max(1, snmpMaxVarbinds/len(columns))
	first := reps
	if rowsHint > 0 {
		first = min(reps, rowsHint+1)
	}
	for len(active) > 0 {
		oids := make([]string, len(active))
		for i, c := range active {
			oids[i] = cursor[c]
		}
		ask := reps
		if first > 0 {
			ask, first = min(first, reps), 0
		}
		pkt, err := s.GetBulk(oids, uint32(ask))
		if err == nil && pkt != nil && pkt.PDUType == gosnmp.GetResponse && pkt.Error == gosnmp.TooBig && ask > 1 {
			// Agents may refuse rather than shorten a big answer: ask for
			// fewer rows per round trip.
			reps = ask / 2
			continue
		}
		if err == nil {
			err = checkSNMPPacket(pkt, 0)
		}
		if err != nil {
			return nil, false, err
		}
		// Varbinds come row by row: active[0], active[1], …, active[0], …
		// An agent may stop early; whatever it returned still counts.
		var still []int
		progress := false
		for i, c := range active {
			prefix := columns[c] + "."
			done := false
			seen := false
			for j := i; j < len(pkt.Variables); j += len(active) {
				v := pkt.Variables[j]
				if v.Type == gosnmp.EndOfMibView || v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance ||
					!strings.HasPrefix(v.Name, prefix) {
					done = true
					break
				}
				if compareOIDs(v.Name, cursor[c]) <= 0 {
					return nil, false, fmt.Errorf("agent returned OIDs out of order: %s after %s", v.Name, cursor[c])
				}
				rows[c][strings.TrimPrefix(v.Name, prefix)] = v
				cursor[c] = v.Name
				seen = true
				if len(rows[c]) >= snmpMaxRows {
					truncated, done = true, true
					break
				}
			}
			if seen || done {
				progress = true
			}
			if !done {
				still = append(still, c)
			}
		}
		if !progress {
			return nil, false, errors.New("agent returned an empty GetBulk answer")
		}
		active = still
	}
	return rows, truncated, nil
}

// compareOIDs orders dotted OIDs numerically, arc by arc. It runs for
// every varbind of every walk, so it allocates nothing.
func compareOIDs(a, b string) int {
	a, b = strings.TrimPrefix(a, "."), strings.TrimPrefix(b, ".")
	for {
		x, restA, okA := nextArc(a)
		y, restB, okB := nextArc(b)
		switch {
		case !okA && !okB:
			return 0
		case !okA:
			return -1
		case !okB:
			return 1
		case x < y:
			return -1
		case x > y:
			return 1
		}
		a, b = restA, restB
	}
}

// nextArc splits the first arc off a dotted OID; ok is false when none is
// left.
func nextArc(oid string) (arc uint64, rest string, ok bool) {
	if oid == "" {
		return 0, "", false
	}
	head, rest, _ := strings.Cut(oid, ".")
	arc, _ = strconv.ParseUint(head, 10, 64)
	return arc, rest, true
}

// interfacesDown lists, in ifIndex order, the interfaces an operator wants
// up (ifAdminStatus up) that are not: down, notPresent or lowerLayerDown.
// Dormant, testing and unknown are left alone: they are states, not faults.
func interfacesDown(s snmpSession, rowsHint int) (down []string, truncated bool, rows int, err error) {
	cols, truncated, err := walkColumns(s, []string{oidIfAdminStatus, oidIfOperStatus, oidIfDescr}, rowsHint)
	if err != nil {
		return nil, false, 0, err
	}
	rows = tableSize(cols)
	admin, oper, descr := cols[0], cols[1], cols[2]
	idx := make([]string, 0, len(oper))
	for i := range oper {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return compareOIDs(idx[a], idx[b]) < 0 })
	for _, i := range idx {
		a, ok := admin[i]
		if !ok || pduInt(a) != ifStatusUp {
			continue
		}
		switch pduInt(oper[i]) {
		case ifStatusDown, ifStatusNotPresent, ifStatusLowerLayerDown:
			name := "ifIndex " + i
			if d, ok := descr[i]; ok && pduString(d) != "" {
				name = pduString(d)
			}
			down = append(down, name)
		}
	}
	return down, truncated, rows, nil
}

// tableSize is the row count of a walked table: its longest column.
func tableSize(cols []map[string]gosnmp.SnmpPDU) int {
	n := 0
	for _, c := range cols {
		n = max(n, len(c))
	}
	return n
}

// snmpVolume is one fixed disk from hrStorageTable.
type snmpVolume struct {
	Name       string
	UsedBytes  uint64
	SizeBytes  uint64
	UsePercent float64
}

// fixedDisks reads hrStorageTable and keeps fixed disks with a size: memory,
// swap, optical drives and empty pseudo-filesystems are not what fills up a
// PACS.
func fixedDisks(s snmpSession, rowsHint int) (vols []snmpVolume, rows int, err error) {
	cols, _, err := walkColumns(s, []string{oidHrStorageType, oidHrStorageDescr, oidHrStorageUnits, oidHrStorageSize, oidHrStorageUsed}, rowsHint)
	if err != nil {
		return nil, 0, err
	}
	typ, descr, units, size, used := cols[0], cols[1], cols[2], cols[3], cols[4]
	for i, t := range typ {
		if "."+strings.TrimPrefix(pduString(t), ".") != oidHrStorageFixedDisk {
			continue
		}
		u, sz, us := pduInt(units[i]), pduInt(size[i]), pduInt(used[i])
		if u <= 0 || sz <= 0 || us < 0 {
			continue
		}
		name := pduString(descr[i])
		if name == "" {
			name = "hrStorageIndex " + i
		}
		vols = append(vols, snmpVolume{
			Name:       name,
			UsedBytes:  uint64(us) * uint64(u),
			SizeBytes:  uint64(sz) * uint64(u),
			UsePercent: float64(us) / float64(sz) * 100,
		})
	}
	sort.Slice(vols, func(a, b int) bool { return vols[a].Name < vols[b].Name })
	return vols, tableSize(cols), nil
}

// judgeStorage records every volume in facts and degrades when one is
// fuller than the threshold, naming the fullest first.
func (p *SNMPProber) judgeStorage(vols []snmpVolume, facts map[string]string) (Outcome, string) {
	if len(vols) == 0 {
		return OK, ""
	}
	threshold := p.StorageThreshold
	if threshold <= 0 {
		threshold = defaultSNMPStorageThreshold
	}
	fullest := vols[0]
	var over []snmpVolume
	for _, v := range vols {
		facts["storage:"+v.Name] = fmt.Sprintf("%s/%s (%.1f%%)", formatBytes(v.UsedBytes), formatBytes(v.SizeBytes), v.UsePercent)
		if v.UsePercent > fullest.UsePercent {
			fullest = v
		}
		if v.UsePercent > threshold {
			over = append(over, v)
		}
	}
	facts["storage_max_percent"] = strconv.FormatFloat(fullest.UsePercent, 'f', 1, 64)
	facts["storage_max_volume"] = fullest.Name
	if len(over) == 0 {
		return OK, ""
	}
	sort.SliceStable(over, func(a, b int) bool { return over[a].UsePercent > over[b].UsePercent })
	parts := make([]string, len(over))
	for i, v := range over {
		parts[i] = fmt.Sprintf("%s %.1f%% full", v.Name, v.UsePercent)
	}
	return Degraded, fmt.Sprintf("storage over %g%%: %s", threshold, strings.Join(parts, ", "))
}

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// pduInt reads an integer-valued varbind; -1 when it is not one (a missing
// cell in a sparse table, an exception value).
func pduInt(v gosnmp.SnmpPDU) int64 {
	switch v.Type {
	case gosnmp.Integer, gosnmp.Gauge32, gosnmp.Counter32, gosnmp.Uinteger32, gosnmp.TimeTicks, gosnmp.Counter64:
		if b := gosnmp.ToBigInt(v.Value); b.IsInt64() {
			return b.Int64()
		}
	}
	return -1
}

// pduString reads an OctetString or ObjectIdentifier varbind.
func pduString(v gosnmp.SnmpPDU) string {
	switch x := v.Value.(type) {
	case []byte:
		// Agents pad with NULs, and some send Latin-1: what they send ends
		// up in details, facts and outage causes, stored as text.
		return storableText(string(x))
	case string:
		return x
	}
	return ""
}
