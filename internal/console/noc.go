package console

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
)

// queuedTicket is an open ticket with the due instant that matters next.
type queuedTicket struct {
	maintenance.Ticket
	NextClock string // response or resolution
	NextDue   *time.Time
}

// urgencyQueue keeps open tickets and sorts them by the SLA instant that
// comes next: the response due while unanswered, then the resolution due.
// Tickets with no target come last, most severe first.
func urgencyQueue(tickets []maintenance.Ticket) []queuedTicket {
	var out []queuedTicket
	for _, t := range tickets {
		if t.Status == maintenance.StatusClosed {
			continue
		}
		q := queuedTicket{Ticket: t}
		switch {
		case t.Status == maintenance.StatusSolved:
			// Awaiting the customer: no clock of ours runs.
		case t.AcknowledgedAt == nil && t.ResponseDueAt != nil:
			q.NextClock, q.NextDue = maintenance.ClockResponse, t.ResponseDueAt
		case t.ResolutionDueAt != nil:
			q.NextClock, q.NextDue = maintenance.ClockResolution, t.ResolutionDueAt
		}
		out = append(out, q)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.NextDue != nil && b.NextDue != nil && !a.NextDue.Equal(*b.NextDue):
			return a.NextDue.Before(*b.NextDue)
		case (a.NextDue == nil) != (b.NextDue == nil):
			return a.NextDue != nil
		case a.Severity != b.Severity:
			return a.Severity < b.Severity
		}
		return a.ID < b.ID
	})
	return out
}

// openTickets reads the newest tickets of a scope and keeps the open ones.
func (c *Console) openTickets(rq *request, scope maintenance.Scope, customer, site string) ([]queuedTicket, error) {
	list, _, err := c.cfg.Tickets.List(rq.ctx(), maintenance.ListFilter{Scope: scope, CustomerID: customer, SiteID: site, Limit: 500})
	if err != nil {
		return nil, err
	}
	return urgencyQueue(list), nil
}

// stateCounts counts devices per state, in probes' order.
type stateCount struct {
	State string
	N     int
}

var stateOrder = []string{"down", "unreachable", "degraded", "misconfigured", "maintenance", "unknown", "up"}

func countStates(rows []deviceRow) []stateCount {
	n := map[string]int{}
	for _, r := range rows {
		n[r.State]++
	}
	var out []stateCount
	for _, s := range stateOrder {
		if n[s] > 0 {
			out = append(out, stateCount{s, n[s]})
		}
	}
	return out
}

// ticketPage gathers what a ticket page shows.
type ticketPage struct {
	maintenance.Detail
	Marks       []maintenance.Mark
	Visits      []dispatch.Visit
	Parts       []dispatch.PartRequest
	Attachments []maintenance.StoredAttachment
	PauseReasons,
	CloseReasons []string
	CanReopen bool
	// Hold is what holds the ticket; Dispatch the NOC's dispatch tools.
	Hold     *holdView
	Dispatch *dispatchPanel
}

func (c *Console) loadTicket(rq *request, scope maintenance.Scope, ref string, staff bool) (ticketPage, error) {
	d, err := c.cfg.Tickets.Get(rq.ctx(), scope, ref, rq.now)
	if err != nil {
		return ticketPage{}, err
	}
	p := ticketPage{Detail: d, PauseReasons: maintenance.PauseReasons, CloseReasons: maintenance.StaffCloseReasons}
	if staff {
		if p.Marks, err = c.cfg.Tickets.Marks(rq.ctx(), d.ID); err != nil {
			return p, err
		}
	}
	actor := rq.actor()
	if p.Visits, err = c.cfg.Dispatch.Visits(rq.ctx(), actor, dispatch.VisitFilter{TicketID: d.ID}); err != nil {
		return p, err
	}
	if p.Parts, err = c.cfg.Dispatch.PartRequests(rq.ctx(), actor, d.ID); err != nil {
		return p, err
	}
	if p.Attachments, err = c.cfg.Tickets.Attachments(rq.ctx(), scope, d.ID); err != nil {
		return p, err
	}
	p.CanReopen = d.Status == maintenance.StatusSolved || d.Status == maintenance.StatusClosed
	if p.Hold, err = c.ticketHold(rq, d.ID); err != nil {
		return p, err
	}
	return p, nil
}

func (c *Console) staffTicket(rq *request) error {
	p, err := c.loadTicket(rq, maintenance.Scope{}, rq.r.PathValue("ref"), true)
	if err != nil {
		return err
	}
	if rq.sess.User.Role == auth.RoleNOC && rq.r.Header.Get(liveHeader) == "" {
		if err := c.loadDispatchPanel(rq, &p); err != nil {
			return err
		}
	}
	c.render(rq, http.StatusOK, "ticket", p.Number+" · "+p.Title, p)
	return nil
}

// staffActions are the ticket actions the staff page offers.
var staffActions = []string{"acknowledge", "assign", "pause", "resume", "severity", "solve", "comment", "close", "reopen"}

func (c *Console) staffAct(rq *request) error {
	ref, action := rq.r.PathValue("ref"), rq.r.PostFormValue("action")
	if !slices.Contains(staffActions, action) {
		return fmt.Errorf("%w: unknown action %q", maintenance.ErrInvalid, action)
	}
	in := maintenance.ActionInput{Text: rq.r.PostFormValue("text"), Reason: rq.r.PostFormValue("reason"),
		Assignee: rq.r.PostFormValue("assignee"), Cause: rq.r.PostFormValue("cause")}
	if s := rq.r.PostFormValue("severity"); s != "" {
		sev, err := strconv.Atoi(s)
		if err != nil || sev < 1 || sev > 4 {
			return httpx.Invalid("severity", "must be 1 to 4")
		}
		in.Severity = sev
	}
	if err := httpx.Validate(in); err != nil {
		return err
	}
	t, err := c.cfg.Tickets.Act(rq.ctx(), rq.actor(), ref, action, in, rq.now)
	to := "/console/noc/tickets/" + urlPathEscape(ref)
	if err == nil {
		to = "/console/noc/tickets/" + urlPathEscape(t.Number)
	}
	return c.afterAction(rq, to, err, translate(rq.lang, "act.done"))
}
