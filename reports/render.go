package reports

import (
	"bytes"
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Formats a report is written in.
const (
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatHTML  = "html"
	FormatPDF   = "pdf"
	FormatTable = "table"
)

//go:embed templates/monthly.html
var templates embed.FS

// labels are the report's words in Spanish and English.
var labels = map[string]map[string]string{
	"es": {
		"title": "Informe mensual de servicio", "period": "Periodo", "zone": "Zona horaria", "customer": "Cliente",
		"availability": "Disponibilidad", "by_contract": "Por contrato", "by_site": "Por sede", "by_device": "Por equipo",
		"contract": "Contrato", "site": "Sede", "device": "Equipo", "policy": "Política", "devices": "Equipos",
		"covered": "Tiempo cubierto (h)", "downtime": "Indisponibilidad (s)", "excluded": "Excluido (s)", "avail": "Disponibilidad",
		"target": "Meta", "met": "cumplida", "not_met": "no cumplida", "credit": "Crédito", "none": "ninguno",
		"exclusions": "Tiempo excluido", "kind": "Tipo", "ref": "Referencia", "reason": "Motivo", "from": "Desde", "to": "Hasta", "seconds": "Segundos",
		"maintenance_window": "ventana de mantenimiento", "customer_caused": "causado por el cliente", "not_monitored": "sin monitoreo",
		"cause_customer_fault": "falla causada por el cliente", "cause_misuse": "mal uso del sistema",
		"tickets": "Tickets por severidad", "severity": "Severidad", "opened": "Abiertos",
		"response_met": "Respuesta cumplida", "response_breached": "Respuesta incumplida",
		"resolution_met": "Solución cumplida", "resolution_breached": "Solución incumplida",
		"outcomes": "Relojes SLA terminados", "ticket": "Ticket", "clock": "Reloj", "outcome": "Resultado", "due": "Vencimiento",
		"stopped": "Detenido", "margin": "Margen / retraso", "response": "respuesta", "resolution": "solución",
		"outcome_met": "cumplido", "outcome_breached": "incumplido", "ticket_list": "Tickets abiertos en el mes", "title_col": "Título", "status": "Estado",
		"pauses": "Pausas por motivo", "pause_count": "Pausas", "hours": "Horas",
		"pause_customer": "Cliente", "pause_manufacturer": "Fabricante", "pause_spare_parts": "Repuestos", "pause_import": "Importación", "pause_third_party": "Terceros",
		"visits": "Visitas", "visit": "Visita", "purpose": "Propósito", "state": "Estado", "date": "Fecha", "engineers": "Ingenieros", "on_site": "En sitio (min)",
		"parts": "Repuestos utilizados", "part": "Parte", "manufacturer": "Fabricante", "quantity": "Cantidad",
		"hour_banks": "Bolsa de horas", "bank_period": "Periodo de la bolsa", "bank_hours": "Horas", "consumed_month": "Consumidas en el mes",
		"consumed_period": "Consumidas en el periodo", "remaining": "Saldo",
		"billable": "Líneas facturables", "description": "Descripción", "amount": "Importe", "total": "Total",
		"nothing": "Sin registros en el periodo.",
	},
	"en": {
		"title": "Monthly service report", "period": "Period", "zone": "Time zone", "customer": "Customer",
		"availability": "Availability", "by_contract": "By contract", "by_site": "By site", "by_device": "By device",
		"contract": "Contract", "site": "Site", "device": "Device", "policy": "Policy", "devices": "Devices",
		"covered": "Covered time (h)", "downtime": "Downtime (s)", "excluded": "Excluded (s)", "avail": "Availability",
		"target": "Target", "met": "met", "not_met": "not met", "credit": "Credit", "none": "none",
		"exclusions": "Excluded time", "kind": "Kind", "ref": "Reference", "reason": "Reason", "from": "From", "to": "To", "seconds": "Seconds",
		"maintenance_window": "maintenance window", "customer_caused": "customer-caused", "not_monitored": "not monitored",
		"cause_customer_fault": "fault caused by the customer", "cause_misuse": "misuse of the system",
		"tickets": "Tickets by severity", "severity": "Severity", "opened": "Opened",
		"response_met": "Response met", "response_breached": "Response breached",
		"resolution_met": "Resolution met", "resolution_breached": "Resolution breached",
		"outcomes": "SLA clocks ended", "ticket": "Ticket", "clock": "Clock", "outcome": "Outcome", "due": "Due",
		"stopped": "Stopped", "margin": "Margin / lateness", "response": "response", "resolution": "resolution",
		"outcome_met": "met", "outcome_breached": "breached", "ticket_list": "Tickets opened in the month", "title_col": "Title", "status": "Status",
		"pauses": "Pauses by reason", "pause_count": "Pauses", "hours": "Hours",
		"pause_customer": "Customer", "pause_manufacturer": "Manufacturer", "pause_spare_parts": "Spare parts", "pause_import": "Import", "pause_third_party": "Third party",
		"visits": "Visits", "visit": "Visit", "purpose": "Purpose", "state": "State", "date": "Date", "engineers": "Engineers", "on_site": "On site (min)",
		"parts": "Parts used", "part": "Part", "manufacturer": "Manufacturer", "quantity": "Quantity",
		"hour_banks": "Hour bank", "bank_period": "Bank period", "bank_hours": "Hours", "consumed_month": "Consumed in the month",
		"consumed_period": "Consumed in the period", "remaining": "Balance",
		"billable": "Billable lines", "description": "Description", "amount": "Amount", "total": "Total",
		"nothing": "Nothing recorded in the period.",
	},
}

// Percent prints an availability as a percentage with four decimals, the
// same in every format.
func Percent(a float64) string { return strconv.FormatFloat(a*100, 'f', 4, 64) + " %" }

// Seconds prints a count of seconds (half seconds from degraded time kept).
func Seconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// Hours prints seconds as hours with two decimals.
func Hours(s float64) string { return strconv.FormatFloat(s/3600, 'f', 2, 64) }

// Margin prints a signed number of seconds as [-]h:mm:ss.
func Margin(s int64) string {
	sign := ""
	if s < 0 {
		sign, s = "-", -s
	}
	return fmt.Sprintf("%s%d:%02d:%02d", sign, s/3600, s/60%60, s%60)
}

// Money prints cents as units with two decimals.
func Money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

const stamp = "2006-01-02 15:04"

var monthlyTmpl = template.Must(template.New("monthly.html").Funcs(template.FuncMap{
	"pct": Percent, "secs": Seconds, "hours": Hours, "margin": Margin, "money": Money,
	"when":    func(t time.Time) string { return t.Format(stamp) },
	"biofail": failures,
	"join":    func(s []string) string { return strings.Join(s, ", ") },
	"f2":      func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"derefb":  func(b *bool) bool { return b != nil && *b },
	"deref": func(f *float64) float64 {
		if f == nil {
			return 0
		}
		return *f
	},
}).ParseFS(templates, "templates/monthly.html"))

// WriteHTML writes the report as a standalone page in the customer's
// language.
func (m Monthly) WriteHTML(w io.Writer) error {
	l := labels[m.lang()]
	err := monthlyTmpl.Execute(w, struct {
		M Monthly
		L map[string]string
	}{m, l})
	if err != nil {
		return fmt.Errorf("reports: monthly html: %w", err)
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (m Monthly) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// WriteCSV writes the report as one CSV sheet: the first column names the
// section of each row, the second row of each section its header.
func (m Monthly) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"section", "customer", "month", "from", "to", "time_zone"},
		{"report", m.CustomerID, m.Month, m.From.Format(time.RFC3339), m.To.Format(time.RFC3339), m.TimeZone},
		{"device", "device_id", "site_id", "contract_id", "covered_seconds", "downtime_seconds", "excluded_seconds", "availability"}}
	for _, d := range m.Availability.Devices {
		rows = append(rows, []string{"device", d.DeviceID, d.SiteID, d.ContractID, Seconds(d.CoveredSeconds), Seconds(d.DowntimeSeconds),
			Seconds(d.ExcludedSeconds), strconv.FormatFloat(d.Availability, 'f', -1, 64)})
	}
	rows = append(rows, []string{"site", "site_id", "devices", "covered_seconds", "downtime_seconds", "excluded_seconds", "availability"})
	for _, g := range m.Availability.Sites {
		rows = append(rows, []string{"site", g.ID, strconv.Itoa(g.Devices), Seconds(g.CoveredSeconds), Seconds(g.DowntimeSeconds),
			Seconds(g.ExcludedSeconds), strconv.FormatFloat(g.Availability, 'f', -1, 64)})
	}
	rows = append(rows, []string{"contract", "contract_id", "devices", "covered_seconds", "downtime_seconds", "excluded_seconds", "availability", "target", "credit_percent"})
	for _, g := range m.Availability.Contracts {
		target, credit := "", ""
		if g.Target != nil {
			target = strconv.FormatFloat(*g.Target, 'f', -1, 64)
		}
		if g.CreditPercent != nil {
			credit = strconv.FormatFloat(*g.CreditPercent, 'f', -1, 64)
		}
		rows = append(rows, []string{"contract", g.ID, strconv.Itoa(g.Devices), Seconds(g.CoveredSeconds), Seconds(g.DowntimeSeconds),
			Seconds(g.ExcludedSeconds), strconv.FormatFloat(g.Availability, 'f', -1, 64), target, credit})
	}
	rows = append(rows, []string{"severity", "severity", "opened", "response_met", "response_breached", "resolution_met", "resolution_breached"})
	for _, s := range m.BySeverity {
		rows = append(rows, []string{"severity", strconv.Itoa(s.Severity), strconv.Itoa(s.Opened), strconv.Itoa(s.ResponseMet),
			strconv.Itoa(s.ResponseBreached), strconv.Itoa(s.ResolutionMet), strconv.Itoa(s.ResolutionBreached)})
	}
	rows = append(rows, []string{"outcome", "ticket", "severity", "clock", "outcome", "due_at", "stopped_at", "margin_seconds"})
	for _, o := range m.Outcomes {
		rows = append(rows, []string{"outcome", o.Ticket, strconv.Itoa(o.Severity), o.Clock, o.Outcome, o.Due.Format(time.RFC3339),
			o.Stopped.Format(time.RFC3339), strconv.FormatInt(o.MarginSeconds, 10)})
	}
	rows = append(rows, []string{"pause", "reason", "pauses", "seconds", "hours"})
	for _, p := range m.Pauses {
		rows = append(rows, []string{"pause", p.Reason, strconv.Itoa(p.Pauses), strconv.FormatInt(p.Seconds, 10), strconv.FormatFloat(p.Hours, 'f', 2, 64)})
	}
	rows = append(rows, []string{"visit", "id", "ticket", "site_id", "purpose", "state", "at", "engineers", "time_on_site_minutes"})
	for _, v := range m.Visits {
		rows = append(rows, []string{"visit", strconv.FormatInt(v.ID, 10), v.Ticket, v.SiteID, v.Purpose, v.State, v.At.Format(time.RFC3339),
			strings.Join(v.Engineers, "; "), strconv.Itoa(v.TimeOnSiteMinutes)})
	}
	rows = append(rows, []string{"part", "visit", "ticket", "manufacturer", "part_number", "quantity"})
	for _, p := range m.Parts {
		rows = append(rows, []string{"part", strconv.FormatInt(p.Visit, 10), p.Ticket, p.Manufacturer, p.PartNumber, strconv.Itoa(p.Quantity)})
	}
	rows = append(rows, []string{"hour_bank", "contract", "period_start", "period_end", "hours", "consumed_in_month", "consumed_in_period", "remaining"})
	for _, b := range m.HourBanks {
		rows = append(rows, []string{"hour_bank", b.ContractID, b.PeriodStart, b.PeriodEnd, strconv.Itoa(b.Hours),
			strconv.FormatFloat(b.ConsumedInMonth, 'f', -1, 64), strconv.FormatFloat(b.ConsumedPeriod, 'f', -1, 64), strconv.FormatFloat(b.Remaining, 'f', -1, 64)})
	}
	rows = append(rows, []string{"billable", "at", "ticket", "source", "description", "quantity", "amount", "currency"})
	for _, l := range m.Billable {
		rows = append(rows, []string{"billable", l.At.Format(time.RFC3339), l.Ticket, l.Source, l.Description,
			strconv.FormatFloat(l.Quantity, 'f', -1, 64), Money(l.AmountCents), m.Currency})
	}
	rows = append(rows, []string{"billable_total", Money(m.BillableTotalCents), m.Currency})
	rows = append(rows, m.biomedicalCSV()...)
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("reports: monthly csv: %w", err)
	}
	return nil
}

