package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Field dispatch from the console: the NOC sends engineers, requests parts,
// opens manufacturer cases and records waits from the ticket page, through
// the same dispatch functions as the API (same validation, same SLA pause
// rules); the dispatch board; and what holds a ticket, in the reader's
// language, on every page that lists it.

// registerDispatch adds the dispatch routes. Every action is the NOC's,
// but the photos an engineer takes on a visit.
func (c *Console) registerDispatch(mux *http.ServeMux) {
	noc := []string{auth.RoleNOC}
	mux.Handle("GET /console/noc/dispatch", c.handle(noc, c.dispatchBoard))
	mux.Handle("POST /console/noc/tickets/{ref}/visits", c.handle(noc, checkedForm(c.proposeVisit)))
	mux.Handle("POST /console/noc/visits/{id}/schedule", c.handle(noc, checkedForm(c.scheduleVisit)))
	mux.Handle("POST /console/noc/visits/{id}/cancel", c.handle(noc, checkedForm(c.cancelVisit)))
	mux.Handle("POST /console/noc/tickets/{ref}/parts", c.handle(noc, checkedForm(c.requestPart)))
	mux.Handle("POST /console/noc/parts/{id}/move", c.handle(noc, checkedForm(c.movePartRequest)))
	mux.Handle("POST /console/noc/tickets/{ref}/cases", c.handle(noc, checkedForm(c.openCase)))
	mux.Handle("POST /console/noc/cases/{id}/move", c.handle(noc, checkedForm(c.moveCase)))
	mux.Handle("POST /console/noc/tickets/{ref}/waits", c.handle(noc, checkedForm(c.startWait)))
	mux.Handle("POST /console/noc/waits/{id}/end", c.handle(noc, checkedForm(c.endWait)))
	mux.Handle("POST /console/engineer/visits/{id}/photos", c.handle([]string{auth.RoleEngineer, auth.RoleNOC}, checkedForm(c.visitPhotos)))
}

// maxFieldBytes bounds one text field of a dispatch form (notes, the
// manufacturer's answer); identifiers are bounded again by dispatch.
const maxFieldBytes = 20000

// checkedForm refuses a dispatch form with a field that is not valid
// UTF-8, holds a NUL or is longer than maxFieldBytes, before h sees it.
func checkedForm(h func(rq *request) error) func(rq *request) error {
	return func(rq *request) error {
		for name, values := range rq.r.PostForm {
			for _, v := range values {
				if !utf8.ValidString(v) || strings.ContainsRune(v, 0) || len(v) > maxFieldBytes {
					return fmt.Errorf("%w: field %q must be UTF-8 text without NUL, at most %d bytes", dispatch.ErrInvalid,
						strings.ToValidUTF8(name, "?"), maxFieldBytes)
				}
			}
		}
		return h(rq)
	}
}

// localLayout is how datetime-local inputs send a wall-clock time.
const localLayout = "2006-01-02T15:04"

// holdView is "what holds this ticket", written for its reader.
type holdView struct {
	Text            string
	Paused          bool
	RescheduledAs   string
	RescheduledFrom string
}

// holdText writes a hold in lang for a reader in loc: "En espera:
// repuesto importado (aduana, ETA 2026-12-10) — SLA en pausa desde
// 2026-12-02 14:10". Customers read their own wording: no provider notes.
func holdText(lang string, loc *time.Location, h dispatch.Hold, customer bool) string {
	var items []string
	for _, it := range h.Items {
		items = append(items, holdItemText(lang, it, customer))
	}
	var parts []string
	if len(items) > 0 {
		s := translate(lang, "hold.waiting", strings.Join(items, "; "))
		if h.PausedSince != nil {
			s += " — " + translate(lang, "hold.paused", h.PausedSince.In(loc).Format("2006-01-02 15:04"))
		}
		parts = append(parts, s)
	}
	switch {
	case h.NextVisit != nil:
		parts = append(parts, translate(lang, "hold.visit", h.NextVisit.In(loc).Format("2006-01-02 15:04")))
	case h.VisitProposed:
		parts = append(parts, translate(lang, "hold.proposed"))
	}
	return strings.Join(parts, " · ")
}

