package maintenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// What the next stage of the flow (dispatch) does to a ticket inside its
// own transaction, so that a part arriving and the SLA resuming, or a visit
// failing and its ticket being rescheduled, commit together or not at all.

// pauseReasons reads a pause's reasons; rows written by a person's pause
// action carry only reason.
const pauseReasons = `CASE WHEN cardinality(reasons) = 0 THEN ARRAY[reason] ELSE reasons END`

// LockTx reads the ticket id and locks it for tx.
func (s *Store) LockTx(ctx context.Context, tx *sqlx.Tx, id int64) (Ticket, error) {
	return lockTicket(ctx, tx, Scope{}, fmt.Sprint(id))
}

// HoldTx makes the ticket's SLA pause follow reasons, the waits a that
// currently hold it (in the order they began):
//   - no pause running and some reason: a pause starts now with them;
//   - a pause running: reasons it does not carry yet are added to it, so
//     overlapping waits are one interval with several reasons and their
//     time is never counted twice;
//   - no reason left: the pause ends, but only if a started it (a person's
//     pause is theirs to end).
//
// A solved or closed ticket has no running clock to hold: nothing happens.
func (s *Store) HoldTx(ctx context.Context, tx *sqlx.Tx, a auth.Actor, ticketID int64, reasons []string, note string, now time.Time) error {
	for _, r := range reasons {
		if !slices.Contains(PauseReasons, r) {
			return invalid("unknown pause reason %q", r)
		}
	}
	t, err := s.LockTx(ctx, tx, ticketID)
	if err != nil {
		return err
	}
	if t.Status == StatusSolved || t.Status == StatusClosed {
		return nil
	}
	var pauseID int64
	var have pq.StringArray
	var startedBy string
	err = tx.QueryRowContext(ctx, `SELECT id, `+pauseReasons+`, started_by FROM ticket_pauses WHERE ticket_id = $1 AND ended_at IS NULL`,
		t.ID).Scan(&pauseID, &have, &startedBy)
	running := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("running pause: %w", err)
	}
	who := a.String()
	switch {
	case !running && len(reasons) == 0:
		return nil
	case !running:
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_pauses (ticket_id, reason, reasons, note, started_at, started_by)
			VALUES ($1, $2, $3, $4, $5, $6)`, t.ID, reasons[0], pq.StringArray(reasons), note, now, who); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'pending', pending_reason = $2 WHERE id = $1`, t.ID, reasons[0]); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		if err := addEvent(ctx, tx, t.ID, now, who, "paused", note, map[string]any{"reason": reasons[0], "reasons": reasons}); err != nil {
			return err
		}
	case len(reasons) > 0:
		var added []string
		for _, r := range reasons {
			if !slices.Contains(have, r) {
				added = append(added, r)
			}
		}
		if len(added) == 0 {
			return nil
		}
		all := append([]string(have), added...)
		if _, err := tx.ExecContext(ctx, `UPDATE ticket_pauses SET reasons = $2 WHERE id = $1`, pauseID, pq.StringArray(all)); err != nil {
			return fmt.Errorf("pause reasons: %w", err)
		}
		if err := addEvent(ctx, tx, t.ID, now, who, "pause_reasons_added", note, map[string]any{"added": added, "reasons": all}); err != nil {
			return err
		}
	default:
		if startedBy != who {
			return nil
		}
		if err := endPause(ctx, tx, t.ID, now, who); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tickets SET status = 'in_progress', pending_reason = NULL WHERE id = $1`, t.ID); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := addEvent(ctx, tx, t.ID, now, who, "resumed", note, map[string]any{"reasons": []string(have)}); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tickets SET updated_at = $2 WHERE id = $1`, t.ID, now); err != nil {
		return err
	}
	return s.recompute(ctx, tx, &t)
}

// RescheduleTx applies seed 000 §8: the equipment was not available at the
// agreed visit, so the ticket closes with that reason and a new ticket,
// linked to it, is opened to reschedule the visit. Both changes notify the
// customer through the outbox. The new ticket inherits the automatic
// subject, so a later outage of the same device joins it.
func (s *Store) RescheduleTx(ctx context.Context, tx *sqlx.Tx, a auth.Actor, ticketID int64, text string, now time.Time) (closed, next Ticket, err error) {
	t, err := s.LockTx(ctx, tx, ticketID)
	if err != nil {
		return t, next, err
	}
	if t.Status == StatusClosed {
		return t, next, ErrConflict.Errorf("ticket %s is already closed", t.Number)
	}
	who := a.String()
	if err := s.closeTicket(ctx, tx, &t, now, who, CloseEquipmentUnavailable, text, nil); err != nil {
		return t, next, err
	}
	if err := s.recompute(ctx, tx, &t); err != nil {
		return t, next, err
	}
	lang, err := assets.LanguageTx(ctx, tx, t.CustomerID)
	if err != nil {
		return t, next, err
	}
	title := notify.RescheduleTitle(lang, t.Title)
	if len(title) > 200 {
		title = title[:200]
	}
	next, ok, err := s.open(ctx, tx, openInput{CustomerID: t.CustomerID, SiteID: t.SiteID, DeviceIDs: t.DeviceIDs, Title: title,
		Description: t.Description, Category: t.Category, Requester: t.Requester, Severity: t.Severity, Source: t.Source,
		AutoKey: t.AutoKey, PreviousTicketID: &t.ID, OpenedAt: now, Author: who,
		Data: map[string]any{"rescheduled_from": t.Number}})
	if err == nil && !ok {
		err = ErrConflict.Errorf("another open ticket already holds %s", t.AutoKey)
	}
	if err != nil {
		return t, next, fmt.Errorf("reschedule %s: %w", t.Number, err)
	}
	if err := addEvent(ctx, tx, t.ID, now, who, "rescheduled", "", map[string]any{"next_ticket": next.Number, "next_ticket_id": next.ID}); err != nil {
		return t, next, err
	}
	return t, next, nil
}

// AddEventTx writes an entry on the ticket's timeline (a visit moved, a
// part arrived) in the caller's transaction.
func AddEventTx(ctx context.Context, tx *sqlx.Tx, ticketID int64, at time.Time, author, kind, text string, data map[string]any) error {
	return addEvent(ctx, tx, ticketID, at, author, kind, text, data)
}
