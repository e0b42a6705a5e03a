package fleetsim

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/vigia-noc/vigia/dicomping"
)

func TestParseProfilesMixesAndLoss(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Profile
		wantErr string
	}{
		{in: "lan", want: Profile{Name: "lan"}},
		{in: "wan", want: Profile{Name: "wan", MinRTT: 20 * time.Millisecond, MaxRTT: 80 * time.Millisecond}},
		{in: "satellite+slow-pacs", want: Profile{Name: "satellite+slow-pacs", MinRTT: 600 * time.Millisecond, MaxRTT: 650 * time.Millisecond,
			Step: 40 * time.Millisecond}},
		{in: "lan+slow-pacs", want: Profile{Name: "slow-pacs", Step: 40 * time.Millisecond}},
		{in: "dialup", wantErr: `unknown profile "dialup"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseProfile(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		in      string
		shares  int
		wantErr string
	}{
		{in: "", shares: 0},
		{in: "wan", shares: 1},
		{in: "lan:60,wan:35,satellite:5", shares: 3},
		{in: "lan:60%,wan:40%", shares: 2},
		{in: "lan:80,wan:30", wantErr: "over 100%"},
		{in: "lan:x", wantErr: "not a percentage"},
		{in: "moon:5", wantErr: "unknown profile"},
	} {
		t.Run("mix "+tc.in, func(t *testing.T) {
			m, err := ParseMix(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(m) != tc.shares {
				t.Fatalf("got %v, %v; want %d shares", m, err, tc.shares)
			}
		})
	}
	for in, want := range map[string]float64{"": 0, "1%": 0.01, "0.5%": 0.005, "0.02": 0.02, "100%": -1, "-1%": -1, "x": -1} {
		got, err := ParseLoss(in)
		if want < 0 {
			if err == nil {
				t.Errorf("ParseLoss(%q) = %g, want an error", in, got)
			}
			continue
		}
		if err != nil || math.Abs(got-want) > 1e-12 {
			t.Errorf("ParseLoss(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
}

// Sites get their link's profile in the mix's proportions, every device
// of a site the same one; devices that answer (DICOM, SNMP) get their own
// on top; the loss applies to all.
func TestAssignProfiles(t *testing.T) {
	var fleet []Device
	for s := range 2000 {
		site := "site-" + itoa(s)
		fleet = append(fleet, Device{ID: site + "-gw", Site: site, TCP: "127.0.0.1:1"},
			Device{ID: site + "-ct", Site: site, DICOM: &DICOM{Addr: "127.0.0.1:2", AETitle: "CT"}})
	}
	sites, _ := ParseMix("lan:60,wan:35,satellite:5")
	devices, _ := ParseMix("slow-pacs:20")
	AssignProfiles(fleet, sites, devices, 0.01)
	links := map[string]int{}
	slow := 0
	for i := 0; i < len(fleet); i += 2 {
		gw, ct := fleet[i].Profile, fleet[i+1].Profile
		links[gw.Name]++
		if math.Abs(gw.Loss-0.01) > 1e-9 {
			t.Fatalf("gateway %s loss %g", fleet[i].ID, gw.Loss)
		}
		switch {
		case ct.Name == gw.Name:
		case ct.Name == gw.Name+"+slow-pacs" || gw.Name == "lan" && ct.Name == "slow-pacs":
			slow++
		default:
			t.Fatalf("site %s: gateway %q, CT %q", fleet[i].Site, gw.Name, ct.Name)
		}
		if ct.MinRTT != gw.MinRTT || ct.MaxRTT != gw.MaxRTT {
			t.Fatalf("site %s: the CT is not behind its site's link", fleet[i].Site)
		}
	}
	for name, want := range map[string]float64{"lan": 1200, "wan": 700, "satellite": 100} {
		if got := float64(links[name]); math.Abs(got-want) > want*0.2 {
			t.Errorf("%s sites: %g, want about %g", name, got, want)
		}
	}
	if math.Abs(float64(slow)-400) > 80 {
		t.Errorf("slow PACS: %d of 2000, want about 400", slow)
	}
	again := append([]Device(nil), fleet...)
	AssignProfiles(again, sites, devices, 0.01)
	for i := range fleet {
		if again[i].Profile != fleet[i].Profile {
			t.Fatalf("device %s got %q, then %q", fleet[i].ID, fleet[i].Profile.Name, again[i].Profile.Name)
		}
	}
}

// A C-ECHO is three exchanges (association, echo, release): a slow PACS
// answers each 40 ms late, a PACS behind a WAN 20 to 80 ms late; SNMP
// answers are late by the same rule and a lossy agent loses some.
func TestProfilesSlowAnswers(t *testing.T) {
	addrs := freeAddrs(t, 3)
	udp := freeUDP(t, 2)
	wan, slowPACS := Profiles["wan"], Profiles["slow-pacs"]
	sim, err := New([]Device{
		{ID: "fast", Site: "a", DICOM: &DICOM{Addr: addrs[0], AETitle: "FAST"}},
		{ID: "slow", Site: "a", DICOM: &DICOM{Addr: addrs[1], AETitle: "SLOW"}, Profile: slowPACS},
		{ID: "far", Site: "b", DICOM: &DICOM{Addr: addrs[2], AETitle: "FAR"}, Profile: wan},
		{ID: "sw-far", Site: "b", SNMP: &SNMP{Addr: udp[0], Community: simCommunity}, Profile: wan},
		{ID: "sw-lossy", Site: "c", SNMP: &SNMP{Addr: udp[1], Community: simCommunity}, Profile: Profile{Name: "lossy", Loss: 0.3}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	timedEcho := func(addr, ae string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := dicomping.Echo(context.Background(), addr, dicomping.Options{CalledAETitle: ae, Timeout: 10 * time.Second}); err != nil {
			t.Fatalf("echo %s: %v", ae, err)
		}
		return time.Since(start)
	}
	for _, tc := range []struct {
		name, addr, ae string
		min, max       time.Duration
	}{
		{"lan", addrs[0], "FAST", 0, 100 * time.Millisecond},
		{"slow-pacs", addrs[1], "SLOW", 120 * time.Millisecond, 400 * time.Millisecond},
		{"wan", addrs[2], "FAR", 60 * time.Millisecond, 540 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				if took := timedEcho(tc.addr, tc.ae); took < tc.min || took > tc.max {
					t.Errorf("echo took %s, want %s to %s", took, tc.min, tc.max)
				}
			}
		})
	}
	get := func(addr string) (time.Duration, error) {
		host, port := splitAddr(t, addr)
		g := &gosnmp.GoSNMP{Target: host, Port: uint16(port), Community: simCommunity, Version: gosnmp.Version2c,
			Timeout: 500 * time.Millisecond, Retries: 0}
		if err := g.Connect(); err != nil {
			t.Fatal(err)
		}
		defer g.Conn.Close()
		start := time.Now()
		_, err := g.Get([]string{".1.3.6.1.2.1.1.3.0"})
		return time.Since(start), err
	}
	t.Run("snmp wan", func(t *testing.T) {
		for range 3 {
			took, err := get(udp[0])
			if err != nil || took < 20*time.Millisecond || took > 300*time.Millisecond {
				t.Errorf("get took %s (%v), want 20 ms to 80 ms and some slack", took, err)
			}
		}
	})
	t.Run("snmp loss", func(t *testing.T) {
		lost := 0
		for range 40 {
			if _, err := get(udp[1]); err != nil {
				lost++
			}
		}
		// 30 % of 40: 12 expected; outside 2..28 is a one in a million.
		if lost < 2 || lost > 28 {
			t.Errorf("%d of 40 requests lost at 30 %% loss", lost)
		}
	})
}
