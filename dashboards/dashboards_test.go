package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/testpeer"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
)

// wantUIDs fixes each dashboard's uid: links and bookmarks to a dashboard
// survive only if its uid never changes.
var wantUIDs = map[string]string{
	"noc-overview.json":   "vigia-noc-overview",
	"sla-compliance.json": "vigia-sla-compliance",
	"field-dispatch.json": "vigia-field-dispatch",
	"probe-health.json":   "vigia-probe-health",
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// theDatasource is what every panel, target and query variable must use:
// the dashboard's own variable, so file provisioning needs no inputs.
var theDatasource = datasource{Type: "prometheus", UID: "${datasource}"}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasource     `json:"datasource"`
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"` // a collapsed row's
}

type dashboard struct {
	file          string
	raw           map[string]json.RawMessage
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// query is one PromQL expression of a dashboard and where it is.
type query struct {
	where string
	expr  string
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	names, err := fs.Glob(Files, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []dashboard
	for _, name := range names {
		data, err := fs.ReadFile(Files, name)
		if err != nil {
			t.Fatal(err)
		}
		d := dashboard{file: name}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := json.Unmarshal(data, &d.raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, d)
	}
	return out
}

// leaves are the panels that query, rows' nested panels included.
func leaves(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		if p.Type == "row" {
			out = append(out, leaves(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// variableQuery is the PromQL inside a query variable's
// label_values(selector, label), and the label.
func variableQuery(v variable) (selector, label string, ok bool) {
	var q struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &q); err != nil {
		if err := json.Unmarshal(v.Query, &q.Query); err != nil {
			return "", "", false
		}
	}
	m := labelValuesRE.FindStringSubmatch(q.Query)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// queries lists every PromQL expression of d: panel targets and the
// selectors of query variables.
func (d dashboard) queries() []query {
	var out []query
	for _, v := range d.Templating.List {
		if sel, _, ok := variableQuery(v); ok {
			out = append(out, query{d.file + " variable " + v.Name, sel})
		}
	}
	for _, p := range leaves(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, query{d.file + " panel " + p.Title + " " + tg.RefID, tg.Expr})
		}
	}
	return out
}

// What a dashboard must be to be provisioned from a file: a fixed uid, no
// __inputs or ${DS_…} (file provisioning does not resolve them), a
// datasource variable every panel, target and query variable uses.
func TestDashboardsAreProvisionable(t *testing.T) {
	ds := loadDashboards(t)
	var files []string
	for _, d := range ds {
		files = append(files, d.file)
	}
	want := slices.Sorted(func(yield func(string) bool) {
		for f := range wantUIDs {
			if !yield(f) {
				return
			}
		}
	})
	if !slices.Equal(files, want) {
		t.Errorf("dashboards %v, want %v (a new one needs its fixed uid in wantUIDs)", files, want)
	}
	uids := map[string]string{}
	for _, d := range ds {
		t.Run(d.file, func(t *testing.T) {
			if d.UID != wantUIDs[d.file] {
				t.Errorf("uid %q, want %q", d.UID, wantUIDs[d.file])
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %q also used by %s", d.UID, other)
			}
			uids[d.UID] = d.file
			if d.Title == "" {
				t.Error("no title")
			}
			if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
				t.Errorf("schemaVersion %d, want classic JSON around 39", d.SchemaVersion)
			}
			for _, k := range []string{"__inputs", "__requires", "__elements"} {
				if _, ok := d.raw[k]; ok {
					t.Errorf("has %s: that is an export for sharing, not for provisioning", k)
				}
			}
			data, _ := fs.ReadFile(Files, d.file)
			if bytes.Contains(data, []byte("${DS_")) {
				t.Error("uses ${DS_…}, which file provisioning never resolves")
			}
			var dsVars int
			for _, v := range d.Templating.List {
				switch v.Type {
				case "datasource":
					var q string
					json.Unmarshal(v.Query, &q)
					if v.Name != "datasource" || q != "prometheus" {
						t.Errorf("datasource variable %q of %q, want \"datasource\" of \"prometheus\"", v.Name, q)
					}
					dsVars++
				case "query":
					if v.Datasource == nil || *v.Datasource != theDatasource {
						t.Errorf("variable %s: datasource %v, want %v", v.Name, v.Datasource, theDatasource)
					}
					if _, _, ok := variableQuery(v); !ok {
						t.Errorf("variable %s: query %s is not label_values(selector, label)", v.Name, v.Query)
					}
				}
			}
			if dsVars != 1 {
				t.Errorf("%d datasource variables, want 1", dsVars)
			}
			ids := map[int]bool{}
			ps := leaves(d.Panels)
			if len(ps) < 6 {
				t.Errorf("%d panels: too few to be the dashboard it claims", len(ps))
			}
			for _, p := range ps {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if p.Datasource == nil || *p.Datasource != theDatasource {
					t.Errorf("panel %q: datasource %v, want %v", p.Title, p.Datasource, theDatasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource == nil || *tg.Datasource != theDatasource {
						t.Errorf("panel %q target %s: datasource %v, want %v", p.Title, tg.RefID, tg.Datasource, theDatasource)
					}
					if strings.TrimSpace(tg.Expr) == "" {
						t.Errorf("panel %q target %s: empty expression", p.Title, tg.RefID)
					}
				}
			}
		})
	}
}

// PromQL words that look like metric names but are not.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

var (
	stringRE   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchersRE = regexp.MustCompile(`\{[^}]*\}`)
	rangeRE    = regexp.MustCompile(`\[[^\]]*\]`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	tokenRE    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9][A-Za-z0-9_.]*|\$[A-Za-z0-9_]+`)
)

// metricNames extracts the metric names an expression selects: what is
// left once strings, label matchers, ranges and grouping label lists are
// removed, minus function names (followed by "(") and operators.
func metricNames(expr string) []string {
	s := stringRE.ReplaceAllString(expr, `""`)
	s = matchersRE.ReplaceAllString(s, " ")
	s = rangeRE.ReplaceAllString(s, " ")
	s = groupingRE.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range tokenRE.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if c := tok[0]; c >= '0' && c <= '9' || c == '$' || promqlWords[tok] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or aggregation
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	sort.Strings(out)
	return out
}

func TestMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, prober) (rate(vigia_probe_duration_seconds_bucket{prober=~"$prober"}[$__rate_interval])))`,
			[]string{"vigia_probe_duration_seconds_bucket"}},
		{`sum by (prober) (rate(a_total{result!="ok"}[5m])) / sum by (prober) (rate(a_total[5m]))`, []string{"a_total"}},
		{`max(time() - vigia_heartbeat_last_seen_timestamp_seconds)`, []string{"vigia_heartbeat_last_seen_timestamp_seconds"}},
		{`sum(x{state=~"down|unreachable"}) / count(y) > 0.5`, []string{"x", "y"}},
		{`up{job="vigia"} == 0 or absent(up{job="vigia"})`, []string{"up"}},
		{`a * on (instance) group_left (version) b offset 5m`, []string{"a", "b"}},
		{`sum without (instance) (m{l="sum(not_a_metric)"}) and bool 1e3`, []string{"m"}},
		{`vigia_device_up{customer=~"$customer"}`, []string{"vigia_device_up"}},
		{`sum (rate(z[1m]))`, []string{"z"}},
	} {
		if got := metricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%s) = %v, want %v", c.expr, got, c.want)
		}
	}
}

