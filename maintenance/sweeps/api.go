package sweeps

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
)

// API serves the preventive plans under /api/v1/preventive-plans.
type API struct {
	plans *Preventive
	now   func() time.Time
	log   *slog.Logger
}

// NewAPI returns the plans' API; now is the clock of their records.
func NewAPI(plans *Preventive, now func() time.Time, log *slog.Logger) *API {
	return &API{plans: plans, now: now, log: log}
}

// Register adds the routes to mux (behind bearer authentication).
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/preventive-plans", a.listPlans)
	mux.HandleFunc("POST /api/v1/preventive-plans", a.createPlan)
}

// createPlan: POST /api/v1/preventive-plans (NOC only).
func (a *API) createPlan(w http.ResponseWriter, r *http.Request) {
	var in PlanInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	p, err := a.plans.CreatePlan(r.Context(), auth.RequestActor(r), in, a.now())
	if err != nil {
		maintenance.FailHTTP(w, a.log, "preventive plans", err)
		return
	}
	httpx.JSON(w, http.StatusCreated, p)
}

// listPlans: GET /api/v1/preventive-plans[?device=ID]; customers see their own.
func (a *API) listPlans(w http.ResponseWriter, r *http.Request) {
	q, ok := httpx.ReadQuery(w, r, "device")
	if !ok {
		return
	}
	ps, err := a.plans.Plans(r.Context(), maintenance.Scope{CustomerID: auth.RequestActor(r).CustomerID}, q["device"])
	if err != nil {
		maintenance.FailHTTP(w, a.log, "preventive plans", err)
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"preventive_plans": ps})
}
