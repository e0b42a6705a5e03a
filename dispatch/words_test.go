package dispatch

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/vigia-noc/vigia/internal/auth"
)

// What dispatch writes on a ticket, its bill and the customer's mailbox is
// in the customer's language: Spanish as it always was, English for a
// customer whose language is "en" (the words themselves are tested in
// maintenance/notify).
func TestDispatchWritesInTheCustomerLanguage(t *testing.T) {
	type want struct {
		partRequested, partQuoted, caseOpened, caseAnswered, quoteProposed, quoteApproved     string
		visitProposed, visitScheduled, closed, carried, rescheduledNotes, travelLine, subject string
	}
	tests := []struct {
		lang string
		want func(part, quote, visit int64, old string) want
	}{
		{"es", func(part, quote, visit int64, old string) want {
			return want{
				partRequested:    fmt.Sprintf("Repuesto solicitado: Siemens S-1 ×2 (solicitud %d)", part),
				partQuoted:       fmt.Sprintf("Solicitud de repuesto %d: requested → quoted. precio de lista", part),
				caseOpened:       "Caso abierto con Siemens: CS-1",
				caseAnswered:     "Caso CS-1 de Siemens: opened → answered. Respuesta: aplicar el parche 3.1",
				quoteProposed:    fmt.Sprintf("Cotización %d: 2 h", quote),
				quoteApproved:    fmt.Sprintf("Cotización %d: approved", quote),
				visitProposed:    fmt.Sprintf("Visita %d propuesta (corrective) con eng-bog; desplazamiento desde Bogotá a cargo del cliente", visit),
				visitScheduled:   fmt.Sprintf("Visita %d: proposed → scheduled", visit),
				closed:           fmt.Sprintf("Equipo no disponible a la hora acordada (visita %d): sala ocupada", visit),
				carried:          "continúa la espera del ticket " + old,
				rescheduledNotes: fmt.Sprintf("Reprogramación de la visita %d (ticket %s)", visit, old),
				travelLine:       fmt.Sprintf("Desplazamiento Bogotá → Medellín, visita %d (ticket %s)", visit, old),
				subject:          "[" + old + "] Visita no realizada: equipo no disponible",
			}
		}},
		{"en", func(part, quote, visit int64, old string) want {
			return want{
				partRequested:    fmt.Sprintf("Spare part requested: Siemens S-1 ×2 (request %d)", part),
				partQuoted:       fmt.Sprintf("Part request %d: requested → quoted. precio de lista", part),
				caseOpened:       "Case opened with Siemens: CS-1",
				caseAnswered:     "Case CS-1 with Siemens: opened → answered. Answer: aplicar el parche 3.1",
				quoteProposed:    fmt.Sprintf("Quote %d: 2 h", quote),
				quoteApproved:    fmt.Sprintf("Quote %d: approved", quote),
				visitProposed:    fmt.Sprintf("Visit %d proposed (corrective) with eng-bog; travel from Bogotá billed to the customer", visit),
				visitScheduled:   fmt.Sprintf("Visit %d: proposed → scheduled", visit),
				closed:           fmt.Sprintf("Equipment unavailable at the agreed time (visit %d): sala ocupada", visit),
				carried:          "the wait of ticket " + old + " goes on",
				rescheduledNotes: fmt.Sprintf("Rescheduling of visit %d (ticket %s)", visit, old),
				travelLine:       fmt.Sprintf("Travel Bogotá → Medellín, visit %d (ticket %s)", visit, old),
				subject:          "[" + old + "] Visit not possible: equipment unavailable",
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if _, err := f.db.Exec(`UPDATE customers SET language = $1 WHERE id = 'andes'`, tc.lang); err != nil {
				t.Fatal(err)
			}
			tk := f.openTicket(t, "andes", []string{"andes-ct"}, 2, at(2026, 9, 7, 9, 0))
			part := must[Part](t)(f.store.PutPart(ctx, noc, PartInput{Manufacturer: "Siemens", PartNumber: "S-1"}, at(2026, 9, 7, 9, 0)))
			req := must[PartRequest](t)(f.store.RequestPart(ctx, noc, PartRequestInput{TicketID: tk.ID, PartID: part.ID, Quantity: 2}, at(2026, 9, 7, 9, 5)))
			must[PartRequest](t)(f.store.MovePart(ctx, noc, req.ID, PartMoveInput{To: PartQuoted, QuotePriceCents: ptr(int64(5000000)),
				Note: "precio de lista"}, at(2026, 9, 7, 9, 10)))
			c := must[ManufacturerCase](t)(f.store.OpenCase(ctx, noc, CaseInput{TicketID: tk.ID, Manufacturer: "Siemens", CaseNumber: "CS-1"},
				at(2026, 9, 7, 9, 15)))
			must[ManufacturerCase](t)(f.store.MoveCase(ctx, noc, c.ID, CaseMoveInput{To: CaseAnswered, Answer: "aplicar el parche 3.1"},
				at(2026, 9, 7, 9, 20)))
			q := must[Quote](t)(f.store.ProposeQuote(ctx, noc, QuoteInput{TicketID: tk.ID, Hours: 2, HourPriceCents: 12000000}, at(2026, 9, 7, 9, 25)))
			must[Quote](t)(f.store.DecideQuote(ctx, noc, q.ID, true, at(2026, 9, 7, 9, 30)))
			v := must[Visit](t)(f.store.CreateVisit(ctx, noc, VisitInput{TicketID: tk.ID, Engineers: []string{"eng-bog"},
				TravelPriceCents: 120000000}, at(2026, 9, 7, 9, 40)))
			must[TransitionResult](t)(f.store.Transition(ctx, noc, v.ID, TransitionInput{To: VisitScheduled,
				WindowStart: ptr(at(2026, 9, 8, 10, 0)), WindowEnd: ptr(at(2026, 9, 8, 12, 0))}, at(2026, 9, 7, 10, 0)))
			engineer := auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bog"}
			must[TransitionResult](t)(f.store.Transition(ctx, engineer, v.ID, TransitionInput{To: VisitEnRoute}, at(2026, 9, 8, 9, 0)))
			res := must[TransitionResult](t)(f.store.Transition(ctx, engineer, v.ID, TransitionInput{To: VisitEquipmentUnavailable,
				Note: "sala ocupada"}, at(2026, 9, 8, 10, 30)))

			w := tc.want(req.ID, q.ID, v.ID, tk.Number)
			old := f.ticket(t, tk.ID, at(2026, 9, 8, 11, 0))
			next := f.ticket(t, res.NewTicketID, at(2026, 9, 8, 11, 0))
			has := func(ticket string, events []string, text string) {
				t.Helper()
				if !slices.Contains(events, text) {
					t.Errorf("ticket %s has no timeline entry %q; it has:\n%q", ticket, text, events)
				}
			}
			var oldTexts, nextTexts []string
			for _, e := range old.Timeline {
				oldTexts = append(oldTexts, e.Text)
			}
			for _, e := range next.Timeline {
				nextTexts = append(nextTexts, e.Text)
			}
			for _, text := range []string{w.partRequested, w.partQuoted, w.caseOpened, w.caseAnswered, w.quoteProposed, w.quoteApproved,
				w.visitProposed, w.visitScheduled, w.closed} {
				has(old.Number, oldTexts, text)
			}
			has(next.Number, nextTexts, w.carried)
			if nv := must[Visit](t)(f.store.Visit(ctx, noc, res.RescheduledVisit)); nv.Notes != w.rescheduledNotes {
				t.Errorf("rescheduled visit's notes %q, want %q", nv.Notes, w.rescheduledNotes)
			}
			var line string
			if err := f.db.Get(&line, `SELECT description FROM billable_lines WHERE source = 'travel' AND source_id = $1`, v.ID); err != nil {
				t.Fatal(err)
			}
			if line != w.travelLine {
				t.Errorf("travel line %q, want %q", line, w.travelLine)
			}
			var subject string
			if err := f.db.Get(&subject, `SELECT subject FROM outbox WHERE event_key = $1 LIMIT 1`,
				fmt.Sprintf("visit:%d:equipment_unavailable", v.ID)); err != nil {
				t.Fatal(err)
			}
			if subject != w.subject {
				t.Errorf("customer's e-mail subject %q, want %q", subject, w.subject)
			}
		})
	}
}
