package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/console"
	"github.com/vigia-noc/vigia/internal/pgtest"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/mailintake"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
	"github.com/vigia-noc/vigia/reports"
)

// apiFixture is `vigia serve`'s HTTP surface (API and console) on the
// example inventory, with one ticket of customer hsr and a row of every
// dispatch kind on it, created by the NOC.
type apiFixture struct {
	conn          *sqlx.DB
	h             http.Handler
	clock         *clockwork.FakeClock
	users         *auth.Users
	noc, hsr, cmf string // API tokens

	ticket, visit, part, partRequest, manufacturerCase, wait, quote string // ids
	calibration                                                     string // a biomedical calibration record's id
	attachment                                                      string // a screenshot's id on the ticket
	attachmentPNG                                                   []byte // its content
	collectorToken                                                  string // a collector of hsr-central
	calibrationPath, calibrationPDF, alertBody                      string // its upload, and an alert file
	engineerBody, partBody, workBody                                string // valid bodies
}

// do sends a request with an API token (none if empty) and returns the
// status and body.
func (f *apiFixture) do(method, path, token, body string) (int, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	url := pgtest.URL(t)
	f := &apiFixture{conn: openDB(t, url)}
	health := openDB(t, url)
	health.SetMaxOpenConns(1)
	ctx := context.Background()
	raw, err := os.ReadFile("../../examples/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := assets.ParseFile("inventory.yaml", raw, parseOptions())
	if err != nil {
		t.Fatal(err)
	}
	store := assets.NewStore(f.conn)
	if _, err := store.Import(ctx, inv, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	f.clock = clockwork.NewFakeClockAt(time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC))
	tokens := auth.NewTokens(f.conn, f.clock.Now)
	mk := func(role, customer string) string {
		tok, _, err := tokens.Create(ctx, role+customer, role, customer, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.noc, f.hsr, f.cmf = mk(auth.RoleNOC, ""), mk(auth.RoleCustomer, "hsr"), mk(auth.RoleCustomer, "cmf")
	reg := prometheus.NewRegistry()
	probeStore := probes.NewStore(f.conn)
	tickets := maintenance.NewStore(f.conn, store, maintenance.Options{})
	dispatchStore := dispatch.NewStore(f.conn, store, tickets)
	engine, err := probes.NewEngine(ctx, probeStore, store, probes.Config{Clock: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	if f.collectorToken, _, err = probeStore.CreateCollector(ctx, "hsr on site", "hsr", []string{"hsr-central"}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	f.users = auth.NewUsers(f.conn, tickets, store)
	mail := mailintake.New(f.conn, tickets, store, f.clock.Now, log)
	web, err := console.New(console.Config{Users: f.users, Assets: store, Tickets: tickets, Dispatch: dispatchStore,
		Mail: mail, Probes: probeStore, History: probeStore, Now: f.clock.Now, Log: log,
		Reports: &reports.Reporter{Inventory: store, History: probeStore, Tickets: tickets, Field: dispatchStore,
			Policies: []*sla.Set{sla.Presets()}, Now: f.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	f.h = server.Handler(httpConfig(httpDeps{conn: f.conn, health: health, tokens: tokens, reg: reg, log: log,
		assets: store, probes: probeStore, probeMetrics: probes.NewMetrics(reg), engine: engine, tickets: tickets,
		dispatch: dispatchStore, clock: f.clock, mail: mail, console: web}))

	// One ticket of hsr to aim at.
	code, body := f.do("POST", "/api/v1/tickets", f.hsr, `{"title":"Worklist lenta","description":"La lista de trabajo tarda","severity":3,"devices":["hsr-worklist"]}`)
	if code != http.StatusCreated {
		t.Fatalf("create hsr ticket: %d %s", code, body)
	}
	var created struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	f.ticket = fmt.Sprint(created.ID)
	// A screenshot on it, named so that a leak of its name shows.
	var shot bytes.Buffer
	if err := png.Encode(&shot, image.NewRGBA(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	f.attachmentPNG = shot.Bytes()
	if err := tickets.AddAttachments(ctx, maintenance.Scope{CustomerID: "hsr"}, created.ID, "imagenes.hsr",
		[]maintenance.Attachment{{Name: "pantalla San Rafael.png", ContentType: "image/png", Data: f.attachmentPNG}}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	atts, err := tickets.Attachments(ctx, maintenance.Scope{}, created.ID)
	if err != nil || len(atts) != 1 {
		t.Fatalf("attachments of the hsr ticket: %v %v", atts, err)
	}
	f.attachment = fmt.Sprint(atts[0].ID)
	// Dispatch's rows on that ticket; every note names San Rafael so that
	// a leak of any of them shows.
	create := func(method, path, body string, want int) string {
		t.Helper()
		code, out := f.do(method, path, f.noc, body)
		if code != want {
			t.Fatalf("%s %s: %d, want %d (%s)", method, path, code, want, out)
		}
		var v struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%s %s: %v (%s)", method, path, err, out)
		}
		return strings.Trim(string(v.ID), `"`)
	}
	f.clock.Advance(3 * time.Hour)
	f.engineerBody = `{"name":"Laura Gómez","email":"laura@vigia.example","home_city":"Bogotá","it":true,"biomedical":true,` +
		`"modalities":["CT"],"manufacturers":["GE"],"calendar":{"preset":"co-8x5"},"hourly_cost_cents":9000000}`
	create("PUT", "/api/v1/engineers/eng-laura", f.engineerBody, 200)
	f.visit = create("POST", "/api/v1/visits", `{"ticket":`+f.ticket+`,"engineers":["eng-laura"],"notes":"Revisar worklist de San Rafael"}`, 201)
	f.partBody = `{"manufacturer":"GE","part_number":"GE-5131","description":"Tubo de rayos X","unit_price_cents":900000000,"unit_cost_cents":432100000}`
	f.part = create("PUT", "/api/v1/parts", f.partBody, 200)
	create("PUT", "/api/v1/warehouses/wh-bog", `{"name":"Bodega Bogotá","city":"Bogotá"}`, 200)
	create("PUT", "/api/v1/warehouses/wh-bog/stock/"+f.part, `{"quantity":3}`, 200)
	f.partRequest = create("POST", "/api/v1/part-requests",
		`{"ticket":`+f.ticket+`,"part":`+f.part+`,"quantity":1,"visit":`+f.visit+`,"note":"Tubo para San Rafael"}`, 201)
	f.manufacturerCase = create("POST", "/api/v1/manufacturer-cases",
		`{"ticket":`+f.ticket+`,"manufacturer":"GE","case_number":"GE-CASE-4711","summary":"Worklist de San Rafael sin respuesta"}`, 201)
	f.wait = create("POST", "/api/v1/waits", `{"ticket":`+f.ticket+`,"reason":"customer","note":"San Rafael sin acceso al servidor"}`, 201)
	f.workBody = `{"ticket":` + f.ticket + `,"engineer":"eng-laura","kind":"remote","activity":"diagnosis",` +
		`"started_at":"2026-11-23T15:00:00Z","ended_at":"2026-11-23T16:00:00Z","note":"Diagnóstico remoto de San Rafael","without_quote":true}`
	create("POST", "/api/v1/work-entries", f.workBody, 201)
	f.quote = create("POST", "/api/v1/quotes", `{"ticket":`+f.ticket+`,"hours":2,"hour_price_cents":12000000,"note":"Cotización San Rafael"}`, 201)
	// The biomedical service's rows of hsr: a programme and a calibration
	// flag for its monitoring central, a certificate, an alert matching it.
	programme, err := biomed.ParseFile([]byte(`programmes:
  - {id: mindray-cms, manufacturer: Mindray, model: BeneVision CMS, starts: 2026-10-01,
     tasks: [{id: monthly, title: {es: Revisión mensual San Rafael, en: Monthly check}, every_months: 1, duration: 1h}]}
calibration:
  - {device: hsr-monitor-uci, every_months: 12, first_due: 2026-12-15}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newBiomedStore(f.conn).Import(ctx, programme, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.calibrationPDF = "%PDF-1.4\n% certificado San Rafael\n%%EOF\n"
	f.calibrationPath = "/api/v1/biomed/devices/hsr-monitor-uci/calibrations?calibrated_on=2026-11-20&laboratory=Metrolab&certificate_number=MC-1&filename=c.pdf"
	f.calibration = create("POST", f.calibrationPath, f.calibrationPDF, 201)
	f.alertBody = `[{"source":"INVIMA","reference":"ALERTA-2026-200","date":"2026-11-20","manufacturer":"mindray","models":["benevision cms"],` +
		`"serials":[],"patient_risk":false,"action":"Actualizar software"}]`
	create("POST", "/api/v1/biomed/alerts", f.alertBody, 200)
	return f
}
