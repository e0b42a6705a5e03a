package console

import (
	"context"
	"net/http"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/internal/auth"
)

// Biomedical is what the console reads of the biomedical service.
type Biomedical interface {
	WorkOrders(ctx context.Context, a auth.Actor, f biomed.WorkOrderFilter, now time.Time) ([]biomed.WorkOrder, error)
	Matches(ctx context.Context, a auth.Actor, customerID string, from, to time.Time) ([]biomed.AlertMatch, error)
	Calibrations(ctx context.Context, a auth.Actor, customerID string, at time.Time) ([]biomed.CalibrationStatus, error)
}

// upcomingDays is how far ahead the biomedical page lists work orders.
const upcomingDays = 90

// biomedical is the biomedical page: the hospital's own (portal) or every
// customer's (NOC): safety alerts affecting the installed base with their
// tickets, devices out of service, overdue and upcoming preventive work
// orders, calibration due dates.
func (c *Console) biomedical(rq *request) error {
	if c.cfg.Biomedical == nil {
		c.fail(rq, http.StatusNotFound, "err.notfound")
		return nil
	}
	a := auth.ActorOf(rq.principal())
	customer := rq.sess.User.CustomerID
	alerts, err := c.cfg.Biomedical.Matches(rq.ctx(), a, customer, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	overdue, err := c.cfg.Biomedical.WorkOrders(rq.ctx(), a, biomed.WorkOrderFilter{CustomerID: customer, Overdue: true}, rq.now)
	if err != nil {
		return err
	}
	loc := rq.loc
	if loc == nil {
		loc = c.cfg.Location
	}
	today := rq.now.In(loc)
	upcoming, err := c.cfg.Biomedical.WorkOrders(rq.ctx(), a, biomed.WorkOrderFilter{CustomerID: customer,
		From: today.Format(time.DateOnly), To: today.AddDate(0, 0, upcomingDays).Format(time.DateOnly)}, rq.now)
	if err != nil {
		return err
	}
	if len(upcoming) > 50 {
		upcoming = upcoming[:50]
	}
	calibration, err := c.cfg.Biomedical.Calibrations(rq.ctx(), a, customer, rq.now)
	if err != nil {
		return err
	}
	devices, err := c.cfg.Assets.Devices(rq.ctx(), assets.DeviceFilter{Scope: assets.Scope{CustomerID: customer}})
	if err != nil {
		return err
	}
	var out []assets.Device
	for _, d := range devices {
		if d.OutOfService() {
			out = append(out, d)
		}
	}
	ticketPath := "/console/portal/tickets/"
	if rq.sess.User.Role != "customer" {
		ticketPath = "/console/noc/tickets/"
	}
	c.render(rq, http.StatusOK, "biomed", translate(rq.lang, "bio.title"), map[string]any{
		"Alerts": alerts, "Overdue": overdue, "Upcoming": upcoming, "Calibration": calibration, "OutOfService": out,
		"TicketPath": ticketPath, "Staff": rq.sess.User.Role != "customer",
	})
	return nil
}

// The page's words, added to the catalogues.
func init() {
	addMessages("biomed", map[string]map[string]string{
		"es": {
			"nav.biomed": "Biomédica", "bio.title": "Vigilancia de equipos biomédicos",
			"bio.alerts": "Alertas de seguridad y retiros de producto", "bio.alert": "Alerta", "bio.date": "Fecha",
			"bio.device": "Equipo", "bio.serial": "Serie", "bio.risk": "Riesgo para el paciente", "bio.action": "Acción requerida",
			"bio.ticket": "Ticket", "bio.status": "Estado", "bio.yes": "sí", "bio.no": "no", "bio.customer": "Cliente",
			"bio.out": "Equipos fuera de servicio", "bio.reason": "Motivo", "bio.since": "Desde",
			"bio.overdue": "Mantenimiento preventivo vencido", "bio.upcoming": "Mantenimiento preventivo de los próximos 90 días",
			"bio.task": "Tarea", "bio.due": "Fecha programada", "bio.state": "Estado",
			"bio.calibration": "Calibración de instrumentos de medición", "bio.last": "Última calibración",
			"bio.certificate": "Certificado", "bio.none": "Nada que mostrar.",
			"wo.planned": "planificado", "wo.open": "abierto", "wo.done_on_time": "realizado a tiempo", "wo.done_late": "realizado tarde",
			"wo.overdue": "vencido", "cal.ok": "vigente", "cal.due_soon": "por vencer", "cal.overdue": "vencida",
		},
		"en": {
			"nav.biomed": "Biomedical", "bio.title": "Biomedical equipment vigilance",
			"bio.alerts": "Safety alerts and recalls", "bio.alert": "Alert", "bio.date": "Date",
			"bio.device": "Device", "bio.serial": "Serial", "bio.risk": "Patient risk", "bio.action": "Required action",
			"bio.ticket": "Ticket", "bio.status": "Status", "bio.yes": "yes", "bio.no": "no", "bio.customer": "Customer",
			"bio.out": "Devices out of service", "bio.reason": "Reason", "bio.since": "Since",
			"bio.overdue": "Overdue preventive maintenance", "bio.upcoming": "Preventive maintenance in the next 90 days",
			"bio.task": "Task", "bio.due": "Due", "bio.state": "State",
			"bio.calibration": "Calibration of measuring instruments", "bio.last": "Last calibrated",
			"bio.certificate": "Certificate", "bio.none": "Nothing to show.",
			"wo.planned": "planned", "wo.open": "open", "wo.done_on_time": "done on time", "wo.done_late": "done late",
			"wo.overdue": "overdue", "cal.ok": "valid", "cal.due_soon": "due soon", "cal.overdue": "overdue",
		},
	})
}
