package dashboards

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/fleetsim"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/snmptest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// inventoryYAML is a small hospital: a gateway, a PACS (with an SNMP agent
// whose archive is filling), a RIS with a heartbeat agent, a CT and an MR,
// probed every second.
const inventoryYAML = `
customers:
  - id: hsr
    name: Red Hospitalaria San Rafael
    country: CO
    time_zone: America/Bogota
    language: es
    notify_email: noc@sanrafael.example
    sites:
      - id: hsr-central
        name: Sede Central
        kind: hospital
        city: Bogotá
        gateway: hsr-gw
        devices:
          - id: hsr-gw
            name: Router de enlace
            kind: network
            tcp: {host: 127.0.0.1, port: %d}
            probe: {interval: 1s, retries: 1}
          - id: hsr-pacs
            name: PACS central
            kind: pacs
            role: core
            dicom: {host: 127.0.0.1, port: %d, called_ae: HSR_PACS}
            snmp: {host: 127.0.0.1, port: %d, version: v2c, community: vigia-ro}
            probe: {interval: 1s, retries: 1}
          - id: hsr-ris
            name: RIS central
            kind: ris
            role: core
            tcp: {host: 127.0.0.1, port: %d}
            heartbeat: {grace: 3s, token: hsr-ris-heartbeat-test-token}
            probe: {interval: 1s, retries: 1}
          - id: hsr-ct
            name: Tomógrafo 1
            kind: modality
            modality: CT
            manufacturer: Siemens Healthineers
            dicom: {host: 127.0.0.1, port: %d, called_ae: HSR_CT1}
            probe: {interval: 1s, retries: 1}
          - id: hsr-mr
            name: Resonador 1.5T
            kind: modality
            modality: MR
            manufacturer: Philips
            dicom: {host: 127.0.0.1, port: %d, called_ae: HSR_MR1}
            probe: {interval: 1s, retries: 1}
    contracts:
      - id: hsr-2026
        sla_policy: imaging-8x5
        devices: all
        start: 2026-01-01
        end: 2030-12-31
        activated: 2026-01-02
`

// process is a child process whose output is shown when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{name: filepath.Base(name), cmd: exec.Command(name, args...)}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-done
		if t.Failed() {
			p.mu.Lock()
			out := p.out.String()
			p.mu.Unlock()
			if len(out) > 6000 {
				out = "…" + out[len(out)-6000:]
			}
			t.Logf("%s output:\n%s", p.name, out)
		}
	})
	return p
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", limit, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promQuery runs an instant query; a non-200 answer (400: the expression
// does not parse; 422: it cannot be evaluated) is an error.
func promQuery(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%w: HTTP %d: %s", errBadQuery, resp.StatusCode, body)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		return 0, fmt.Errorf("%w: %s", errBadQuery, body)
	}
	return len(r.Data.Result), nil
}

var errBadQuery = fmt.Errorf("prometheus refused the query")

// grafanaVars replaces what Grafana substitutes before a query reaches
// Prometheus: its interval macros and the template variables, at "All".
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h",
	"${customer}", ".*", "$customer", ".*", "${site}", ".*", "$site", ".*", "${prober}", ".*", "$prober", ".*")

