package maintenance

import (
	"net/http"

	"github.com/vigia-noc/vigia/internal/httpx"
)

// createPlan: POST /api/v1/preventive-plans (NOC only).
func (a *API) createPlan(w http.ResponseWriter, r *http.Request) {
	var in PlanInput
	if !httpx.Decode(w, r, &in) {
		return
	}
	p, err := a.store.CreatePlan(r.Context(), actor(r), in, a.now())
	if err != nil {
		a.errs.Fail(w, err, "ticket", "")
		return
	}
	httpx.JSON(w, http.StatusCreated, p)
}

// listPlans: GET /api/v1/preventive-plans[?device=ID]; customers see their own.
func (a *API) listPlans(w http.ResponseWriter, r *http.Request) {
	q, err := httpx.ParseQuery(r, "device")
	if err != nil {
		httpx.Refuse(w, err)
		return
	}
	ps, err := a.store.Plans(r.Context(), actor(r).scope(), q["device"])
	if err != nil {
		a.errs.Fail(w, err, "ticket", "")
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"preventive_plans": ps})
}
