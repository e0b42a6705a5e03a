package probes

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
)

// Bounds of one trap, checked where it enters: by the listener (serve's or
// a collector's) on the datagram, and by the NOC on a trap a collector
// forwards. A trap with more varbinds is refused; a longer value is cut
// by the listener (what matters of it is its beginning) and refused in a
// forwarded trap (a collector cuts it already).
const (
	maxTrapVarbinds   = 64
	maxTrapValueBytes = 1024
	maxTrapOIDBytes   = 256
)

// Trap is one trap or inform as the listener authenticated it, before any
// rule: what a device sent, when, from where. serve's listener records it
// at once; a collector's forwards it in its result stream, and the NOC
// records it at the instant the collector received it. Both go through
// recordTrap, so the rules decide the same wherever the trap arrived.
type Trap struct {
	At       time.Time     `json:"at"`
	Source   string        `json:"source"`  // the sender's address and port
	Version  string        `json:"version"` // v1, v2c or v3
	Inform   bool          `json:"inform,omitempty"`
	OID      string        `json:"oid"` // snmpTrapOID.0, or v1's RFC 3584 translation
	Varbinds []TrapVarbind `json:"varbinds"`
}

// TrapVarbind is a varbind as text, as stored in the device's history.
type TrapVarbind struct {
	OID   string `json:"oid"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// textTypes are the varbind types whose value is text or an OID: the only
// ones a rule's varbind condition or an interface's name is read from.
var textTypes = map[string]bool{gosnmp.OctetString.String(): true, gosnmp.ObjectIdentifier.String(): true,
	gosnmp.IPAddress.String(): true, gosnmp.Opaque.String(): true, gosnmp.BitString.String(): true}

// integerTypes are the varbind types whose value is a number.
var integerTypes = map[string]bool{gosnmp.Integer.String(): true, gosnmp.Gauge32.String(): true, gosnmp.Counter32.String(): true,
	gosnmp.Uinteger32.String(): true, gosnmp.TimeTicks.String(): true, gosnmp.Counter64.String(): true}

var trapVersions = map[gosnmp.SnmpVersion]string{gosnmp.Version1: "v1", gosnmp.Version2c: "v2c", gosnmp.Version3: "v3"}

// errTooManyVarbinds refuses a trap over maxTrapVarbinds.
var errTooManyVarbinds = fmt.Errorf("more than %d varbinds", maxTrapVarbinds)

// newTrap reads an authenticated packet into a Trap, values cut to
// maxTrapValueBytes.
func newTrap(pkt *gosnmp.SnmpPacket, source string, inform bool, at time.Time) (Trap, error) {
	if len(pkt.Variables) > maxTrapVarbinds {
		return Trap{}, errTooManyVarbinds
	}
	return Trap{At: at.Round(time.Microsecond), Source: source, Version: trapVersions[pkt.Version], Inform: inform,
		OID: cutText(storableText(trapOID(pkt)), maxTrapOIDBytes), Varbinds: trapVarbinds(pkt.Variables)}, nil
}

func trapVarbinds(vars []gosnmp.SnmpPDU) []TrapVarbind {
	out := make([]TrapVarbind, 0, len(vars))
	for _, v := range vars {
		val := pduString(v)
		if val == "" && v.Value != nil {
			if _, isBytes := v.Value.([]byte); !isBytes {
				val = fmt.Sprint(v.Value)
			}
			if n := pduInt(v); n >= 0 {
				val = strconv.FormatInt(n, 10)
			}
		}
		out = append(out, TrapVarbind{OID: cutText(normaliseOID(v.Name), maxTrapOIDBytes), Type: v.Type.String(),
			Value: cutText(storableText(val), maxTrapValueBytes)})
	}
	return out
}

// cutText cuts s to at most n bytes without splitting a character.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// validTrap checks a trap a collector forwards, before any of it is
// applied.
func validTrap(t Trap, now time.Time) error {
	if t.At.IsZero() || t.At.Year() < 2000 {
		return errors.New("trap: its instant (at) is required")
	}
	if t.At.After(now.Add(maxFutureSkew)) {
		return fmt.Errorf("trap at %s is ahead of the NOC's clock (%s): check the collector's clock",
			t.At.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	switch t.Version {
	case "v1", "v2c", "v3":
	default:
		return fmt.Errorf("trap: version %q: want v1, v2c or v3", t.Version)
	}
	if err := cleanText("trap source", t.Source, 64); err != nil {
		return err
	}
	if err := cleanText("trap oid", t.OID, maxTrapOIDBytes); err != nil {
		return err
	}
	if len(t.Varbinds) > maxTrapVarbinds {
		return fmt.Errorf("trap: %w", errTooManyVarbinds)
	}
	for _, v := range t.Varbinds {
		if cleanText("varbind", v.OID, maxTrapOIDBytes) != nil || cleanText("varbind", v.Type, 32) != nil ||
			cleanText("varbind", v.Value, maxTrapValueBytes) != nil {
			return fmt.Errorf("trap: a varbind's oid is at most %d bytes, its value %d, of UTF-8 without NUL", maxTrapOIDBytes, maxTrapValueBytes)
		}
	}
	return nil
}

// trapEffect is what a trap does once its rule is known.
type trapEffect struct {
	rule      string
	effect    string
	condition string
	set       bool // raise the condition (else clear it, when condition is set)
	degrade   bool
	severity  int
	detail    string // the condition's wording: "UPS running on battery"
	textES    string
}

// effectOf decides what the trap does.
func effectOf(rules *TrapRules, t Trap) trapEffect {
	rule := rules.match(t.OID, t.Varbinds)
	if rule == nil {
		return trapEffect{rule: "", effect: TrapRecord}
	}
	e := trapEffect{rule: rule.Name, effect: rule.Effect}
	switch rule.Effect {
	case TrapSet, TrapClear:
		e.condition, e.set = rule.Condition, rule.Effect == TrapSet
		e.degrade, e.severity, e.detail, e.textES = rule.Degrade, rule.Severity, rule.Text.EN, rule.Text.ES
	case TrapInterfaceDown, TrapInterfaceUp:
		idx, name, admin := interfaceOf(t.Varbinds)
		if idx == "" {
			return e // no ifIndex: nothing to track
		}
		e.condition = "interface:" + idx
		e.set = rule.Effect == TrapInterfaceDown
		// An interface its operator shut down is not a fault (as in the
		// poller): recorded, not degrading.
		e.degrade = rule.Degrade && admin != ifStatusDown
		if e.set && admin == ifStatusDown {
			e.condition = ""
		}
		e.detail = "interface " + name + " down"
		e.textES = "interfaz " + name + " caída"
	}
	return e
}

// interfaceOf reads IF-MIB's linkDown/linkUp varbinds: ifIndex, a name
// (ifDescr or ifName when sent) and ifAdminStatus (-1 when absent).
func interfaceOf(vars []TrapVarbind) (idx, name string, admin int64) {
	admin = -1
	const ifIndex, ifName = ".1.3.6.1.2.1.2.2.1.1.", ".1.3.6.1.2.1.31.1.1.1.1."
	for _, v := range vars {
		n := v.OID
		switch {
		case strings.HasPrefix(n, ifIndex):
			idx = strings.TrimPrefix(n, ifIndex)
		case strings.HasPrefix(n, oidIfAdminStatus+"."):
			idx = strings.TrimPrefix(n, oidIfAdminStatus+".")
			admin = -1
			if integerTypes[v.Type] {
				if a, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
					admin = a
				}
			}
		case strings.HasPrefix(n, oidIfOperStatus+"."):
			idx = strings.TrimPrefix(n, oidIfOperStatus+".")
		case strings.HasPrefix(n, oidIfDescr+"."), strings.HasPrefix(n, ifName):
			if textTypes[v.Type] && v.Value != "" {
				name = v.Value
			}
		}
	}
	if name == "" {
		name = "ifIndex " + idx
	}
	return idx, name, admin
}

// trapApplied is what recording a trap changed.
type trapApplied struct {
	changed bool // the device's conditions or uptime story
	raised  *TrapCondition
	cleared string
}

// recordTrap stores a trap of d and its effect inside tx, at the trap's
// instant: its history row, the condition it raises or clears, and the
// events the ticketing stage reads. It is the one way a trap is applied,
// heard by serve or forwarded by a collector.
func recordTrap(ctx context.Context, tx *sqlx.Tx, rules *TrapRules, d assets.Device, t Trap) (trapApplied, error) {
	var out trapApplied
	at := t.At
	e := effectOf(rules, t)
	varbinds, err := json.Marshal(t.Varbinds)
	if err != nil {
		return out, fmt.Errorf("record trap: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_traps (device_id, customer_id, site_id, at, source, version, inform,
			trap_oid, rule, effect, condition, varbinds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.ID, d.CustomerID, d.SiteID, at, t.Source, t.Version, t.Inform, t.OID, e.rule, e.effect, e.condition,
		json.RawMessage(varbinds)); err != nil {
		return out, fmt.Errorf("record trap: %w", err)
	}
	detail, _ := json.Marshal(map[string]any{"trap_oid": t.OID, "rule": e.rule, "condition": e.condition,
		"severity": e.severity, "text_en": e.detail, "text_es": e.textES, "source": t.Source})
	switch {
	case e.effect == TrapReboot:
		out.changed = true
		return out, insertEvent(ctx, tx, EventRebooted, d, 0, detail, at)
	case e.condition == "":
		return out, nil
	case e.set:
		var sev any
		if e.severity > 0 {
			sev = e.severity
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO device_trap_conditions (device_id, condition, since, detail, degrade, severity)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, d.ID, e.condition, at, e.detail, e.degrade, sev)
		if err != nil {
			return out, fmt.Errorf("raise %s: %w", e.condition, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return out, nil // already standing: a repeat (upsTrapOnBattery every minute)
		}
		out.changed = true
		out.raised = &TrapCondition{DeviceID: d.ID, Condition: e.condition, Since: at, Detail: e.detail, Degrade: e.degrade, Severity: e.severity}
		if e.severity > 0 {
			return out, insertEvent(ctx, tx, EventTrapAlarm, d, 0, detail, at)
		}
		return out, nil
	default:
		var sev *int
		err := tx.GetContext(ctx, &sev, `DELETE FROM device_trap_conditions WHERE device_id = $1 AND condition = $2 RETURNING severity`,
			d.ID, e.condition)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return out, nil
			}
			return out, fmt.Errorf("clear %s: %w", e.condition, err)
		}
		out.changed, out.cleared = true, e.condition
		if sev != nil {
			detail, _ = json.Marshal(map[string]any{"trap_oid": t.OID, "rule": e.rule, "condition": e.condition,
				"severity": *sev, "source": t.Source})
			return out, insertEvent(ctx, tx, EventTrapCleared, d, 0, detail, at)
		}
		return out, nil
	}
}

// learn brings the conditions in memory up to a committed trap.
func (c *TrapConditions) learn(deviceID string, a trapApplied) {
	if c == nil {
		return
	}
	if a.raised != nil {
		c.put(*a.raised)
	}
	if a.cleared != "" {
		c.drop(deviceID, a.cleared)
	}
}
