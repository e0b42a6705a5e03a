package console

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigia-noc/vigia/reports"
)

// reportFormats are what the portal offers to download, in menu order.
var reportFormats = []string{reports.FormatPDF, reports.FormatHTML, reports.FormatCSV, reports.FormatJSON}

var reportTypes = map[string]string{reports.FormatHTML: "text/html; charset=utf-8", reports.FormatPDF: "application/pdf",
	reports.FormatJSON: "application/json; charset=utf-8", reports.FormatCSV: "text/csv; charset=utf-8"}

// reportMonths are the twelve months before now's, newest first, in loc.
func reportMonths(now time.Time, loc *time.Location) []string {
	local := now.In(loc)
	first := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, loc)
	out := make([]string, 12)
	for i := range out {
		out[i] = first.AddDate(0, -(i + 1), 0).Format("2006-01")
	}
	return out
}

// portalReport downloads the customer's monthly report: only its own, for
// one of the months offered, in one of the formats offered.
func (c *Console) portalReport(rq *request) error {
	as, _ := rq.customerScope()
	q := rq.r.URL.Query()
	for k, v := range q {
		if (k != "month" && k != "format") || len(v) != 1 {
			c.fail(rq, http.StatusBadRequest, "err.badform")
			return nil
		}
	}
	cu, err := c.cfg.Assets.Customer(rq.ctx(), as, as.CustomerID)
	if err != nil {
		return err
	}
	month, format := q.Get("month"), q.Get("format")
	if c.cfg.Reports == nil || !slices.Contains(reportMonths(rq.now, cu.Location()), month) || !slices.Contains(reportFormats, format) {
		c.fail(rq, http.StatusBadRequest, "err.badform")
		return nil
	}
	m, err := c.cfg.Reports.Monthly(rq.ctx(), cu.ID, month)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	if err := m.Write(rq.ctx(), &body, format); err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", reportTypes[format])
	rq.w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="vigia-%s-%s.%s"`, cu.ID, month, format))
	rq.w.Write(body.Bytes())
	return nil
}
