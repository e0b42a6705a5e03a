package dispatch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// Part request states.
const (
	PartRequested = "requested"
	PartQuoted    = "quoted"
	PartApproved  = "approved"
	PartOrdered   = "ordered"
	PartInTransit = "in_transit"
	PartInCustoms = "in_customs"
	PartReceived  = "received"
	PartInstalled = "installed"
	PartCancelled = "cancelled"
)

// partMoves lists, for each state, where a request may go next.
var partMoves = map[string][]string{
	PartRequested: {PartQuoted, PartApproved, PartCancelled}, // approved directly: covered by the contract, no customer quote
	PartQuoted:    {PartApproved, PartCancelled},
	PartApproved:  {PartOrdered, PartReceived, PartCancelled}, // received directly: taken from a warehouse's stock
	PartOrdered:   {PartInTransit, PartInCustoms, PartReceived, PartCancelled},
	PartInTransit: {PartInCustoms, PartReceived, PartCancelled},
	PartInCustoms: {PartInTransit, PartReceived, PartCancelled},
	PartReceived:  {PartInstalled},
}

// partWait is what a request in state holds its ticket for: sourcing the
// part, the customer's approval of its quote, or customs.
func partWait(state string) string {
	switch state {
	case PartRequested, PartApproved, PartOrdered, PartInTransit:
		return WaitSpareParts
	case PartQuoted:
		return WaitCustomer
	case PartInCustoms:
		return WaitImport
	}
	return ""
}

// Part is a catalogue entry.
type Part struct {
	ID             int64  `json:"id"`
	Manufacturer   string `json:"manufacturer"`
	PartNumber     string `json:"part_number"`
	Description    string `json:"description,omitempty"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	// UnitCostCents is internal: NOC staff only.
	UnitCostCents *int64 `json:"unit_cost_cents,omitempty"`
}

// PartInput creates or updates a catalogue entry by manufacturer and part number.
type PartInput struct {
	Manufacturer   string `json:"manufacturer" max:"200"`
	PartNumber     string `json:"part_number" max:"200"`
	Description    string `json:"description"`
	UnitPriceCents int64  `json:"unit_price_cents" max:"10000000000000"`
	UnitCostCents  int64  `json:"unit_cost_cents" max:"10000000000000"`
}

// PutPart upserts a catalogue entry (NOC only).
func (s *Store) PutPart(ctx context.Context, a auth.Actor, in PartInput, now time.Time) (Part, error) {
	if !a.IsNOC() {
		return Part{}, ErrForbidden.Errorf("only the NOC keeps the catalogue")
	}
	in.Manufacturer, in.PartNumber = strings.TrimSpace(in.Manufacturer), strings.TrimSpace(in.PartNumber)
	if in.Manufacturer == "" || in.PartNumber == "" {
		return Part{}, invalid("manufacturer and part_number are required")
	}
	if in.UnitPriceCents < 0 || in.UnitCostCents < 0 {
		return Part{}, invalid("prices and costs cannot be negative")
	}
	var p Part
	var cost int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO parts (manufacturer, part_number, description, unit_cost_cents, unit_price_cents, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (manufacturer, part_number) DO UPDATE SET description = $3, unit_cost_cents = $4,
		unit_price_cents = $5 RETURNING id, manufacturer, part_number, description, unit_price_cents, unit_cost_cents`,
		in.Manufacturer, in.PartNumber, in.Description, in.UnitCostCents, in.UnitPriceCents, now).
		Scan(&p.ID, &p.Manufacturer, &p.PartNumber, &p.Description, &p.UnitPriceCents, &cost)
	if err != nil {
		return p, fmt.Errorf("dispatch: put part %s %s: %w", in.Manufacturer, in.PartNumber, translate(err))
	}
	p.UnitCostCents = &cost
	return p, nil
}

