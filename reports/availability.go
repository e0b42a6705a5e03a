// Package reports adds up what the rest of Vigía recorded into what a
// contract promises: availability per device and contract in its covered
// hours, and the monthly report a hospital receives. It sits at the end of
// the flow: it reads through the owning packages' exported functions
// (inventory from assets, transitions, windows and outages from probes,
// tickets, pauses and SLA outcomes from maintenance, visits and billing
// from dispatch) and never writes their tables.
package reports

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/probes"
)

// Inventory is what reports read from assets.
type Inventory interface {
	Customer(ctx context.Context, sc assets.Scope, id string) (assets.Customer, error)
	Sites(ctx context.Context, sc assets.Scope, includeRetired bool) ([]assets.Site, error)
	Devices(ctx context.Context, f assets.DeviceFilter) ([]assets.Device, error)
	Contracts(ctx context.Context, sc assets.Scope, includeRetired bool) ([]assets.Contract, error)
}

// History is what reports read from probes.
type History interface {
	StateHistory(ctx context.Context, deviceIDs []string, from, to time.Time) (map[string][]probes.StateSpan, error)
	WindowsBetween(ctx context.Context, from, to time.Time) ([]*probes.Window, error)
	OutagesBetween(ctx context.Context, customerID string, from, to time.Time) ([]probes.Outage, error)
}

// Tickets is what reports read from maintenance.
type Tickets interface {
	OutageTickets(ctx context.Context, outageIDs []int64) (map[int64]maintenance.OutageTicket, error)
	TicketsOpened(ctx context.Context, customerID string, from, to time.Time) ([]maintenance.Ticket, error)
	PausesBetween(ctx context.Context, customerID string, from, to time.Time) ([]maintenance.PauseSpan, error)
	Outcomes(ctx context.Context, f maintenance.OutcomeFilter) ([]maintenance.Outcome, error)
}

// Field is what reports read from dispatch.
type Field interface {
	CustomerCaused(ctx context.Context, ticketIDs []int64) (map[int64]string, error)
	VisitsBetween(ctx context.Context, customerID string, from, to time.Time) ([]dispatch.Visit, error)
	Report(ctx context.Context, a auth.Actor, customerID, month string) (dispatch.Report, error)
}

// Reporter builds the reports.
type Reporter struct {
	Inventory Inventory
	History   History
	Tickets   Tickets
	Field     Field
	// Biomedical adds the biomedical service's section (nil: none).
	Biomedical Biomedical
	Policies   []*sla.Set // looked up in order: the first set naming a policy wins
	// Now bounds every period: nothing is counted past it.
	Now func() time.Time
}

// ErrNotFound is an unknown customer or a device not in its inventory,
// told as "not found: customer …".
var ErrNotFound = httpx.Kind(http.StatusNotFound, "not_found", "reports: not found", "not found")

// ErrInvalid is a bad request (period, format…), told by its reason alone.
var ErrInvalid = httpx.Kind(http.StatusBadRequest, "invalid_parameter", "reports: invalid request", "")

func (r *Reporter) policy(name string) (sla.Policy, error) {
	for _, s := range r.Policies {
		if p, err := s.Lookup(name); err == nil {
			return p, nil
		}
	}
	return sla.Policy{}, fmt.Errorf("reports: %w %q", sla.ErrUnknownPolicy, name)
}

// DeviceAvailability is one device's availability over a period, in its
// contract's covered time. Seconds are float because degraded time may
// count by a fraction.
type DeviceAvailability struct {
	DeviceID        string      `json:"device_id"`
	DeviceName      string      `json:"device_name"`
	SiteID          string      `json:"site_id"`
	ContractID      string      `json:"contract_id"`
	Policy          string      `json:"sla_policy"`
	CoveredSeconds  float64     `json:"covered_seconds"`
	DowntimeSeconds float64     `json:"downtime_seconds"`
	ExcludedSeconds float64     `json:"excluded_seconds"`
	Availability    float64     `json:"availability"`
	Exclusions      []Exclusion `json:"exclusions"`
}

// Exclusion is covered time not counted against a device, and why.
type Exclusion struct {
	Kind    string    `json:"kind"` // maintenance_window | customer_caused
	Ref     string    `json:"ref"`  // window id, or ticket number
	Reason  string    `json:"reason,omitempty"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"` // of covered time
}

