package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// Suggestion is one engineer ranked for a visit.
type Suggestion struct {
	Engineer     string   `json:"engineer"`
	Name         string   `json:"name"`
	Score        int      `json:"score"`
	Matched      []string `json:"matched"`
	Available    *bool    `json:"available,omitempty"` // unknown without a window
	Unavailable  string   `json:"unavailable,omitempty"`
	OnCall       bool     `json:"on_call,omitempty"`
	SameCity     bool     `json:"same_city"`
	TravelNeeded bool     `json:"travel_needed"`
	// HomeCity is where the engineer starts from: outside the site's city
	// the trip is billable to the customer (seed 004).
	HomeCity string `json:"home_city"`
	// OnCallNow: the engineer is on an on-call shift at the time of asking.
	OnCallNow bool `json:"on_call_now,omitempty"`
	// LoadToday counts the visits booked for the engineer on the day of the
	// window (today without one), in the site's time zone.
	LoadToday int `json:"load_today"`
}

// Suggest ranks active engineers for visit id (NOC only): skill match
// (domain, modality, manufacturer), availability in the window (the
// visit's, or from/to) and the site's city. Available engineers come
// first, then by score, then the least loaded; now is the instant of "on
// call now" and of today's load without a window.
func (s *Store) Suggest(ctx context.Context, a auth.Actor, id int64, from, to *time.Time, now time.Time) ([]Suggestion, error) {
	if !a.IsNOC() {
		return nil, ErrForbidden.Errorf("only the NOC dispatches")
	}
	if err := checkWindow(from, to); err != nil {
		return nil, err
	}
	v, err := s.loadVisit(ctx, s.db, a, id, false)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", err)
	}
	if from == nil {
		from, to = v.WindowStart, v.WindowEnd
	}
	return s.suggest(ctx, a, v.SiteID, v.DeviceIDs, from, to, v.ID, now)
}

// SuggestForTicket ranks engineers for a ticket that has no visit yet, as
// Suggest does, for its site and devices and the window from/to (optional);
// now is the instant of "on call now" and of today's load without a window.
func (s *Store) SuggestForTicket(ctx context.Context, a auth.Actor, ticketID int64, from, to *time.Time, now time.Time) ([]Suggestion, error) {
	if !a.IsNOC() {
		return nil, ErrForbidden.Errorf("only the NOC dispatches")
	}
	if err := checkWindow(from, to); err != nil {
		return nil, err
	}
	t, err := s.tickets.Get(ctx, maintenance.Scope{}, fmt.Sprint(ticketID), now)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %w", translate(err))
	}
	if t.SiteID == "" {
		return []Suggestion{}, nil
	}
	return s.suggest(ctx, a, t.SiteID, t.DeviceIDs, from, to, 0, now)
}

func (s *Store) suggest(ctx context.Context, a auth.Actor, siteID string, deviceIDs []string, from, to *time.Time, exceptVisit int64, now time.Time) ([]Suggestion, error) {
	site, err := s.inv.Site(ctx, assets.Scope{}, siteID)
	if err != nil {
		return nil, fmt.Errorf("dispatch: site %s: %w", siteID, err)
	}
	loc := time.UTC
	if c, err := s.inv.Customer(ctx, assets.Scope{}, site.CustomerID); err == nil {
		loc = c.Location()
	}
	day := now
	if from != nil {
		day = *from
	}
	y, m, d := day.In(loc).Date()
	dayStart := time.Date(y, m, d, 0, 0, 0, 0, loc)
	dayEnd := dayStart.AddDate(0, 0, 1)
	var devices []assets.Device
	for _, did := range deviceIDs {
		d, err := s.inv.Device(ctx, assets.Scope{}, did)
		if err != nil {
			return nil, fmt.Errorf("dispatch: device %s: %w", did, err)
		}
		devices = append(devices, d)
	}
	engineers, err := s.Engineers(ctx, a)
	if err != nil {
		return nil, err
	}
	out := []Suggestion{}
	for _, e := range engineers {
		if !e.Active {
			continue
		}
		sg := Suggestion{Engineer: e.ID, Name: e.Name, Matched: []string{}, HomeCity: e.HomeCity}
		sg.Score, sg.Matched = skillScore(e, devices)
		sg.SameCity = sameCity(e.HomeCity, site.City)
		sg.TravelNeeded = site.City != "" && !sg.SameCity
		if sg.SameCity {
			sg.Score += 2
			sg.Matched = append(sg.Matched, "city:"+site.City)
		}
		if from != nil {
			av, err := s.availability(ctx, s.db, e, *from, *to, exceptVisit)
			if err != nil {
				return nil, fmt.Errorf("dispatch: %w", err)
			}
			sg.Available, sg.Unavailable, sg.OnCall = &av.Available, av.Reason, av.OnCall
		}
		if err := s.db.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM engineer_oncall WHERE engineer_id = $1 AND shift @> $2::timestamptz),
			(SELECT count(*) FROM visit_engineers ve JOIN visits v ON v.id = ve.visit_id WHERE ve.engineer_id = $1
				AND v.state IN ('scheduled', 'en_route', 'on_site') AND tstzrange(v.window_start, v.window_end) && tstzrange($3, $4))`,
			e.ID, now, dayStart, dayEnd).Scan(&sg.OnCallNow, &sg.LoadToday); err != nil {
			return nil, fmt.Errorf("dispatch: load of %s: %w", e.ID, err)
		}
		out = append(out, sg)
	}
	slices.SortStableFunc(out, func(x, y Suggestion) int {
		ax, ay := x.Available != nil && *x.Available, y.Available != nil && *y.Available
		switch {
		case ax != ay && ax:
			return -1
		case ax != ay:
			return 1
		case x.Score != y.Score:
			return y.Score - x.Score
		case x.LoadToday != y.LoadToday:
			return x.LoadToday - y.LoadToday
		}
		return strings.Compare(x.Engineer, y.Engineer)
	})
	return out, nil
}

// skillScore weighs an engineer's skills against the devices: the domain
// (IT or biomedical) 1, each modality 3, each manufacturer 2.
func skillScore(e Engineer, devices []assets.Device) (int, []string) {
	score, matched := 0, []string{}
	for _, d := range devices {
		biomedical := d.Kind == "modality" || d.Kind == "biomedical"
		switch {
		case biomedical && e.Biomedical:
			score++
			matched = append(matched, "biomedical")
		case !biomedical && e.IT:
			score++
			matched = append(matched, "it")
		}
		if d.Modality != "" && slices.ContainsFunc(e.Modalities, func(m string) bool { return strings.EqualFold(m, d.Modality) }) {
			score += 3
			matched = append(matched, "modality:"+d.Modality)
		}
		if d.Manufacturer != "" && slices.ContainsFunc(e.Manufacturers, func(m string) bool { return strings.EqualFold(m, d.Manufacturer) }) {
			score += 2
			matched = append(matched, "manufacturer:"+d.Manufacturer)
		}
	}
	return score, matched
}