// WriteText writes the report's summary as plain text, for the e-mail.
func (m Monthly) WriteText(w io.Writer) error {
	l := labels[m.lang()]
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s — %s (%s)\n%s: %s – %s (%s)\n\n", l["title"], m.CustomerName, m.Month, l["period"], m.From.Format(stamp), m.To.Format(stamp), m.TimeZone)
	fmt.Fprintf(&b, "%s\n", l["availability"])
	for _, g := range m.Availability.Contracts {
		fmt.Fprintf(&b, "  %s %s: %s", l["contract"], g.ID, Percent(g.Availability))
		if g.Target != nil {
			met := l["not_met"]
			if *g.TargetMet {
				met = l["met"]
			}
			fmt.Fprintf(&b, " (%s %s, %s)", l["target"], Percent(*g.Target), met)
		}
		if g.CreditPercent != nil {
			fmt.Fprintf(&b, " — %s %s %%", l["credit"], strconv.FormatFloat(*g.CreditPercent, 'f', -1, 64))
		}
		b.WriteString("\n")
	}
	for _, d := range m.Availability.Devices {
		fmt.Fprintf(&b, "  %s (%s): %s, %s %s\n", d.DeviceName, d.DeviceID, Percent(d.Availability), l["downtime"], Seconds(d.DowntimeSeconds))
	}
	fmt.Fprintf(&b, "\n%s\n", l["tickets"])
	for _, s := range m.BySeverity {
		fmt.Fprintf(&b, "  Sev %d: %s %d; %s %d / %d; %s %d / %d\n", s.Severity, l["opened"], s.Opened,
			l["response_met"], s.ResponseMet, s.ResponseMet+s.ResponseBreached, l["resolution_met"], s.ResolutionMet, s.ResolutionMet+s.ResolutionBreached)
	}
	fmt.Fprintf(&b, "\n%s\n", l["pauses"])
	for _, p := range m.Pauses {
		fmt.Fprintf(&b, "  %s: %s h\n", l["pause_"+p.Reason], strconv.FormatFloat(p.Hours, 'f', 2, 64))
	}
	fmt.Fprintf(&b, "\n%s: %d; %s: %d\n", l["visits"], len(m.Visits), l["parts"], len(m.Parts))
	for _, h := range m.HourBanks {
		fmt.Fprintf(&b, "%s %s: %s %s h, %s %s h\n", l["hour_banks"], h.ContractID, l["consumed_month"],
			strconv.FormatFloat(h.ConsumedInMonth, 'f', -1, 64), l["remaining"], strconv.FormatFloat(h.Remaining, 'f', -1, 64))
	}
	fmt.Fprintf(&b, "%s: %d, %s %s %s\n", l["billable"], len(m.Billable), l["total"], Money(m.BillableTotalCents), m.Currency)
	m.biomedicalText(&b, l)
	_, err := w.Write(b.Bytes())
	return err
}