// Exclusion kinds.
const (
	ExcludedWindow   = "maintenance_window"
	ExcludedCustomer = "customer_caused"
	// ExcludedUnmonitored is time no probe result covers (before a device's
	// first check): neither held for nor against it.
	ExcludedUnmonitored = "not_monitored"
)

// GroupAvailability adds up devices: a contract or a site.
type GroupAvailability struct {
	ID              string   `json:"id"`
	Name            string   `json:"name,omitempty"`
	Policy          string   `json:"sla_policy,omitempty"`
	Devices         int      `json:"devices"`
	CoveredSeconds  float64  `json:"covered_seconds"`
	DowntimeSeconds float64  `json:"downtime_seconds"`
	ExcludedSeconds float64  `json:"excluded_seconds"`
	Availability    float64  `json:"availability"`
	Target          *float64 `json:"target,omitempty"`
	TargetMet       *bool    `json:"target_met,omitempty"`
	// CreditPercent is the service credit of the tier reached (nil: none).
	CreditPercent *float64 `json:"credit_percent,omitempty"`
	CreditBelow   *float64 `json:"credit_tier_below,omitempty"`
}

// Availability is the report of `vigia report availability`.
type Availability struct {
	CustomerID string               `json:"customer_id"`
	From       time.Time            `json:"from"`
	To         time.Time            `json:"to"`
	Devices    []DeviceAvailability `json:"devices"`
	Contracts  []GroupAvailability  `json:"contracts"`
	Sites      []GroupAvailability  `json:"sites"`
}

// AvailabilityQuery selects a customer, a period and optionally a device.
type AvailabilityQuery struct {
	CustomerID string
	From, To   time.Time
	DeviceID   string
}

// Availability measures every device of the customer named by one of its
// contracts (or only q.DeviceID) over [q.From, q.To):
//   - covered time follows the contract's policy calendar (8x5 counts its
//     working hours, holidays excluded; 24x7 all), within the contract's
//     dates;
//   - excluded time is covered time in a maintenance window, in an outage
//     whose ticket was closed as caused by the customer, or before the
//     device's first probe result;
//   - downtime is covered, not excluded time the recorded transitions put
//     the device down (in full), degraded (times the policy's factor) or
//     unreachable (only when the policy says the site uplink is ours);
//   - availability = 1 − downtime ÷ (covered − excluded), 1 when nothing
//     was left to count.
func (r *Reporter) Availability(ctx context.Context, q AvailabilityQuery) (Availability, error) {
	if !q.From.Before(q.To) {
		return Availability{}, ErrInvalid.Errorf("the period must end after it starts")
	}
	if r.Now != nil && q.To.After(r.Now()) {
		q.To = r.Now()
		if !q.From.Before(q.To) {
			return Availability{}, ErrInvalid.Errorf("the period starts in the future")
		}
	}
	sc := assets.Scope{CustomerID: q.CustomerID}
	if _, err := r.Inventory.Customer(ctx, sc, q.CustomerID); err != nil {
		return Availability{}, ErrNotFound.Errorf("customer %q", q.CustomerID)
	}
	devices, err := r.Inventory.Devices(ctx, assets.DeviceFilter{Scope: sc})
	if err != nil {
		return Availability{}, fmt.Errorf("reports: devices: %w", err)
	}
	if q.DeviceID != "" {
		i := slices.IndexFunc(devices, func(d assets.Device) bool { return d.ID == q.DeviceID })
		if i < 0 {
			return Availability{}, ErrNotFound.Errorf("device %q of customer %q", q.DeviceID, q.CustomerID)
		}
		devices = devices[i : i+1]
	}
	contracts, err := r.Inventory.Contracts(ctx, sc, true)
	if err != nil {
		return Availability{}, fmt.Errorf("reports: contracts: %w", err)
	}
	sites, err := r.Inventory.Sites(ctx, sc, true)
	if err != nil {
		return Availability{}, fmt.Errorf("reports: sites: %w", err)
	}
	cust, _ := r.Inventory.Customer(ctx, sc, q.CustomerID)
	loc := cust.Location()
	sort.Slice(contracts, func(i, j int) bool { return contracts[i].ID < contracts[j].ID })

	type measured struct {
		dev      assets.Device
		contract assets.Contract
		policy   sla.Policy
		covered  []span
	}
	var todo []measured
	var ids []string
	for _, d := range devices {
		k, ok := contractOf(d.ID, contracts, q.From, q.To, loc)
		if !ok {
			continue // no contract promises anything for it
		}
		p, err := r.policy(k.SLAPolicy)
		if err != nil {
			return Availability{}, err
		}
		from, to := later(q.From, dayStart(k.StartsOn, loc)), earlier(q.To, dayStart(k.EndsOn, loc).AddDate(0, 0, 1))
		var covered []span
		for _, iv := range p.Calendar().Working(from, to) {
			covered = append(covered, span{iv.From, iv.To})
		}
		todo = append(todo, measured{d, k, p, merge(covered)})
		ids = append(ids, d.ID)
	}
	out := Availability{CustomerID: q.CustomerID, From: q.From, To: q.To, Devices: []DeviceAvailability{},
		Contracts: []GroupAvailability{}, Sites: []GroupAvailability{}}
	if len(todo) == 0 {
		return out, nil
	}
	history, err := r.History.StateHistory(ctx, ids, q.From, q.To)
	if err != nil {
		return out, err
	}
	windows, err := r.History.WindowsBetween(ctx, q.From, q.To)
	if err != nil {
		return out, err
	}
	caused, err := r.customerCaused(ctx, q)
	if err != nil {
		return out, err
	}
	for _, m := range todo {
		var excl []exclusion
		for _, w := range windows {
			if !w.Covers(m.dev) {
				continue
			}
			for _, s := range w.Spans(q.From, q.To) {
				excl = append(excl, exclusion{Exclusion{Kind: ExcludedWindow, Ref: fmt.Sprint(w.ID), Reason: w.Reason}, span{s.From, s.To}})
			}
		}
		for _, c := range caused {
			if c.involves(m.dev.ID) {
				excl = append(excl, c.exclusion)
			}
		}
		out.Devices = append(out.Devices, measure(m.dev, m.contract, m.policy, m.covered, history[m.dev.ID], excl))
	}
	out.Contracts = group(out.Devices, func(d DeviceAvailability) string { return d.ContractID }, func(id string) (string, string, *sla.Availability) {
		k := contracts[slices.IndexFunc(contracts, func(k assets.Contract) bool { return k.ID == id })]
		p, _ := r.policy(k.SLAPolicy)
		return k.Plan, k.SLAPolicy, p.Availability
	})
	out.Sites = group(out.Devices, func(d DeviceAvailability) string { return d.SiteID }, func(id string) (string, string, *sla.Availability) {
		if i := slices.IndexFunc(sites, func(s assets.Site) bool { return s.ID == id }); i >= 0 {
			return sites[i].Name, "", nil
		}
		return "", "", nil
	})
	return out, nil
}

