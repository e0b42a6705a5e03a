package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/probes"
)

// ProbeReads is what the pages read of the probes (probes.Store): live
// states for a list of devices in one read, open outages, collectors.
type ProbeReads interface {
	LiveStates(ctx context.Context, ids []string) (map[string]probes.LiveState, error)
	Outages(ctx context.Context, f probes.OutageFilter) ([]probes.Outage, error)
	Collectors(ctx context.Context, customerID string) ([]probes.CollectorStatus, error)
}

// DeviceHistory reads a device's history (probes.Store): what the device
// view lists, the same as GET /api/v1/devices/{id}/events.
type DeviceHistory interface {
	History(ctx context.Context, q probes.HistoryQuery) ([]probes.HistoryEntry, error)
}

// historyLine is one history entry worded for the reader.
type historyLine struct {
	probes.HistoryEntry
	What   string // "Degraded → Up", "Rebooted", "Trap linkDown"
	Detail string // a short reading of the detail
	Class  string // for the page's colours: the state reached, or the kind
}

// devicePage is the device view: its state and its history.
type devicePage struct {
	Device  deviceRow
	Lines   []historyLine
	Back    string
	BackKey string
}

// nocDevice serves /console/noc/devices/{id}.
func (c *Console) nocDevice(rq *request) error {
	return c.device(rq, assets.Scope{}, "/console/noc", "nav.board")
}

// portalDevice serves /console/portal/devices/{id}: the user's customer's
// devices only; another's is not found, like a missing one.
func (c *Console) portalDevice(rq *request) error {
	as, _ := rq.customerScope()
	return c.device(rq, as, "/console/portal", "nav.portal")
}

func (c *Console) device(rq *request, scope assets.Scope, back, backKey string) error {
	q, err := probes.ParseHistoryQuery(rq.r.PathValue("id"), nil)
	if err != nil {
		return errNotFound
	}
	d, err := c.cfg.Assets.Device(rq.ctx(), scope, q.DeviceID)
	if err != nil {
		return err
	}
	rows, err := c.devicesWithState(rq.ctx(), assets.DeviceFilter{Scope: scope, SiteID: d.SiteID})
	if err != nil {
		return err
	}
	p := devicePage{Back: back, BackKey: backKey}
	for _, r := range rows {
		if r.ID == d.ID {
			p.Device = r
		}
	}
	if p.Device.ID == "" {
		return errNotFound
	}
	if c.cfg.History != nil {
		q.CustomerID = scope.CustomerID
		entries, err := c.cfg.History.History(rq.ctx(), q)
		if err != nil {
			return err
		}
		for _, e := range entries {
			p.Lines = append(p.Lines, wordHistory(rq.lang, e))
		}
	}
	c.render(rq, http.StatusOK, "device", d.Name, p)
	return nil
}

// wordHistory says an entry in lang.
func wordHistory(lang string, e probes.HistoryEntry) historyLine {
	l := historyLine{HistoryEntry: e, Class: e.Kind}
	switch e.Kind {
	case probes.HistoryTransition:
		l.What = translate(lang, "state."+e.From) + " → " + translate(lang, "state."+e.To)
		l.Class = "st-" + e.To
		l.Detail = evidenceText(e.Detail)
	case probes.HistoryEvent:
		l.What = translate(lang, "history.event."+e.Event)
		if strings.HasPrefix(l.What, "history.event.") {
			l.What = e.Event
		}
		l.Detail = eventText(lang, e.Event, e.Detail)
	case probes.HistoryTrap:
		name := e.Rule
		if name == "" {
			name = e.TrapOID
		}
		l.What = translate(lang, "history.trap", name)
		parts := []string{e.Version}
		if e.Inform {
			parts = append(parts, "inform")
		}
		if e.Effect != probes.TrapRecord {
			parts = append(parts, translate(lang, "history.effect."+e.Effect))
		}
		if e.Condition != "" {
			parts = append(parts, e.Condition)
		}
		l.Detail = strings.Join(parts, " · ")
	}
	return l
}

// evidenceText is the probes' details from a transition's evidence.
func evidenceText(raw json.RawMessage) string {
	var ev struct {
		Probes []struct {
			Prober string `json:"prober"`
			Detail string `json:"detail"`
		} `json:"probes"`
		Cause string `json:"cause"`
	}
	if json.Unmarshal(raw, &ev) != nil {
		return ""
	}
	var parts []string
	for _, p := range ev.Probes {
		if p.Detail != "" {
			parts = append(parts, p.Prober+": "+p.Detail)
		}
	}
	if ev.Cause != "" {
		parts = append(parts, ev.Cause)
	}
	return strings.Join(parts, "; ")
}

// eventText reads what matters of an event's detail: a trap alarm's
// wording, a storage forecast's volumes.
func eventText(lang, kind string, raw json.RawMessage) string {
	switch kind {
	case probes.EventTrapAlarm, probes.EventTrapCleared:
		var d struct {
			Condition string `json:"condition"`
			TextEN    string `json:"text_en"`
			TextES    string `json:"text_es"`
			Severity  int    `json:"severity"`
		}
		if json.Unmarshal(raw, &d) != nil {
			return ""
		}
		text := d.TextES
		if lang == "en" {
			text = d.TextEN
		}
		if text == "" {
			text = d.Condition
		}
		return fmt.Sprintf("%s (Sev %d)", text, d.Severity)
	case probes.EventStorageTrend:
		var d probes.StorageTrendDetail
		if json.Unmarshal(raw, &d) != nil {
			return ""
		}
		var parts []string
		for _, v := range d.Volumes {
			if v.Filling {
				parts = append(parts, translate(lang, "history.storage.filling", v.Volume, v.Days, v.FullAt.Format("2006-01-02")))
			} else {
				parts = append(parts, translate(lang, "history.storage.ok", v.Volume))
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}