// exposed lists the metric families a running vigia serves on /metrics.
func exposed(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

// A real Prometheus scrapes a running `vigia serve` over a small simulated
// hospital every second; with a device down, an SLA breached and field
// work under way, every panel's query and every variable returns data.
func TestPanelsAnswerFromRealPrometheus(t *testing.T) {
	prom := testpeer.Command(t, "prometheus", "prometheus")
	dbURL := pgtest.URL(t)
	ctx := context.Background()

	bin := filepath.Join(t.TempDir(), "vigia")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vigia").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conn, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	listen := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	vigiaURL := "http://" + listen
	const archive = 250_000_000 // 4 KiB units: about 1 TB
	agent := snmptest.StartWithStorage(t, []snmptest.Volume{{Descr: "/archive", Units: 4096, Size: archive, Used: archive * 70 / 100}})
	file, sim := startHospital(t, vigiaURL, agent.Port)

	// What the flow would take hours to produce, written before Vigía
	// starts: a ticket opened 30 days ago (the SLA watcher's first run
	// records its breaches) and field work on another (a visit, a part, a
	// manufacturer case, a wait on the customer: waits and SLA pauses).
	inv := assets.NewStore(conn)
	now := time.Now()
	if _, err := inv.Import(ctx, file, now, false); err != nil {
		t.Fatal(err)
	}
	produceTicketsAndDispatch(t, conn, inv, now)
	// Thirteen days of the archive filling from 50 %: with the agent's 70 %
	// now, the forecast has a trend to draw.
	for h := 13 * 24; h > 0; h -= 6 {
		used := archive/2 + int64(13*24-h)*archive/100*20/(13*24)
		if _, err := conn.Exec(`INSERT INTO storage_samples (device_id, volume, at, used_bytes, size_bytes) VALUES ('hsr-pacs', '/archive', $1, $2, $3)`,
			now.Add(-time.Duration(h)*time.Hour), used*4096, int64(archive)*4096); err != nil {
			t.Fatal(err)
		}
	}
	// A collector (of no site, so the NOC still probes every device) that
	// reached the NOC a minute ago: the collectors panel has its series.
	conn.MustExec(`INSERT INTO collectors (name, customer_id, token_sha256, created_at, last_contact_at, last_result_at)
		SELECT 'on-site', id, sha256('x'), $1, $1, $1 FROM customers LIMIT 1`, now.Add(-time.Minute))

	start(t, bin, "serve", "--database-url", dbURL, "--listen", listen, "--log-level", "warn", "--snmp-trap-listen", "127.0.0.1:0")
	waitFor(t, "vigia /readyz", 30*time.Second, func() (bool, error) {
		resp, err := http.Get(vigiaURL + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})

	promBase := startPrometheus(t, prom, listen)
	waitFor(t, "the five devices up in Prometheus", 45*time.Second, func() (bool, error) {
		n, err := promQuery(promBase, `vigia_device_state{state="up"} == 1`)
		return n == 5, err
	})
	if err := sim.Down("hsr-ct", fleetsim.Refuse); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CT down, its outage and its ticket in Prometheus", 45*time.Second, func() (bool, error) {
		for _, q := range []string{`vigia_device_state{device="hsr-ct", state="down"} == 1`, `vigia_outages_open{kind="device"} == 1`,
			`vigia_tickets_open{severity="2"}`, `vigia_sla_breaches_total`, `vigia_sla_outcomes_total{outcome="met"}`} {
			if n, err := promQuery(promBase, q); n == 0 {
				return false, fmt.Errorf("%s: %d series, %v", q, n, err)
			}
		}
		return true, nil
	})

	served := exposed(t, vigiaURL)
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries() {
			expr := grafanaVars.Replace(q.expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: %s has a variable the test does not substitute", q.where, q.expr)
				continue
			}
			var missing []string
			for _, m := range metricNames(expr) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && served[b] {
						base = b
					}
				}
				// up is Prometheus's own series about the scrape.
				if m != "up" && !served[base] && !served[m] {
					missing = append(missing, m)
				}
			}
			if len(missing) > 0 {
				t.Errorf("%s: vigia serve does not expose %s", q.where, strings.Join(missing, ", "))
				continue
			}
			// Rates need two scrapes inside their window: retry until the
			// shared deadline, but a refused query fails at once.
			for {
				n, err := promQuery(promBase, expr)
				if err != nil {
					t.Errorf("%s: %s: %v", q.where, expr, err)
					break
				}
				if n > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %s returned no data", q.where, expr)
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}

	// The alert rules load into the real Prometheus and evaluate cleanly
	// against the live series.
	waitFor(t, "the alert rules evaluated", 20*time.Second, func() (bool, error) {
		resp, err := http.Get(promBase + "/api/v1/rules")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return false, err
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health != "ok" {
					return false, fmt.Errorf("rule %s: %s %s", rule.Name, rule.Health, rule.LastError)
				}
				n++
			}
		}
		return n == 4, fmt.Errorf("%d rules", n)
	})
}

