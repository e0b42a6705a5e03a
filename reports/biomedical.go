package reports

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/biomed"
)

// Biomedical is what reports read from the biomedical service.
type Biomedical interface {
	Summary(ctx context.Context, customerID string, from, to, now time.Time) (biomed.Summary, error)
}

// biomedical is the month's biomedical section, nil for a customer
// without any biomedical service.
func (r *Reporter) biomedical(ctx context.Context, customerID string, from, to time.Time) (*biomed.Summary, error) {
	if r.Biomedical == nil {
		return nil, nil
	}
	now := to
	if r.Now != nil {
		now = r.Now()
	}
	sm, err := r.Biomedical.Summary(ctx, customerID, from, to, now)
	if err != nil {
		return nil, err
	}
	if sm.Empty() {
		return nil, nil
	}
	return &sm, nil
}

// The section's words, added to labels.
func init() {
	for lang, words := range map[string]map[string]string{
		"es": {"biomedical": "Vigilancia de equipos biomédicos", "compliance": "Cumplimiento del mantenimiento preventivo",
			"on_time": "A tiempo", "late": "Tarde", "missed": "No realizado", "pending": "Pendiente", "task": "Tarea", "due_on": "Programado",
			"done_at": "Realizado", "wo_planned": "planificado", "wo_open": "abierto", "wo_done_on_time": "a tiempo",
			"wo_done_late": "tarde", "wo_overdue": "vencido", "safety_tests": "Pruebas de seguridad eléctrica (IEC 62353)",
			"test_type": "Prueba", "result": "Resultado", "passed": "aprobada", "failed": "fallida", "failures": "Fallas",
			"instrument": "Analizador", "recurrent": "periódica", "after_repair": "tras reparación",
			"calibration": "Calibración", "last_calibrated": "Última calibración", "certificate": "Certificado",
			"cal_ok": "vigente", "cal_due_soon": "por vencer", "cal_overdue": "vencida",
			"alerts": "Alertas de seguridad y retiros", "alert": "Alerta", "patient_risk": "Riesgo para el paciente", "serial": "Serie",
			"closed": "Cerrado", "yes": "sí", "no": "no", "limits_note": "Límites: IEC 62353:2014, tabla 2."},
		"en": {"biomedical": "Biomedical equipment vigilance", "compliance": "Preventive maintenance compliance",
			"on_time": "On time", "late": "Late", "missed": "Missed", "pending": "Pending", "task": "Task", "due_on": "Due",
			"done_at": "Done", "wo_planned": "planned", "wo_open": "open", "wo_done_on_time": "on time",
			"wo_done_late": "late", "wo_overdue": "overdue", "safety_tests": "Electrical safety tests (IEC 62353)",
			"test_type": "Test", "result": "Result", "passed": "passed", "failed": "failed", "failures": "Failures",
			"instrument": "Analyser", "recurrent": "recurrent", "after_repair": "after repair",
			"calibration": "Calibration", "last_calibrated": "Last calibrated", "certificate": "Certificate",
			"cal_ok": "valid", "cal_due_soon": "due soon", "cal_overdue": "overdue",
			"alerts": "Safety alerts and recalls", "alert": "Alert", "patient_risk": "Patient risk", "serial": "Serial",
			"closed": "Closed", "yes": "yes", "no": "no", "limits_note": "Limits: IEC 62353:2014, table 2."},
	} {
		for k, v := range words {
			labels[lang][k] = v
		}
	}
}

// failures lists a test's failed checks as "quantity value > limit unit".
func failures(t biomed.SafetyTest) string {
	var out []string
	for _, c := range t.Evaluation.Checks {
		if !c.Pass && c.Limit != nil {
			op := ">"
			if c.Min {
				op = "<"
			}
			out = append(out, fmt.Sprintf("%s %g %s %g %s", c.Quantity, c.Value, op, *c.Limit, c.Unit))
		}
	}
	return strings.Join(out, "; ")
}

// biomedicalCSV is the section's rows of the monthly CSV.
func (m Monthly) biomedicalCSV() [][]string {
	b := m.Biomedical
	if b == nil {
		return nil
	}
	rows := [][]string{{"bio_compliance", "on_time", "late", "missed", "pending"},
		{"bio_compliance", strconv.Itoa(b.Compliance.OnTime), strconv.Itoa(b.Compliance.Late), strconv.Itoa(b.Compliance.Missed),
			strconv.Itoa(b.Compliance.Pending)},
		{"bio_work_order", "device_id", "task", "due_on", "state", "ticket"}}
	for _, w := range b.WorkOrders {
		rows = append(rows, []string{"bio_work_order", w.DeviceID, w.TaskID, w.DueOn, w.State, w.Ticket})
	}
	rows = append(rows, []string{"bio_safety_test", "id", "device_id", "type", "passed", "failures", "ticket", "tested_at"})
	for _, t := range b.Tests {
		rows = append(rows, []string{"bio_safety_test", strconv.FormatInt(t.ID, 10), t.DeviceID, t.Type, strconv.FormatBool(t.Passed),
			failures(t), t.Ticket, t.TestedAt.In(m.From.Location()).Format(time.RFC3339)})
	}
	rows = append(rows, []string{"bio_calibration", "device_id", "last_calibrated_on", "certificate", "due_on", "state"})
	for _, c := range b.Calibration {
		rows = append(rows, []string{"bio_calibration", c.DeviceID, c.LastCalibrated, c.Certificate, c.DueOn, c.State})
	}
	rows = append(rows, []string{"bio_alert", "source", "reference", "patient_risk", "device_id", "serial", "ticket", "ticket_status"})
	for _, a := range b.Alerts {
		rows = append(rows, []string{"bio_alert", a.Source, a.Reference, strconv.FormatBool(a.PatientRisk), a.DeviceID, a.Serial, a.Ticket, a.Status})
	}
	return rows
}

// biomedicalText is the section's lines of the e-mail summary.
func (m Monthly) biomedicalText(b *bytes.Buffer, l map[string]string) {
	s := m.Biomedical
	if s == nil {
		return
	}
	fmt.Fprintf(b, "\n%s\n  %s: %s %d, %s %d, %s %d, %s %d\n", l["biomedical"], l["compliance"], l["on_time"], s.Compliance.OnTime,
		l["late"], s.Compliance.Late, l["missed"], s.Compliance.Missed, l["pending"], s.Compliance.Pending)
	fmt.Fprintf(b, "  %s: %d, %s %d\n  %s: %d\n", l["safety_tests"], len(s.Tests), l["failed"], s.TestsFailed, l["alerts"], len(s.Alerts))
}
