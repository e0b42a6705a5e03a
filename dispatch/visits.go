package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Visit states: proposed → scheduled → en_route → on_site → done, or
// equipment_unavailable / cancelled.
const (
	VisitProposed             = "proposed"
	VisitScheduled            = "scheduled"
	VisitEnRoute              = "en_route"
	VisitOnSite               = "on_site"
	VisitDone                 = "done"
	VisitEquipmentUnavailable = "equipment_unavailable"
	VisitCancelled            = "cancelled"
)

// visitMoves lists, for each target state, the states it may come from.
// done is reached only through the outcome (it needs the signature).
var visitMoves = map[string][]string{
	VisitScheduled:            {VisitProposed, VisitScheduled}, // scheduled again: a new agreed window
	VisitEnRoute:              {VisitScheduled},
	VisitOnSite:               {VisitScheduled, VisitEnRoute},
	VisitEquipmentUnavailable: {VisitScheduled, VisitEnRoute, VisitOnSite},
	VisitCancelled:            {VisitProposed, VisitScheduled, VisitEnRoute},
}

// holds says whether a visit in state books its engineers' time.
func holds(state string) bool {
	return state == VisitScheduled || state == VisitEnRoute || state == VisitOnSite
}

// Visit is an on-site visit for a ticket.
type Visit struct {
	ID                int64           `json:"id"`
	TicketID          int64           `json:"ticket_id"`
	TicketNumber      string          `json:"ticket"`
	CustomerID        string          `json:"customer_id"`
	SiteID            string          `json:"site_id"`
	DeviceIDs         []string        `json:"device_ids"`
	Purpose           string          `json:"purpose"`
	State             string          `json:"state"`
	WindowStart       *time.Time      `json:"window_start,omitempty"`
	WindowEnd         *time.Time      `json:"window_end,omitempty"`
	Engineers         []VisitEngineer `json:"engineers"`
	ChecklistTemplate string          `json:"checklist_template"`
	Checklist         []ChecklistItem `json:"checklist"`
	// Travel is set when the site is outside the lead engineer's home city:
	// the customer pays the trip (seed 004).
	Travel           bool       `json:"travel"`
	TravelFrom       string     `json:"travel_from,omitempty"`
	TravelPriceCents int64      `json:"travel_price_cents"`
	Notes            string     `json:"notes,omitempty"`
	RescheduledFrom  *int64     `json:"rescheduled_from,omitempty"`
	WithoutQuote     bool       `json:"without_quote,omitempty"`
	EnRouteAt        *time.Time `json:"en_route_at,omitempty"`
	ArrivedAt        *time.Time `json:"arrived_at,omitempty"`
	LeftAt           *time.Time `json:"left_at,omitempty"`
	TimeOnSite       string     `json:"time_on_site,omitempty"`
	TimeOnSiteMin    *int       `json:"time_on_site_minutes,omitempty"`
	WorkPerformed    string     `json:"work_performed,omitempty"`
	PartsUsed        []PartUsed `json:"parts_used"`
	Signature        *Signature `json:"signature,omitempty"`
	CreatedBy        string     `json:"created_by"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	// Parts are the ticket's part requests (what to carry); shown on the
	// detail only.
	Parts []PartRequest `json:"parts,omitempty"`
}

// VisitEngineer is an engineer sent on a visit.
type VisitEngineer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Lead bool   `json:"lead"`
	// HourlyCostCents is internal: NOC staff only.
	HourlyCostCents *int64 `json:"hourly_cost_cents,omitempty"`
}

// PartUsed is a part the engineer used on site.
type PartUsed struct {
	Manufacturer  string `json:"manufacturer,omitempty" max:"200"`
	PartNumber    string `json:"part_number" max:"200"`
	Quantity      int    `json:"quantity" max:"100000"`
	PartRequestID int64  `json:"part_request,omitempty"` // installs that request
	// Warehouse is the stock the part was taken from (the engineer's van):
	// the outcome withdraws it there.
	Warehouse string `json:"warehouse,omitempty"`
}

// Signature is the customer's sign-off captured by the engineer.
type Signature struct {
	Name     string    `json:"name"`
	SignedAt time.Time `json:"signed_at"`
	Kind     string    `json:"kind"` // drawn | typed
	// Value is the typed name or the drawing as a PNG data URL.
	Value string `json:"value"`
}

const visitColumns = `v.id, v.ticket_id, v.customer_id, v.site_id, v.device_ids, v.purpose, v.state, v.window_start,
	v.window_end, v.checklist_template, v.checklist, v.travel, v.travel_from, v.travel_price_cents, v.notes, v.rescheduled_from,
	v.without_quote, v.en_route_at, v.arrived_at, v.left_at, v.work_performed, v.parts_used, v.signer_name, v.signed_at,
	v.signature_kind, v.signature, v.created_by, v.created_at, v.updated_at`

func scanVisit(r interface{ Scan(...any) error }) (Visit, error) {
	var v Visit
	var devices pq.StringArray
	var checklist, parts []byte
	var signer, sigKind, sig sql.NullString
	var signedAt *time.Time
	if err := r.Scan(&v.ID, &v.TicketID, &v.CustomerID, &v.SiteID, &devices, &v.Purpose, &v.State, &v.WindowStart,
		&v.WindowEnd, &v.ChecklistTemplate, &checklist, &v.Travel, &v.TravelFrom, &v.TravelPriceCents, &v.Notes, &v.RescheduledFrom,
		&v.WithoutQuote, &v.EnRouteAt, &v.ArrivedAt, &v.LeftAt, &v.WorkPerformed, &parts, &signer, &signedAt, &sigKind, &sig,
		&v.CreatedBy, &v.CreatedAt, &v.UpdatedAt); err != nil {
		return v, err
	}
	v.DeviceIDs = nonNil(devices)
	if err := json.Unmarshal(checklist, &v.Checklist); err != nil {
		return v, fmt.Errorf("checklist of visit %d: %w", v.ID, err)
	}
	if err := json.Unmarshal(parts, &v.PartsUsed); err != nil {
		return v, fmt.Errorf("parts of visit %d: %w", v.ID, err)
	}
	v.Checklist, v.PartsUsed = nonNil(v.Checklist), nonNil(v.PartsUsed)
	if signedAt != nil {
		v.Signature = &Signature{Name: signer.String, SignedAt: *signedAt, Kind: sigKind.String, Value: sig.String}
	}
	if v.ArrivedAt != nil && v.LeftAt != nil {
		d := v.LeftAt.Sub(*v.ArrivedAt).Round(time.Minute)
		m := int(d / time.Minute)
		v.TimeOnSite, v.TimeOnSiteMin = d.String(), &m
	}
	return v, nil
}

// visitScope is the WHERE clause confining visits to what a may see:
// customers their customer's, engineers the visits they are sent on.
func visitScope(a auth.Actor, args []any) (string, []any) {
	switch {
	case a.IsCustomer():
		return " AND v.customer_id = $" + fmt.Sprint(len(args)+1), append(args, a.CustomerID)
	case a.IsEngineer():
		return " AND EXISTS (SELECT 1 FROM visit_engineers ve WHERE ve.visit_id = v.id AND ve.engineer_id = $" +
			fmt.Sprint(len(args)+1) + ")", append(args, a.EngineerID)
	}
	return "", args
}

type queryer interface {
	sqlx.QueryerContext
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) loadVisit(ctx context.Context, q queryer, a auth.Actor, id int64, lock bool) (Visit, error) {
	where, args := visitScope(a, []any{id})
	query := `SELECT ` + visitColumns + ` FROM visits v WHERE v.id = $1` + where
	if lock {
		query += ` FOR UPDATE OF v`
	}
	v, err := scanVisit(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound.Errorf("visit %d", id)
	}
	if err != nil {
		return v, fmt.Errorf("visit %d: %w", id, err)
	}
	one := []Visit{v}
	if err := numberVisits(ctx, q, one); err != nil {
		return v, err
	}
	v = one[0]
	if v.Engineers, err = visitEngineers(ctx, q, a, id); err != nil {
		return v, err
	}
	return v, nil
}

// listVisits runs query (SELECT visitColumns FROM visits v …) and
// completes the visits with their tickets' numbers and their engineers as
// a sees them (nil for none).
func (s *Store) listVisits(ctx context.Context, a auth.Actor, query string, args ...any) ([]Visit, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []Visit
	for rows.Next() {
		v, err := scanVisit(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := numberVisits(ctx, s.db, out); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Engineers, err = visitEngineers(ctx, s.db, a, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// numberVisits sets the ticket number of each of vs, read from the ticket
// core through q in one query.
func numberVisits(ctx context.Context, q sqlx.QueryerContext, vs []Visit) error {
	ids := make([]int64, len(vs))
	for i, v := range vs {
		ids[i] = v.TicketID
	}
	numbers, err := maintenance.TicketNumbers(ctx, q, ids)
	if err != nil {
		return err
	}
	for i := range vs {
		vs[i].TicketNumber = numbers[vs[i].TicketID]
	}
	return nil
}

func visitEngineers(ctx context.Context, q queryer, a auth.Actor, visitID int64) ([]VisitEngineer, error) {
	rows, err := q.QueryContext(ctx, `SELECT e.id, e.name, ve.lead, e.hourly_cost_cents FROM visit_engineers ve
		JOIN engineers e ON e.id = ve.engineer_id WHERE ve.visit_id = $1 ORDER BY ve.lead DESC, e.id`, visitID)
	if err != nil {
		return nil, fmt.Errorf("engineers of visit %d: %w", visitID, err)
	}
	defer rows.Close()
	out := []VisitEngineer{}
	for rows.Next() {
		var e VisitEngineer
		var cost int64
		if err := rows.Scan(&e.ID, &e.Name, &e.Lead, &cost); err != nil {
			return nil, fmt.Errorf("engineers of visit %d: %w", visitID, err)
		}
		if a.IsNOC() {
			e.HourlyCostCents = &cost
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Visit returns a visit in a's scope with the ticket's part requests.
func (s *Store) Visit(ctx context.Context, a auth.Actor, id int64) (Visit, error) {
	v, err := s.loadVisit(ctx, s.db, a, id, false)
	if err != nil {
		return v, fmt.Errorf("dispatch: %w", err)
	}
	if v.Parts, err = s.partRequests(ctx, s.db, a, v.TicketID); err != nil {
		return v, fmt.Errorf("dispatch: %w", err)
	}
	return v, nil
}

// VisitFilter narrows a visit listing.
type VisitFilter struct {
	State      string
	TicketID   int64
	EngineerID string
}

// Visits lists visits in a's scope, newest first.
func (s *Store) Visits(ctx context.Context, a auth.Actor, f VisitFilter) ([]Visit, error) {
	if a.IsEngineer() && a.EngineerID == "" {
		return []Visit{}, nil // a token not bound to an engineer is sent on nothing
	}
	args := []any{f.State, f.TicketID, f.EngineerID}
	where, args := visitScope(a, args)
	out, err := s.listVisits(ctx, a, `SELECT `+visitColumns+` FROM visits v
		WHERE ($1 = '' OR v.state = $1) AND ($2::bigint = 0 OR v.ticket_id = $2::bigint)
		AND ($3 = '' OR EXISTS (SELECT 1 FROM visit_engineers x WHERE x.visit_id = v.id AND x.engineer_id = $3))`+where+`
		ORDER BY v.id DESC LIMIT 500`, args...)
	if err != nil {
		return nil, fmt.Errorf("dispatch: list visits: %w", err)
	}
	return nonNil(out), nil
}

// VisitInput creates a visit for a ticket (a preventive work order is a
// ticket opened with source "preventive").
type VisitInput struct {
	TicketID         int64      `json:"ticket"`
	Engineers        []string   `json:"engineers" max:"100"` // the first leads
	WindowStart      *time.Time `json:"window_start"`
	WindowEnd        *time.Time `json:"window_end"`
	SiteID           string     `json:"site" max:"100"`    // default: the ticket's
	DeviceIDs        []string   `json:"devices" max:"100"` // default: the ticket's
	TravelPriceCents int64      `json:"travel_price_cents" max:"10000000000000"`
	Notes            string     `json:"notes"`
	// Checklist adds items of the dispatcher's own to the checklist of the
	// devices' kind.
	Checklist []string `json:"checklist"`
}

// CreateVisit proposes a visit (NOC only).
func (s *Store) CreateVisit(ctx context.Context, a auth.Actor, in VisitInput, now time.Time) (Visit, error) {
	if !a.IsNOC() {
		return Visit{}, ErrForbidden.Errorf("only the NOC dispatches visits")
	}
	if err := checkWindow(in.WindowStart, in.WindowEnd); err != nil {
		return Visit{}, err
	}
	if len(in.Engineers) == 0 || len(in.Engineers) > 10 {
		return Visit{}, invalid("engineers: one to ten engineer ids, the first leads")
	}
	if in.TravelPriceCents < 0 {
		return Visit{}, invalid("travel_price_cents cannot be negative")
	}
	var id int64
	err := s.inTx(ctx, "create visit", func(tx *sqlx.Tx) error {
		t, err := s.lockOpenTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		id, err = s.insertVisit(ctx, tx, a, t, in, nil, now)
		return err
	})
	if err != nil {
		return Visit{}, err
	}
	return s.Visit(ctx, a, id)
}

func checkWindow(from, to *time.Time) error {
	if (from == nil) != (to == nil) {
		return invalid("window_start and window_end go together")
	}
	if from != nil && !to.After(*from) {
		return invalid("window_end must be after window_start")
	}
	return nil
}

// insertVisit writes a proposed visit for ticket t; from is the visit it
// reschedules, if any.
func (s *Store) insertVisit(ctx context.Context, tx *sqlx.Tx, a auth.Actor, t ticketRef, in VisitInput, from *int64, now time.Time) (int64, error) {
	site := in.SiteID
	if site == "" {
		site = t.SiteID
	}
	if site == "" {
		return 0, invalid("the ticket names no site: give one")
	}
	st, err := s.inv.InTx(tx).Site(ctx, assets.Scope{CustomerID: t.CustomerID}, site)
	if err != nil {
		return 0, invalid("unknown site %q", site)
	}
	deviceIDs := in.DeviceIDs
	if len(deviceIDs) == 0 {
		deviceIDs = t.DeviceIDs
	}
	var devices []assets.Device
	for _, id := range deviceIDs {
		d, err := s.inv.InTx(tx).Device(ctx, assets.Scope{CustomerID: t.CustomerID}, id)
		if err != nil {
			return 0, invalid("unknown device %q", id)
		}
		devices = append(devices, d)
	}
	purpose := "corrective"
	if t.Source == maintenance.SourcePreventive {
		purpose = "preventive"
	}
	tmpl, items := checklistFor(devices, purpose)
	if len(in.Checklist) > 50 {
		return 0, invalid("checklist: at most 50 extra items")
	}
	for _, text := range in.Checklist {
		if text = strings.TrimSpace(text); text != "" {
			if len(text) > 500 {
				return 0, invalid("checklist: an item has at most 500 characters")
			}
			items = append(items, ChecklistItem{ID: len(items) + 1, Text: text})
		}
	}
	checklist, err := json.Marshal(items)
	if err != nil {
		return 0, fmt.Errorf("checklist: %w", err)
	}
	var lead Engineer
	seen := map[string]bool{}
	for i, eid := range in.Engineers {
		if seen[eid] {
			return 0, invalid("engineer %q listed twice", eid)
		}
		seen[eid] = true
		e, err := lockEngineer(ctx, tx, eid)
		if err != nil {
			return 0, err
		}
		if !e.Active {
			return 0, invalid("engineer %q is inactive", eid)
		}
		if i == 0 {
			lead = e
		}
	}
	travel := st.City != "" && !sameCity(st.City, lead.HomeCity)
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO visits (ticket_id, customer_id, site_id, device_ids, purpose, state, window_start,
		window_end, checklist_template, checklist, travel, travel_from, travel_price_cents, notes, rescheduled_from, created_by,
		created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'proposed', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id`,
		t.ID, t.CustomerID, site, strs(deviceIDs), purpose, in.WindowStart, in.WindowEnd, tmpl, checklist, travel, lead.HomeCity,
		in.TravelPriceCents, in.Notes, from, a.String(), now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert visit: %w", err)
	}
	for i, eid := range in.Engineers {
		if _, err := tx.ExecContext(ctx, `INSERT INTO visit_engineers (visit_id, engineer_id, lead) VALUES ($1, $2, $3)`,
			id, eid, i == 0); err != nil {
			return 0, fmt.Errorf("visit engineers: %w", err)
		}
	}
	if err := visitEvent(ctx, tx, id, now, a.String(), "", VisitProposed, in.Notes); err != nil {
		return 0, err
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return 0, err
	}
	travelFrom := ""
	if travel {
		travelFrom = lead.HomeCity
	}
	text := notify.VisitProposedText(lang, id, purpose, in.Engineers, travelFrom)
	return id, maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "visit_proposed", text,
		map[string]any{"visit": id, "engineers": in.Engineers, "travel": travel})
}

