package fleetsim

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
)

func TestDownAndUp(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 3)
	dev := dicomDevice("pacs", "site", addrs[0])
	dev.TCP = addrs[1]
	shared := dicomDevice("ris", "site", addrs[2])
	shared.TCP = addrs[2] // a TCP check on the DICOM port itself
	s := start(t, []Device{dev, shared}, Options{})

	steps := []struct {
		name    string
		op      func() error
		wantUp  bool
		wantErr error
	}{
		{"starts up", func() error { return nil }, true, nil},
		{"down refuses", func() error { return s.Down("pacs", Refuse) }, false, nil},
		{"down twice is a no-op", func() error { return s.Down("pacs", Refuse) }, false, nil},
		{"up answers again", func() error { return s.Up("pacs") }, true, nil},
		{"unknown device", func() error { return s.Down("nope", Refuse) }, true, ErrUnknownDevice},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.op(); !errors.Is(err, st.wantErr) {
				t.Fatalf("op: %v, want %v", err, st.wantErr)
			}
			echoErr := echo(addrs[0], "AE_pacs", 2*time.Second)
			tcpErr := dial(addrs[1])
			if st.wantUp {
				if echoErr != nil || tcpErr != nil {
					t.Fatalf("up device: echo %v, tcp %v", echoErr, tcpErr)
				}
			} else if !refused(echoErr) || !errors.Is(tcpErr, errRefused) {
				t.Fatalf("down device: echo %v, tcp %v; want connection refused", echoErr, tcpErr)
			}
			status, _ := s.Device("pacs")
			if want := map[bool]string{true: "up", false: "down"}[st.wantUp]; status.State != want {
				t.Fatalf("status %+v, want state %s", status, want)
			}
		})
	}
	t.Run("wrong called AE is rejected, not down", func(t *testing.T) {
		err := echo(addrs[0], "OTHER", 2*time.Second)
		if dicomping.Classify(err) != dicomping.ClassMisconfigured {
			t.Fatalf("echo with the wrong AE: %v (%s), want misconfigured", err, dicomping.Classify(err))
		}
	})
	t.Run("DICOM and TCP on one port", func(t *testing.T) {
		if err := dial(addrs[2]); err != nil {
			t.Fatal(err)
		}
		if err := s.Down("ris", Refuse); err != nil {
			t.Fatal(err)
		}
		if err := dial(addrs[2]); !errors.Is(err, errRefused) {
			t.Fatalf("dial: %v, want refused", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		s.Close()
		if err := echo(addrs[0], "AE_pacs", time.Second); !refused(err) {
			t.Fatalf("echo after Close: %v, want refused", err)
		}
		if err := s.Up("pacs"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Up after Close: %v, want ErrClosed", err)
		}
	})
}

func TestBlackholeTimesOut(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 2)
	dev := dicomDevice("ct", "site", addrs[0])
	dev.TCP = addrs[1]
	s := start(t, []Device{dev}, Options{})
	if err := s.Down("ct", Blackhole); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Device("ct"); st.State != "down" || st.Mode != Blackhole {
		t.Fatalf("status %+v, want down in blackhole mode", st)
	}
	const deadline = 300 * time.Millisecond
	t0 := time.Now()
	err := echo(addrs[0], "AE_ct", deadline)
	elapsed := time.Since(t0)
	var de *dicomping.Error
	if !errors.As(err, &de) || !de.Timeout() || dicomping.Classify(err) != dicomping.ClassDown {
		t.Fatalf("echo: %v, want a timeout classified down", err)
	}
	if elapsed < deadline-50*time.Millisecond || elapsed > deadline+time.Second {
		t.Fatalf("echo gave up after %s, want about %s", elapsed, deadline)
	}
	// A TCP connect check completes no handshake either: it times out.
	if err := dialWithin(addrs[1], deadline); !timedOut(err) {
		t.Fatalf("dial blackholed TCP endpoint: %v, want a timeout", err)
	}
	if err := s.Down("ct", Refuse); err != nil {
		t.Fatal(err)
	}
	if err := echo(addrs[0], "AE_ct", time.Second); !refused(err) {
		t.Fatalf("blackhole to refuse: echo %v, want refused", err)
	}
	if err := s.Up("ct"); err != nil {
		t.Fatal(err)
	}
	if err := echo(addrs[0], "AE_ct", 2*time.Second); err != nil {
		t.Fatalf("up after blackhole: %v", err)
	}
}

