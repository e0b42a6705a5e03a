package console

import (
	"html/template"
	"net/url"
	"slices"
	"strings"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/maintenance"
)

// visitExtras is what the engineer needs on site besides the visit: the
// ticket (description and timeline), each device with its last probe, the
// site with its address, contact and a navigation link, the parts the
// engineer carries, the photos taken, and where the equipment-unavailable
// rule (seed 000 §8) moved the work.
type visitExtras struct {
	Ticket   maintenance.Detail
	Site     assets.Site
	Customer string
	Zone     string
	Devices  []deviceRow
	MapURL   string       // a web map searching the address
	GeoURL   template.URL // the phone's own maps application (geo: is not a scheme html/template trusts)
	Stock    []dispatch.StockLevel
	Photos   []maintenance.StoredAttachment
	Hold     *holdView
}

// loadVisitExtras reads the visit page's extras and makes the page speak
// in the site's time zone.
func (c *Console) loadVisitExtras(rq *request, v dispatch.Visit) (visitExtras, error) {
	var x visitExtras
	var err error
	if x.Ticket, err = c.cfg.Tickets.Get(rq.ctx(), maintenance.Scope{}, v.TicketNumber, rq.now); err != nil {
		return x, err
	}
	if x.Site, err = c.cfg.Assets.Site(rq.ctx(), assets.Scope{CustomerID: v.CustomerID}, v.SiteID); err != nil {
		return x, err
	}
	if cu, err := c.cfg.Assets.Customer(rq.ctx(), assets.Scope{CustomerID: v.CustomerID}, v.CustomerID); err == nil {
		x.Customer, rq.loc = cu.Name, cu.Location()
	}
	x.Zone = rq.loc.String()
	all, err := c.devicesWithState(rq.ctx(), assets.DeviceFilter{Scope: assets.Scope{CustomerID: v.CustomerID}, SiteID: v.SiteID})
	if err != nil {
		return x, err
	}
	for _, d := range all {
		if slices.Contains(v.DeviceIDs, d.ID) {
			x.Devices = append(x.Devices, d)
		}
	}
	addr := strings.Join(slices.DeleteFunc([]string{x.Site.Address, x.Site.City}, func(s string) bool { return strings.TrimSpace(s) == "" }), ", ")
	if addr != "" {
		x.MapURL = "https://www.openstreetmap.org/search?query=" + url.QueryEscape(addr)
		x.GeoURL = template.URL("geo:0,0?q=" + url.QueryEscape(addr)) // escaped: nothing of the address is code
	}
	// The stock the engineer carries: parts used from it are withdrawn.
	if id := rq.sess.User.EngineerID; id != "" {
		e, err := c.cfg.Dispatch.Engineer(rq.ctx(), rq.actor(), id)
		if err != nil {
			return x, err
		}
		if e.WarehouseID != "" {
			levels, err := c.cfg.Dispatch.Stock(rq.ctx(), rq.actor(), 0)
			if err != nil {
				return x, err
			}
			for _, l := range levels {
				if l.WarehouseID == e.WarehouseID && l.Quantity > 0 {
					x.Stock = append(x.Stock, l)
				}
			}
		}
	}
	atts, err := c.cfg.Tickets.Attachments(rq.ctx(), maintenance.Scope{CustomerID: rq.principal().CustomerScope()}, v.TicketID)
	if err != nil {
		return x, err
	}
	for _, a := range atts {
		if a.VisitID != nil && *a.VisitID == v.ID {
			x.Photos = append(x.Photos, a)
		}
	}
	if x.Hold, err = c.ticketHold(rq, v.TicketID); err != nil {
		return x, err
	}
	return x, nil
}

// stockPart reads a "warehouse|manufacturer|part number" choice of the
// engineer's stock.
func stockPart(choice string) (dispatch.PartUsed, bool) {
	f := strings.Split(choice, "|")
	if len(f) != 3 || f[0] == "" || f[2] == "" {
		return dispatch.PartUsed{}, false
	}
	return dispatch.PartUsed{Warehouse: f[0], Manufacturer: f[1], PartNumber: f[2]}, true
}
