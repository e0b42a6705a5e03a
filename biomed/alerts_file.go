package biomed

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigia-noc/vigia/internal/httpx"
)

// AlertInput is a safety alert or recall as the regulator or manufacturer
// publishes it.
type AlertInput struct {
	Source       string       `json:"source"`    // INVIMA, DIGEMID, COFEPRIS, FDA, the manufacturer…
	Reference    string       `json:"reference"` // the issuer's reference, unique per source
	Date         string       `json:"date"`      // YYYY-MM-DD
	Manufacturer string       `json:"manufacturer"`
	Models       []string     `json:"models"`
	Serials      []SerialSpec `json:"serials"`
	PatientRisk  bool         `json:"patient_risk"`
	Action       string       `json:"action"`
}

// CSVColumns are the columns of an alert file in CSV, the JSON names.
// models and serials hold several values separated by ";"; a serial range
// is written FROM..TO (VX200..VX299); patient_risk is true or false.
var CSVColumns = []string{"source", "reference", "date", "manufacturer", "models", "serials", "patient_risk", "action"}

// errAlertFile refuses a file of alerts that cannot be imported (400); its
// message is the reason, "alerts: …" or "invalid alerts: …".
var errAlertFile = httpx.Kind(http.StatusBadRequest, "invalid_request", "biomed", "")

// MaxAlerts bounds one import.
const MaxAlerts = 1000

// ParseAlerts reads alerts as a JSON array, or as CSV with a header of
// CSVColumns, and validates every one.
func ParseAlerts(data []byte) ([]AlertInput, error) {
	var alerts []AlertInput
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))
	if len(trimmed) > 0 && trimmed[0] == '[' {
		// Decoded as the API decodes bodies: every string valid UTF-8,
		// without NUL (an escaped \u0000 too) and within its limit, and a
		// refusal names the value's place in the file.
		if err := httpx.DecodeBytes(trimmed, &alerts); err != nil {
			return nil, errAlertFile.Errorf("alerts: %w", err)
		}
	} else {
		if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
			return nil, errAlertFile.Errorf("alerts: the file must be UTF-8 text")
		}
		var err error
		if alerts, err = parseAlertsCSV(trimmed); err != nil {
			return nil, err
		}
	}
	if len(alerts) == 0 || len(alerts) > MaxAlerts {
		return nil, errAlertFile.Errorf("alerts: 1 to %d alerts per file", MaxAlerts)
	}
	var problems []string
	for i := range alerts {
		if err := alerts[i].check(); err != nil {
			problems = append(problems, fmt.Sprintf("alert %d (%s %s): %v", i+1, alerts[i].Source, alerts[i].Reference, err))
		}
	}
	if len(problems) > 0 {
		return nil, errAlertFile.Errorf("invalid alerts:\n  %s", strings.Join(problems, "\n  "))
	}
	return alerts, nil
}

func parseAlertsCSV(data []byte) ([]AlertInput, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, errAlertFile.Errorf("alerts: neither a JSON array nor CSV: %w", err)
	}
	r.FieldsPerRecord = len(CSVColumns)
	if !slices.Equal(header, CSVColumns) {
		return nil, errAlertFile.Errorf("alerts: CSV header must be %s", strings.Join(CSVColumns, ","))
	}
	var out []AlertInput
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, errAlertFile.Errorf("alerts: %w", err)
		}
		if len(out) == MaxAlerts {
			return nil, errAlertFile.Errorf("alerts: 1 to %d alerts per file", MaxAlerts)
		}
		risk, err := strconv.ParseBool(strings.TrimSpace(rec[6]))
		if err != nil {
			return nil, errAlertFile.Errorf("alerts: line %d: patient_risk must be true or false", line)
		}
		a := AlertInput{Source: rec[0], Reference: rec[1], Date: rec[2], Manufacturer: rec[3], Models: split(rec[4]),
			PatientRisk: risk, Action: rec[7]}
		for _, s := range split(rec[5]) {
			if from, to, ok := strings.Cut(s, ".."); ok {
				a.Serials = append(a.Serials, SerialSpec{From: strings.TrimSpace(from), To: strings.TrimSpace(to)})
			} else {
				a.Serials = append(a.Serials, SerialSpec{Serial: s})
			}
		}
		out = append(out, a)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *AlertInput) check() error {
	a.Source, a.Reference = strings.TrimSpace(a.Source), strings.TrimSpace(a.Reference)
	a.Manufacturer, a.Action = strings.TrimSpace(a.Manufacturer), strings.TrimSpace(a.Action)
	switch {
	case a.Source == "" || len(a.Source) > 50:
		return errors.New("source is required (at most 50 characters)")
	case a.Reference == "" || len(a.Reference) > 100:
		return errors.New("reference is required (at most 100 characters)")
	case a.Manufacturer == "" || len(a.Manufacturer) > 200:
		return errors.New("manufacturer is required (at most 200 characters)")
	case a.Action == "" || len(a.Action) > 2000:
		return errors.New("action is required (at most 2000 characters)")
	case len(a.Models) > 100 || len(a.Serials) > 10000:
		return errors.New("at most 100 models and 10000 serials")
	}
	if _, err := time.Parse(dateLayout, a.Date); err != nil {
		return errors.New("date must be YYYY-MM-DD")
	}
	for _, m := range a.Models {
		if strings.TrimSpace(m) == "" || len(m) > 200 {
			return errors.New("models are 1 to 200 characters")
		}
	}
	for _, s := range a.Serials {
		if err := s.Check(); err != nil {
			return err
		}
	}
	return nil
}