func TestSiteDown(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 5)
	gw := Device{ID: "a-gw", Site: "a", Gateway: true, TCP: addrs[0]}
	a1, a2 := dicomDevice("a1", "a", addrs[1]), dicomDevice("a2", "a", addrs[2])
	bgw := Device{ID: "b-gw", Site: "b", Gateway: true, TCP: addrs[3]}
	b1 := dicomDevice("b1", "b", addrs[4])
	var log logBuffer
	s := start(t, []Device{gw, a1, a2, bgw, b1}, Options{Logger: log.logger()})
	check := func(t *testing.T, wantUp map[string]bool) {
		t.Helper()
		for _, st := range s.Devices() {
			addr := net.JoinHostPort("127.0.0.1", itoa(st.Port))
			var err error
			if st.AETitle != "" {
				err = echo(addr, st.AETitle, 2*time.Second)
			} else {
				err = dial(addr)
			}
			switch {
			case wantUp[st.ID] && (err != nil || st.State != "up"):
				t.Errorf("%s: %v, state %s; want up", st.ID, err, st.State)
			case !wantUp[st.ID] && (!errors.Is(err, errRefused) || st.State != "down"):
				t.Errorf("%s: %v, state %s; want refused and down", st.ID, err, st.State)
			}
		}
	}
	steps := []struct {
		name    string
		op      func() error
		wantErr error
		wantUp  map[string]bool
	}{
		{"site a down, gateway included", func() error { return s.SiteDown("a", Refuse) }, nil,
			map[string]bool{"b-gw": true, "b1": true}},
		{"site a up", func() error { return s.SiteUp("a") }, nil,
			map[string]bool{"a-gw": true, "a1": true, "a2": true, "b-gw": true, "b1": true}},
		{"one device down, then its site up", func() error {
			if err := s.Down("b1", Refuse); err != nil {
				return err
			}
			return s.SiteUp("b")
		}, nil, map[string]bool{"a-gw": true, "a1": true, "a2": true, "b-gw": true, "b1": true}},
		{"unknown site", func() error { return s.SiteDown("zz", Refuse) }, ErrUnknownSite,
			map[string]bool{"a-gw": true, "a1": true, "a2": true, "b-gw": true, "b1": true}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.op(); !errors.Is(err, st.wantErr) {
				t.Fatalf("op: %v, want %v", err, st.wantErr)
			}
			check(t, st.wantUp)
		})
	}
	if out := log.String(); strings.Count(out, `msg="site down" site=a devices=3 mode=refuse`) != 1 || strings.Count(out, "device down") != 1 {
		t.Fatalf("want one line per site operation, and one for the device taken down alone:\n%s", out)
	}
	if got := s.Sites(); strings.Join(got, ",") != "a,b" {
		t.Fatalf("sites %v, want [a b]", got)
	}
}

// A blackholed site is dark: its gateway and every device complete no
// handshake (connects time out: not refused, not connected), their ports
// stay taken, the other site is untouched, and the site comes back whole.
func TestSiteBlackhole(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 5)
	gw := Device{ID: "a-gw", Site: "a", Gateway: true, TCP: addrs[0]}
	a1, a2 := dicomDevice("a1", "a", addrs[1]), dicomDevice("a2", "a", addrs[2])
	a2.TCP = addrs[3]
	b1 := dicomDevice("b1", "b", addrs[4])
	s := start(t, []Device{gw, a1, a2, b1}, Options{})
	if err := s.SiteDown("a", Blackhole); err != nil {
		t.Fatal(err)
	}
	const within = 400 * time.Millisecond
	for _, addr := range addrs[:4] {
		t.Run("dark "+addr, func(t *testing.T) {
			// Twice: a first connect must not leave room for a second.
			for range 2 {
				if err := dialWithin(addr, within); !timedOut(err) {
					t.Fatalf("connect: %v, want a timeout", err)
				}
			}
			if l, err := net.Listen("tcp", addr); err == nil {
				l.Close()
				t.Fatal("a blackholed port is free for anyone to take")
			}
		})
	}
	if err := echo(addrs[1], "AE_a1", within); dicomping.Classify(err) != dicomping.ClassDown || refused(err) {
		t.Fatalf("echo a1: %v, want down by timeout", err)
	}
	if err := echo(addrs[4], "AE_b1", 2*time.Second); err != nil {
		t.Fatalf("the other site: %v", err)
	}
	if err := s.SiteUp("a"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ addr, ae string }{{addrs[1], "AE_a1"}, {addrs[2], "AE_a2"}} {
		if err := echo(d.addr, d.ae, 2*time.Second); err != nil {
			t.Fatalf("after site up, %s: %v", d.ae, err)
		}
	}
	for _, addr := range []string{addrs[0], addrs[3]} {
		if err := dial(addr); err != nil {
			t.Fatalf("after site up, %s: %v", addr, err)
		}
	}
}

