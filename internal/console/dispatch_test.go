package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// catalogue puts an imported part (no stock) and a stocked one in the
// catalogue, with warehouse wh-bog holding three of the second.
func (h *harness) catalogue(t testing.TB) (imported, stocked dispatch.Part) {
	t.Helper()
	ctx, noc := context.Background(), auth.NOCActor("ana")
	var err error
	if imported, err = h.disp.PutPart(ctx, noc, dispatch.PartInput{Manufacturer: "Siemens Healthineers", PartNumber: "SH-10482",
		Description: "Tarjeta de comunicación del gantry", UnitPriceCents: 450000000, UnitCostCents: 987654321}, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if stocked, err = h.disp.PutPart(ctx, noc, dispatch.PartInput{Manufacturer: "Siemens Healthineers", PartNumber: "SH-FUSE-5A",
		Description: "Fusible 5 A", UnitPriceCents: 1000000, UnitCostCents: 123456}, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.disp.PutWarehouse(ctx, noc, dispatch.Warehouse{ID: "wh-bog", Name: "Bodega Bogotá", City: "Bogotá"}); err != nil {
		t.Fatal(err)
	}
	if err := h.disp.SetStock(ctx, noc, "wh-bog", stocked.ID, 3); err != nil {
		t.Fatal(err)
	}
	return imported, stocked
}

// localWindow is tomorrow hh:00–hh+2:00 in Bogotá, as datetime-local values.
func localWindow(now time.Time, hh int) (string, string, time.Time) {
	bog, _ := time.LoadLocation("America/Bogota")
	y, m, d := now.In(bog).AddDate(0, 0, 1).Date()
	start := time.Date(y, m, d, hh, 0, 0, 0, bog)
	return start.Format(localLayout), start.Add(2 * time.Hour).Format(localLayout), start
}

// The NOC dispatches from the ticket page through dispatch's own
// functions: a proposed visit, confirmed (the invitation is queued), a
// part imported with its ETA and moved into customs, a manufacturer case
// and a wait; the hold shows on the ticket page, the board and the
// hospital's portal, in each reader's language and without costs.
func TestDispatchFromTicketPage(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr", Language: "en"})
	h.engineer(t, "eng-laura", "Laura Gómez")
	imported, stocked := h.catalogue(t)
	tk := h.openTicket(t, "hsr", "hsr-ct1", 2, "Tomógrafo: falla del gantry")
	noc := h.client(t)
	noc.login("ana", testPassword)
	page := "/console/noc/tickets/" + tk.Number
	code, body := noc.get(page)
	if code != http.StatusOK || !strings.Contains(body, `id="suggestions"`) || !strings.Contains(body, `data-engineer="eng-laura"`) {
		t.Fatalf("ticket page without suggestions: %d", code)
	}
	if _, board := noc.get("/console/noc/dispatch"); !strings.Contains(board, `id="need-visit"`) || !strings.Contains(board, `data-ticket="`+tk.Number+`"`) {
		t.Error("the dispatch board does not list the CT's ticket as needing a visit")
	}
	from, to, start := localWindow(h.clock.Now(), 9)
	post := func(path string, form url.Values) {
		t.Helper()
		code, hdr, body := noc.post(path, form)
		if code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", path, code, body)
		}
		if _, page := noc.get(hdr.Get("Location")); strings.Contains(page, `class="flash error"`) {
			i := strings.Index(page, `class="flash error"`)
			t.Fatalf("POST %s refused: %.300s", path, page[i:])
		}
	}
	post(page+"/visits", url.Values{"engineer": {"eng-laura"}, "lead": {"eng-laura"}, "from": {from}, "to": {to},
		"checklist": {"Verificar refrigeración del gantry"}, "notes": {"Llevar tarjeta"}})
	vs, err := h.disp.Visits(context.Background(), auth.NOCActor("t"), dispatch.VisitFilter{TicketID: tk.ID})
	if err != nil || len(vs) != 1 || vs[0].State != dispatch.VisitProposed || !vs[0].WindowStart.Equal(start) {
		t.Fatalf("proposed visit: %+v %v", vs, err)
	}
	v := vs[0]
	if last := v.Checklist[len(v.Checklist)-1]; last.Text != "Verificar refrigeración del gantry" {
		t.Fatalf("extra checklist item: %+v", v.Checklist)
	}
	post(fmt.Sprintf("/console/noc/visits/%d/schedule", v.ID), url.Values{"from": {from}, "to": {to}})
	var queued int
	h.db.Get(&queued, `SELECT count(*) FROM outbox WHERE recipient = 'eng-laura@vigia.example' AND payload->>'calendar_method' = 'REQUEST'`)
	if queued != 1 {
		t.Fatalf("%d invitations queued for the engineer", queued)
	}
	post(page+"/parts", url.Values{"part": {fmt.Sprint(imported.ID)}, "quantity": {"1"}, "source": {"import"}, "eta": {"2026-12-20"},
		"supplier_ref": {"AWB 176-123"}})
	post(page+"/parts", url.Values{"part": {fmt.Sprint(stocked.ID)}, "quantity": {"2"}, "source": {"stock:wh-bog"}})
	parts, _ := h.disp.PartRequests(context.Background(), auth.NOCActor("t"), tk.ID)
	if len(parts) != 2 || parts[0].State != dispatch.PartOrdered || parts[0].ETA != "2026-12-20" || parts[1].State != dispatch.PartReceived {
		t.Fatalf("part requests: %+v", parts)
	}
	post(fmt.Sprintf("/console/noc/parts/%d/move", parts[0].ID), url.Values{"ticket": {tk.Number}, "to": {"in_customs"}, "eta": {"2026-12-22"}})
	post(page+"/cases", url.Values{"manufacturer": {"Siemens Healthineers"}, "case_number": {"SH-CASE-881"}, "summary": {"Falla intermitente"}})
	post(page+"/waits", url.Values{"reason": {"customer"}, "note": {"Acceso al cuarto del tomógrafo"}})
	d, err := h.tickets.Get(context.Background(), maintenance.Scope{}, tk.Number, h.clock.Now())
	if err != nil || d.Status != maintenance.StatusPending {
		t.Fatalf("the ticket is %s (%v); the waits pause it", d.Status, err)
	}

	_, body = noc.get(page)
	for _, want := range []string{"En espera: repuesto importado Siemens Healthineers SH-10482 (aduana, ETA 2026-12-22)",
		"respuesta del fabricante (caso Siemens Healthineers SH-CASE-881", "cliente (Acceso al cuarto del tomógrafo)", "SLA en pausa desde",
		"Visita programada: "} {
		if !strings.Contains(body, want) {
			t.Errorf("ticket page lacks %q", want)
		}
	}
	_, board := noc.get("/console/noc")
	if !strings.Contains(board, "repuesto importado Siemens Healthineers SH-10482 (aduana, ETA 2026-12-22)") {
		t.Error("the NOC board does not show the hold")
	}
	_, disp := noc.get("/console/noc/dispatch?view=week&date=" + start.Format(time.DateOnly))
	if strings.Contains(disp, `id="need-visit"`) {
		t.Error("a ticket with a scheduled visit still needs one on the dispatch board")
	}
	for _, want := range []string{`data-part-request="` + fmt.Sprint(parts[0].ID) + `" data-state="in_customs"`, "2026-12-22",
		fmt.Sprintf(`data-visit="%d"`, v.ID)} {
		if !strings.Contains(disp, want) {
			t.Errorf("dispatch board lacks %q", want)
		}
	}

	cust := h.client(t)
	cust.login("hsr", testPassword)
	_, portal := cust.get("/console/portal")
	_, portalTicket := cust.get("/console/portal/tickets/" + tk.Number)
	for name, page := range map[string]string{"portal": portal, "portal ticket": portalTicket} {
		for _, want := range []string{"On hold: imported part Siemens Healthineers SH-10482 (customs, ETA 2026-12-22)", "your answer or confirmation", "SLA paused since"} {
			if !strings.Contains(page, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		// Internal costs and supplier references stay inside.
		for _, leak := range []string{"987654321", "123456", "AWB 176-123"} {
			if strings.Contains(page, leak) {
				t.Errorf("%s shows %q", name, leak)
			}
		}
	}

	// The manual wait ends; the part's and case's keep the ticket paused.
	ws, _ := h.disp.OpenWaits(context.Background(), auth.NOCActor("t"))
	var manual int64
	for _, tw := range ws {
		for _, w := range tw.Waits {
			if w.Source == dispatch.SourceManual {
				manual = w.ID
			}
		}
	}
	post(fmt.Sprintf("/console/noc/waits/%d/end", manual), url.Values{"ticket": {tk.Number}})
	if _, body = noc.get(page); strings.Contains(body, "Acceso al cuarto del tomógrafo)") || !strings.Contains(body, "SLA en pausa desde") {
		t.Error("after the manual wait ended the page is wrong")
	}
	// A refused action says why on the page and changes nothing.
	code, hdr, _ := noc.post(fmt.Sprintf("/console/noc/parts/%d/move", parts[0].ID), url.Values{"ticket": {tk.Number}, "to": {"in_transit"}, "eta": {"soon"}})
	if _, page := noc.get(hdr.Get("Location")); code != http.StatusSeeOther || !strings.Contains(page, "is not a date") {
		t.Errorf("a bad ETA: %d", code)
	}
}

// Holds read in each reader's words.
func TestHoldText(t *testing.T) {
	bog, _ := time.LoadLocation("America/Bogota")
	since := time.Date(2026, 12, 2, 19, 10, 0, 0, time.UTC)
	next := time.Date(2026, 12, 11, 14, 0, 0, 0, time.UTC)
	customs := dispatch.HoldItem{Reason: dispatch.WaitImport, Source: dispatch.SourcePartRequest, Part: "GE 5131", PartState: dispatch.PartInCustoms, ETA: "2026-12-10"}
	manual := dispatch.HoldItem{Reason: dispatch.WaitCustomer, Source: dispatch.SourceManual, Note: "sin acceso"}
	for _, c := range []struct {
		name     string
		lang     string
		customer bool
		h        dispatch.Hold
		want     string
	}{
		{"customs, es", "es", false, dispatch.Hold{Items: []dispatch.HoldItem{customs}, PausedSince: &since},
			"En espera: repuesto importado GE 5131 (aduana, ETA 2026-12-10) — SLA en pausa desde 2026-12-02 14:10"},
		{"customs, en", "en", true, dispatch.Hold{Items: []dispatch.HoldItem{customs}, PausedSince: &since},
			"On hold: imported part GE 5131 (customs, ETA 2026-12-10) — SLA paused since 2026-12-02 14:10"},
		{"staff see the note", "es", false, dispatch.Hold{Items: []dispatch.HoldItem{manual}, PausedSince: &since},
			"En espera: cliente (sin acceso) — SLA en pausa desde 2026-12-02 14:10"},
		{"customers do not", "es", true, dispatch.Hold{Items: []dispatch.HoldItem{manual}, PausedSince: &since},
			"En espera: su respuesta o confirmación — SLA en pausa desde 2026-12-02 14:10"},
		{"a visit only", "en", true, dispatch.Hold{NextVisit: &next}, "Visit scheduled: 2026-12-11 09:00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := holdText(c.lang, bog, c.h, c.customer); got != c.want {
				t.Fatalf("%q\nwant %q", got, c.want)
			}
		})
	}
}

// Seed 000 §8: equipment unavailable at the agreed time closes the ticket
// and opens a new one to reschedule; each ticket page links the other, for
// the NOC and in the hospital's portal.
func TestEquipmentUnavailableLinksBothTickets(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.engineer(t, "eng-laura", "Laura Gómez")
	tk := h.openTicket(t, "hsr", "hsr-ct1", 2, "Tomógrafo sin imagen")
	v := h.scheduledVisit(t, tk.ID, "eng-laura")
	res, err := h.disp.Transition(context.Background(), auth.Actor{Name: "laura", Role: auth.RoleEngineer, EngineerID: "eng-laura"}, v.ID,
		dispatch.TransitionInput{To: dispatch.VisitEquipmentUnavailable, Note: "el equipo estaba en uso"}, h.clock.Now())
	if err != nil || res.NewTicket == "" {
		t.Fatalf("equipment unavailable: %+v %v", res, err)
	}
	noc := h.client(t)
	noc.login("ana", testPassword)
	cust := h.client(t)
	cust.login("hsr", testPassword)
	for _, c := range []struct {
		who  *client
		page string
		want string
	}{
		{noc, "/console/noc/tickets/" + tk.Number, `data-rescheduled-as="` + res.NewTicket + `"`},
		{noc, "/console/noc/tickets/" + res.NewTicket, `data-rescheduled-from="` + tk.Number + `"`},
		{cust, "/console/portal/tickets/" + tk.Number, `<a href="/console/portal/tickets/` + res.NewTicket + `">`},
		{cust, "/console/portal/tickets/" + res.NewTicket, `<a href="/console/portal/tickets/` + tk.Number + `">`},
	} {
		if code, body := c.who.get(c.page); code != http.StatusOK || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d, without %s", c.page, code, c.want)
		}
	}
}

// Dispatch forms are checked at the edge: text that is not UTF-8, holds a
// NUL or is too long is refused before dispatch sees it.
func TestDispatchFormInputChecked(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	tk := h.openTicket(t, "hsr", "hsr-ct1", 2, "Tomógrafo sin imagen")
	noc := h.client(t)
	noc.login("ana", testPassword)
	for name, note := range map[string]string{"NUL": "a\x00b", "not UTF-8": "\xff\xfe", "too long": strings.Repeat("x", maxFieldBytes+1)} {
		t.Run(name, func(t *testing.T) {
			// The console's edge check refuses it before the handler runs,
			// naming the field.
			code, _, body := noc.post("/console/noc/tickets/"+tk.Number+"/waits", url.Values{"reason": {"customer"}, "note": {note}})
			if code != http.StatusBadRequest || !strings.Contains(body, "note") {
				t.Fatalf("%d %.200s; want 400 naming the note", code, body)
			}
		})
	}
	var n int
	h.db.Get(&n, `SELECT count(*) FROM waits`)
	if n != 0 {
		t.Fatalf("%d waits recorded from refused forms", n)
	}
}
