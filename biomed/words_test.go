package biomed

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

// An alert's tickets are written in each hospital's language: hsr reads
// Spanish, cmf English (the words themselves are tested in
// maintenance/notify).
func TestAlertTicketsInTheCustomerLanguage(t *testing.T) {
	f := newFixture(t)
	alerts, err := ParseAlerts([]byte(issueAlert))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ImportAlerts(context.Background(), alerts, at(2026, 12, 1, 14)); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ device, title, description string }{
		{"hsr-vent-1", "Alerta de seguridad INVIMA ALERTA-2026-123: Acme Medical Vent 500 (serie VX100)",
			"Alerta INVIMA ALERTA-2026-123 del 2026-11-30. Fabricante: Acme Medical; modelos: Vent 500. Riesgo para el paciente: sí.\n" +
				"Acción: Reemplazar válvula\nEquipo afectado: Ventilador UCI 1 (hsr-vent-1), serie VX100."},
		{"cmf-vent-9", "Safety alert INVIMA ALERTA-2026-123: Acme Medical VENT 500 (serial VX260)",
			"Alert INVIMA ALERTA-2026-123 of 2026-11-30. Manufacturer: Acme Medical; models: Vent 500. Patient risk: yes.\n" +
				"Action: Reemplazar válvula\nAffected device: ICU ventilator 9 (cmf-vent-9), serial VX260."},
	}
	for _, tc := range tests {
		t.Run(tc.device, func(t *testing.T) {
			var title, description string
			if err := f.db.QueryRow(`SELECT title, description FROM tickets WHERE category = 'safety_alert' AND $1 = ANY (device_ids)`,
				tc.device).Scan(&title, &description); err != nil {
				t.Fatal(err)
			}
			if title != tc.title || description != tc.description {
				t.Errorf("ticket\n %q\n %q\nwant\n %q\n %q", title, description, tc.title, tc.description)
			}
		})
	}
}

// A failed electrical safety test writes its ticket and the device's
// out-of-service reason in the hospital's language.
func TestFailedTestInTheCustomerLanguage(t *testing.T) {
	tests := []struct{ customer, device, title, reason string }{
		{"hsr", "hsr-vent-2", "Equipo fuera de servicio: prueba de seguridad eléctrica fallida — Ventilador UCI 2 (serie VX250)",
			"Prueba IEC 62353 periódica n.º %d fallida: resistencia de la tierra de protección 0.45 ohm (límite 0.3)"},
		{"cmf", "cmf-vent-9", "Device out of service: failed electrical safety test — ICU ventilator 9 (serial VX260)",
			"IEC 62353 recurrent test no. %d failed: protective earth resistance 0.45 ohm (limit 0.3)"},
	}
	for _, tc := range tests {
		t.Run(tc.customer, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			now := at(2026, 3, 10, 15)
			if _, err := f.tickets.Create(ctx, auth.Actor{Name: "ana", Role: "noc"}, maintenance.CreateInput{CustomerID: tc.customer,
				DeviceIDs: []string{tc.device}, Severity: 4, Title: "IEC 62353"}, now.Add(-24*time.Hour)); err != nil {
				t.Fatal(err)
			}
			v := f.doVisit(t, tc.device, now)
			earth := 0.45
			recs, err := f.store.RecordTests(ctx, auth.Actor{Name: "laura", Role: "engineer", EngineerID: "eng-bio"}, v.ID, []TestInput{{
				DeviceID: tc.device, Type: "recurrent", Class: "I", AppliedPart: "BF", Method: "direct",
				Instrument:   Instrument{Model: "Fluke ESA615", Serial: "3344556", CalibratedOn: "2025-11-20"},
				Measurements: Measurements{ProtectiveEarthOhm: &earth, EquipmentLeakageUA: f64(120), AppliedPartLeakageUA: f64(15)}}}, now)
			if err != nil || len(recs) != 1 || recs[0].Ticket == "" {
				t.Fatalf("records %+v, %v", recs, err)
			}
			var title string
			if err := f.db.Get(&title, `SELECT title FROM tickets WHERE number = $1`, recs[0].Ticket); err != nil {
				t.Fatal(err)
			}
			if title != tc.title {
				t.Errorf("title %q, want %q", title, tc.title)
			}
			d, err := f.inv.Device(ctx, assets.Scope{}, tc.device)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(tc.reason, recs[0].ID); d.Operational.Reason != want {
				t.Errorf("out-of-service reason %q, want %q", d.Operational.Reason, want)
			}
		})
	}
}