// exclusion is an Exclusion with its span, before clipping to covered time.
type exclusion struct {
	Exclusion
	span span
}

// causedOutage is an outage excluded because its ticket was closed as the
// customer's doing.
type causedOutage struct {
	exclusion
	devices []string
}

func (c causedOutage) involves(id string) bool { return slices.Contains(c.devices, id) }

func (r *Reporter) customerCaused(ctx context.Context, q AvailabilityQuery) ([]causedOutage, error) {
	outages, err := r.History.OutagesBetween(ctx, q.CustomerID, q.From, q.To)
	if err != nil || len(outages) == 0 {
		return nil, err
	}
	ids := make([]int64, len(outages))
	for i, o := range outages {
		ids[i] = o.ID
	}
	tickets, err := r.Tickets.OutageTickets(ctx, ids)
	if err != nil {
		return nil, err
	}
	var ticketIDs []int64
	for _, t := range tickets {
		ticketIDs = append(ticketIDs, t.TicketID)
	}
	flags, err := r.Field.CustomerCaused(ctx, ticketIDs)
	if err != nil {
		return nil, err
	}
	var out []causedOutage
	for _, o := range outages {
		t, ok := tickets[o.ID]
		if !ok || !t.Closed || (flags[t.TicketID] == "" && t.CloseReason != maintenance.CloseMisuse) {
			continue
		}
		end := q.To
		if o.EndedAt != nil {
			end = earlier(*o.EndedAt, q.To)
		}
		devs := append([]string(nil), o.Affected...)
		if o.DeviceID != nil {
			devs = append(devs, *o.DeviceID)
		}
		reason := flags[t.TicketID]
		if reason == "" {
			reason = t.CloseReason
		}
		out = append(out, causedOutage{exclusion{Exclusion{Kind: ExcludedCustomer, Ref: t.Number, Reason: reason},
			span{later(o.StartedAt, q.From), end}}, devs})
	}
	return out, nil
}

