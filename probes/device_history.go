package probes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// A device's history is what the probes recorded of it, newest first:
// state transitions (with their probe evidence), the events published for
// the ticketing stage (outages opened and ended, reboots, flapping,
// misconfiguration, worklist and storage verdicts, trap alarms) and every
// trap or inform accepted from it.

// History entry kinds.
const (
	HistoryTransition = "transition"
	HistoryEvent      = "event"
	HistoryTrap       = "trap"
)

// HistoryEntry is one line of a device's history.
type HistoryEntry struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	// Transitions.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Events: the event kind (device_down, rebooted, storage_trend…).
	Event string `json:"event,omitempty"`
	// Traps.
	Rule      string `json:"rule,omitempty"`
	TrapOID   string `json:"trap_oid,omitempty"`
	Effect    string `json:"effect,omitempty"`
	Condition string `json:"condition,omitempty"`
	Version   string `json:"version,omitempty"`
	Inform    bool   `json:"inform,omitempty"`
	// Detail is the evidence (transitions), the event's detail, or the
	// trap's varbinds.
	Detail json.RawMessage `json:"detail"`
}

// HistoryQuery selects a page of one device's history.
type HistoryQuery struct {
	CustomerID string // "" for staff: every customer
	DeviceID   string
	Before     time.Time // zero: from the newest
	Limit      int
}

// Limits of a history page.
const (
	historyDefaultLimit = 100
	historyMaxLimit     = 500
)

// ErrNoDevice is returned for a device that does not exist or is another
// customer's.
var ErrNoDevice = httpx.Kind(http.StatusNotFound, "not_found", "probes: no such device", "")

// History reads a page of a device's history, newest first.
func (s *Store) History(ctx context.Context, q HistoryQuery) ([]HistoryEntry, error) {
	if q.Limit <= 0 || q.Limit > historyMaxLimit {
		q.Limit = historyDefaultLimit
	}
	_, err := assets.NewStore(s.db).Device(ctx, assets.Scope{CustomerID: q.CustomerID}, q.DeviceID)
	if errors.Is(err, assets.ErrNotFound) {
		return nil, ErrNoDevice
	}
	if err != nil {
		return nil, fmt.Errorf("probes: history of %s: %w", q.DeviceID, err)
	}
	var before any
	if !q.Before.IsZero() {
		before = q.Before
	}
	rows, err := s.db.QueryxContext(ctx, `SELECT at, kind, a, b, c, d, e, f, inform, detail FROM (
		SELECT at, 'transition' AS kind, from_state AS a, to_state AS b, '' AS c, '' AS d, '' AS e, '' AS f, false AS inform,
			evidence AS detail, 0 AS src, id FROM device_transitions WHERE device_id = $1
		UNION ALL
		SELECT at, 'event', kind, '', '', '', '', '', false, detail, 1, id FROM device_events WHERE device_id = $1
		UNION ALL
		SELECT at, 'trap', rule, trap_oid, effect, condition, version, '', inform, varbinds, 2, id FROM device_traps WHERE device_id = $1
	) h WHERE $2::timestamptz IS NULL OR at < $2 ORDER BY at DESC, src DESC, id DESC LIMIT $3`, q.DeviceID, before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("probes: history of %s: %w", q.DeviceID, err)
	}
	defer rows.Close()
	out := []HistoryEntry{}
	for rows.Next() {
		var e HistoryEntry
		var a, b, c, d, v, f string
		var detail []byte
		if err := rows.Scan(&e.At, &e.Kind, &a, &b, &c, &d, &v, &f, &e.Inform, &detail); err != nil {
			return nil, fmt.Errorf("probes: history of %s: %w", q.DeviceID, err)
		}
		e.Detail = detail
		switch e.Kind {
		case HistoryTransition:
			e.From, e.To = a, b
		case HistoryEvent:
			e.Event = a
		case HistoryTrap:
			e.Rule, e.TrapOID, e.Effect, e.Condition, e.Version = a, b, c, d, v
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("probes: history of %s: %w", q.DeviceID, err)
	}
	return out, nil
}

// maxDeviceID bounds a device id in a path (the inventory's ids are far
// shorter).
const maxDeviceID = 128

// ParseHistoryQuery checks a history request's path id and query: only
// limit (1 to 500) and before (RFC 3339) are known; anything else, or a
// malformed value, is an error for the caller.
func ParseHistoryQuery(id string, query url.Values) (HistoryQuery, error) {
	q := HistoryQuery{DeviceID: id, Limit: historyDefaultLimit}
	if id == "" || len(id) > maxDeviceID || !utf8.ValidString(id) || containsControl(id) {
		return q, errors.New("device id: 1 to 128 printable characters")
	}
	for k, vs := range query {
		if len(vs) != 1 {
			return q, fmt.Errorf("%s: give it once", k)
		}
		v := vs[0]
		switch k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > historyMaxLimit {
				return q, fmt.Errorf("limit: a whole number from 1 to %d", historyMaxLimit)
			}
			q.Limit = n
		case "before":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil || t.Year() < 2000 || t.Year() > 9999 {
				return q, errors.New("before: an RFC 3339 instant, such as 2026-11-23T14:00:00Z")
			}
			q.Before = t
		default:
			return q, fmt.Errorf("unknown query parameter %q (want limit, before)", truncate(k, 64))
		}
	}
	return q, nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// deviceHistory serves GET /api/v1/devices/{id}/events.
func (a *API) deviceHistory(w http.ResponseWriter, r *http.Request) {
	_, customer := customerScope(r)
	q, err := ParseHistoryQuery(r.PathValue("id"), r.URL.Query())
	if err != nil {
		httpx.Fail(w, http.StatusBadRequest, "invalid_parameter", "%s", err.Error())
		return
	}
	q.CustomerID = customer
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	entries, err := a.store.History(ctx, q)
	if err != nil {
		httpx.Errors{API: "probes API", Internal: "could not read the device's history"}.Fail(w, err, "device", q.DeviceID)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"device_id": q.DeviceID, "events": entries})
}
