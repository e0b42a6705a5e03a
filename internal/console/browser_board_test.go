package console

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// The NOC board with a thousand devices in a real browser: the NOC types a
// serial number, finds its device and reads its site's counts per state,
// in the NOC user's own time zone.
func TestBrowserBoardFindsDeviceBySerial(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	chromium := testpeer.Command(t, "chromium", "chromium")
	h := newHarness(t, boardInventory(4, 25, 10), browserRefresh) // 1 000 devices, 100 sites
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC, Language: "es", TimeZone: "America/Lima"})
	h.db.MustExec(`INSERT INTO device_states (device_id, state, since, updated_at) SELECT id, 'up', '2026-05-04 15:30:00+00', now() FROM devices`)
	h.db.MustExec(`UPDATE device_states SET state = 'down' WHERE device_id IN ('dev-3-17-4', 'dev-3-17-9')`)
	h.db.MustExec(`UPDATE device_states SET state = 'degraded', flapping = true WHERE device_id = 'dev-3-17-1'`)
	h.db.MustExec(`UPDATE device_states SET state = 'unreachable' WHERE device_id = 'dev-1-2-3'`)

	person, _ := startChromium(t, chromium, h.srv.URL)
	b := person()
	b.login("ana", testPassword, "#site-groups")
	if n := eval[int](b, `document.querySelectorAll('#devices [data-device]').length`); n != boardDevicesPerPage {
		t.Fatalf("the board shows %d devices on its first page, want %d", n, boardDevicesPerPage)
	}
	b.screenshot("noc-board-1000")
	b.do("search the serial",
		chromedp.SendKeys(chromedp.ID("board-search"), "SN-3-17-4"),
		chromedp.Click(chromedp.ID("board-submit")))
	b.waitFor("the device found", `#devices [data-device="dev-3-17-4"]`, 10*time.Second)
	// Through a live reload too: the search stays.
	time.Sleep(2 * browserRefresh)
	ids := eval[[]string](b, `[...document.querySelectorAll('#devices [data-device]')].map(e => e.dataset.device)`)
	if len(ids) != 1 || ids[0] != "dev-3-17-4" {
		t.Fatalf("searching SN-3-17-4 shows %v", ids)
	}
	counts := eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('#site-groups tr[data-site="s-3-17"] [data-count]')]
		.map(e => [e.dataset.count, e.textContent.trim()]))`)
	for class, want := range map[string]string{"down": "2", "degraded": "1", "flapping": "1", "up": "7", "unreachable": "0", "total": "10"} {
		if counts[class] != want {
			t.Errorf("site s-3-17 shows %s = %q, want %s (all %v)", class, counts[class], want, counts)
		}
	}
	if lines := eval[int](b, `document.querySelectorAll('#site-groups tr[data-site]').length`); lines != 1 {
		t.Errorf("%d site lines for one device found, want its site's only", lines)
	}
	text := eval[string](b, `document.querySelector('#devices [data-device="dev-3-17-4"]').innerText + ' | ' + document.getElementById('time-zone').innerText`)
	if !strings.Contains(text, "Caído") || !strings.Contains(text, "2026-05-04 10:30") || !strings.Contains(text, "Horas en America/Lima") {
		t.Errorf("device card and zone: %q", text)
	}
	b.screenshot("noc-board-serial")
}
