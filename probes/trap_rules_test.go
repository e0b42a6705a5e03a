package probes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// Every testdata/traprules/invalid-*.yaml is refused with the exact
// problems of its .err file, every rule's mistakes named.
func TestParseTrapRulesInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/traprules/invalid-*.yaml")
	if len(files) < 3 {
		t.Fatalf("expected the invalid-*.yaml corpus, found %d files", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			r, err := ParseTrapRules(data)
			if err == nil {
				t.Fatalf("ParseTrapRules = %+v, want an error", r)
			}
			if g, w := err.Error(), strings.TrimSpace(string(want)); g != w {
				t.Errorf("error:\n%s\n\nwant:\n%s", g, w)
			}
		})
	}
}

// The embedded rules parse, and map the standard traps as documented.
func TestDefaultTrapRulesMatch(t *testing.T) {
	r := DefaultTrapRules()
	alarm := func(descr string) []gosnmp.SnmpPDU {
		return []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.33.1.6.2.1.2.7", Type: gosnmp.ObjectIdentifier, Value: descr}}
	}
	tests := []struct {
		name, oid string
		vars      []gosnmp.SnmpPDU
		rule      string // "" = no rule: recorded only
	}{
		{"linkDown", ".1.3.6.1.6.3.1.1.5.3", nil, "linkDown"},
		{"linkUp", ".1.3.6.1.6.3.1.1.5.4", nil, "linkUp"},
		{"coldStart", ".1.3.6.1.6.3.1.1.5.1", nil, "coldStart"},
		{"warmStart", ".1.3.6.1.6.3.1.1.5.2", nil, "warmStart"},
		{"UPS on battery", ".1.3.6.1.2.1.33.2.1", nil, "upsTrapOnBattery"},
		{"UPS low battery alarm", ".1.3.6.1.2.1.33.2.3", alarm("1.3.6.1.2.1.33.1.6.3.3"), "upsAlarmLowBatteryAdded"},
		{"UPS low battery gone", ".1.3.6.1.2.1.33.2.4", alarm(".1.3.6.1.2.1.33.1.6.3.3"), "upsAlarmLowBatteryRemoved"},
		{"UPS on battery gone", ".1.3.6.1.2.1.33.2.4", alarm(".1.3.6.1.2.1.33.1.6.3.2"), "upsAlarmOnBatteryRemoved"},
		{"another UPS alarm", ".1.3.6.1.2.1.33.2.3", alarm(".1.3.6.1.2.1.33.1.6.3.9"), ""},
		{"an enterprise trap", ".1.3.6.1.4.1.9.9.41.2.0.1", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if m := r.Match(tt.oid, tt.vars); m != nil {
				got = m.Name
			}
			if got != tt.rule {
				t.Errorf("rule %q, want %q", got, tt.rule)
			}
		})
	}
}

// v1 traps are identified as RFC 3584 translates them.
func TestTrapOIDOfV1(t *testing.T) {
	tests := []struct {
		p    gosnmp.SnmpPacket
		want string
	}{
		{gosnmp.SnmpPacket{Version: gosnmp.Version1, SnmpTrap: gosnmp.SnmpTrap{GenericTrap: 2}}, ".1.3.6.1.6.3.1.1.5.3"},
		{gosnmp.SnmpPacket{Version: gosnmp.Version1, SnmpTrap: gosnmp.SnmpTrap{GenericTrap: 6, SpecificTrap: 1, Enterprise: ".1.3.6.1.2.1.33.2"}}, ".1.3.6.1.2.1.33.2.0.1"},
		{gosnmp.SnmpPacket{Version: gosnmp.Version2c, Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.2.1.33.2.1"}}},
			".1.3.6.1.2.1.33.2.1"},
	}
	for _, tt := range tests {
		if got := trapOID(&tt.p); got != tt.want {
			t.Errorf("trapOID(%+v) = %q, want %q", tt.p.SnmpTrap, got, tt.want)
		}
	}
}
