package probes

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dicomping"
	"github.com/vigia-noc/vigia/internal/orthanctest"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/testpeer"
)

// node is a DICOM device played by a dicomping server on a fixed port,
// that a test takes down (connection refused) and up again.
type node struct {
	t    *testing.T
	ae   string
	port int
	mu   sync.Mutex
	srv  *dicomping.Server
}

func newNode(t *testing.T, ae string) *node {
	n := &node{t: t, ae: ae, port: testpeer.FreePort(t)}
	n.up()
	t.Cleanup(n.down)
	return n
}

func (n *node) up() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)))
	if err != nil {
		n.t.Fatal(err)
	}
	n.srv = &dicomping.Server{AETitle: n.ae}
	go n.srv.Serve(l)
}

func (n *node) down() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Close()
		n.srv = nil
	}
}

// tcpGear is a device that only accepts TCP connections.
type tcpGear struct {
	port int
	mu   sync.Mutex
	l    net.Listener
}

func newTCPGear(t *testing.T) *tcpGear {
	g := &tcpGear{port: testpeer.FreePort(t)}
	g.up(t)
	t.Cleanup(g.down)
	return g
}

func (g *tcpGear) up(t *testing.T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.port)))
	if err != nil {
		t.Fatal(err)
	}
	g.l = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (g *tcpGear) down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.l != nil {
		g.l.Close()
		g.l = nil
	}
}

type harness struct {
	t      *testing.T
	db     *sqlx.DB
	assets *assets.Store
	store  *Store
	engine *Engine
	cfg    Config
}

