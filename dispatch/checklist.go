package dispatch

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
)

// Checklists are data reviewed by the field team, not Go literals.
//
//go:embed checklists.yaml
var checklistsYAML []byte

// ChecklistItem is one step of a visit.
type ChecklistItem struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
	Done bool   `json:"done"`
	Note string `json:"note,omitempty"`
}

type templateMatch struct {
	Kind         string `yaml:"kind"`
	Modality     string `yaml:"modality"`
	Manufacturer string `yaml:"manufacturer"`
	Purpose      string `yaml:"purpose"`
}

type template struct {
	Name  string        `yaml:"name"`
	Match templateMatch `yaml:"match"`
	Items []string      `yaml:"items"`
}

type templates []template

func loadTemplates(data []byte) (templates, error) {
	var f struct {
		Templates templates `yaml:"templates"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("dispatch: checklists: %w", err)
	}
	seen := map[string]bool{}
	for _, t := range f.Templates {
		if t.Name == "" || seen[t.Name] || len(t.Items) == 0 {
			return nil, fmt.Errorf("dispatch: checklists: template %q needs a unique name and items", t.Name)
		}
		seen[t.Name] = true
	}
	return f.Templates, nil
}

var checklists = func() templates {
	t, err := loadTemplates(checklistsYAML)
	if err != nil {
		panic(err) // embedded data: any test catches a broken file
	}
	return t
}()

// choose returns the most specific template matching the device and
// purpose: every field a template names must match, and the one naming
// the most fields wins (the first on a tie).
func (ts templates) choose(d assets.Device, purpose string) (template, bool) {
	best, bestScore := template{}, -1
	for _, t := range ts {
		score := 0
		ok := true
		for _, f := range []struct{ want, have string }{
			{t.Match.Kind, d.Kind}, {t.Match.Modality, d.Modality}, {t.Match.Manufacturer, d.Manufacturer}, {t.Match.Purpose, purpose},
		} {
			if f.want == "" {
				continue
			}
			if !strings.EqualFold(f.want, f.have) {
				ok = false
				break
			}
			score++
		}
		if ok && score > bestScore {
			best, bestScore = t, score
		}
	}
	return best, bestScore >= 0
}

// checklistFor builds a visit's checklist from its devices: each device's
// template, items in order, repeated items (two servers) listed once.
func checklistFor(devices []assets.Device, purpose string) (string, []ChecklistItem) {
	var names []string
	items := []ChecklistItem{}
	seen := map[string]bool{}
	if len(devices) == 0 {
		devices = []assets.Device{{}}
	}
	for _, d := range devices {
		t, ok := checklists.choose(d, purpose)
		if !ok {
			continue
		}
		if !seen["template:"+t.Name] {
			names = append(names, t.Name)
			seen["template:"+t.Name] = true
		}
		for _, text := range t.Items {
			if len(devices) > 1 && d.Name != "" {
				text = d.Name + ": " + text
			}
			if seen[text] {
				continue
			}
			seen[text] = true
			items = append(items, ChecklistItem{ID: len(items) + 1, Text: text})
		}
	}
	return strings.Join(names, ","), items
}

// ChecklistPreview is the checklist a visit to the ticket's devices gets
// (before the dispatcher's own items), for the dispatch form.
func (s *Store) ChecklistPreview(ctx context.Context, a auth.Actor, deviceIDs []string, purpose string) ([]ChecklistItem, error) {
	if !a.IsProvider() {
		return nil, ErrForbidden.Errorf("checklists are the provider's")
	}
	var devices []assets.Device
	for _, id := range deviceIDs {
		d, err := s.inv.Device(ctx, assets.Scope{}, id)
		if err != nil {
			return nil, fmt.Errorf("dispatch: device %s: %w", id, err)
		}
		devices = append(devices, d)
	}
	_, items := checklistFor(devices, purpose)
	return items, nil
}