// weight is how much of a second in state counts as down.
func weight(state string, a *sla.Availability) float64 {
	switch state {
	case "down":
		return 1
	case "degraded":
		if a != nil {
			return a.DegradedFactor
		}
	case "unreachable":
		if a != nil && a.UplinkOurs {
			return 1
		}
	}
	return 0
}

// measure is the arithmetic of one device, on spans already fetched.
func measure(d assets.Device, k assets.Contract, p sla.Policy, covered []span, states []probes.StateSpan, excl []exclusion) DeviceAvailability {
	out := DeviceAvailability{DeviceID: d.ID, DeviceName: d.Name, SiteID: d.SiteID, ContractID: k.ID, Policy: p.Name, Exclusions: []Exclusion{}}
	for _, s := range states {
		if s.State == "unknown" {
			excl = append(excl, exclusion{Exclusion{Kind: ExcludedUnmonitored}, span{s.From, s.To}})
		}
	}
	var all []span
	for _, e := range excl {
		in := intersect(covered, []span{e.span})
		if len(in) == 0 {
			continue
		}
		e.Exclusion.From, e.Exclusion.To, e.Exclusion.Seconds = e.span.from, e.span.to, total(in).Seconds()
		out.Exclusions = append(out.Exclusions, e.Exclusion)
		all = append(all, e.span)
	}
	excluded := intersect(covered, merge(all))
	counted := subtract(covered, excluded)
	var down float64
	for _, s := range states {
		if w := weight(s.State, p.Availability); w > 0 {
			down += w * total(intersect(counted, []span{{s.From, s.To}})).Seconds()
		}
	}
	out.CoveredSeconds, out.ExcludedSeconds, out.DowntimeSeconds = total(covered).Seconds(), total(excluded).Seconds(), down
	out.Availability = ratio(down, total(counted).Seconds())
	return out
}

// ratio is 1 − down ÷ counted, rounded to 6 decimals (to the second of a
// year) so that reports print the same figure everywhere.
func ratio(down, counted float64) float64 {
	if counted <= 0 {
		return 1
	}
	return math.Round((1-down/counted)*1e6) / 1e6
}

// group adds devices up by key; info names a group and gives its rules.
func group(ds []DeviceAvailability, key func(DeviceAvailability) string, info func(string) (name, policy string, a *sla.Availability)) []GroupAvailability {
	byID := map[string]*GroupAvailability{}
	var order []string
	for _, d := range ds {
		id := key(d)
		g, ok := byID[id]
		if !ok {
			g = &GroupAvailability{ID: id}
			byID[id] = g
			order = append(order, id)
		}
		g.Devices++
		g.CoveredSeconds += d.CoveredSeconds
		g.DowntimeSeconds += d.DowntimeSeconds
		g.ExcludedSeconds += d.ExcludedSeconds
	}
	sort.Strings(order)
	out := make([]GroupAvailability, 0, len(order))
	for _, id := range order {
		g := byID[id]
		g.Availability = ratio(g.DowntimeSeconds, g.CoveredSeconds-g.ExcludedSeconds)
		var a *sla.Availability
		g.Name, g.Policy, a = info(id)
		if a != nil && a.Target > 0 {
			target, met := a.Target, g.Availability >= a.Target
			g.Target, g.TargetMet = &target, &met
		}
		if tier, ok := a.Tier(g.Availability); ok {
			g.CreditPercent, g.CreditBelow = &tier.CreditPercent, &tier.Below
		}
		out = append(out, *g)
	}
	return out
}

// contractOf is the contract that names the device and overlaps the
// period (the first of contracts, sorted by id, when several do).
func contractOf(deviceID string, contracts []assets.Contract, from, to time.Time, loc *time.Location) (assets.Contract, bool) {
	for _, k := range contracts {
		if !k.Names(deviceID) {
			continue
		}
		if dayStart(k.StartsOn, loc).Before(to) && dayStart(k.EndsOn, loc).AddDate(0, 0, 1).After(from) {
			return k, true
		}
	}
	return assets.Contract{}, false
}

// dayStart is midnight of a contract date in the customer's zone.
func dayStart(d time.Time, loc *time.Location) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
}