func newHarness(t *testing.T, inventory string) *harness {
	t.Helper()
	db := pgtest.DB(t)
	as := assets.NewStore(db)
	f, err := assets.ParseFile("test.yaml", []byte(inventory), assets.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Import(context.Background(), f, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, assets: as, store: NewStore(db)}
	clock := clockwork.NewRealClock()
	h.cfg = Config{Clock: clock, SuccessesToUp: 2, FlapTransitions: 4, FlapWindow: time.Minute,
		Probers: map[string]Prober{"dicom": &DICOM{}, "tcp": &TCP{},
			"heartbeat": &Heartbeat{Log: h.store, Clock: clock, Started: clock.Now()}}}
	h.restart()
	return h
}

// restart builds a new engine from what is in the database, as after a crash.
func (h *harness) restart() {
	h.t.Helper()
	e, err := NewEngine(context.Background(), h.store, h.assets, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := e.Sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.engine = e
}

func (h *harness) check(id string) State {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.engine.Check(ctx, id); err != nil {
		h.t.Fatalf("Check(%s): %v", id, err)
	}
	st, _ := h.engine.Status(id)
	return st.State
}

func (h *harness) count(q string, args ...any) int {
	h.t.Helper()
	var n int
	if err := h.db.Get(&n, q, args...); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *harness) events(kind string) int {
	return h.count(`SELECT count(*) FROM device_events WHERE kind = $1`, kind)
}

const inventoryTemplate = `
customers:
  - id: c1
    name: Clínica Uno
    country: CO
    time_zone: America/Bogota
    sites:
      - id: s1
        name: Sede con enlace
        kind: hospital
        gateway: s1-gw
        devices:
          - {id: s1-gw, name: Router, kind: network, tcp: {host: 127.0.0.1, port: %d}, probe: {interval: 1s, retries: 1}}
          - {id: s1-ct, name: CT, kind: modality, modality: CT, dicom: {host: 127.0.0.1, port: %d, called_ae: S1_CT}, probe: {interval: 1s, retries: 2}}
          - {id: s1-us, name: US, kind: modality, modality: US, dicom: {host: 127.0.0.1, port: %d, called_ae: S1_US}, probe: {interval: 1s, retries: 2}}
      - id: s2
        name: Sede sin enlace
        kind: centre
        devices:
          - {id: pacs, name: Orthanc PACS, kind: pacs, role: core, dicom: {host: 127.0.0.1, port: %d, called_ae: ORTHANC}, probe: {interval: 1s, retries: 2}}
          - {id: pacs-wrong-ae, name: PACS mal configurado, kind: pacs, dicom: {host: 127.0.0.1, port: %d, called_ae: NOT_ORTHANC}, probe: {interval: 1s, retries: 2}}
          - {id: flappy, name: Flappy, kind: modality, modality: DX, dicom: {host: 127.0.0.1, port: %d, called_ae: FLAPPY}, probe: {interval: 1s, retries: 0}}
          - {id: agent, name: Monitor agent, kind: biomedical, heartbeat: {grace: 1s, token: agent-heartbeat-token-1}}
          - {id: agent2, name: Other agent, kind: biomedical, heartbeat: {grace: 1h, token: agent-heartbeat-token-2}}
`

type fleet struct {
	gw        *tcpGear
	ct, us    *node
	flappy    *node
	orthanc   *orthanctest.Orthanc
	inventory string
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{gw: newTCPGear(t), ct: newNode(t, "S1_CT"), us: newNode(t, "S1_US"), flappy: newNode(t, "FLAPPY"),
		orthanc: orthanctest.Start(t, "ORTHANC")}
	f.inventory = fmt.Sprintf(inventoryTemplate, f.gw.port, f.ct.port, f.us.port, f.orthanc.Port, f.orthanc.Port, f.flappy.port)
	return f
}

// Orthanc stopped: down after the configured retries, one outage, one
// event, even across a restart; back: up after the recovery threshold.
func TestOrthancDownAndUp(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	if s := h.check("pacs"); s != StateUp {
		t.Fatalf("pacs with Orthanc running: %s", s)
	}
	f.orthanc.Stop()
	// One scheduled check retries at a shorter interval until confirmed.
	if s := h.check("pacs"); s != StateDown {
		t.Fatalf("pacs after Orthanc stopped: %s, want down", s)
	}
	if n := h.count(`SELECT count(*) FROM device_transitions WHERE device_id = 'pacs' AND to_state = 'down'`); n != 1 {
		t.Errorf("down transitions = %d", n)
	}
	st, _ := h.engine.Status("pacs")
	if !strings.Contains(st.LastDetail, "refused") {
		t.Errorf("evidence %q does not say the connection was refused", st.LastDetail)
	}
	// Still down, a restart, still down: never a second outage or event.
	h.check("pacs")
	h.restart()
	if s := h.check("pacs"); s != StateDown {
		t.Fatalf("after restart: %s", s)
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'pacs'`); n != 1 {
		t.Errorf("outages = %d, want 1", n)
	}
	if n := h.events(EventDeviceDown); n != 1 {
		t.Errorf("device_down events = %d, want 1", n)
	}
	f.orthanc.StartAgain()
	if s := h.check("pacs"); s != StateDown {
		t.Errorf("one good answer must not end the outage (hysteresis): %s", s)
	}
	if s := h.check("pacs"); s != StateUp {
		t.Errorf("after 2 good answers: %s, want up", s)
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'pacs' AND ended_at IS NOT NULL`); n != 1 {
		t.Errorf("ended outages = %d", n)
	}
	if n := h.events(EventDeviceUp); n != 1 {
		t.Errorf("device_up events = %d, want 1", n)
	}
}

func TestWrongCalledAEIsMisconfigured(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	if s := h.check("pacs-wrong-ae"); s != StateMisconfigured {
		t.Fatalf("state %s, want misconfigured", s)
	}
	st, _ := h.engine.Status("pacs-wrong-ae")
	if !strings.Contains(st.LastDetail, "called AE title not recognized") {
		t.Errorf("evidence %q", st.LastDetail)
	}
	if n := h.count(`SELECT count(*) FROM outages`); n != 0 {
		t.Errorf("a configuration fault opened %d outages", n)
	}
	if n := h.events(EventMisconfigured); n != 1 {
		t.Errorf("misconfigured events = %d", n)
	}
}

// The gateway down: the site's devices are unreachable, and exactly one
// site event is raised — whichever is checked first.
func TestGatewayDownIsOneSiteIncident(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	for _, id := range []string{"s1-gw", "s1-ct", "s1-us"} {
		if s := h.check(id); s != StateUp {
			t.Fatalf("%s: %s", id, s)
		}
	}
	f.gw.down()
	f.ct.down()
	f.us.down()
	// A device checked before its gateway asks the gateway: unreachable.
	if s := h.check("s1-ct"); s != StateUnreachable {
		t.Fatalf("s1-ct: %s, want unreachable", s)
	}
	if s := h.check("s1-gw"); s != StateDown {
		t.Fatalf("gateway: %s, want down", s)
	}
	if s := h.check("s1-us"); s != StateUnreachable {
		t.Fatalf("s1-us: %s, want unreachable", s)
	}
	h.check("s1-gw")
	h.check("s1-ct")
	if n := h.events(EventSiteDown); n != 1 {
		t.Errorf("site_down events = %d, want 1", n)
	}
	if n := h.events(EventDeviceDown); n != 0 {
		t.Errorf("device_down events = %d, want 0 (one site incident instead)", n)
	}
	var affected string
	if err := h.db.Get(&affected, `SELECT array_to_string(affected_device_ids, ',') FROM outages WHERE kind = 'site'`); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(affected, "s1-ct") || !strings.Contains(affected, "s1-us") {
		t.Errorf("site incident lists %q", affected)
	}
	// The link comes back, the CT does not: the site incident ends and
	// the CT's own outage opens.
	f.gw.up(t)
	f.us.up()
	h.check("s1-gw")
	h.check("s1-gw")
	if n := h.events(EventSiteUp); n != 1 {
		t.Errorf("site_up events = %d", n)
	}
	if s := h.check("s1-ct"); s != StateDown {
		t.Errorf("s1-ct after the link is back: %s, want down", s)
	}
	h.check("s1-us")
	if s := h.check("s1-us"); s != StateUp {
		t.Errorf("s1-us: %s, want up", s)
	}
}

func TestFlappingRaisesOneEvent(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	h.cfg.SuccessesToUp = 1
	h.restart()
	for i := range 16 {
		if i%2 == 0 {
			f.flappy.up()
		} else {
			f.flappy.down()
		}
		h.check("flappy")
	}
	if n := h.events(EventFlappingStarted); n != 1 {
		t.Errorf("flapping_started events = %d, want 1", n)
	}
	if n := h.events(EventDeviceDown); n > 2 {
		t.Errorf("device_down events = %d: flaps after detection must raise nothing", n)
	}
	st, _ := h.engine.Status("flappy")
	if !st.Flapping {
		t.Error("device not flagged flapping")
	}
}

func TestMaintenanceWindowRaisesNoOutage(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	now := time.Now()
	w := &Window{Scope: "site", ScopeID: "s2", Reason: "preventive", StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}
	if err := h.store.AddWindow(context.Background(), w, "test"); err != nil {
		t.Fatal(err)
	}
	h.restart()
	f.orthanc.Stop()
	for range 3 {
		if s := h.check("pacs"); s != StateMaintenance {
			t.Fatalf("pacs in a window: %s, want maintenance", s)
		}
	}
	if n := h.count(`SELECT count(*) FROM outages`); n != 0 {
		t.Errorf("outages inside a window = %d", n)
	}
}

func TestHeartbeats(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	api := &HeartbeatAPI{Devices: h.assets, Log: h.store, Clock: clockwork.NewRealClock()}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(device, token string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/heartbeats/"+device, strings.NewReader(`{"status":"ok"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, device, token string
		want                int
	}{
		{"no token", "agent", "", http.StatusUnauthorized},
		{"unknown token", "agent", "not-a-token-of-anyone", http.StatusUnauthorized},
		{"another device's token", "agent", "agent-heartbeat-token-2", http.StatusForbidden},
	} {
		if got := post(c.device, c.token); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if n := h.count(`SELECT count(*) FROM heartbeats`); n != 0 {
		t.Fatalf("refused heartbeats changed %d rows", n)
	}
	if got := post("agent", "agent-heartbeat-token-1"); got != http.StatusAccepted {
		t.Fatalf("valid heartbeat: %d", got)
	}
	if s := h.check("agent"); s != StateUp {
		t.Fatalf("agent after a heartbeat: %s", s)
	}
	// Silence past the 1 s grace: down after its retries.
	time.Sleep(1500 * time.Millisecond)
	if s := h.check("agent"); s != StateDown {
		t.Fatalf("agent silent past its grace: %s, want down", s)
	}
}
