package intake

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
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
	if err != nil {
		maintenance.FailHTTP(w, a.log, "alertmanager receiver", err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"alerts": res})
}
