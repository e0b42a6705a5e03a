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

// Manufacturer case states: opened (with the manufacturer's case number)
// → waiting → answered → closed. A follow-up question sends an answered
// case back to waiting.
const (
	CaseOpened   = "opened"
	CaseWaiting  = "waiting"
	CaseAnswered = "answered"
	CaseClosed   = "closed"
)

var caseMoves = map[string][]string{
	CaseOpened:   {CaseWaiting, CaseAnswered, CaseClosed},
	CaseWaiting:  {CaseAnswered, CaseClosed},
	CaseAnswered: {CaseWaiting, CaseClosed},
}

// caseWait: until the manufacturer answers, the ticket waits for them.
func caseWait(state string) string {
	if state == CaseOpened || state == CaseWaiting {
		return WaitManufacturer
	}
	return ""
}

// ManufacturerCase is a case opened with a manufacturer for a ticket.
type ManufacturerCase struct {
	ID           int64     `json:"id"`
	TicketID     int64     `json:"ticket_id"`
	Manufacturer string    `json:"manufacturer"`
	CaseNumber   string    `json:"case_number"`
	State        string    `json:"state"`
	Summary      string    `json:"summary,omitempty"`
	Answer       string    `json:"answer,omitempty"`
	OpenedBy     string    `json:"opened_by"`
	OpenedAt     time.Time `json:"opened_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

const caseColumns = `c.id, c.ticket_id, c.manufacturer, c.case_number, c.state, c.summary, c.answer, c.opened_by, c.opened_at, c.updated_at`

func scanCase(r interface{ Scan(...any) error }) (ManufacturerCase, error) {
	var c ManufacturerCase
	err := r.Scan(&c.ID, &c.TicketID, &c.Manufacturer, &c.CaseNumber, &c.State, &c.Summary, &c.Answer, &c.OpenedBy, &c.OpenedAt, &c.UpdatedAt)
	return c, err
}

// CaseInput opens a manufacturer case.
type CaseInput struct {
	TicketID     int64  `json:"ticket"`
	Manufacturer string `json:"manufacturer" max:"200"`
	CaseNumber   string `json:"case_number" max:"200"`
	Summary      string `json:"summary"`
}

// OpenCase records a case opened with a manufacturer (staff only): the
// ticket waits for the manufacturer from now on. The same manufacturer
// case number cannot be recorded twice.
func (s *Store) OpenCase(ctx context.Context, a auth.Actor, in CaseInput, now time.Time) (ManufacturerCase, error) {
	if !a.IsProvider() {
		return ManufacturerCase{}, ErrForbidden.Errorf("the provider opens manufacturer cases")
	}
	in.Manufacturer, in.CaseNumber = strings.TrimSpace(in.Manufacturer), strings.TrimSpace(in.CaseNumber)
	if in.Manufacturer == "" || in.CaseNumber == "" {
		return ManufacturerCase{}, invalid("manufacturer and case_number (the manufacturer's) are required")
	}
	var c ManufacturerCase
	err := s.inTx(ctx, "open manufacturer case", func(tx *sqlx.Tx) error {
		t, err := s.lockOpenTicket(ctx, tx, a, in.TicketID)
		if err != nil {
			return err
		}
		c, err = scanCase(tx.QueryRowContext(ctx, `INSERT INTO manufacturer_cases AS c (ticket_id, customer_id, manufacturer, case_number, state, summary,
			opened_by, opened_at, updated_at) VALUES ($1, $2, $3, $4, 'opened', $5, $6, $7, $7) RETURNING `+caseColumns,
			t.ID, t.CustomerID, in.Manufacturer, in.CaseNumber, in.Summary, a.String(), now))
		if err != nil {
			return fmt.Errorf("insert case: %w", err)
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		text := notify.CaseOpenedText(lang, in.Manufacturer, in.CaseNumber)
		if err := maintenance.AddEventTx(ctx, tx, t.ID, now, a.String(), "manufacturer_case_opened", text,
			map[string]any{"case": c.ID, "case_number": in.CaseNumber}); err != nil {
			return err
		}
		return s.setSourceWait(ctx, tx, t, SourceManufacturerCase, c.ID, caseWait(CaseOpened), text, system.String(), now)
	})
	return c, err
}

// CaseMoveInput moves a manufacturer case.
type CaseMoveInput struct {
	To     string `json:"to" max:"200"`
	Answer string `json:"answer"` // answered: what the manufacturer said
	Note   string `json:"note"`
}

// MoveCase moves case id at now (staff only); the ticket's manufacturer
// wait ends when the case is answered or closed.
func (s *Store) MoveCase(ctx context.Context, a auth.Actor, id int64, in CaseMoveInput, now time.Time) (ManufacturerCase, error) {
	if !a.IsProvider() {
		return ManufacturerCase{}, ErrForbidden.Errorf("the provider follows manufacturer cases")
	}
	if !slices.Contains([]string{CaseWaiting, CaseAnswered, CaseClosed}, in.To) {
		return ManufacturerCase{}, invalid("to must be waiting, answered or closed")
	}
	var c ManufacturerCase
	err := s.inTx(ctx, fmt.Sprintf("move manufacturer case %d", id), func(tx *sqlx.Tx) error {
		var err error
		c, err = scanCase(tx.QueryRowContext(ctx, `SELECT `+caseColumns+` FROM manufacturer_cases c WHERE c.id = $1 FOR UPDATE`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound.Errorf("manufacturer case %d", id)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(caseMoves[c.State], in.To) {
			return conflict("a %s case cannot move to %s", c.State, in.To)
		}
		if in.To == CaseAnswered && strings.TrimSpace(in.Answer) == "" {
			return invalid("answered needs the manufacturer's answer")
		}
		t, err := s.lockTicket(ctx, tx, a, c.TicketID)
		if err != nil {
			return err
		}
		from := c.State
		c.State, c.UpdatedAt = in.To, now
		if in.Answer != "" {
			c.Answer = in.Answer
		}
		if _, err := tx.ExecContext(ctx, `UPDATE manufacturer_cases SET state = $2, answer = $3, updated_at = $4 WHERE id = $1`,
			id, c.State, c.Answer, now); err != nil {
			return fmt.Errorf("move case: %w", err)
		}
		lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
		if err != nil {
			return err
		}
		text := notify.CaseMovedText(lang, c.CaseNumber, c.Manufacturer, from, in.To, in.Answer, in.Note)
		if err := maintenance.AddEventTx(ctx, tx, c.TicketID, now, a.String(), "manufacturer_case_"+in.To, text, map[string]any{"case": id}); err != nil {
			return err
		}
		return s.setSourceWait(ctx, tx, t, SourceManufacturerCase, id, caseWait(in.To), text, system.String(), now)
	})
	return c, err
}

// Cases lists manufacturer cases in a's scope (ticketID 0: all).
func (s *Store) Cases(ctx context.Context, a auth.Actor, ticketID int64) ([]ManufacturerCase, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+caseColumns+` FROM manufacturer_cases c
		WHERE ($1::bigint = 0 OR c.ticket_id = $1::bigint) AND ($2 = '' OR c.customer_id = $2) ORDER BY c.id`, ticketID, a.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: cases: %w", err)
	}
	defer rows.Close()
	out := []ManufacturerCase{}
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("dispatch: cases: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
