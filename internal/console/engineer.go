package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// visitsPage splits an engineer's visits into today's, the other open
// ones, and recently done.
type visitsPage struct {
	Today, Open, Done []dispatch.Visit
}

func (c *Console) visits(rq *request) error {
	f := dispatch.VisitFilter{}
	if rq.sess.User.EngineerID != "" {
		f.EngineerID = rq.sess.User.EngineerID
	}
	all, err := c.cfg.Dispatch.Visits(rq.ctx(), rq.actor(), f)
	if err != nil {
		return err
	}
	y, m, d := rq.now.In(rq.loc).Date()
	var p visitsPage
	for _, v := range all {
		today := v.WindowStart != nil && func() bool {
			vy, vm, vd := v.WindowStart.In(rq.loc).Date()
			return vy == y && vm == m && vd == d
		}()
		active := v.State == dispatch.VisitEnRoute || v.State == dispatch.VisitOnSite
		switch {
		case v.State == dispatch.VisitDone || v.State == dispatch.VisitCancelled || v.State == dispatch.VisitEquipmentUnavailable:
			if len(p.Done) < 20 {
				p.Done = append(p.Done, v)
			}
		case today || active:
			p.Today = append(p.Today, v)
		default:
			p.Open = append(p.Open, v)
		}
	}
	slices.SortStableFunc(p.Today, func(a, b dispatch.Visit) int {
		if a.WindowStart == nil || b.WindowStart == nil {
			return 0
		}
		return a.WindowStart.Compare(*b.WindowStart)
	})
	c.render(rq, http.StatusOK, "visits", translate(rq.lang, "nav.visits"), p)
	return nil
}

// activities offered for the outcome; the per-event minimum of billing
// applies by activity.
var activities = []string{"corrective", "preventive", "repair", "diagnosis", "update", "installation"}

func (c *Console) visit(rq *request) error {
	_, v, err := c.pathVisit(rq)
	if err != nil {
		return err
	}
	x, err := c.loadVisitExtras(rq, v)
	if err != nil {
		return err
	}
	c.render(rq, http.StatusOK, "visit", translate(rq.lang, "visit.title", v.ID), map[string]any{
		"Visit": v, "Activities": activities, "FreeParts": []int{1, 2, 3}, "X": x,
	})
	return nil
}

// moveVisit reports the engineer's progress: en route, on site, or the
// equipment not being available (seed 000 §8).
func (c *Console) moveVisit(rq *request) error {
	id, err := pathID(rq)
	if err != nil {
		return err
	}
	to := rq.r.PostFormValue("to")
	if to != dispatch.VisitEnRoute && to != dispatch.VisitOnSite && to != dispatch.VisitEquipmentUnavailable {
		return fmt.Errorf("%w: unknown move %q", dispatch.ErrInvalid, to)
	}
	_, err = c.cfg.Dispatch.Transition(rq.ctx(), rq.actor(), id, dispatch.TransitionInput{To: to, Note: rq.r.PostFormValue("note")}, rq.now)
	return c.afterAction(rq, fmt.Sprintf("/console/engineer/visits/%d", id), err, translate(rq.lang, "act.done"))
}

// outcome records what was done, the checklist, the parts and the
// customer's signature, and closes the visit through dispatch.
func (c *Console) outcome(rq *request) error {
	id, v, err := c.pathVisit(rq)
	if err != nil {
		return err
	}
	f := rq.r.PostForm
	in := dispatch.OutcomeInput{WorkPerformed: f.Get("work_performed"), Activity: f.Get("activity")}
	if in.Activity != "" && !slices.Contains(activities, in.Activity) {
		return fmt.Errorf("%w: unknown activity %q", dispatch.ErrInvalid, in.Activity)
	}
	for _, item := range v.Checklist {
		k := strconv.Itoa(item.ID)
		in.Checklist = append(in.Checklist, dispatch.ChecklistCheck{ID: item.ID, Done: f.Get("check_"+k) == "on",
			Note: strings.TrimSpace(f.Get("note_" + k))})
	}
	for _, p := range v.Parts {
		k := strconv.FormatInt(p.ID, 10)
		if f.Get("install_"+k) == "on" {
			in.PartsUsed = append(in.PartsUsed, dispatch.PartUsed{PartRequestID: p.ID, Manufacturer: p.Manufacturer,
				PartNumber: p.PartNumber, Quantity: p.Quantity})
		}
	}
	for i := 1; i <= 3; i++ {
		k := strconv.Itoa(i)
		number := strings.TrimSpace(f.Get("part_number_" + k))
		used, fromStock := stockPart(f.Get("part_stock_" + k))
		if number == "" && !fromStock {
			continue
		}
		qty, err := strconv.Atoi(strings.TrimSpace(f.Get("part_qty_" + k)))
		if err != nil || qty < 1 || qty > httpx.MaxCount {
			return httpx.Invalid("part_qty_"+k, "the quantity of part %s must be a whole number from 1 to %d", number, httpx.MaxCount)
		}
		if !fromStock {
			used = dispatch.PartUsed{PartNumber: number, Manufacturer: strings.TrimSpace(f.Get("part_maker_" + k))}
		}
		used.Quantity = qty
		in.PartsUsed = append(in.PartsUsed, used)
	}
	in.Signature = dispatch.SignatureInput{Name: f.Get("signer"), Kind: f.Get("signature_kind")}
	switch in.Signature.Kind {
	case "drawn":
		in.Signature.Value = f.Get("signature_png")
	case "typed":
		in.Signature.Value = f.Get("signature_typed")
	}
	if err := httpx.Validate(in); err != nil {
		return err
	}
	_, err = c.cfg.Dispatch.Outcome(rq.ctx(), rq.actor(), id, in, rq.now)
	return c.afterAction(rq, fmt.Sprintf("/console/engineer/visits/%d", id), err, translate(rq.lang, "act.done"))
}
