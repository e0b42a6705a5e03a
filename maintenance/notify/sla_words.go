package notify

import (
	"fmt"
	"time"
)

// The words of the SLA timeline entries the ticket core records by itself.
// The NOC and the hospital read the same entry, so it is written in both
// languages; the ticket core hands over the values.

// SLAOutcomeText is the timeline entry of a clock that ended: met with
// margin to spare, or breached by -margin (margin negative).
func SLAOutcomeText(clock, ticket string, severity int, breached bool, margin time.Duration) string {
	if breached {
		m := fmtMargin(-margin)
		return fmt.Sprintf("SLA %s: %s of %s (Sev %d) breached by %s / incumplido por %s", clock, clock, ticket, severity, m, m)
	}
	m := fmtMargin(margin)
	return fmt.Sprintf("SLA %s: %s of %s (Sev %d) met with %s to spare / cumplido con %s de margen", clock, clock, ticket, severity, m, m)
}

// fmtMargin prints a duration in whole seconds for people.
func fmtMargin(d time.Duration) string {
	return d.Round(time.Second).String()
}

// SLARecomputedText is the timeline entry of a ticket whose cached due
// instants moved when they were recomputed on upgrade.
const SLARecomputedText = "SLA due instants recomputed: wall-clock targets now start at the opening instant, " +
	"business-time targets at the first working instant after it / Vencimientos SLA recalculados: los objetivos en horas " +
	"corridas cuentan desde la apertura, los de horas hábiles desde el primer instante hábil"

// UntitledTitle is the title of a ticket opened from an e-mail without a
// subject.
func UntitledTitle(lang string) string {
	if lang == "en" {
		return "(no subject)"
	}
	return "(sin asunto)"
}