// recorder registers on a registry and remembers every metric name the
// collectors describe, labelled series or not: a vector with no series yet
// is registered all the same.
type recorder struct {
	reg   *prometheus.Registry
	names map[string]bool
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqNameRE.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.reg.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// binaryMetrics builds the registry `vigia serve` builds (cmd/vigia/serve.go)
// and returns every metric name on it.
func binaryMetrics(t *testing.T) map[string]bool {
	t.Helper()
	conn := pgtest.DB(t)
	rec := &recorder{reg: prometheus.NewRegistry(), names: map[string]bool{}}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	pm := probes.NewMetrics(rec)
	engine, err := probes.NewEngine(context.Background(), probes.NewStore(conn), assets.NewStore(conn),
		probes.Config{Metrics: pm, Probers: map[string]probes.Prober{"tcp": &probes.TCP{}}})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := probes.NewScheduler(engine, probes.SchedulerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sched.RegisterMetrics(rec)
	// serve's trap listener and storage forecast (cmd/vigia/serve_traps.go).
	probes.NewStorageTrend(conn, probes.StorageTrendConfig{Registerer: rec})
	if _, err := probes.NewTrapListener(conn, probes.TrapConfig{Inventory: assets.NewStore(conn), Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	(&probes.CollectorAPI{Store: probes.NewStore(conn), Engine: engine}).RegisterMetrics(rec)
	maintenance.NewMetrics(rec, conn)
	maintenance.RegisterOutboxMetrics(rec, conn)
	dispatch.RegisterMetrics(rec, conn)
	return rec.names
}

// prometheusOwn are series Prometheus writes itself for every target.
var prometheusOwn = map[string]bool{"up": true}

// registered reports whether name is a metric the binary exposes; a
// histogram's _bucket, _sum and _count series belong to its base name.
func registered(names map[string]bool, name string) bool {
	if names[name] || prometheusOwn[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

// Every metric a panel or a variable asks for is one the binary registers,
// and every panel asks for at least one.
func TestPanelMetricsAreRegistered(t *testing.T) {
	names := binaryMetrics(t)
	for _, must := range []string{"vigia_device_state", "vigia_probe_queue_waiting", "vigia_tickets_open",
		"vigia_outbox_pending", "vigia_visits", "go_goroutines", "process_cpu_seconds_total", "go_build_info"} {
		if !names[must] {
			t.Fatalf("the registry built like the binary's lacks %s: binaryMetrics is broken (%d names)", must, len(names))
		}
	}
	for _, d := range loadDashboards(t) {
		for _, q := range d.queries() {
			used := metricNames(q.expr)
			if len(used) == 0 {
				t.Errorf("%s: %s selects no metric", q.where, q.expr)
			}
			for _, m := range used {
				if !registered(names, m) {
					t.Errorf("%s: %s is not a metric the binary registers (%s)", q.where, m, q.expr)
				}
			}
		}
	}
}

func rulesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("rules")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The alert rules load and their unit tests pass under the real promtool.
func TestAlertRules(t *testing.T) {
	promtool := testpeer.Command(t, "promtool", "prometheus")
	dir := rulesDir(t)
	rules, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var ruleFiles []string
	for _, f := range rules {
		if !strings.HasSuffix(f, "_test.yml") {
			ruleFiles = append(ruleFiles, f)
		}
	}
	if len(ruleFiles) == 0 {
		t.Fatal("no rule files in dashboards/rules")
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"check rules", append([]string{"check", "rules"}, ruleFiles...)},
		{"test rules", []string{"test", "rules", filepath.Join(dir, "vigia_test.yml")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(promtool, c.args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(c.args, " "), err, out)
			}
		})
	}
	// Every alert has a unit test both ways: an alert_rule_test expecting
	// it and one expecting nothing.
	var ruleSet struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, filepath.Join(dir, "vigia.yml"), &ruleSet)
	readYAML(t, filepath.Join(dir, "vigia_test.yml"), &tests)
	var alerts []string
	for _, g := range ruleSet.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	for _, must := range []string{"VigiaDown", "VigiaProbeBacklog", "VigiaOutboxStuck", "VigiaSLABreachImminent"} {
		if !slices.Contains(alerts, must) {
			t.Errorf("vigia.yml has no alert %s", must)
		}
	}
	for _, a := range alerts {
		var firing, quiet bool
		for _, tc := range tests.Tests {
			for _, at := range tc.AlertRuleTest {
				if at.Alertname == a {
					firing = firing || len(at.ExpAlerts) > 0
					quiet = quiet || len(at.ExpAlerts) == 0
				}
			}
		}
		if !firing || !quiet {
			t.Errorf("vigia_test.yml tests %s firing: %v, not firing: %v; want both", a, firing, quiet)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
