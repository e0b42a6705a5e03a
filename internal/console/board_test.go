package console

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

// boardInventory is customers × sites × devices: serial SN-c-s-d, AE
// title AE_C_S_D, device id dev-c-s-d, site s-c-s ("Sede c.s").
func boardInventory(customers, sites, devices int) string {
	var b strings.Builder
	b.WriteString("customers:\n")
	for c := 1; c <= customers; c++ {
		fmt.Fprintf(&b, "  - id: c%d\n    name: Red %d\n    country: CO\n    time_zone: America/Bogota\n    sites:\n", c, c)
		for s := 1; s <= sites; s++ {
			fmt.Fprintf(&b, "      - id: s-%d-%d\n        name: Sede %d.%03d\n        kind: hospital\n        devices:\n", c, s, c, s)
			for d := 1; d <= devices; d++ {
				fmt.Fprintf(&b, "          - id: dev-%d-%d-%d\n            name: Equipo %d.%d.%d\n            kind: modality\n            modality: CT\n"+
					"            serial: SN-%d-%d-%d\n            dicom: {host: 127.0.0.1, port: 1, called_ae: AE_%d_%d_%d}\n",
					c, s, d, c, s, d, c, s, d, c, s, d)
			}
		}
	}
	return b.String()
}

var (
	siteLine = regexp.MustCompile(`<tr data-site="([^"]+)">`)
	countOf  = func(site, class string) *regexp.Regexp {
		return regexp.MustCompile(`(?s)<tr data-site="` + regexp.QuoteMeta(site) + `">.*?data-count="` + class + `">(\d+)</td>`)
	}
)