func TestFlap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode Mode
	}{
		{"refuse", Refuse},
		{"blackhole", Blackhole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddrs(t, 1)[0]
			s := start(t, []Device{dicomDevice("us", "site", addr)}, Options{})
			const period = 150 * time.Millisecond
			if err := s.Flap("us", period, tt.mode); err != nil {
				t.Fatal(err)
			}
			if st, _ := s.Device("us"); st.FlapPeriod != period.String() || st.State != "down" {
				t.Fatalf("status %+v, want down and flapping every %s", st, period)
			}
			// Sample the device as a prober would and count the changes.
			var states []bool
			aborted := 0
			for end := time.Now().Add(7 * period); time.Now().Before(end); time.Sleep(15 * time.Millisecond) {
				err := echo(addr, "AE_us", 40*time.Millisecond)
				switch dicomping.Classify(err) {
				case dicomping.ClassOK, dicomping.ClassDown:
				case dicomping.ClassProtocol:
					// An association in flight when the device goes down is
					// aborted, as a real one would be; it must stay rare.
					if aborted++; aborted > 2 {
						t.Fatalf("flapping device: %v, too often", err)
					}
					continue
				default:
					t.Fatalf("flapping device: %v, want up or down", err)
				}
				if len(states) == 0 || states[len(states)-1] != (err == nil) {
					states = append(states, err == nil)
				}
			}
			if len(states) < 5 || states[0] {
				t.Fatalf("states seen %v, want at least 5 alternations starting down", states)
			}
			if err := s.Up("us"); err != nil {
				t.Fatal(err)
			}
			if st, _ := s.Device("us"); st.FlapPeriod != "" || st.State != "up" {
				t.Fatalf("status after Up %+v, want up and no longer flapping", st)
			}
			for end := time.Now().Add(3 * period); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if err := echo(addr, "AE_us", time.Second); err != nil {
					t.Fatalf("after Up the device still flaps: %v", err)
				}
			}
			if err := s.Flap("us", time.Millisecond, tt.mode); err == nil {
				t.Fatal("a 1ms flap was accepted")
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name    string
		devices []Device
		want    string
	}{
		{"duplicate id", []Device{dicomDevice("a", "s", "127.0.0.1:1"), dicomDevice("a", "s", "127.0.0.1:2")}, `duplicate device id "a"`},
		{"shared address", []Device{dicomDevice("a", "s", "127.0.0.1:1"), {ID: "b", TCP: "127.0.0.1:1"}}, "devices a and b both serve 127.0.0.1:1"},
		{"bad AE title", []Device{{ID: "a", DICOM: &DICOM{Addr: "127.0.0.1:1", AETitle: `A\B`}}}, "device a"},
		{"bad address", []Device{{ID: "a", TCP: "127.0.0.1"}}, `address "127.0.0.1"`},
		{"heartbeat without token", []Device{{ID: "a", Heartbeat: &Heartbeat{Every: time.Second}}}, "needs a token"},
		{"heartbeat without period", []Device{{ID: "a", Heartbeat: &Heartbeat{Token: assets.NewSecret("0123456789abcdef")}}}, "positive period"},
		{"no id", []Device{{TCP: "127.0.0.1:1"}}, "no id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.devices, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPortTaken(t *testing.T) {
	t.Parallel()
	addr := freeAddrs(t, 1)[0]
	squatter, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New([]Device{dicomDevice("ct", "s", addr)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "device ct") {
		t.Fatalf("Start on a taken port: %v, want an error naming the device", err)
	}
	squatter.Close()
	s = start(t, []Device{dicomDevice("ct", "s", addr)}, Options{})
	if err := s.Down("ct", Refuse); err != nil {
		t.Fatal(err)
	}
	if squatter, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	if err := s.Up("ct"); err == nil {
		t.Fatal("Up succeeded on a port someone else holds")
	}
	if st, _ := s.Device("ct"); st.State != "down" {
		t.Fatalf("status %+v, want down after a failed Up", st)
	}
}
