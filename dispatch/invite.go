package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	ical "github.com/arran4/golang-ical"
	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// SetOrganizer is the address invitations name as their ORGANIZER (the
// notifications' sender); engineers' calendars answer there.
func (s *Store) SetOrganizer(email string) { s.organizer = strings.TrimSpace(email) }

func (s *Store) organizerAddress() string {
	if s.organizer == "" {
		return "vigia@localhost"
	}
	return s.organizer
}

// SetConsoleURL is the console's address as engineers reach it (for
// example https://vigia.example.org): dispatch e-mails link to the visit
// page under it. Empty leaves the link out.
func (s *Store) SetConsoleURL(base string) { s.consoleURL = strings.TrimRight(base, "/") }

// VisitURL is the console page of visit id, "" without a console URL.
func (s *Store) VisitURL(id int64) string {
	if s.consoleURL == "" {
		return ""
	}
	return fmt.Sprintf("%s/console/engineer/visits/%d", s.consoleURL, id)
}

// visitUID is the invitation's UID: one per visit, so every update and the
// cancellation replace the same calendar entry (RFC 5546 §2.1.4).
func visitUID(id int64) string { return fmt.Sprintf("visit-%d@vigia", id) }

// engineerText is the dispatch e-mail's wording in an engineer's language.
// It stays here rather than in notify: it is the presentation of dispatch's
// own artefact (the visit sheet beside its iCalendar invitation), laid out
// over dispatch's types (visits, teams, checklists, part requests) for the
// engineer, whose language dispatch owns; notify words what the customer
// reads.
type engineerText struct {
	subject, cancelSubject, visit, window, customer, site, address, contact, travel, devices, serial, team, lead,
	checklist, parts, none, warehouse, description, history, link, cancelled, signoff string
}

var engineerTexts = map[string]engineerText{
	"es": {subject: "[%s] Visita %d: %s, %s", cancelSubject: "[%s] Visita %d cancelada: %s, %s",
		visit: "Visita %d — ticket %s (Severidad %d): %s", window: "Ventana acordada", customer: "Cliente", site: "Sede",
		address: "Dirección", contact: "Contacto", travel: "Desplazamiento desde %s (a cargo del cliente).", devices: "Equipos",
		serial: "serie", team: "Equipo de trabajo", lead: "responsable", checklist: "Lista de chequeo", parts: "Repuestos a llevar",
		none: "(ninguno)", warehouse: "bodega", description: "Descripción", history: "Historia del ticket",
		link: "Visita en el teléfono", cancelled: "La visita %d del ticket %s (%s) fue cancelada.", signoff: "— Vigía NOC"},
	"en": {subject: "[%s] Visit %d: %s, %s", cancelSubject: "[%s] Visit %d cancelled: %s, %s",
		visit: "Visit %d — ticket %s (Severity %d): %s", window: "Agreed window", customer: "Customer", site: "Site",
		address: "Address", contact: "Contact", travel: "Travel from %s (billed to the customer).", devices: "Equipment",
		serial: "serial", team: "Team", lead: "lead", checklist: "Checklist", parts: "Spare parts to carry",
		none: "(none)", warehouse: "warehouse", description: "Description", history: "Ticket history",
		link: "Visit on your phone", cancelled: "Visit %d of ticket %s (%s) was cancelled.", signoff: "— Vigía NOC"},
}

func textFor(lang string) engineerText {
	if t, ok := engineerTexts[lang]; ok {
		return t
	}
	return engineerTexts["es"]
}

// visitEngineerContact is who an invitation goes to.
type visitEngineerContact struct {
	ID, Name, Email, Language string
}