func sameCity(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) }

func visitEvent(ctx context.Context, tx *sqlx.Tx, visitID int64, at time.Time, author, from, to, note string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO visit_events (visit_id, at, author, from_state, to_state, note) VALUES ($1, $2, $3, $4, $5, $6)`,
		visitID, at, author, from, to, note); err != nil {
		return fmt.Errorf("visit event: %w", err)
	}
	return nil
}

// TransitionInput moves a visit.
type TransitionInput struct {
	To          string     `json:"to" max:"200"`
	WindowStart *time.Time `json:"window_start"` // scheduled: the agreed window (default: the proposed one)
	WindowEnd   *time.Time `json:"window_end"`
	Note        string     `json:"note"`
	// WithoutQuote schedules billable per-event work that has no approved
	// quote; the work is then flagged in billing.
	WithoutQuote bool `json:"without_quote"`
}

// TransitionResult is the visit after a move and, for equipment
// unavailable, the ticket opened to reschedule and its proposed visit.
type TransitionResult struct {
	Visit            Visit  `json:"visit"`
	ClosedTicket     string `json:"closed_ticket,omitempty"`
	NewTicket        string `json:"new_ticket,omitempty"`
	NewTicketID      int64  `json:"new_ticket_id,omitempty"`
	RescheduledVisit int64  `json:"rescheduled_visit,omitempty"`
}

// Transition moves visit id to in.To at now. NOC staff schedule and
// cancel; the visit's engineers (and the NOC) report en route, on site and
// equipment unavailable.
func (s *Store) Transition(ctx context.Context, a auth.Actor, id int64, in TransitionInput, now time.Time) (TransitionResult, error) {
	from, ok := visitMoves[in.To]
	if !ok {
		return TransitionResult{}, invalid("to must be one of scheduled, en_route, on_site, equipment_unavailable, cancelled (done: record the outcome)")
	}
	if a.IsCustomer() {
		return TransitionResult{}, ErrForbidden.Errorf("customers follow visits, the provider moves them")
	}
	if (in.To == VisitScheduled || in.To == VisitCancelled) && !a.IsNOC() {
		return TransitionResult{}, ErrForbidden.Errorf("only the NOC schedules or cancels a visit")
	}
	if err := checkWindow(in.WindowStart, in.WindowEnd); err != nil {
		return TransitionResult{}, err
	}
	var res TransitionResult
	err := s.inTx(ctx, fmt.Sprintf("visit %d to %s", id, in.To), func(tx *sqlx.Tx) error {
		v, err := s.loadVisit(ctx, tx, a, id, true)
		if err != nil {
			return err
		}
		if !slices.Contains(from, v.State) {
			return conflict("a %s visit cannot move to %s", v.State, in.To)
		}
		t, err := s.lockTicket(ctx, tx, auth.Actor{Role: auth.RoleSystem}, v.TicketID)
		if err != nil {
			return err
		}
		who, was := a.String(), v.State // schedule moves v.State on
		switch in.To {
		case VisitScheduled:
			if err := s.schedule(ctx, tx, &v, t, in, now); err != nil {
				return err
			}
		case VisitEnRoute:
			if _, err := tx.ExecContext(ctx, `UPDATE visits SET state = 'en_route', en_route_at = $2, updated_at = $2 WHERE id = $1`, id, now); err != nil {
				return fmt.Errorf("en route: %w", err)
			}
		case VisitOnSite:
			if _, err := tx.ExecContext(ctx, `UPDATE visits SET state = 'on_site', arrived_at = $2, updated_at = $2 WHERE id = $1`, id, now); err != nil {
				return fmt.Errorf("on site: %w", err)
			}
		case VisitCancelled:
			if err := s.finishVisit(ctx, tx, id, VisitCancelled, now); err != nil {
				return err
			}
			// Engineers who were sent an invitation get its cancellation.
			if v.State == VisitScheduled || v.State == VisitEnRoute {
				if err := s.notifyCancelled(ctx, tx, v, in.Note, now); err != nil {
					return err
				}
			}
		case VisitEquipmentUnavailable:
			if err := s.equipmentUnavailable(ctx, tx, a, v, t, in.Note, now, &res); err != nil {
				return err
			}
		}
		if err := visitEvent(ctx, tx, id, now, who, was, in.To, in.Note); err != nil {
			return err
		}
		if in.To != VisitEquipmentUnavailable {
			lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
			if err != nil {
				return err
			}
			text := notify.VisitMovedText(lang, id, was, in.To, in.Note)
			if err := maintenance.AddEventTx(ctx, tx, t.ID, now, who, "visit_"+in.To, text, map[string]any{"visit": id}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Visit, err = s.Visit(ctx, a, id)
	return res, err
}

// schedule books the engineers on the agreed window after checking their
// availability and, for per-event work, the customer's approved quote.
func (s *Store) schedule(ctx context.Context, tx *sqlx.Tx, v *Visit, t ticketRef, in TransitionInput, now time.Time) error {
	start, end := v.WindowStart, v.WindowEnd
	if in.WindowStart != nil {
		start, end = in.WindowStart, in.WindowEnd
	}
	if start == nil {
		return invalid("scheduling needs the window agreed with the customer (window_start, window_end)")
	}
	mode, reason, err := s.billingMode(ctx, tx, t, *start)
	if err != nil {
		return err
	}
	if mode == modeBillable {
		ok, err := approvedQuote(ctx, tx, t.ID)
		if err != nil {
			return err
		}
		if !ok && !in.WithoutQuote {
			return ErrRefused.Errorf("ticket %s is billable (%s) and has no approved quote; approve one (seeds 001, 003) or schedule with without_quote to flag it",
				t.Number, reason)
		}
	}
	for _, ve := range v.Engineers {
		e, err := lockEngineer(ctx, tx, ve.ID)
		if err != nil {
			return err
		}
		av, err := s.availability(ctx, tx, e, *start, *end, v.ID)
		if err != nil {
			return err
		}
		if !av.Available {
			return conflict("engineer %s is not available %s–%s: %s", e.ID, start.Format(time.RFC3339), end.Format(time.RFC3339), av.Reason)
		}
	}
	// A visit scheduled again has a new agreed window: its invitation's
	// SEQUENCE goes up so calendars replace the earlier one (the CASE reads
	// the state before this update).
	var seq int
	if err := tx.QueryRowContext(ctx, `UPDATE visits SET state = 'scheduled', window_start = $2, window_end = $3, without_quote = without_quote OR $4,
		updated_at = $5, ical_sequence = ical_sequence + CASE WHEN state = 'proposed' THEN 0 ELSE 1 END WHERE id = $1
		RETURNING ical_sequence`, v.ID, start, end, in.WithoutQuote, now).Scan(&seq); err != nil {
		return fmt.Errorf("schedule: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE visit_engineers SET booked = tstzrange($2, $3) WHERE visit_id = $1`, v.ID, start, end); err != nil {
		return fmt.Errorf("book engineers: %w", err)
	}
	v.WindowStart, v.WindowEnd, v.State = start, end, VisitScheduled
	return s.notifyEngineers(ctx, tx, v, seq, now)
}