// Chromium is the headless browser that prints PDFs (Debian's package).
var Chromium = "/usr/bin/chromium"

// ErrNoChromium means the PDF printer is not installed.
var ErrNoChromium = errors.New("reports: chromium is not installed (apt-get install chromium)")

// WritePDF prints the HTML report to PDF through headless Chromium. The
// page is a local file: Chromium reaches no network.
func (m Monthly) WritePDF(ctx context.Context, w io.Writer) error {
	if _, err := os.Stat(Chromium); err != nil {
		return ErrNoChromium
	}
	dir, err := os.MkdirTemp("", "vigia-report-")
	if err != nil {
		return fmt.Errorf("reports: pdf: %w", err)
	}
	defer os.RemoveAll(dir)
	page, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	var html bytes.Buffer
	if err := m.WriteHTML(&html); err != nil {
		return err
	}
	if err := os.WriteFile(page, html.Bytes(), 0o600); err != nil {
		return fmt.Errorf("reports: pdf: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--print-to-pdf="+out, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("reports: pdf: chromium: %w: %s", err, lastLine(msg))
	}
	pdf, err := os.ReadFile(out)
	if err != nil {
		return fmt.Errorf("reports: pdf: chromium wrote nothing: %w", err)
	}
	_, err = w.Write(pdf)
	return err
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Write writes the report in format (json, csv, html or pdf).
func (m Monthly) Write(ctx context.Context, w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		return m.WriteJSON(w)
	case FormatCSV:
		return m.WriteCSV(w)
	case FormatHTML:
		return m.WriteHTML(w)
	case FormatPDF:
		return m.WritePDF(ctx, w)
	}
	return ErrInvalid.Errorf("format %q (want html, pdf, json or csv)", format)
}