func visitContacts(ctx context.Context, tx *sqlx.Tx, v Visit) ([]visitEngineerContact, error) {
	var out []visitEngineerContact
	for _, ve := range v.Engineers {
		c := visitEngineerContact{ID: ve.ID, Name: ve.Name}
		if err := tx.QueryRowContext(ctx, `SELECT email, language FROM engineers WHERE id = $1`, ve.ID).Scan(&c.Email, &c.Language); err != nil {
			return nil, fmt.Errorf("engineer %s: %w", ve.ID, err)
		}
		if c.Email != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// siteAddress is the LOCATION of a visit: what a navigation app finds.
func siteAddress(site assets.Site) string {
	parts := []string{}
	for _, p := range []string{site.Name, site.Address, site.City} {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ", ")
}

// invitation is the iCalendar object of a visit (RFC 5545, iTIP method
// REQUEST or CANCEL) with its window in the site's time zone.
type invitation struct {
	Method      ical.Method
	UID         string
	Sequence    int
	Start, End  time.Time
	Zone        *time.Location
	Summary     string
	Location    string
	Description string
	URL         string
	Stamp       time.Time
	Organizer   string
	Attendees   []visitEngineerContact
}

func (in invitation) String() string {
	cal := ical.NewCalendarFor("Vigía")
	cal.SetMethod(in.Method)
	addTimezone(cal, in.Zone, in.Start)
	ev := cal.AddEvent(in.UID)
	ev.SetSequence(in.Sequence)
	ev.SetDtStampTime(in.Stamp)
	local := func(t time.Time) string { return t.In(in.Zone).Format("20060102T150405") }
	ev.SetProperty(ical.ComponentPropertyDtStart, local(in.Start), ical.WithTZID(in.Zone.String()))
	ev.SetProperty(ical.ComponentPropertyDtEnd, local(in.End), ical.WithTZID(in.Zone.String()))
	ev.SetSummary(in.Summary)
	ev.SetLocation(in.Location)
	ev.SetDescription(in.Description)
	if in.URL != "" {
		ev.SetURL(in.URL)
	}
	ev.SetOrganizer("mailto:"+in.Organizer, ical.WithCN("Vigía NOC"))
	for _, a := range in.Attendees {
		ev.AddAttendee("mailto:"+a.Email, ical.WithCN(a.Name), ical.ParticipationRoleReqParticipant)
	}
	if in.Method == ical.MethodCancel {
		ev.SetStatus(ical.ObjectStatusCancelled)
	} else {
		ev.SetStatus(ical.ObjectStatusConfirmed)
	}
	return cal.Serialize()
}

// addTimezone writes the VTIMEZONE of zone for the year around at: its
// standard and daylight observances as Go's zone database has them, so a
// calendar without that zone still places the visit right.
func addTimezone(cal *ical.Calendar, zone *time.Location, at time.Time) {
	tz := cal.AddTimezone(zone.String())
	offset := func(t time.Time) string {
		_, off := t.In(zone).Zone()
		sign := "+"
		if off < 0 {
			sign, off = "-", -off
		}
		return fmt.Sprintf("%s%02d%02d", sign, off/3600, off%3600/60)
	}
	observance := func(dst bool, start time.Time, from, to string, name string) {
		props := &ical.ComponentBase{}
		props.SetProperty(ical.ComponentProperty(ical.PropertyDtstart), start.Format("20060102T150405"))
		props.SetProperty(ical.ComponentProperty(ical.PropertyTzoffsetfrom), from)
		props.SetProperty(ical.ComponentProperty(ical.PropertyTzoffsetto), to)
		props.SetProperty(ical.ComponentProperty(ical.PropertyTzname), name)
		if dst {
			tz.Components = append(tz.Components, &ical.Daylight{ComponentBase: *props})
		} else {
			tz.Components = append(tz.Components, &ical.Standard{ComponentBase: *props})
		}
	}
	// Offset changes within the year of the visit, found hour by hour.
	year := time.Date(at.In(zone).Year(), 1, 1, 0, 0, 0, 0, zone)
	changes := 0
	for t := year; t.Before(year.AddDate(1, 0, 0)); t = t.Add(time.Hour) {
		next := t.Add(time.Hour)
		if offset(t) == offset(next) {
			continue
		}
		for next.Add(-time.Minute).In(zone).Format("-0700") != offset(t) && next.After(t) {
			next = next.Add(-time.Minute) // the exact minute of the change
		}
		name, _ := next.In(zone).Zone()
		// DTSTART of an observance is the local time before the change.
		_, before := t.In(zone).Zone()
		observance(next.In(zone).IsDST(), next.In(time.FixedZone("", before)), offset(t), offset(next), name)
		changes++
	}
	if changes == 0 {
		name, _ := at.In(zone).Zone()
		observance(false, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), offset(at), offset(at), name)
	}
}

// visitFacts is what a dispatch e-mail says, read once for all engineers.
type visitFacts struct {
	contact customerContact
	loc     *time.Location
	site    assets.Site
	detail  maintenance.Detail
	devices []assets.Device
	parts   []PartRequest
}

func (s *Store) visitFacts(ctx context.Context, tx *sqlx.Tx, v *Visit, now time.Time) (visitFacts, error) {
	var f visitFacts
	var err error
	if f.contact, err = s.loadContact(ctx, tx, v.CustomerID); err != nil {
		return f, err
	}
	f.loc = f.contact.Location()
	if f.site, err = s.inv.InTx(tx).Site(ctx, assets.Scope{}, v.SiteID); err != nil {
		return f, fmt.Errorf("site %s: %w", v.SiteID, err)
	}
	if f.detail, err = s.tickets.Get(ctx, maintenance.Scope{}, fmt.Sprint(v.TicketID), now); err != nil {
		return f, fmt.Errorf("ticket %d: %w", v.TicketID, err)
	}
	for _, id := range v.DeviceIDs {
		d, err := s.inv.InTx(tx).Device(ctx, assets.Scope{}, id)
		if err != nil {
			return f, fmt.Errorf("device %s: %w", id, err)
		}
		f.devices = append(f.devices, d)
	}
	if f.parts, err = s.partRequests(ctx, tx, auth.NOCActor("dispatch"), v.TicketID); err != nil {
		return f, err
	}
	return f, nil
}

// dispatchBody is the e-mail of a scheduled visit in one language: device,
// site, address, contact, the agreed window in the site's zone, the team,
// the checklist, the parts to carry, the ticket and its history, and the
// link to the visit page.
func (s *Store) dispatchBody(x engineerText, v *Visit, f visitFacts) string {
	var b strings.Builder
	fmt.Fprintf(&b, x.visit+"\n\n", v.ID, f.detail.Number, f.detail.Severity, f.detail.Title)
	fmt.Fprintf(&b, "%s: %s – %s\n", x.window, notify.FormatIn(*v.WindowStart, f.loc), v.WindowEnd.In(f.loc).Format("15:04"))
	fmt.Fprintf(&b, "%s: %s\n%s: %s\n%s: %s, %s\n%s: %s\n", x.customer, f.contact.Name, x.site, f.site.Name, x.address, f.site.Address,
		f.site.City, x.contact, f.site.Contact)
	if u := s.VisitURL(v.ID); u != "" {
		fmt.Fprintf(&b, "%s: %s\n", x.link, u)
	}
	if v.Travel {
		fmt.Fprintf(&b, x.travel+"\n", v.TravelFrom)
	}
	fmt.Fprintf(&b, "\n%s:\n", x.devices)
	for _, d := range f.devices {
		what := d.Kind
		if d.Modality != "" {
			what += " " + d.Modality
		}
		fmt.Fprintf(&b, "  - %s (%s) %s %s, %s %s\n", d.Name, what, d.Manufacturer, d.Model, x.serial, d.Serial)
	}
	fmt.Fprintf(&b, "\n%s:\n", x.team)
	for _, e := range v.Engineers {
		lead := ""
		if e.Lead {
			lead = " (" + x.lead + ")"
		}
		fmt.Fprintf(&b, "  - %s%s\n", e.Name, lead)
	}
	fmt.Fprintf(&b, "\n%s:\n", x.checklist)
	for _, it := range v.Checklist {
		fmt.Fprintf(&b, "  [ ] %d. %s\n", it.ID, it.Text)
	}
	fmt.Fprintf(&b, "\n%s:\n", x.parts)
	n := 0
	for _, p := range f.parts {
		if p.State == PartCancelled || p.State == PartInstalled {
			continue
		}
		n++
		where := p.State
		if p.WarehouseID != "" {
			where += ", " + x.warehouse + " " + p.WarehouseID
		}
		fmt.Fprintf(&b, "  - %s %s ×%d (%s) %s\n", p.Manufacturer, p.PartNumber, p.Quantity, where, p.Description)
	}
	if n == 0 {
		b.WriteString("  " + x.none + "\n")
	}
	if f.detail.Description != "" {
		fmt.Fprintf(&b, "\n%s:\n%s\n", x.description, f.detail.Description)
	}
	fmt.Fprintf(&b, "\n%s:\n", x.history)
	for _, e := range f.detail.Timeline {
		line := e.Kind
		if e.Text != "" {
			line += ": " + e.Text
		}
		fmt.Fprintf(&b, "  %s  %s — %s\n", e.At.In(f.loc).Format("2006-01-02 15:04"), line, e.Author)
	}
	b.WriteString("\n" + x.signoff + "\n")
	return b.String()
}

// notifyEngineers sends a scheduled visit to each of its engineers, in
// their language, with the calendar invitation (SEQUENCE seq). A new
// window is a new dispatch: the same UID, a higher SEQUENCE.
func (s *Store) notifyEngineers(ctx context.Context, tx *sqlx.Tx, v *Visit, seq int, now time.Time) error {
	f, err := s.visitFacts(ctx, tx, v, now)
	if err != nil {
		return err
	}
	to, err := visitContacts(ctx, tx, *v)
	if err != nil {
		return err
	}
	for _, c := range to {
		x := textFor(c.Language)
		body := s.dispatchBody(x, v, f)
		inv := invitation{Method: ical.MethodRequest, UID: visitUID(v.ID), Sequence: seq, Start: *v.WindowStart, End: *v.WindowEnd,
			Zone: f.loc, Summary: fmt.Sprintf("%s · %s", f.detail.Number, f.site.Name), Location: siteAddress(f.site),
			Description: body, URL: s.VisitURL(v.ID), Stamp: now, Organizer: s.organizerAddress(), Attendees: to}
		subject := fmt.Sprintf(x.subject, f.detail.Number, v.ID, f.site.Name, v.WindowStart.In(f.loc).Format("2006-01-02 15:04"))
		if err := enqueue(ctx, tx, outboxMessage{Key: fmt.Sprintf("visit:%d:dispatched:%d", v.ID, seq), Recipient: c.Email,
			Subject: subject, Body: body, TicketID: v.TicketID,
			Payload: map[string]any{"kind": "visit_dispatched", "visit": v.ID, "ticket": f.detail.Number, "engineer": c.ID,
				"calendar": inv.String(), "calendar_method": string(ical.MethodRequest)}}, now); err != nil {
			return err
		}
	}
	return nil
}

// notifyCancelled withdraws a visit's invitation from its engineers'
// calendars (METHOD:CANCEL, the same UID, a higher SEQUENCE).
func (s *Store) notifyCancelled(ctx context.Context, tx *sqlx.Tx, v Visit, note string, now time.Time) error {
	var seq int
	if err := tx.QueryRowContext(ctx, `UPDATE visits SET ical_sequence = ical_sequence + 1 WHERE id = $1 RETURNING ical_sequence`,
		v.ID).Scan(&seq); err != nil {
		return fmt.Errorf("cancel invitation: %w", err)
	}
	f, err := s.visitFacts(ctx, tx, &v, now)
	if err != nil {
		return err
	}
	to, err := visitContacts(ctx, tx, v)
	if err != nil {
		return err
	}
	for _, c := range to {
		x := textFor(c.Language)
		when := notify.FormatIn(*v.WindowStart, f.loc)
		body := fmt.Sprintf(x.cancelled, v.ID, f.detail.Number, when)
		if note != "" {
			body += "\n" + note
		}
		body += "\n\n" + x.signoff + "\n"
		inv := invitation{Method: ical.MethodCancel, UID: visitUID(v.ID), Sequence: seq, Start: *v.WindowStart, End: *v.WindowEnd,
			Zone: f.loc, Summary: fmt.Sprintf("%s · %s", f.detail.Number, f.site.Name), Location: siteAddress(f.site),
			Description: body, Stamp: now, Organizer: s.organizerAddress(), Attendees: to}
		if err := enqueue(ctx, tx, outboxMessage{Key: fmt.Sprintf("visit:%d:cancelled", v.ID), Recipient: c.Email,
			Subject: fmt.Sprintf(x.cancelSubject, f.detail.Number, v.ID, f.site.Name, v.WindowStart.In(f.loc).Format("2006-01-02 15:04")),
			Body:    body, TicketID: v.TicketID,
			Payload: map[string]any{"kind": "visit_cancelled", "visit": v.ID, "ticket": f.detail.Number, "engineer": c.ID,
				"calendar": inv.String(), "calendar_method": string(ical.MethodCancel)}}, now); err != nil {
			return err
		}
	}
	return nil
}