func holdItemText(lang string, it dispatch.HoldItem, customer bool) string {
	eta := ""
	if it.ETA != "" {
		eta = translate(lang, "hold.eta", it.ETA)
	}
	switch {
	case it.Source == dispatch.SourcePartRequest && it.PartState == dispatch.PartInCustoms:
		return translate(lang, "hold.customs", it.Part, eta)
	case it.Source == dispatch.SourcePartRequest && it.PartState == dispatch.PartQuoted:
		return translate(lang, "hold.quote", it.Part)
	case it.Source == dispatch.SourcePartRequest:
		return translate(lang, "hold.part."+it.PartState, it.Part, eta)
	case it.Source == dispatch.SourceManufacturerCase:
		return translate(lang, "hold.manufacturer", it.Case, it.Since.Format("2006-01-02"))
	}
	text := translate(lang, "hold.reason."+it.Reason)
	if customer {
		text = translate(lang, "hold.you."+it.Reason)
	} else if it.Note != "" {
		text += " (" + it.Note + ")"
	}
	return text
}

// holds returns the hold lines of tickets for the request's reader.
func (c *Console) holds(rq *request, ids []int64) (map[int64]*holdView, error) {
	hs, err := c.cfg.Dispatch.Holds(rq.ctx(), rq.actor(), ids)
	if err != nil {
		return nil, err
	}
	customer := rq.sess.User.Role == auth.RoleCustomer
	out := map[int64]*holdView{}
	for id, h := range hs {
		if h.Empty() {
			continue
		}
		out[id] = &holdView{Text: holdText(rq.lang, rq.loc, h, customer), Paused: h.PausedSince != nil,
			RescheduledAs: h.RescheduledAs, RescheduledFrom: h.RescheduledFrom}
	}
	return out, nil
}

// holdLines are the hold texts of a list of tickets, by id.
func (c *Console) holdLines(rq *request, queue []queuedTicket) (map[int64]*holdView, error) {
	ids := make([]int64, len(queue))
	for i, t := range queue {
		ids[i] = t.ID
	}
	return c.holds(rq, ids)
}

// ticketHold is the hold of one ticket (nil when nothing holds it).
func (c *Console) ticketHold(rq *request, id int64) (*holdView, error) {
	hs, err := c.holds(rq, []int64{id})
	if err != nil {
		return nil, err
	}
	return hs[id], nil
}

// dispatchPanel is what the NOC's ticket page offers to dispatch.
type dispatchPanel struct {
	Zone        string // the site's time zone, where windows are read
	From, To    string // the window asked about, as datetime-local values
	Suggestions []dispatch.Suggestion
	SiteCity    string
	Checklist   []dispatch.ChecklistItem
	Parts       []partChoice
	Cases       []dispatch.ManufacturerCase
	Waits       []dispatch.WaitView
	WaitReasons []string
	PartMoves   map[int64][]string
	CaseMoves   map[int64][]string
	// Manufacturers of the ticket's devices, for a new case.
	Manufacturers []string
	// Warehouses holding any stock.
	Warehouses []string
}

// partChoice is a catalogue part with its stock per warehouse.
type partChoice struct {
	dispatch.Part
	Stock []dispatch.StockLevel
}

// siteZone is the zone of a ticket's site: its customer's.
func (c *Console) siteZone(rq *request, customerID string) *time.Location {
	if cu, err := c.cfg.Assets.Customer(rq.ctx(), assets.Scope{}, customerID); err == nil {
		return cu.Location()
	}
	return time.UTC
}

// parseWindow reads a window of datetime-local fields in loc.
func parseWindow(from, to string, loc *time.Location) (*time.Time, *time.Time, error) {
	if from == "" && to == "" {
		return nil, nil, nil
	}
	f, err1 := time.ParseInLocation(localLayout, from, loc)
	t, err2 := time.ParseInLocation(localLayout, to, loc)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("%w: the window needs a start and an end (YYYY-MM-DDTHH:MM)", dispatch.ErrInvalid)
	}
	return &f, &t, nil
}

