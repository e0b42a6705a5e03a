package intake

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
)

// API serves the Alertmanager receiver at /api/v1/alertmanager, for NOC
// tokens only.
type API struct {
	recv *Receiver
	now  func() time.Time
	log  *slog.Logger
}

// NewAPI returns the receiver's API; now is the clock of its records.
func NewAPI(recv *Receiver, now func() time.Time, log *slog.Logger) *API {
	return &API{recv: recv, now: now, log: log}
}

// Register adds the route to mux (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/alertmanager", a.alertmanager)
}

func (a *API) alertmanager(w http.ResponseWriter, r *http.Request) {
	if p, _ := auth.FromContext(r.Context()); p.Role != auth.RoleNOC {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "the Alertmanager receiver takes a NOC token")
		return
	}
	var p AlertmanagerPayload
	if !httpx.Decode(w, r, &p) {
		return
	}
	res, err := a.recv.Alertmanager(r.Context(), p, a.now())
	switch {
	case err == nil:
		httpx.JSON(w, http.StatusOK, map[string]any{"alerts": res})
	case errors.Is(err, maintenance.ErrInvalid):
		httpx.Fail(w, http.StatusBadRequest, "invalid_request", "%s", userText(err, maintenance.ErrInvalid))
	case errors.Is(err, maintenance.ErrConflict):
		httpx.Fail(w, http.StatusConflict, "conflict", "%s", userText(err, maintenance.ErrConflict))
	case db.Busy(err):
		a.log.Warn("alertmanager receiver: database busy", "err", err)
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "the database did not answer in time; try again")
	default:
		a.log.Error("alertmanager receiver", "err", err)
		httpx.Fail(w, http.StatusInternalServerError, "internal", "could not process the ticket")
	}
}

// userText is what follows the sentinel in err's text, with the
// sentinel's own words ("invalid request: version must be ..."), as the
// ticket API answers.
func userText(err, sentinel error) string {
	msg, word := err.Error(), sentinel.Error()
	if i := strings.Index(msg, word); i >= 0 {
		return strings.TrimPrefix(msg[i:], "maintenance: ")
	}
	return strings.TrimPrefix(word, "maintenance: ")
}