// Parts lists the catalogue (staff only), optionally by manufacturer.
func (s *Store) Parts(ctx context.Context, a auth.Actor, manufacturer string) ([]Part, error) {
	if !a.IsProvider() {
		return nil, ErrForbidden.Errorf("the catalogue is the provider's")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, manufacturer, part_number, description, unit_price_cents, unit_cost_cents FROM parts
		WHERE ($1 = '' OR lower(manufacturer) = lower($1)) ORDER BY manufacturer, part_number`, manufacturer)
	if err != nil {
		return nil, fmt.Errorf("dispatch: parts: %w", err)
	}
	defer rows.Close()
	out := []Part{}
	for rows.Next() {
		var p Part
		var cost int64
		if err := rows.Scan(&p.ID, &p.Manufacturer, &p.PartNumber, &p.Description, &p.UnitPriceCents, &cost); err != nil {
			return nil, fmt.Errorf("dispatch: parts: %w", err)
		}
		if a.IsNOC() {
			p.UnitCostCents = &cost
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Warehouse holds spare parts.
type Warehouse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	City string `json:"city"`
}

// PutWarehouse creates or renames a warehouse (NOC only).
func (s *Store) PutWarehouse(ctx context.Context, a auth.Actor, w Warehouse) (Warehouse, error) {
	if !a.IsNOC() {
		return w, ErrForbidden.Errorf("only the NOC keeps warehouses")
	}
	if !idPattern.MatchString(w.ID) || strings.TrimSpace(w.Name) == "" {
		return w, invalid("a warehouse needs an id (lowercase letters, digits, '.', '_', '-') and a name")
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO warehouses (id, name, city) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET name = $2, city = $3`, w.ID, w.Name, w.City); err != nil {
		return w, fmt.Errorf("dispatch: put warehouse %s: %w", w.ID, translate(err))
	}
	return w, nil
}

// StockLevel is the quantity of a part in a warehouse.
type StockLevel struct {
	WarehouseID  string `json:"warehouse"`
	PartID       int64  `json:"part"`
	Manufacturer string `json:"manufacturer"`
	PartNumber   string `json:"part_number"`
	Quantity     int    `json:"quantity"`
}

