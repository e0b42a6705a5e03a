package fleetsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	t.Parallel()
	addrs := freeAddrs(t, 3)
	s := start(t, []Device{
		{ID: "gw", Site: "north", Gateway: true, TCP: addrs[0]},
		dicomDevice("ct", "north", addrs[1]),
		dicomDevice("pacs", "central", addrs[2]),
	}, Options{})
	api := httptest.NewServer(s.Handler())
	defer api.Close()

	steps := []struct {
		method, path string
		wantCode     int
		wantBody     string // substring of the JSON answer
		wantUp       map[string]bool
	}{
		{"GET", "/devices", 200, `"id": "gw"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		{"POST", "/devices/ct/down", 200, `"state": "down"`, map[string]bool{"gw": true, "pacs": true}},
		{"GET", "/devices/ct", 200, `"mode": "refuse"`, map[string]bool{"gw": true, "pacs": true}},
		{"POST", "/devices/ct/up", 200, `"state": "up"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		{"POST", "/devices/ct/down?mode=blackhole", 200, `"mode": "blackhole"`, map[string]bool{"gw": true, "pacs": true}},
		{"POST", "/devices/ct/up", 200, `"state": "up"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		{"POST", "/sites/north/down", 200, `"id": "gw"`, map[string]bool{"pacs": true}},
		{"GET", "/sites/north", 200, `"gateway": true`, map[string]bool{"pacs": true}},
		{"POST", "/sites/north/up", 200, `"state": "up"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		// Dark: the gateway's TCP connect fails too (times out).
		{"POST", "/sites/north/down?mode=blackhole", 200, `"mode": "blackhole"`, map[string]bool{"pacs": true}},
		{"POST", "/sites/north/up", 200, `"state": "up"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		{"POST", "/devices/pacs/flap?period=10s", 200, `"flap_period": "10s"`, map[string]bool{"gw": true, "ct": true}},
		{"POST", "/devices/pacs/up", 200, `"state": "up"`, map[string]bool{"gw": true, "ct": true, "pacs": true}},
		{"POST", "/devices/nope/down", 404, `unknown device \"nope\"`, nil},
		{"POST", "/sites/nope/down", 404, `unknown site \"nope\"`, nil},
		{"POST", "/devices/ct/down?mode=melt", 400, `unknown mode \"melt\"`, nil},
		{"POST", "/devices/ct/flap?period=soon", 400, "period", nil},
		{"POST", "/devices/ct/flap?period=1ms", 400, "at least 50ms", nil},
		{"GET", "/devices/ct/down", 405, "", nil},
	}
	for _, st := range steps {
		t.Run(st.method+" "+st.path, func(t *testing.T) {
			req, _ := http.NewRequest(st.method, api.URL+st.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != st.wantCode || !strings.Contains(string(body), st.wantBody) {
				t.Fatalf("%d %s\nwant %d with %s", resp.StatusCode, body, st.wantCode, st.wantBody)
			}
			if st.wantUp == nil {
				return
			}
			// The JSON must say what a prober finds.
			resp, err = http.Get(api.URL + "/devices")
			if err != nil {
				t.Fatal(err)
			}
			var devices []Status
			err = json.NewDecoder(resp.Body).Decode(&devices)
			resp.Body.Close()
			if err != nil || len(devices) != 3 {
				t.Fatalf("GET /devices: %v, %d devices", err, len(devices))
			}
			for _, d := range devices {
				addr := "127.0.0.1:" + itoa(d.Port)
				// Short for a device meant to be down: blackholed, it
				// answers only by timing out.
				timeout := 300 * time.Millisecond
				if st.wantUp[d.ID] {
					timeout = 5 * time.Second
				}
				var perr error
				if d.AETitle != "" {
					perr = echo(addr, d.AETitle, timeout)
				} else {
					perr = dial(addr)
				}
				if (d.State == "up") != st.wantUp[d.ID] || (perr == nil) != st.wantUp[d.ID] {
					t.Errorf("%s: state %s, probe %v; want up %t", d.ID, d.State, perr, st.wantUp[d.ID])
				}
			}
		})
	}
}