// finishVisit moves a visit to a final state and frees its engineers.
func (s *Store) finishVisit(ctx context.Context, tx *sqlx.Tx, id int64, state string, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE visits SET state = $2, left_at = CASE WHEN arrived_at IS NOT NULL THEN COALESCE(left_at, $3) END,
		updated_at = $3 WHERE id = $1`, id, state, now); err != nil {
		return fmt.Errorf("visit %s: %w", state, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE visit_engineers SET booked = NULL WHERE visit_id = $1`, id); err != nil {
		return fmt.Errorf("free engineers: %w", err)
	}
	return nil
}

// equipmentUnavailable applies seed 000 §8: the ticket closes with that
// reason, a new linked ticket is opened to reschedule, the open part
// requests and manufacturer cases (and their waits) move to it, a proposed
// visit with the same engineers is created on it, and the customer is told.
func (s *Store) equipmentUnavailable(ctx context.Context, tx *sqlx.Tx, a auth.Actor, v Visit, t ticketRef, note string, now time.Time, res *TransitionResult) error {
	if err := s.finishVisit(ctx, tx, v.ID, VisitEquipmentUnavailable, now); err != nil {
		return err
	}
	// The engineer travelled if they left for the site: the trip is billed.
	if v.Travel && (v.State == VisitEnRoute || v.State == VisitOnSite) {
		if err := s.travelLine(ctx, tx, v, t, now); err != nil {
			return err
		}
	}
	// Waits belong to the old ticket's clock; end them before it closes.
	open, err := openWaits(ctx, tx, t.ID)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE waits SET ended_at = $2, ended_by = $3 WHERE ticket_id = $1 AND ended_at IS NULL`,
		t.ID, now, system.String()); err != nil {
		return fmt.Errorf("end waits: %w", err)
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return err
	}
	text := notify.EquipmentUnavailableText(lang, v.ID, note)
	closed, next, err := s.tickets.RescheduleTx(ctx, tx, a, t.ID, text, now)
	if err != nil {
		return err
	}
	// What the old ticket was waiting for still holds the new one.
	if _, err := tx.ExecContext(ctx, `UPDATE part_requests SET ticket_id = $2, customer_id = $3
		WHERE ticket_id = $1 AND state NOT IN ('installed', 'cancelled')`, t.ID, next.ID, next.CustomerID); err != nil {
		return fmt.Errorf("move part requests: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE manufacturer_cases SET ticket_id = $2, customer_id = $3 WHERE ticket_id = $1 AND state <> 'closed'`,
		t.ID, next.ID, next.CustomerID); err != nil {
		return fmt.Errorf("move manufacturer cases: %w", err)
	}
	for _, w := range open {
		if _, err := tx.ExecContext(ctx, `INSERT INTO waits (ticket_id, customer_id, reason, source, source_id, note, started_at, started_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, next.ID, next.CustomerID, w.Reason, w.Source, w.SourceID, w.Note, now, system.String()); err != nil {
			return fmt.Errorf("carry wait: %w", err)
		}
	}
	if err := s.syncPause(ctx, tx, next.ID, notify.WaitCarriedText(lang, closed.Number), now); err != nil {
		return err
	}
	ids := make([]string, len(v.Engineers))
	for i, e := range v.Engineers {
		ids[i] = e.ID
	}
	nt := ticketRef{ID: next.ID, Number: next.Number, CustomerID: next.CustomerID, SiteID: next.SiteID, DeviceIDs: next.DeviceIDs,
		Status: next.Status, Source: next.Source}
	newVisit, err := s.insertVisit(ctx, tx, a, nt, VisitInput{Engineers: ids, SiteID: v.SiteID, DeviceIDs: v.DeviceIDs,
		TravelPriceCents: v.TravelPriceCents, Notes: notify.RescheduledVisitNote(lang, v.ID, closed.Number)}, &v.ID, now)
	if err != nil {
		return err
	}
	if err := s.notifyUnavailable(ctx, tx, v, closed, next, now); err != nil {
		return err
	}
	res.ClosedTicket, res.NewTicket, res.NewTicketID, res.RescheduledVisit = closed.Number, next.Number, next.ID, newVisit
	return nil
}

// OutcomeInput records what happened on site and closes the visit.
type OutcomeInput struct {
	WorkPerformed string           `json:"work_performed"`
	Activity      string           `json:"activity" max:"200"` // repair, preventive, update…: the per-event minimum applies by activity
	PartsUsed     []PartUsed       `json:"parts_used"`
	Checklist     []ChecklistCheck `json:"checklist"`
	Signature     SignatureInput   `json:"signature"`
}

// ChecklistCheck ticks one checklist item.
type ChecklistCheck struct {
	ID   int    `json:"id" max:"100000"`
	Done bool   `json:"done"`
	Note string `json:"note"`
}

// SignatureInput is the customer's sign-off: a typed name or a drawing.
type SignatureInput struct {
	Name  string `json:"name" max:"200"`
	Kind  string `json:"kind" max:"200"`    // drawn | typed
	Value string `json:"value" max:"90000"` // typed: the name as typed; drawn: data:image/png;base64,…
}

// Outcome records the visit's outcome with the customer's signature and
// moves it to done: the engineers' time on site becomes work entries
// (billed by the ticket's terms), travel becomes a billable line, and
// part requests named in parts_used are installed.
func (s *Store) Outcome(ctx context.Context, a auth.Actor, id int64, in OutcomeInput, now time.Time) (Visit, error) {
	if !a.IsProvider() {
		return Visit{}, ErrForbidden.Errorf("the engineer records the outcome")
	}
	in.WorkPerformed = strings.TrimSpace(in.WorkPerformed)
	if in.WorkPerformed == "" || len(in.WorkPerformed) > 20000 {
		return Visit{}, invalid("work_performed is required (at most 20000 characters)")
	}
	sig, err := checkSignature(in.Signature)
	if err != nil {
		return Visit{}, err
	}
	for _, p := range in.PartsUsed {
		if (strings.TrimSpace(p.PartNumber) == "" && p.PartRequestID == 0) || p.Quantity <= 0 {
			return Visit{}, invalid("parts_used: each part needs a part_number (or part_request) and a positive quantity")
		}
	}
	err = s.inTx(ctx, fmt.Sprintf("outcome of visit %d", id), func(tx *sqlx.Tx) error {
		v, err := s.loadVisit(ctx, tx, a, id, true)
		if err != nil {
			return err
		}
		if v.State != VisitOnSite {
			return conflict("the outcome is recorded on site; the visit is %s", v.State)
		}
		t, err := s.lockTicket(ctx, tx, auth.Actor{Role: auth.RoleSystem}, v.TicketID)
		if err != nil {
			return err
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		for _, c := range in.Checklist {
			i := slices.IndexFunc(v.Checklist, func(it ChecklistItem) bool { return it.ID == c.ID })
			if i < 0 {
				return invalid("checklist: no item %d", c.ID)
			}
			v.Checklist[i].Done, v.Checklist[i].Note = c.Done, c.Note
		}
		checklist, err := json.Marshal(v.Checklist)
		if err != nil {
			return err
		}
		parts, err := json.Marshal(nonNil(in.PartsUsed))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE visits SET work_performed = $2, parts_used = $3, checklist = $4, signer_name = $5,
			signed_at = $6, signature_kind = $7, signature = $8 WHERE id = $1`,
			id, in.WorkPerformed, parts, checklist, sig.Name, now, sig.Kind, sig.Value); err != nil {
			return fmt.Errorf("outcome: %w", err)
		}
		if err := s.finishVisit(ctx, tx, id, VisitDone, now); err != nil {
			return err
		}
		for _, p := range in.PartsUsed {
			if p.Warehouse != "" && p.PartRequestID == 0 {
				if err := withdraw(ctx, tx, p); err != nil {
					return err
				}
			}
			if p.PartRequestID == 0 {
				continue
			}
			if err := s.movePart(ctx, tx, a, p.PartRequestID, PartMoveInput{To: PartInstalled, Note: notify.VisitRef(lang, id)}, &t, now); err != nil {
				return err
			}
		}
		activity := in.Activity
		if activity == "" {
			activity = v.Purpose
		}
		for _, e := range v.Engineers {
			if _, err := s.recordWork(ctx, tx, a, t, WorkInput{TicketID: t.ID, VisitID: id, EngineerID: e.ID, Kind: "on_site",
				Activity: activity, StartedAt: *v.ArrivedAt, EndedAt: now, Note: notify.VisitRef(lang, id),
				WithoutQuote: true}, now); err != nil {
				return err
			}
		}
		if v.Travel {
			if err := s.travelLine(ctx, tx, v, t, now); err != nil {
				return err
			}
		}
		if err := visitEvent(ctx, tx, id, now, a.String(), VisitOnSite, VisitDone, ""); err != nil {
			return err
		}
		return maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "visit_done",
			notify.VisitDoneText(lang, id, in.WorkPerformed, sig.Name), map[string]any{"visit": id})
	})
	if err != nil {
		return Visit{}, err
	}
	return s.Visit(ctx, a, id)
}
