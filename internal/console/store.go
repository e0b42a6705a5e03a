package console

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
)

// deviceRow is a device with its live state, as the board shows it.
type deviceRow struct {
	assets.Device
	SiteName  string
	State     string
	Since     *time.Time
	Flapping  bool
	Detail    string
	LastProbe *time.Time
	// Failing: the last probe failed but the probes have not confirmed an
	// outage yet. The board shows it red at once — the NOC sees trouble
	// within one probe interval — and says it is still being confirmed.
	Failing bool
}

// devicesWithState lists the devices of f (scoped by the inventory store)
// with their probe state.
func (c *Console) devicesWithState(ctx context.Context, f assets.DeviceFilter) ([]deviceRow, error) {
	devices, err := c.cfg.Assets.Devices(ctx, f)
	if err != nil {
		return nil, err
	}
	return c.withStates(ctx, f.Scope, devices)
}

// withStates joins devices (read in scope sc) with their site names and
// probe states.
func (c *Console) withStates(ctx context.Context, sc assets.Scope, devices []assets.Device) ([]deviceRow, error) {
	sites, err := c.cfg.Assets.Sites(ctx, sc, false)
	if err != nil {
		return nil, err
	}
	siteNames := map[string]string{}
	for _, s := range sites {
		siteNames[s.ID] = s.Name
	}
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.ID
	}
	// Only ids the scoped inventory returned are looked up, in one read.
	states, err := c.cfg.Probes.LiveStates(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	out := make([]deviceRow, 0, len(devices))
	for _, d := range devices {
		row := deviceRow{Device: d, SiteName: siteNames[d.SiteID], State: "unknown"}
		if s, ok := states[d.ID]; ok {
			since := s.Since
			row.State, row.Since, row.Flapping, row.Detail, row.LastProbe = s.State, &since, s.Flapping, s.Detail, s.LastProbe
			row.Failing = s.Failures > 0 && (s.State == "up" || s.State == "degraded" || s.State == "unknown")
		}
		out = append(out, row)
	}
	return out, nil
}

// outageRow is an open outage.
type outageRow struct {
	ID         int64
	Kind       string
	CustomerID string
	SiteID     string
	DeviceID   string
	Affected   []string
	Cause      string
	StartedAt  time.Time
}

// openOutages lists open outages, oldest first, in a customer scope.
func (c *Console) openOutages(ctx context.Context, customer, site string) ([]outageRow, error) {
	open := true
	os, err := c.cfg.Probes.Outages(ctx, probes.OutageFilter{CustomerID: customer, SiteID: site, Open: &open, OldestFirst: true})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	out := make([]outageRow, len(os))
	for i, o := range os {
		out[i] = outageRow{ID: o.ID, Kind: o.Kind, CustomerID: o.CustomerID, SiteID: o.SiteID, Affected: o.Affected, Cause: o.Cause,
			StartedAt: o.StartedAt}
		if o.DeviceID != nil {
			out[i].DeviceID = *o.DeviceID
		}
	}
	return out, nil
}

// Attachment limits (seed 003: screenshots with the ticket).
const (
	maxAttachmentBytes = maintenance.MaxAttachmentBytes
	maxAttachments     = maintenance.MaxAttachments
	maxUploadBytes     = maxAttachments*maxAttachmentBytes + 1<<20
)

// storeAttachments saves checked uploads with a ticket, in the user's
// scope, and for photos taken on site with the visit.
func (c *Console) storeAttachments(rq *request, ticketID int64, visitID *int64, files []upload) error {
	checked := make([]maintenance.Attachment, len(files))
	for i, f := range files {
		checked[i] = maintenance.Attachment{Name: f.name, ContentType: f.contentType, Data: f.data, VisitID: visitID}
	}
	sc := maintenance.Scope{CustomerID: rq.principal().CustomerScope()}
	if err := c.cfg.Tickets.AddAttachments(rq.ctx(), sc, ticketID, rq.sess.User.Username, checked, rq.now); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// collectorRow is a collector on the board: when it last reached the NOC,
// and how far its newest applied result lags behind that contact.
type collectorRow struct {
	ID          int64
	Name        string
	CustomerID  string
	Sites       []string
	Contacted   bool
	LastContact time.Time
	LostAt      *time.Time
	Lag         string
}

// maxBoardCollectors bounds the board's collectors table.
const maxBoardCollectors = 500

// collectors lists the active collectors in scope, the lost ones first.
func (c *Console) collectors(ctx context.Context, customer string) ([]collectorRow, error) {
	cs, err := c.cfg.Probes.Collectors(ctx, customer)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	// The probes list by customer and name; a stable sort keeps that
	// order within the lost and the live.
	slices.SortStableFunc(cs, func(a, b probes.CollectorStatus) int {
		return cmp.Compare(boolRank(a.LostAt == nil), boolRank(b.LostAt == nil))
	})
	out := make([]collectorRow, 0, min(len(cs), maxBoardCollectors))
	for _, x := range cs[:min(len(cs), maxBoardCollectors)] {
		r := collectorRow{ID: x.ID, Name: x.Name, CustomerID: x.CustomerID, Sites: x.Sites, LostAt: x.LostAt,
			Lag: x.Lag().Round(time.Second).String()}
		if x.LastContactAt != nil {
			r.Contacted, r.LastContact = true, *x.LastContactAt
		}
		out = append(out, r)
	}
	return out, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}