// partNextStates are the moves the console offers from each state.
var partNextStates = map[string][]string{
	dispatch.PartRequested: {dispatch.PartApproved, dispatch.PartCancelled},
	dispatch.PartQuoted:    {dispatch.PartCancelled},
	dispatch.PartApproved:  {dispatch.PartOrdered, dispatch.PartReceived, dispatch.PartCancelled},
	dispatch.PartOrdered:   {dispatch.PartInTransit, dispatch.PartInCustoms, dispatch.PartReceived, dispatch.PartCancelled},
	dispatch.PartInTransit: {dispatch.PartInCustoms, dispatch.PartReceived, dispatch.PartCancelled},
	dispatch.PartInCustoms: {dispatch.PartInTransit, dispatch.PartReceived, dispatch.PartCancelled},
}

var caseNextStates = map[string][]string{
	dispatch.CaseOpened:   {dispatch.CaseWaiting, dispatch.CaseAnswered, dispatch.CaseClosed},
	dispatch.CaseWaiting:  {dispatch.CaseAnswered, dispatch.CaseClosed},
	dispatch.CaseAnswered: {dispatch.CaseWaiting, dispatch.CaseClosed},
}

// loadDispatchPanel gathers the NOC's dispatch tools for ticket p.
func (c *Console) loadDispatchPanel(rq *request, p *ticketPage) error {
	actor := rq.actor()
	loc := c.siteZone(rq, p.CustomerID)
	q := rq.r.URL.Query()
	panel := &dispatchPanel{Zone: loc.String(), WaitReasons: []string{dispatch.WaitCustomer, dispatch.WaitThirdParty},
		PartMoves: map[int64][]string{}, CaseMoves: map[int64][]string{}}
	from, to, err := parseWindow(q.Get("from"), q.Get("to"), loc)
	if err != nil || from == nil {
		// Tomorrow 09:00–11:00 at the site, until the dispatcher asks.
		y, m, d := rq.now.In(loc).AddDate(0, 0, 1).Date()
		f, t := time.Date(y, m, d, 9, 0, 0, 0, loc), time.Date(y, m, d, 11, 0, 0, 0, loc)
		from, to = &f, &t
	}
	panel.From, panel.To = from.In(loc).Format(localLayout), to.In(loc).Format(localLayout)
	if p.SiteID != "" {
		if panel.Suggestions, err = c.cfg.Dispatch.SuggestForTicket(rq.ctx(), actor, p.ID, from, to, rq.now); err != nil {
			return err
		}
		if site, err := c.cfg.Assets.Site(rq.ctx(), assets.Scope{}, p.SiteID); err == nil {
			panel.SiteCity = site.City
		}
	}
	purpose := "corrective"
	if p.Source == maintenance.SourcePreventive {
		purpose = "preventive"
	}
	if panel.Checklist, err = c.cfg.Dispatch.ChecklistPreview(rq.ctx(), actor, p.DeviceIDs, purpose); err != nil {
		return err
	}
	parts, err := c.cfg.Dispatch.Parts(rq.ctx(), actor, "")
	if err != nil {
		return err
	}
	stock, err := c.cfg.Dispatch.Stock(rq.ctx(), actor, 0)
	if err != nil {
		return err
	}
	for _, l := range stock {
		if !slices.Contains(panel.Warehouses, l.WarehouseID) {
			panel.Warehouses = append(panel.Warehouses, l.WarehouseID)
		}
	}
	for _, pt := range parts {
		ch := partChoice{Part: pt}
		for _, l := range stock {
			if l.PartID == pt.ID {
				ch.Stock = append(ch.Stock, l)
			}
		}
		panel.Parts = append(panel.Parts, ch)
	}
	for _, r := range p.Parts {
		panel.PartMoves[r.ID] = partNextStates[r.State]
	}
	if panel.Cases, err = c.cfg.Dispatch.Cases(rq.ctx(), actor, p.ID); err != nil {
		return err
	}
	for _, cs := range panel.Cases {
		panel.CaseMoves[cs.ID] = caseNextStates[cs.State]
	}
	waits, err := c.cfg.Dispatch.OpenWaits(rq.ctx(), actor)
	if err != nil {
		return err
	}
	for _, tw := range waits {
		if tw.TicketID != p.ID {
			continue
		}
		for _, w := range tw.Waits {
			if w.Source == dispatch.SourceManual {
				panel.Waits = append(panel.Waits, w)
			}
		}
	}
	for _, id := range p.DeviceIDs {
		if d, err := c.cfg.Assets.Device(rq.ctx(), assets.Scope{}, id); err == nil && d.Manufacturer != "" &&
			!slices.Contains(panel.Manufacturers, d.Manufacturer) {
			panel.Manufacturers = append(panel.Manufacturers, d.Manufacturer)
		}
	}
	p.Dispatch = panel
	return nil
}