// The board at scale: site lines grouped by customer with counts per
// state, problems first; search by id, name, serial or AE title; state
// filters; pages of devices and of sites; a strict query.
func TestBoardGroupsSearchAndPages(t *testing.T) {
	h := newHarness(t, boardInventory(2, 30, 4), time.Second) // 240 devices, 60 sites
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "en"})
	// Everything up, then: one device down in site 2-17, two unreachable in
	// 1-5, a degraded one flapping in 1-5, a misconfigured one in 2-30.
	if _, err := h.db.Exec(`INSERT INTO device_states (device_id, state, since, updated_at) SELECT id, 'up', now(), now() FROM devices`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE device_states SET state = 'down' WHERE device_id = 'dev-2-17-3'`,
		`UPDATE device_states SET state = 'unreachable' WHERE device_id IN ('dev-1-5-1', 'dev-1-5-2')`,
		`UPDATE device_states SET state = 'degraded', flapping = true WHERE device_id = 'dev-1-5-4'`,
		`UPDATE device_states SET state = 'misconfigured' WHERE device_id = 'dev-2-30-1'`,
		`UPDATE device_states SET flapping = true WHERE device_id = 'dev-1-9-2'`,
	} {
		h.db.MustExec(q)
	}
	c := h.client(t)
	c.login("ana", testPassword)
	live := func(query string) (int, string) {
		code, _, body := c.do(http.MethodGet, "/console/noc"+query, "", http.Header{liveHeader: {"1"}})
		return code, body
	}
	devices := func(frag string) []string {
		var out []string
		for _, m := range deviceAttr.FindAllStringSubmatch(frag, -1) {
			out = append(out, m[1])
		}
		return out
	}
	sites := func(frag string) []string {
		var out []string
		for _, m := range siteLine.FindAllStringSubmatch(frag, -1) {
			out = append(out, m[1])
		}
		return out
	}
	count := func(frag, site, class string) string {
		m := countOf(site, class).FindStringSubmatch(frag)
		if m == nil {
			return "none"
		}
		return m[1]
	}

	t.Run("problems first", func(t *testing.T) {
		_, frag := live("")
		got := devices(frag)
		if len(got) != boardDevicesPerPage || !slices.Equal(got[:6], []string{"dev-2-17-3", "dev-1-5-1", "dev-1-5-2", "dev-1-5-4", "dev-2-30-1", "dev-1-9-2"}) {
			t.Fatalf("first devices %v (%d shown)", got[:min(len(got), 8)], len(got))
		}
		// 2-17 has the only down device, then 1-5 (unreachable), 2-30
		// (misconfigured), 1-9 (flapping); quiet sites follow by name.
		if s := sites(frag); len(s) != boardSitesPerPage || !slices.Equal(s[:5], []string{"s-2-17", "s-1-5", "s-2-30", "s-1-9", "s-1-1"}) {
			t.Fatalf("site lines %v (%d shown)", s[:min(len(s), 6)], len(s))
		}
		for _, want := range [][3]string{{"s-1-5", "unreachable", "2"}, {"s-1-5", "degraded", "1"}, {"s-1-5", "flapping", "1"},
			{"s-1-5", "up", "1"}, {"s-1-5", "total", "4"}, {"s-2-17", "down", "1"}, {"s-2-17", "up", "3"}} {
			if got := count(frag, want[0], want[1]); got != want[2] {
				t.Errorf("%s %s = %s, want %s", want[0], want[1], got, want[2])
			}
		}
		if !strings.Contains(frag, `data-count="down">Down: 1</span>`) || !strings.Contains(frag, `data-count="up">Up: 235</span>`) {
			t.Errorf("fleet counts missing: %.400s", frag[strings.Index(frag, "board-counts"):])
		}
	})
	for _, tc := range []struct {
		name, query string
		devices     []string
		site        string // its line must show the whole site's counts
	}{
		{"serial", "?q=SN-2-17-3", []string{"dev-2-17-3"}, "s-2-17"},
		{"AE title, any case", "?q=ae_1_9_2", []string{"dev-1-9-2"}, "s-1-9"},
		{"name", "?q=Equipo+1.30.4", []string{"dev-1-30-4"}, "s-1-30"},
		{"id", "?q=dev-2-30-1", []string{"dev-2-30-1"}, "s-2-30"},
		{"problems", "?state=problems", []string{"dev-2-17-3", "dev-1-5-1", "dev-1-5-2", "dev-1-5-4", "dev-2-30-1", "dev-1-9-2"}, "s-1-5"},
		{"flapping", "?state=flapping", []string{"dev-1-5-4", "dev-1-9-2"}, "s-1-9"},
		{"unreachable of one customer", "?state=unreachable&customer=c1", []string{"dev-1-5-1", "dev-1-5-2"}, "s-1-5"},
		{"nothing", "?q=no-such-thing", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, frag := live(tc.query)
			if code != http.StatusOK {
				t.Fatalf("%s: %d", tc.query, code)
			}
			if got := devices(frag); !slices.Equal(got, tc.devices) {
				t.Fatalf("%s shows %v, want %v", tc.query, got, tc.devices)
			}
			if tc.site == "" {
				if !strings.Contains(frag, `id="no-match"`) {
					t.Fatal("no 'nothing matches' line")
				}
				return
			}
			if got := count(frag, tc.site, "total"); got != "4" {
				t.Errorf("site %s line total %s, want all its 4 devices", tc.site, got)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		_, first := live("")
		_, second := live("?page=2")
		_, third := live("?page=3")
		all := append(append(devices(first), devices(second)...), devices(third)...)
		seen := map[string]bool{}
		for _, d := range all {
			seen[d] = true
		}
		if len(all) != 240 || len(seen) != 240 {
			t.Fatalf("three pages show %d devices, %d distinct; want 240", len(all), len(seen))
		}
		if !strings.Contains(first, `href="/console/noc?page=2" rel="next"`) || !strings.Contains(first, "Page 1 of 3 (240)") ||
			!strings.Contains(third, `href="/console/noc?page=2" rel="prev"`) || strings.Contains(third, "page=4") {
			t.Error("device pager links")
		}
		_, s2 := live("?spage=2")
		if got := sites(s2); len(got) != 10 {
			t.Fatalf("second page of sites shows %d lines, want 10", len(got))
		}
		if _, beyond := live("?page=99"); !slices.Equal(devices(beyond), devices(third)) {
			t.Error("a page past the end does not show the last page")
		}
	})
	t.Run("strict query", func(t *testing.T) {
		for _, q := range []string{"?sort=name", "?page=0", "?page=x", "?state=sleepy", "?kind=toaster",
			"?q=" + url.QueryEscape(strings.Repeat("x", maxBoardSearch+1)), "?q=a%00b", "?q=%ff", "?site=a&site=b",
			"?customer=" + strings.Repeat("c", 65)} {
			code, body := c.get("/console/noc" + q)
			// Bytes no parameter may hold are refused before the board by
			// the console's edge check, which names the parameter.
			edge := (q == "?q=a%00b" || q == "?q=%ff") && strings.Contains(body, "q:")
			if code != http.StatusBadRequest || !(strings.Contains(body, "filter it does not understand") || edge) {
				t.Errorf("%s: %d %.300s", q, code, body)
			}
		}
	})
}

// Times on the board are in the NOC user's zone, set by the user in the
// console; an unknown zone is refused and changes nothing.
func TestBoardInUsersTimeZone(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "en", TimeZone: "America/Bogota"})
	h.db.MustExec(`INSERT INTO device_states (device_id, state, since, updated_at) VALUES ('hsr-pacs', 'down', '2026-05-04 15:30:00+00', now())`)
	c := h.client(t)
	c.login("ana", testPassword)
	_, page := c.get("/console/noc")
	if !strings.Contains(page, "Times in America/Bogota") || !strings.Contains(page, "2026-05-04 10:30") {
		t.Fatalf("board not in Bogotá time: %s", page[strings.Index(page, `id="time-zone"`):][:60])
	}
	for _, tc := range []struct{ zone, flash, footer, since string }{
		{"Europe/Madrid", "Time zone saved.", "Times in Europe/Madrid", "2026-05-04 17:30"},
		{"Mars/Olympus", "Unknown time zone", "Times in Europe/Madrid", "2026-05-04 17:30"},
		{"Local", "Unknown time zone", "Times in Europe/Madrid", "2026-05-04 17:30"},
		{"", "Time zone saved.", "Times in UTC", "2026-05-04 15:30"},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			code, hdr, _ := c.post("/console/timezone", url.Values{"zone": {tc.zone}, "next": {"/console/noc"}})
			if code != http.StatusSeeOther || hdr.Get("Location") != "/console/noc" {
				t.Fatalf("POST zone %q: %d %s", tc.zone, code, hdr.Get("Location"))
			}
			_, page := c.get("/console/noc")
			if !strings.Contains(page, tc.flash) || !strings.Contains(page, tc.footer) || !strings.Contains(page, tc.since) {
				t.Fatalf("after %q: want %q, %q and %q", tc.zone, tc.flash, tc.footer, tc.since)
			}
		})
	}
	if code, _, _ := c.post("/console/timezone", url.Values{"zone": {"UTC"}, "csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("forged time zone form: %d", code)
	}
}

func TestCheckTimeZone(t *testing.T) {
	for _, tc := range []struct {
		zone string
		ok   bool
	}{
		{"", true}, {"America/Bogota", true}, {"UTC", true}, {"Europe/Madrid", true},
		{"Local", false}, {"Mars/Olympus", false}, {"America/ Bogota", false}, {"UTC\x00", false},
		{strings.Repeat("A", 65), false}, {"../../etc/passwd", false},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			if err := auth.CheckTimeZone(tc.zone); (err == nil) != tc.ok {
				t.Fatalf("CheckTimeZone(%q) = %v, want ok %v", tc.zone, err, tc.ok)
			}
		})
	}
}