// SetStock sets a part's quantity in a warehouse after a count (NOC only).
func (s *Store) SetStock(ctx context.Context, a auth.Actor, warehouse string, partID int64, quantity int) error {
	if !a.IsNOC() {
		return ErrForbidden.Errorf("only the NOC keeps stock")
	}
	if quantity < 0 {
		return invalid("quantity cannot be negative")
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO stock (warehouse_id, part_id, quantity) VALUES ($1, $2, $3)
		ON CONFLICT (warehouse_id, part_id) DO UPDATE SET quantity = $3`, warehouse, partID, quantity); err != nil {
		var e = translate(err)
		if strings.Contains(err.Error(), "foreign key") {
			e = invalid("unknown warehouse %q or part %d", warehouse, partID)
		}
		return fmt.Errorf("dispatch: stock of %d in %s: %w", partID, warehouse, e)
	}
	return nil
}

// Stock lists stock levels (staff only), optionally of one part.
func (s *Store) Stock(ctx context.Context, a auth.Actor, partID int64) ([]StockLevel, error) {
	if !a.IsProvider() {
		return nil, ErrForbidden.Errorf("stock is the provider's")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT s.warehouse_id, s.part_id, p.manufacturer, p.part_number, s.quantity
		FROM stock s JOIN parts p ON p.id = s.part_id WHERE ($1::bigint = 0 OR s.part_id = $1::bigint) ORDER BY s.warehouse_id, p.manufacturer, p.part_number`, partID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: stock: %w", err)
	}
	defer rows.Close()
	out := []StockLevel{}
	for rows.Next() {
		var l StockLevel
		if err := rows.Scan(&l.WarehouseID, &l.PartID, &l.Manufacturer, &l.PartNumber, &l.Quantity); err != nil {
			return nil, fmt.Errorf("dispatch: stock: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// PartRequest is a spare part requested for a ticket.
type PartRequest struct {
	ID              int64     `json:"id"`
	TicketID        int64     `json:"ticket_id"`
	VisitID         *int64    `json:"visit_id,omitempty"`
	PartID          int64     `json:"part_id"`
	Manufacturer    string    `json:"manufacturer"`
	PartNumber      string    `json:"part_number"`
	Description     string    `json:"description,omitempty"`
	Quantity        int       `json:"quantity"`
	State           string    `json:"state"`
	QuotePriceCents *int64    `json:"quote_price_cents,omitempty"` // unit price quoted to the customer
	UnitCostCents   *int64    `json:"unit_cost_cents,omitempty"`   // internal: NOC only
	WarehouseID     string    `json:"warehouse,omitempty"`
	SupplierRef     string    `json:"supplier_ref,omitempty"`
	Note            string    `json:"note,omitempty"`
	RequestedBy     string    `json:"requested_by"`
	RequestedAt     time.Time `json:"requested_at"`
	UpdatedAt       time.Time `json:"updated_at"`

	// ETA is the expected arrival (YYYY-MM-DD) of an ordered, shipped or
	// imported part: what the ticket is waiting until.
	ETA string `json:"eta,omitempty"`
}

const partRequestColumns = `r.id, r.ticket_id, r.visit_id, r.part_id, p.manufacturer, p.part_number, p.description, r.quantity, r.state,
	r.quote_price_cents, p.unit_cost_cents, COALESCE(r.warehouse_id, ''), r.supplier_ref, r.note, r.requested_by, r.requested_at, r.updated_at,
	COALESCE(to_char(r.eta, 'YYYY-MM-DD'), '')`

func scanPartRequest(row interface{ Scan(...any) error }, a auth.Actor) (PartRequest, error) {
	var r PartRequest
	var cost int64
	err := row.Scan(&r.ID, &r.TicketID, &r.VisitID, &r.PartID, &r.Manufacturer, &r.PartNumber, &r.Description, &r.Quantity, &r.State,
		&r.QuotePriceCents, &cost, &r.WarehouseID, &r.SupplierRef, &r.Note, &r.RequestedBy, &r.RequestedAt, &r.UpdatedAt, &r.ETA)
	if a.IsNOC() {
		r.UnitCostCents = &cost
	}
	return r, err
}

func (s *Store) partRequests(ctx context.Context, q queryer, a auth.Actor, ticketID int64) ([]PartRequest, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+partRequestColumns+` FROM part_requests r JOIN parts p ON p.id = r.part_id
		WHERE ($1::bigint = 0 OR r.ticket_id = $1::bigint) AND ($2 = '' OR r.customer_id = $2) ORDER BY r.id`,
		ticketID, a.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("part requests: %w", err)
	}
	defer rows.Close()
	out := []PartRequest{}
	for rows.Next() {
		r, err := scanPartRequest(rows, a)
		if err != nil {
			return nil, fmt.Errorf("part requests: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PartRequests lists part requests in a's scope (ticketID 0: all).
func (s *Store) PartRequests(ctx context.Context, a auth.Actor, ticketID int64) ([]PartRequest, error) {
	out, err := s.partRequests(ctx, s.db, a, ticketID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	return out, nil
}

// PartRequestInput requests a part for a ticket.
type PartRequestInput struct {
	TicketID int64  `json:"ticket"`
	PartID   int64  `json:"part"`
	Quantity int    `json:"quantity" max:"100000"`
	VisitID  *int64 `json:"visit"` // the visit that installs it, if known
	Note     string `json:"note"`
}

// RequestPart records a part request (staff only); the ticket waits for
// spare parts from now on.
func (s *Store) RequestPart(ctx context.Context, a auth.Actor, in PartRequestInput, now time.Time) (PartRequest, error) {
	if !a.IsProvider() {
		return PartRequest{}, ErrForbidden.Errorf("the provider requests parts")
	}
	if in.Quantity <= 0 || in.Quantity > 1000 {
		return PartRequest{}, invalid("quantity must be 1 to 1000")
	}
	var id int64
	err := s.inTx(ctx, "request part", func(tx *sqlx.Tx) error {
		t, err := s.lockTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		if t.Status == maintenance.StatusClosed {
			return conflict("ticket %s is closed", t.Number)
		}
		var pn string
		if err := tx.QueryRowContext(ctx, `SELECT manufacturer || ' ' || part_number FROM parts WHERE id = $1`, in.PartID).Scan(&pn); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return invalid("unknown part %d", in.PartID)
			}
			return err
		}
		if in.VisitID != nil {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM visits WHERE id = $1 AND ticket_id = $2`, *in.VisitID, t.ID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return invalid("visit %d is not a visit of ticket %s", *in.VisitID, t.Number)
			}
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO part_requests (ticket_id, customer_id, visit_id, part_id, quantity, state, note, requested_by,
			requested_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'requested', $6, $7, $8, $8) RETURNING id`,
			t.ID, t.CustomerID, in.VisitID, in.PartID, in.Quantity, in.Note, a.String(), now).Scan(&id); err != nil {
			return fmt.Errorf("insert part request: %w", err)
		}
		if err := partEvent(ctx, tx, id, now, a.String(), "", PartRequested, in.Note); err != nil {
			return err
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		text := notify.PartRequestedText(lang, pn, in.Quantity, id)
		if err := maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "part_requested", text, map[string]any{"part_request": id}); err != nil {
			return err
		}
		return s.setSourceWait(ctx, tx, t, SourcePartRequest, id, partWait(PartRequested), text, system.String(), now)
	})
	if err != nil {
		return PartRequest{}, err
	}
	return s.partRequest(ctx, a, id)
}

func (s *Store) partRequest(ctx context.Context, a auth.Actor, id int64) (PartRequest, error) {
	r, err := scanPartRequest(s.db.QueryRowContext(ctx, `SELECT `+partRequestColumns+` FROM part_requests r JOIN parts p ON p.id = r.part_id
		WHERE r.id = $1 AND ($2 = '' OR r.customer_id = $2)`, id, a.CustomerID), a)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound.Errorf("part request %d", id)
	}
	if err != nil {
		return r, fmt.Errorf("dispatch: part request %d: %w", id, err)
	}
	return r, nil
}

func partEvent(ctx context.Context, tx *sqlx.Tx, id int64, at time.Time, author, from, to, note string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO part_request_events (request_id, at, author, from_state, to_state, note)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, at, author, from, to, note); err != nil {
		return fmt.Errorf("part request event: %w", err)
	}
	return nil
}

// PartMoveInput moves a part request.
type PartMoveInput struct {
	To              string `json:"to" max:"200"`
	QuotePriceCents *int64 `json:"quote_price_cents" max:"10000000000000"` // quoted: the unit price offered to the customer
	WarehouseID     string `json:"warehouse" max:"100"`                    // received: taken from this warehouse's stock
	SupplierRef     string `json:"supplier_ref" max:"200"`                 // ordered: the supplier's order or tracking number
	Note            string `json:"note"`

	// ETA (YYYY-MM-DD) is when an ordered, shipped or imported part is
	// expected; a move without one keeps the previous ETA.
	ETA string `json:"eta"`
}

// MovePart moves part request id at now: the ticket's wait follows (parts,
// customer approval, customs) and its SLA pause with it. Customers may
// only approve or reject (cancel) a quote of theirs.
func (s *Store) MovePart(ctx context.Context, a auth.Actor, id int64, in PartMoveInput, now time.Time) (PartRequest, error) {
	if !slices.ContainsFunc(allPartStates, func(st string) bool { return st == in.To }) || in.To == PartRequested {
		return PartRequest{}, invalid("to must be one of quoted, approved, ordered, in_transit, in_customs, received, installed, cancelled")
	}
	if in.ETA != "" {
		if _, err := time.Parse(time.DateOnly, in.ETA); err != nil {
			return PartRequest{}, invalid("eta %q is not a date (YYYY-MM-DD)", in.ETA)
		}
		if in.To != PartOrdered && in.To != PartInTransit && in.To != PartInCustoms {
			return PartRequest{}, invalid("an eta goes with ordered, in_transit or in_customs")
		}
	}
	err := s.inTx(ctx, fmt.Sprintf("move part request %d to %s", id, in.To), func(tx *sqlx.Tx) error {
		return s.movePart(ctx, tx, a, id, in, nil, now)
	})
	if err != nil {
		return PartRequest{}, err
	}
	return s.partRequest(ctx, a, id)
}

var allPartStates = []string{PartRequested, PartQuoted, PartApproved, PartOrdered, PartInTransit, PartInCustoms, PartReceived, PartInstalled, PartCancelled}

// movePart is MovePart in tx; t is the already locked ticket, if any.
func (s *Store) movePart(ctx context.Context, tx *sqlx.Tx, a auth.Actor, id int64, in PartMoveInput, t *ticketRef, now time.Time) error {
	var ticketID, partID int64
	var state, customerID string
	var qty int
	var quote *int64
	err := tx.QueryRowContext(ctx, `SELECT r.ticket_id, r.customer_id, r.part_id, r.state, r.quantity, r.quote_price_cents FROM part_requests r
		WHERE r.id = $1 AND ($2 = '' OR r.customer_id = $2) FOR UPDATE`, id, a.CustomerID).
		Scan(&ticketID, &customerID, &partID, &state, &qty, &quote)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound.Errorf("part request %d", id)
	}
	if err != nil {
		return fmt.Errorf("part request %d: %w", id, err)
	}
	if a.IsCustomer() && !(state == PartQuoted && (in.To == PartApproved || in.To == PartCancelled)) {
		return ErrForbidden.Errorf("customers approve or reject quoted parts only")
	}
	if !slices.Contains(partMoves[state], in.To) {
		return conflict("a %s part request cannot move to %s", state, in.To)
	}
	if t == nil {
		tr, err := s.lockTicket(ctx, tx, a, ticketID)
		if err != nil {
			return err
		}
		t = &tr
	}
	set := `state = $2, updated_at = $3`
	args := []any{id, in.To, now}
	switch in.To {
	case PartQuoted:
		if in.QuotePriceCents == nil || *in.QuotePriceCents < 0 {
			return invalid("a quote needs quote_price_cents (the unit price offered to the customer)")
		}
		set += `, quote_price_cents = $4`
		args = append(args, *in.QuotePriceCents)
	case PartOrdered:
		set += `, supplier_ref = $4`
		args = append(args, in.SupplierRef)
	}
	if in.ETA != "" {
		set += fmt.Sprintf(`, eta = $%d`, len(args)+1)
		args = append(args, in.ETA)
	}
	switch in.To {
	case PartReceived:
		if in.WarehouseID != "" {
			res, err := tx.ExecContext(ctx, `UPDATE stock SET quantity = quantity - $3 WHERE warehouse_id = $1 AND part_id = $2`,
				in.WarehouseID, partID, qty)
			if err != nil {
				return ErrConflict.Because(err, "not enough stock in %s for %d units", in.WarehouseID, qty)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return conflict("warehouse %s holds no such part", in.WarehouseID)
			}
			set += `, warehouse_id = $4`
			args = append(args, in.WarehouseID)
		} else if state == PartApproved {
			return invalid("an approved part is received from a warehouse's stock (warehouse) or ordered first")
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE part_requests SET `+set+` WHERE id = $1`, args...); err != nil {
		return fmt.Errorf("move part request: %w", err)
	}
	if err := partEvent(ctx, tx, id, now, a.String(), state, in.To, in.Note); err != nil {
		return err
	}
	lang, err := assets.LanguageTx(ctx, tx, customerID)
	if err != nil {
		return err
	}
	text := notify.PartMovedText(lang, id, state, in.To, in.Note)
	if err := maintenance.AddEventTx(ctx, tx, ticketID, now, a.String(), "part_"+in.To, text, map[string]any{"part_request": id}); err != nil {
		return err
	}
	if in.To == PartInstalled && quote != nil {
		if err := s.partLine(ctx, tx, *t, id, now); err != nil {
			return err
		}
	}
	return s.setSourceWait(ctx, tx, *t, SourcePartRequest, id, partWait(in.To), text, system.String(), now)
}

// withdraw takes a part used on site out of the stock it came from.
func withdraw(ctx context.Context, tx *sqlx.Tx, p PartUsed) error {
	res, err := tx.ExecContext(ctx, `UPDATE stock s SET quantity = s.quantity - $4 FROM parts p
		WHERE s.part_id = p.id AND s.warehouse_id = $1 AND lower(p.manufacturer) = lower($2) AND p.part_number = $3`,
		p.Warehouse, p.Manufacturer, p.PartNumber, p.Quantity)
	if err != nil {
		return ErrConflict.Because(err, "not enough %s in %s for %d units", p.PartNumber, p.Warehouse, p.Quantity)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conflict("warehouse %s holds no part %s %s", p.Warehouse, p.Manufacturer, p.PartNumber)
	}
	return nil
}