// ticketOf resolves the {ref} of a dispatch action to the ticket.
func (c *Console) ticketOf(rq *request) (maintenance.Detail, string, error) {
	ref := rq.r.PathValue("ref")
	d, err := c.cfg.Tickets.Get(rq.ctx(), maintenance.Scope{}, ref, rq.now)
	return d, "/console/noc/tickets/" + urlPathEscape(ref) + "#dispatch", err
}

// backToTicket is the ticket page an action on a visit, part, case or
// wait returns to: the form says which.
func backToTicket(rq *request) string {
	return "/console/noc/tickets/" + urlPathEscape(rq.r.PostFormValue("ticket")) + "#dispatch"
}

// pathID reads the {id} path value: a positive id, or not found.
func pathID(rq *request) (int64, error) {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// pathVisit reads the visit the {id} path value names, as the caller may
// see it.
func (c *Console) pathVisit(rq *request) (int64, dispatch.Visit, error) {
	id, err := pathID(rq)
	if err != nil {
		return 0, dispatch.Visit{}, err
	}
	v, err := c.cfg.Dispatch.Visit(rq.ctx(), rq.actor(), id)
	return id, v, err
}

// proposeVisit proposes a visit: the engineers ticked (the lead first),
// the window, the dispatcher's extra checklist items and notes. The visit
// is confirmed (scheduled) afterwards, once the travel it implies is seen.
func (c *Console) proposeVisit(rq *request) error {
	d, back, err := c.ticketOf(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	lead := f.Get("lead")
	engineers := []string{}
	if lead != "" {
		engineers = append(engineers, lead)
	}
	for _, e := range f["engineer"] {
		if e != lead && !slices.Contains(engineers, e) {
			engineers = append(engineers, e)
		}
	}
	from, to, err := parseWindow(f.Get("from"), f.Get("to"), c.siteZone(rq, d.CustomerID))
	if err != nil {
		return c.afterAction(rq, back, err, "")
	}
	var extra []string
	for _, line := range strings.Split(f.Get("checklist"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			extra = append(extra, line)
		}
	}
	v, err := c.cfg.Dispatch.CreateVisit(rq.ctx(), rq.actor(), dispatch.VisitInput{TicketID: d.ID, Engineers: engineers,
		WindowStart: from, WindowEnd: to, Notes: f.Get("notes"), Checklist: extra}, rq.now)
	msg := ""
	if err == nil {
		msg = translate(rq.lang, "disp.proposed", v.ID)
	}
	return c.afterAction(rq, back, err, msg)
}

// scheduleVisit confirms a proposed visit's window or moves a scheduled
// one (a new invitation, a higher SEQUENCE).
func (c *Console) scheduleVisit(rq *request) error {
	id, v, err := c.pathVisit(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	from, to, err := parseWindow(f.Get("from"), f.Get("to"), c.siteZone(rq, v.CustomerID))
	back := "/console/noc/tickets/" + urlPathEscape(v.TicketNumber) + "#dispatch"
	if err != nil {
		return c.afterAction(rq, back, err, "")
	}
	_, err = c.cfg.Dispatch.Transition(rq.ctx(), rq.actor(), id, dispatch.TransitionInput{To: dispatch.VisitScheduled,
		WindowStart: from, WindowEnd: to, Note: f.Get("note"), WithoutQuote: f.Get("without_quote") == "on"}, rq.now)
	return c.afterAction(rq, back, err, translate(rq.lang, "disp.scheduled", id))
}

func (c *Console) cancelVisit(rq *request) error {
	id, err := pathID(rq)
	if err != nil {
		return err
	}
	res, err := c.cfg.Dispatch.Transition(rq.ctx(), rq.actor(), id, dispatch.TransitionInput{To: dispatch.VisitCancelled,
		Note: rq.r.PostFormValue("note")}, rq.now)
	back := backToTicket(rq)
	if err == nil {
		back = "/console/noc/tickets/" + urlPathEscape(res.Visit.TicketNumber) + "#dispatch"
	}
	return c.afterAction(rq, back, err, translate(rq.lang, "act.done"))
}

// requestPart requests a part and sources it at once: from a warehouse's
// stock (approved, then received there) or by an order or import (approved,
// then ordered with the supplier's reference and ETA). Each step is the
// API's own call; a step refused leaves the request where it got, shown on
// the page.
func (c *Console) requestPart(rq *request) error {
	d, back, err := c.ticketOf(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	partID, err1 := strconv.ParseInt(f.Get("part"), 10, 64)
	qty, err2 := strconv.Atoi(strings.TrimSpace(f.Get("quantity")))
	if err1 != nil || err2 != nil {
		return c.afterAction(rq, back, fmt.Errorf("%w: choose a part and a quantity", dispatch.ErrInvalid), "")
	}
	actor := rq.actor()
	r, err := c.cfg.Dispatch.RequestPart(rq.ctx(), actor, dispatch.PartRequestInput{TicketID: d.ID, PartID: partID, Quantity: qty,
		Note: f.Get("note")}, rq.now)
	if err != nil {
		return c.afterAction(rq, back, err, "")
	}
	source := f.Get("source")
	steps := []dispatch.PartMoveInput{}
	switch {
	case source == "":
	case strings.HasPrefix(source, "stock:"):
		steps = append(steps, dispatch.PartMoveInput{To: dispatch.PartApproved},
			dispatch.PartMoveInput{To: dispatch.PartReceived, WarehouseID: strings.TrimPrefix(source, "stock:")})
	case source == "order" || source == "import":
		steps = append(steps, dispatch.PartMoveInput{To: dispatch.PartApproved},
			dispatch.PartMoveInput{To: dispatch.PartOrdered, SupplierRef: f.Get("supplier_ref"), ETA: f.Get("eta")})
	default:
		return c.afterAction(rq, back, fmt.Errorf("%w: unknown source %q", dispatch.ErrInvalid, source), "")
	}
	for _, st := range steps {
		if _, err := c.cfg.Dispatch.MovePart(rq.ctx(), actor, r.ID, st, rq.now); err != nil {
			return c.afterAction(rq, back, err, "")
		}
	}
	return c.afterAction(rq, back, nil, translate(rq.lang, "disp.partrequested", r.ID))
}

func (c *Console) movePartRequest(rq *request) error {
	id, err := pathID(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	_, err = c.cfg.Dispatch.MovePart(rq.ctx(), rq.actor(), id, dispatch.PartMoveInput{To: f.Get("to"), ETA: f.Get("eta"),
		SupplierRef: f.Get("supplier_ref"), WarehouseID: f.Get("warehouse"), Note: f.Get("note")}, rq.now)
	return c.afterAction(rq, backToTicket(rq), err, translate(rq.lang, "act.done"))
}

func (c *Console) openCase(rq *request) error {
	d, back, err := c.ticketOf(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	_, err = c.cfg.Dispatch.OpenCase(rq.ctx(), rq.actor(), dispatch.CaseInput{TicketID: d.ID, Manufacturer: f.Get("manufacturer"),
		CaseNumber: f.Get("case_number"), Summary: f.Get("summary")}, rq.now)
	return c.afterAction(rq, back, err, translate(rq.lang, "act.done"))
}

func (c *Console) moveCase(rq *request) error {
	id, err := pathID(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	_, err = c.cfg.Dispatch.MoveCase(rq.ctx(), rq.actor(), id, dispatch.CaseMoveInput{To: f.Get("to"), Answer: f.Get("answer"),
		Note: f.Get("note")}, rq.now)
	return c.afterAction(rq, backToTicket(rq), err, translate(rq.lang, "act.done"))
}

func (c *Console) startWait(rq *request) error {
	d, back, err := c.ticketOf(rq)
	if err != nil {
		return err
	}
	_, err = c.cfg.Dispatch.StartWait(rq.ctx(), rq.actor(), dispatch.WaitInput{TicketID: d.ID, Reason: rq.r.PostFormValue("reason"),
		Note: rq.r.PostFormValue("note")}, rq.now)
	return c.afterAction(rq, back, err, translate(rq.lang, "act.done"))
}

func (c *Console) endWait(rq *request) error {
	id, err := pathID(rq)
	if err != nil {
		return err
	}
	_, err = c.cfg.Dispatch.EndWait(rq.ctx(), rq.actor(), id, rq.r.PostFormValue("note"), rq.now)
	return c.afterAction(rq, backToTicket(rq), err, translate(rq.lang, "act.done"))
}

// boardRow is one engineer's line of the board: their visits by day, or
// by hour for the day view.
type boardRow struct {
	Engineer string
	Name     string
	Cells    []boardCell
}

// boardCell is a stretch of the timeline: empty, or a visit spanning Span
// columns (a table's colspan: no inline style is allowed by the CSP).
type boardCell struct {
	Span   int
	Visits []dispatch.Visit
}

// dispatchBoard shows the visits of the day (by hour) or the week (by
// day) per engineer, tickets needing a visit, parts on their way, and
// manufacturer cases waiting longer than days.
func (c *Console) dispatchBoard(rq *request) error {
	q := rq.r.URL.Query()
	view := q.Get("view")
	if view != "week" {
		view = "day"
	}
	day, err := time.ParseInLocation(time.DateOnly, q.Get("date"), rq.loc)
	if err != nil {
		y, m, d := rq.now.In(rq.loc).Date()
		day = time.Date(y, m, d, 0, 0, 0, 0, rq.loc)
	}
	days, _ := strconv.Atoi(q.Get("days"))
	if days <= 0 || days > 365 {
		days = 7
	}
	from, to := day, day.AddDate(0, 0, 1)
	if view == "week" {
		from = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // Monday
		to = from.AddDate(0, 0, 7)
	}
	b, err := c.cfg.Dispatch.DispatchBoard(rq.ctx(), rq.actor(), from, to, time.Duration(days)*24*time.Hour, rq.now)
	if err != nil {
		return err
	}
	// Columns: hours of the day, or days of the week.
	var cols []time.Time
	if view == "week" {
		for i := range 7 {
			cols = append(cols, from.AddDate(0, 0, i))
		}
	} else {
		for h := range 24 {
			cols = append(cols, from.Add(time.Duration(h)*time.Hour))
		}
	}
	colOf := func(t time.Time) int {
		for i := len(cols) - 1; i >= 0; i-- {
			if !t.Before(cols[i]) {
				return i
			}
		}
		return 0
	}
	byEngineer := map[string]*boardRow{}
	var order []string
	visitsOf := map[string][]dispatch.Visit{}
	for _, v := range b.Visits {
		for _, e := range v.Engineers {
			if _, ok := byEngineer[e.ID]; !ok {
				byEngineer[e.ID] = &boardRow{Engineer: e.ID, Name: e.Name}
				order = append(order, e.ID)
			}
			visitsOf[e.ID] = append(visitsOf[e.ID], v)
		}
	}
	slices.Sort(order)
	var rows []boardRow
	for _, id := range order {
		row := byEngineer[id]
		col := 0
		for _, v := range visitsOf[id] {
			start, end := colOf(v.WindowStart.In(rq.loc)), colOf(v.WindowEnd.Add(-time.Minute).In(rq.loc))
			if v.WindowStart.Before(from) {
				start = 0
			}
			if start < col { // the same stretch as the previous visit
				last := &row.Cells[len(row.Cells)-1]
				last.Visits = append(last.Visits, v)
				if extra := end + 1 - col; extra > 0 {
					last.Span += extra
					col += extra
				}
				continue
			}
			if start > col {
				row.Cells = append(row.Cells, boardCell{Span: start - col})
			}
			row.Cells = append(row.Cells, boardCell{Span: end - start + 1, Visits: []dispatch.Visit{v}})
			col = end + 1
		}
		if col < len(cols) {
			row.Cells = append(row.Cells, boardCell{Span: len(cols) - col})
		}
		rows = append(rows, *row)
	}
	// Overdue preventive work orders of every customer: visits the
	// dispatcher still has to plan.
	var overdue []biomed.WorkOrder
	if c.cfg.Biomedical != nil {
		if overdue, err = c.cfg.Biomedical.WorkOrders(rq.ctx(), auth.ActorOf(rq.principal()), biomed.WorkOrderFilter{Overdue: true}, rq.now); err != nil {
			return err
		}
	}
	c.render(rq, http.StatusOK, "dispatch_board", translate(rq.lang, "disp.board"), map[string]any{
		"View": view, "Date": day.Format(time.DateOnly), "Prev": day.AddDate(0, 0, map[string]int{"day": -1, "week": -7}[view]).Format(time.DateOnly),
		"Next": day.AddDate(0, 0, map[string]int{"day": 1, "week": 7}[view]).Format(time.DateOnly), "Days": days,
		"Cols": cols, "Rows": rows, "Board": b,
		"Biomedical": c.cfg.Biomedical != nil, "Overdue": overdue, "Staff": true, "TicketPath": "/console/noc/tickets/",
	})
	return nil
}

// visitPhotos stores photos taken on a visit with the ticket's
// attachments: the same checks and limits (PNG or JPEG by content, size,
// count) as the portal's screenshots.
func (c *Console) visitPhotos(rq *request) error {
	id, v, err := c.pathVisit(rq)
	if err != nil {
		return err
	}
	back := fmt.Sprintf("/console/engineer/visits/%d", id)
	if rq.r.MultipartForm == nil {
		return c.afterAction(rq, back, fmt.Errorf("%w: %s", errBadUpload, translate(rq.lang, "visit.nophoto")), "")
	}
	files, err := readUploads(rq.lang, rq.r.MultipartForm.File["photos"])
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("%w: %s", errBadUpload, translate(rq.lang, "visit.nophoto"))
	}
	if err == nil {
		err = c.storeAttachments(rq, v.TicketID, &v.ID, files)
	}
	return c.afterAction(rq, back, err, translate(rq.lang, "visit.photosaved", len(files)))
}

func init() {
	funcs["derefBool"] = func(b *bool) bool { return b != nil && *b }
}

// Local writes an instant as a datetime-local value in zone.
func (v view) Local(t *time.Time, zone string) string {
	if t == nil {
		return ""
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		loc = v.loc
	}
	return t.In(loc).Format(localLayout)
}

// Hour writes the wall-clock time of an instant in the reader's zone.
func (v view) Hour(t any) string {
	switch x := t.(type) {
	case time.Time:
		return x.In(v.loc).Format("15:04")
	case *time.Time:
		if x != nil {
			return x.In(v.loc).Format("15:04")
		}
	}
	return "—"
}

// Day writes a day of the board's week.
func (v view) Day(t time.Time) string { return t.In(v.loc).Format("2006-01-02") }
