package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
)

// TestPortalMonthlyReport: a hospital's user downloads its own monthly
// report from the portal, in the formats and months offered, and nothing
// else; staff have the API and the command line.
func TestPortalMonthlyReport(t *testing.T) {
	h := newHarness(t, twoHospitals, time.Second)
	h.user(t, auth.UserInput{Username: "hsr", Role: auth.RoleCustomer, CustomerID: "hsr"})
	h.user(t, auth.UserInput{Username: "ana", Role: auth.RoleNOC})
	h.openTicket(t, "cmf", "cmf-pacs", 1, "PACS caído")
	c := h.client(t)
	c.login("hsr", testPassword)
	_, page := c.get("/console/portal")
	bogota, _ := time.LoadLocation("America/Bogota")
	month := reportMonths(h.clock.Now(), bogota)[0]
	if !strings.Contains(page, `id="monthly-report"`) || !strings.Contains(page, `<option value="`+month+`">`) {
		t.Fatalf("portal offers no monthly report for %s", month)
	}
	tests := []struct {
		name, query string
		want        int
		contains    string
	}{
		{"csv of last month", "month=" + month + "&format=csv", http.StatusOK, "device,hsr-pacs,hsr-central,hsr-2026"},
		{"json of last month", "month=" + month + "&format=json", http.StatusOK, `"customer_name": "Red Hospitalaria San Rafael"`},
		{"html in the customer's language", "month=" + month + "&format=html", http.StatusOK, "Informe mensual de servicio"},
		{"a format not offered", "month=" + month + "&format=docx", http.StatusBadRequest, ""},
		{"a month not offered", "month=2019-01&format=csv", http.StatusBadRequest, ""},
		{"another customer named", "month=" + month + "&format=csv&customer=cmf", http.StatusBadRequest, ""},
		{"a repeated parameter", "month=" + month + "&month=" + month + "&format=csv", http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := c.do(http.MethodGet, "/console/portal/reports/monthly?"+tc.query, "", nil)
			if code != tc.want || !strings.Contains(body, tc.contains) {
				t.Fatalf("%d, want %d with %q:\n%.300s", code, tc.want, tc.contains, body)
			}
			if code == http.StatusOK {
				if !strings.HasPrefix(hdr.Get("Content-Disposition"), `attachment; filename="vigia-hsr-`+month) {
					t.Errorf("Content-Disposition %q", hdr.Get("Content-Disposition"))
				}
				if strings.Contains(body, "cmf") || strings.Contains(body, "Miraflores") {
					t.Errorf("another customer's data in the report")
				}
			}
		})
	}
	staff := h.client(t)
	staff.login("ana", testPassword)
	if code, _, _ := staff.do(http.MethodGet, "/console/portal/reports/monthly?month="+month+"&format=csv", "", nil); code != http.StatusForbidden {
		t.Errorf("NOC at the portal's report: %d, want 403", code)
	}
}