// startHospital starts the simulated devices of inventoryYAML on free
// ports (another range if one is taken), with the PACS's SNMP agent on
// snmpPort, and returns the parsed inventory.
func startHospital(t *testing.T, vigiaURL string, snmpPort int) (*assets.File, *fleetsim.Simulator) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		inv := fmt.Appendf(nil, inventoryYAML, testpeer.FreePort(t), testpeer.FreePort(t), snmpPort, testpeer.FreePort(t), testpeer.FreePort(t), testpeer.FreePort(t))
		file, err := assets.ParseFile("inventory.yaml", inv, assets.ParseOptions{KnownPolicy: func(n string) bool {
			_, err := sla.Presets().Lookup(n)
			return err == nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		// The SNMP endpoint is the real snmpd's: the simulator serves the
		// rest, not an agent of its own on snmpd's port.
		devices, err := fleetsim.Only(fleetsim.FromInventory(file).Devices, []string{"dicom", "tcp", "heartbeat"})
		if err != nil {
			t.Fatal(err)
		}
		sim, err := fleetsim.New(devices, fleetsim.Options{VigiaURL: vigiaURL})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Start(); err != nil {
			sim.Close()
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close() })
		return file, sim
	}
}

func produceTicketsAndDispatch(t *testing.T, conn *sqlx.DB, inv *assets.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	staff := auth.Actor{Name: "ana", Role: "noc"}
	if _, err := tickets.Create(ctx, staff, maintenance.CreateInput{CustomerID: "hsr", DeviceIDs: []string{"hsr-pacs"}, Severity: 2,
		Title: "Lentitud del PACS"}, now.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tk, err := tickets.Create(ctx, staff, maintenance.CreateInput{CustomerID: "hsr", DeviceIDs: []string{"hsr-mr"}, Severity: 3,
		Title: "Bobina de cabeza con artefactos"}, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledged within its 18 business hours: the watcher records the
	// response clock as met (vigia_sla_outcomes_total).
	if _, err := tickets.Act(ctx, staff, tk.Number, "acknowledge", maintenance.ActionInput{}, now.Add(-55*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ds := dispatch.NewStore(conn, inv, tickets)
	noc := auth.NOCActor("ana")
	if _, err := ds.PutEngineer(ctx, noc, "eng-bog", dispatch.EngineerInput{Name: "Laura", Email: "laura@vigia.example", HomeCity: "Bogotá", Biomedical: true,
		Modalities: []string{"MR"}, Manufacturers: []string{"Philips"}, Calendar: dispatch.CalendarSpec{Preset: "co-8x5"}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateVisit(ctx, noc, dispatch.VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"}}, now); err != nil {
		t.Fatal(err)
	}
	part, err := ds.PutPart(ctx, noc, dispatch.PartInput{Manufacturer: "Philips", PartNumber: "HEAD-16CH"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.RequestPart(ctx, noc, dispatch.PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 1}, now.Add(-50*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.OpenCase(ctx, noc, dispatch.CaseInput{TicketID: tk.ID, Manufacturer: "Philips", CaseNumber: "PH-2026-1"}, now.Add(-40*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.StartWait(ctx, noc, dispatch.WaitInput{TicketID: tk.ID, Reason: dispatch.WaitCustomer, Note: "sala ocupada"}, now.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// startPrometheus runs Prometheus scraping vigia every second, with the
// alert rules loaded, and returns its URL once it is ready.
func startPrometheus(t *testing.T, prom, target string) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join("rules", "vigia.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: vigia
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
	start(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	base := "http://" + addr
	waitFor(t, "Prometheus ready", 30*time.Second, func() (bool, error) {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return base
}
