// Package dispatch sends field engineers on site and tracks everything that
// keeps a biomedical or hardware ticket waiting: engineers and their
// calendars, visits with checklists, travel and signatures, spare parts and
// manufacturer cases, the waits that pause a ticket's SLA, and what the
// customer is billed for (work entries, hour banks, travel, parts).
//
// It sits after maintenance in the flow: it changes tickets only through
// maintenance's transaction-scoped methods (HoldTx, RescheduleTx,
// AddEventTx), inside its own transactions, so a part arriving and the SLA
// resuming commit together.
//
// Who sees what:
//   - NOC staff: everything, internal costs included.
//   - Engineers: their own visits (another's is 404), the parts catalogue,
//     and their own work entries; they move their visits along and record
//     the outcome and the customer's signature.
//   - Customers: their own customer's visits, part requests, cases, waits
//     and billing, never internal costs (part costs, engineer rates).
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
)

// Errors the API answers with their status (httpx.Problem): a refusal
// derived from one (ErrInvalid.Errorf…) is told to people by its own text.
var (
	ErrNotFound  = httpx.Kind(http.StatusNotFound, "not_found", "dispatch: not found", "")
	ErrForbidden = httpx.Kind(http.StatusForbidden, "forbidden", "dispatch: not allowed for this role", "")
	ErrConflict  = httpx.Kind(http.StatusConflict, "conflict", "dispatch: not possible in the current state", "")
	ErrInvalid   = httpx.Kind(http.StatusBadRequest, "invalid_request", "dispatch: invalid request", "")
	ErrRefused   = httpx.Kind(http.StatusUnprocessableEntity, "refused", "dispatch: refused", "")
)

func invalid(format string, a ...any) error {
	return ErrInvalid.Errorf(format, a...)
}

func conflict(format string, a ...any) error {
	return ErrConflict.Errorf(format, a...)
}

// Store keeps dispatch data in PostgreSQL.
type Store struct {
	db      *sqlx.DB
	inv     *assets.Store
	tickets *maintenance.Store
	rules   Rules
	cals    calendars
	// consoleURL prefixes the links of dispatch e-mails (SetConsoleURL);
	// organizer is the invitations' ORGANIZER (SetOrganizer).
	consoleURL, organizer string
}

// NewStore returns a dispatch store; tickets is the ticket store whose
// pauses and closures dispatch drives.
func NewStore(db *sqlx.DB, inv *assets.Store, tickets *maintenance.Store) *Store {
	return &Store{db: db, inv: inv, tickets: tickets, rules: DefaultRules(), cals: presetCalendars(sla.Presets())}
}

// system is dispatch acting on tickets by itself (waits starting and
// ending): its pauses are its own to end.
var system = auth.Actor{Name: "dispatch", Role: auth.RoleSystem}

func (s *Store) inTx(ctx context.Context, what string, fn func(tx *sqlx.Tx) error) error {
	if err := db.InTx(ctx, s.db, fn); err != nil {
		return fmt.Errorf("dispatch: %s: %w", what, translate(err))
	}
	return nil
}

// translate maps database and ticket errors onto dispatch's sentinels, so
// the API answers 409 for a broken constraint and 404 for a missing ticket.
func translate(err error) error {
	// Told by the value at fault, never by PostgreSQL's wording (which
	// names tables and constraints).
	if v, ok := db.AsViolation(err); ok {
		switch v.Kind {
		case db.Unique, db.Check: // a taken value, an overlapping booking; a value outside its domain
			return ErrConflict.Wrap(v)
		default: // an id that names nothing
			return ErrInvalid.Wrap(v)
		}
	}
	switch {
	case errors.Is(err, maintenance.ErrNotFound):
		return ErrNotFound.Wrap(err)
	case errors.Is(err, maintenance.ErrConflict):
		return ErrConflict.Wrap(err)
	case errors.Is(err, maintenance.ErrInvalid):
		return ErrInvalid.Wrap(err)
	}
	return err
}

// ticketRef is what dispatch needs of a ticket.
type ticketRef struct {
	ID             int64
	Number         string
	CustomerID     string
	SiteID         string
	DeviceIDs      []string
	Status         string
	Source         string
	Billable       bool
	BillableReason string
	ContractID     string
	CloseReason    string
}

// lockTicket reads and locks a ticket in the actor's scope (another
// customer's ticket is not found).
func (s *Store) lockTicket(ctx context.Context, tx *sqlx.Tx, a auth.Actor, id int64) (ticketRef, error) {
	t, err := s.tickets.LockTx(ctx, tx, id)
	if err != nil {
		return ticketRef{}, err
	}
	if a.IsCustomer() && t.CustomerID != a.CustomerID {
		return ticketRef{}, ErrNotFound.Errorf("ticket %d", id)
	}
	return ticketRef{ID: t.ID, Number: t.Number, CustomerID: t.CustomerID, SiteID: t.SiteID, DeviceIDs: t.DeviceIDs,
		Status: t.Status, Source: t.Source, Billable: t.Billable, BillableReason: t.BillableReason, ContractID: t.ContractID,
		CloseReason: t.CloseReason}, nil
}

// lockOpenTicket is lockTicket for new work on the ticket (a visit, a
// manufacturer case, a wait): a solved or closed ticket refuses it.
func (s *Store) lockOpenTicket(ctx context.Context, tx *sqlx.Tx, a auth.Actor, id int64) (ticketRef, error) {
	t, err := s.lockTicket(ctx, tx, a, id)
	if err != nil {
		return t, err
	}
	if t.Status == maintenance.StatusClosed || t.Status == maintenance.StatusSolved {
		return t, conflict("ticket %s is %s", t.Number, t.Status)
	}
	return t, nil
}

func strs(v []string) pq.StringArray {
	if v == nil {
		return pq.StringArray{}
	}
	return pq.StringArray(v)
}
