// Package maintenance is Vigía's service desk: tickets with their timeline,
// SLA clock (computed by maintenance/sla from the rows), automatic tickets
// from outages and Alertmanager, the pre-closure protocol, and the
// notification outbox.
//
// Who may do what on a ticket:
//   - NOC staff and engineers: everything.
//   - Customers (confined to their own customer; another customer's ticket
//     is 404): create, list, show, comment, confirm a solution, reopen
//     (reject a solution, or reopen a closed ticket within the policy's
//     window). Acknowledge, assign, pause/resume, change severity, solve
//     and close are the provider's acts: 403.
package maintenance

import (
	"net/http"
	"slices"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// Ticket statuses. pending carries a reason (see PauseReasons); solved is
// "solved, awaiting the customer's confirmation".
const (
	StatusNew          = "new"
	StatusAcknowledged = "acknowledged"
	StatusInProgress   = "in_progress"
	StatusPending      = "pending"
	StatusSolved       = "solved"
	StatusClosed       = "closed"
	StatusReopened     = "reopened"
)

// Sources of tickets.
const (
	SourceProbe        = "probe"
	SourcePortal       = "portal"
	SourceAPI          = "api"
	SourceAlertmanager = "alertmanager"
	SourcePreventive   = "preventive"
)

// Close reasons.
const (
	CloseConfirmed        = "confirmed"          // the customer confirmed the solution
	CloseAcceptedNoAnswer = "accepted_no_answer" // seed 000 §15: no answer after the contact cadence
	CloseAutoClosed       = "auto_closed"        // seed 003: 48 h awaiting confirmation
	CloseResolved         = "resolved"           // closed by the NOC
	CloseMisuse           = "misuse"             // seed 000 §10
	CloseDuplicate        = "duplicate"
	CloseCancelled        = "cancelled"
	// CloseEquipmentUnavailable: seed 000 §8, the equipment was not
	// available at the agreed visit; a new ticket reschedules it.
	CloseEquipmentUnavailable = "equipment_unavailable"
)

// PauseReasons are why an SLA clock may stop (seed 000, seed 003).
var PauseReasons = []string{"customer", "manufacturer", "spare_parts", "import", "third_party"}

// StaffCloseReasons are the reasons NOC staff may give when closing.
var StaffCloseReasons = []string{CloseResolved, CloseMisuse, CloseDuplicate, CloseCancelled}

// DefaultPolicy is the SLA policy of a ticket whose customer has no
// contract at all: billable work is still answered on the seed 000 8x5
// terms. A customer with a contract that does not cover the device gets
// that contract's policy.
const DefaultPolicy = "imaging-8x5"

// ReportCategory marks a report request, due per the policy's Report
// target (seed 000 §14: 72 business hours).
const ReportCategory = "report"

// Errors the API answers with their status (httpx.Problem). A refusal
// derived from one (ErrInvalid.Errorf…) is told to people as the kind and
// the reason: "invalid request: title is required".
var (
	ErrNotFound  = httpx.Kind(http.StatusNotFound, "not_found", "maintenance: ticket not found", "ticket not found")
	ErrForbidden = httpx.Kind(http.StatusForbidden, "forbidden", "maintenance: not allowed for this role", "not allowed for this role")
	ErrConflict  = httpx.Kind(http.StatusConflict, "conflict", "maintenance: not possible in the ticket's current status", "not possible in the ticket's current status")
	ErrInvalid   = httpx.Kind(http.StatusBadRequest, "invalid_request", "maintenance: invalid request", "invalid request")
	ErrRefused   = httpx.Kind(http.StatusUnprocessableEntity, "refused", "maintenance: refused", "refused")
)

// Ticket is a ticket as stored.
type Ticket struct {
	ID               int64      `json:"id"`
	Number           string     `json:"number"`
	CustomerID       string     `json:"customer_id"`
	SiteID           string     `json:"site_id,omitempty"`
	DeviceIDs        []string   `json:"device_ids"`
	Title            string     `json:"title"`
	Description      string     `json:"description,omitempty"`
	Category         string     `json:"category,omitempty"`
	Requester        string     `json:"requester,omitempty"`
	Severity         int        `json:"severity"`
	OpenedSeverity   int        `json:"opened_severity"`
	Source           string     `json:"source"`
	Status           string     `json:"status"`
	PendingReason    string     `json:"pending_reason,omitempty"`
	Assignee         string     `json:"assignee,omitempty"`
	Billable         bool       `json:"billable"`
	BillableReason   string     `json:"billable_reason"`
	ContractID       string     `json:"contract_id,omitempty"`
	SLAPolicy        string     `json:"sla_policy"`
	AutoKey          string     `json:"auto_key,omitempty"`
	PreviousTicketID *int64     `json:"previous_ticket_id,omitempty"`
	OpenedAt         time.Time  `json:"opened_at"`
	AcknowledgedAt   *time.Time `json:"acknowledged_at,omitempty"`
	SolvedAt         *time.Time `json:"solved_at,omitempty"`
	SolveRound       int        `json:"solve_round"`
	ClosedAt         *time.Time `json:"closed_at,omitempty"`
	CloseReason      string     `json:"close_reason,omitempty"`
	KBLinks          []string   `json:"kb_links,omitempty"`
	ResponseDueAt    *time.Time `json:"response_due_at,omitempty"`
	ResponseWarnAt   *time.Time `json:"response_warn_at,omitempty"`
	ResolutionDueAt  *time.Time `json:"resolution_due_at,omitempty"`
	ReportDueAt      *time.Time `json:"report_due_at,omitempty"`
	CreatedBy        string     `json:"created_by"`
	UpdatedAt        time.Time  `json:"updated_at"`
	NOCOnly          bool       `json:"noc_only,omitempty"` // the NOC's own incident: hidden from the customer
}

// Event is one timeline entry.
type Event struct {
	ID     int64          `json:"id"`
	At     time.Time      `json:"at"`
	Author string         `json:"author"`
	Kind   string         `json:"kind"`
	Text   string         `json:"text,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

// Pause is one SLA pause.
type Pause struct {
	ID        int64      `json:"id"`
	Reason    string     `json:"reason"`
	Reasons   []string   `json:"reasons"` // every reason that held the clock in this interval
	Note      string     `json:"note,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	StartedBy string     `json:"started_by"`
	EndedBy   string     `json:"ended_by,omitempty"`
}

// SeverityChange is one re-prioritisation.
type SeverityChange struct {
	At     time.Time `json:"at"`
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason,omitempty"`
	Author string    `json:"author"`
}

// ClosureTask is one scheduled step of the pre-closure protocol.
type ClosureTask struct {
	Round       int        `json:"round"`
	Seq         int        `json:"seq"`
	Kind        string     `json:"kind"`
	DueAt       time.Time  `json:"due_at"`
	DoneAt      *time.Time `json:"done_at,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
}

// open reports whether the ticket still counts as open (closed is final
// unless reopened).
func (t *Ticket) open() bool { return t.Status != StatusClosed }

// Action is what a person, or Vigía, does to a ticket: POST
// /api/v1/tickets/{id}/{action}, the console's buttons, the other stages.
type Action string

// The ticket actions.
const (
	ActionAcknowledge Action = "acknowledge"
	ActionAssign      Action = "assign"
	ActionComment     Action = "comment"
	ActionPause       Action = "pause"
	ActionResume      Action = "resume"
	ActionSeverity    Action = "severity"
	ActionSolve       Action = "solve"
	ActionConfirm     Action = "confirm"
	ActionReopen      Action = "reopen"
	ActionClose       Action = "close"
)

// Actions are every ticket action, in the API's order.
var Actions = []Action{ActionAcknowledge, ActionAssign, ActionComment, ActionPause, ActionResume, ActionSeverity,
	ActionSolve, ActionConfirm, ActionReopen, ActionClose}

// actionNames are Actions as the API's path spells them.
func actionNames() []string {
	out := make([]string, len(Actions))
	for i, a := range Actions {
		out[i] = string(a)
	}
	return out
}

// actionRule is what the one table says of an action: whether only staff
// (NOC, engineers) may do it, and the statuses it may start from (nil: the
// action checks its own, as reopen and close do).
type actionRule struct {
	staffOnly bool
	from      []string
}

// actionRules is the one table of ticket actions.
var actionRules = map[Action]actionRule{
	ActionAcknowledge: {true, []string{StatusNew, StatusReopened}},
	ActionAssign:      {true, []string{StatusNew, StatusAcknowledged, StatusInProgress, StatusReopened}},
	ActionComment:     {false, []string{StatusNew, StatusAcknowledged, StatusInProgress, StatusPending, StatusSolved, StatusReopened, StatusClosed}},
	ActionPause:       {true, []string{StatusNew, StatusAcknowledged, StatusInProgress, StatusReopened}},
	ActionResume:      {true, []string{StatusPending}},
	ActionSeverity:    {true, []string{StatusNew, StatusAcknowledged, StatusInProgress, StatusPending, StatusReopened}},
	ActionSolve:       {true, []string{StatusNew, StatusAcknowledged, StatusInProgress, StatusPending, StatusReopened}},
	ActionConfirm:     {false, []string{StatusSolved}},
	ActionReopen:      {false, nil},
	ActionClose:       {true, nil},
}

// canDo reports whether action may start from status (true for an action
// that checks its own).
func canDo(action Action, status string) bool {
	r := actionRules[action]
	return r.from == nil || slices.Contains(r.from, status)
}

// coreServer reports whether a device's loss stops the whole platform
// (seed 000: PACS/RIS core server down ⇒ Sev 1).
func coreServer(d assets.Device) bool {
	return d.Core && (d.Kind == "pacs" || d.Kind == "ris" || d.Kind == "broker")
}

// outageSeverity is the severity of an automatic ticket for a device down.
func outageSeverity(d assets.Device) int {
	if coreServer(d) {
		return 1
	}
	return 2
}
