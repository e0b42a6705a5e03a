package console

import "testing"

// Timeline kinds read as words in the reader's language, dispatch's with
// their state's words, an unknown kind as itself with spaces.
func TestEventKind(t *testing.T) {
	tests := []struct{ lang, kind, want string }{
		{"es", "service_restored", "Servicio restablecido"},
		{"en", "service_restored", "Service restored"},
		{"es", "contact_attempt", "Intento de contacto"},
		{"en", "outage_attached", "New outage"},
		{"es", "visit_on_site", "Visita: " + translate("es", "vstate.on_site")},
		{"en", "visit_on_site", "Visit: " + translate("en", "vstate.on_site")},
		{"en", "part_ordered", "Part: " + translate("en", "pstate.ordered")},
		{"es", "manufacturer_case_answered", "Caso con el fabricante: " + translate("es", "cstate.answered")},
		{"en", "something_new", "something new"},
	}
	for _, tc := range tests {
		t.Run(tc.lang+"/"+tc.kind, func(t *testing.T) {
			if got := (view{Lang: tc.lang}).EventKind(tc.kind); got != tc.want {
				t.Errorf("EventKind(%q) in %s = %q, want %q", tc.kind, tc.lang, got, tc.want)
			}
		})
	}
	// The states' words exist, or the dispatch cases above test nothing.
	for _, key := range []string{"vstate.on_site", "pstate.ordered", "cstate.answered"} {
		if _, ok := messages["en"][key]; !ok {
			t.Errorf("catalogue has no %s", key)
		}
	}
}
