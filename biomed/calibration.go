package biomed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/notify"
)

// CalibrationInput is a calibration done by a laboratory, with its
// certificate.
type CalibrationInput struct {
	CalibratedOn      string `json:"calibrated_on"` // YYYY-MM-DD
	Laboratory        string `json:"laboratory"`
	CertificateNumber string `json:"certificate_number"`
	Filename          string `json:"filename"`
	Certificate       []byte `json:"certificate"` // base64 in JSON: a PDF, PNG or JPEG
}

// Calibration is a stored calibration record (the certificate is read
// apart).
type Calibration struct {
	ID                int64     `json:"id"`
	DeviceID          string    `json:"device_id"`
	CustomerID        string    `json:"customer_id"`
	CalibratedOn      string    `json:"calibrated_on"`
	NextDueOn         string    `json:"next_due_on"`
	Laboratory        string    `json:"laboratory"`
	CertificateNumber string    `json:"certificate_number"`
	Filename          string    `json:"filename"`
	ContentType       string    `json:"content_type"`
	SizeBytes         int       `json:"size_bytes"`
	RecordedBy        string    `json:"recorded_by"`
	RecordedAt        time.Time `json:"recorded_at"`
}

// checkCertificate accepts a PDF by its content, or a PNG or JPEG through
// the service desk's own attachment check, at most its size limit.
func checkCertificate(name string, data []byte) (maintenance.Attachment, error) {
	name = maintenance.CleanFilename(name)
	if len(data) == 0 || len(data) > maintenance.MaxAttachmentBytes {
		return maintenance.Attachment{}, invalid("certificate: 1 byte to %d MB", maintenance.MaxAttachmentBytes>>20)
	}
	if bytes.HasPrefix(data, []byte("%PDF-")) && bytes.Contains(data[max(0, len(data)-1024):], []byte("%%EOF")) {
		return maintenance.Attachment{Name: name, ContentType: "application/pdf", Data: data}, nil
	}
	a, err := maintenance.CheckAttachment(name, data)
	if err != nil {
		return a, invalid("certificate %s: a PDF, PNG or JPEG file is required", name)
	}
	return a, nil
}

// RecordCalibration stores a calibration of a flagged device with its
// certificate; staff only. The next due date is the calibration date plus
// the device's interval.
func (s *Store) RecordCalibration(ctx context.Context, a auth.Actor, deviceID string, in CalibrationInput, now time.Time) (Calibration, error) {
	if !a.IsProvider() {
		return Calibration{}, ErrForbidden.Errorf("calibrations are recorded by the provider's staff")
	}
	on, err := time.Parse(dateLayout, in.CalibratedOn)
	in.Laboratory, in.CertificateNumber = strings.TrimSpace(in.Laboratory), strings.TrimSpace(in.CertificateNumber)
	switch {
	case err != nil:
		return Calibration{}, invalid("calibrated_on must be a date YYYY-MM-DD")
	case on.After(now.Add(24 * time.Hour)):
		return Calibration{}, invalid("calibrated_on is in the future")
	case in.Laboratory == "" || len(in.Laboratory) > 200:
		return Calibration{}, invalid("laboratory is required (at most 200 characters)")
	case in.CertificateNumber == "" || len(in.CertificateNumber) > 100:
		return Calibration{}, invalid("certificate_number is required (at most 100 characters)")
	}
	cert, err := checkCertificate(in.Filename, in.Certificate)
	if err != nil {
		return Calibration{}, err
	}
	var c Calibration
	err = s.inTx(ctx, "record calibration", func(tx *sqlx.Tx) error {
		var customerID string
		var every int
		err := tx.QueryRowContext(ctx, `SELECT customer_id, every_months FROM biomed_calibration_plans WHERE device_id = $1`, deviceID).
			Scan(&customerID, &every)
		if errors.Is(err, sql.ErrNoRows) {
			return invalid("device %q is not flagged for calibration", deviceID)
		}
		if err != nil {
			return err
		}
		next := addMonths(on, every)
		sum := sha256.Sum256(cert.Data)
		var calOn, due time.Time
		err = tx.QueryRowContext(ctx, `INSERT INTO biomed_calibrations (device_id, customer_id, calibrated_on, next_due_on, laboratory,
			certificate_number, filename, content_type, data, sha256, recorded_by, recorded_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			RETURNING id, device_id, customer_id, calibrated_on, next_due_on, laboratory, certificate_number, filename, content_type,
				length(data), recorded_by, recorded_at`,
			deviceID, customerID, on, next, in.Laboratory, in.CertificateNumber, cert.Name, cert.ContentType, cert.Data, sum[:], a.String(), now).
			Scan(&c.ID, &c.DeviceID, &c.CustomerID, &calOn, &due, &c.Laboratory, &c.CertificateNumber, &c.Filename, &c.ContentType,
				&c.SizeBytes, &c.RecordedBy, &c.RecordedAt)
		if isUniqueViolation(err) {
			return ErrConflict.Errorf("%s already has a calibration on %s", deviceID, in.CalibratedOn)
		}
		c.CalibratedOn, c.NextDueOn = calOn.Format(dateLayout), due.Format(dateLayout)
		return err
	})
	return c, err
}

// CalibrationStatus is a flagged device's calibration.
type CalibrationStatus struct {
	DeviceID        string `json:"device_id"`
	DeviceName      string `json:"device_name"`
	CustomerID      string `json:"customer_id"`
	EveryMonths     int    `json:"every_months"`
	LastCalibrated  string `json:"last_calibrated_on,omitempty"`
	CalibrationID   int64  `json:"calibration_id,omitempty"` // its certificate: /api/v1/biomed/calibrations/{id}/certificate
	Certificate     string `json:"certificate_number,omitempty"`
	DueOn           string `json:"due_on"`
	State           string `json:"state"` // ok, due_soon (within 30 days), overdue
	OverdueTicketID *int64 `json:"overdue_ticket_id,omitempty"`
}

// DueSoonDays is how close a due date makes a calibration due_soon.
const DueSoonDays = 30

// Calibrations lists the flagged devices in a's scope with their state on
// the customer's calendar day of at.
func (s *Store) Calibrations(ctx context.Context, a auth.Actor, customerID string, at time.Time) ([]CalibrationStatus, error) {
	customerID, err := scope(a, customerID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	ids, days, err := s.customerDays(ctx, customerID, at)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT p.device_id, p.customer_id, p.every_months, l.id, l.calibrated_on, l.certificate_number,
			COALESCE(l.next_due_on, p.first_due_on), p.alert_ticket_id, (COALESCE(l.next_due_on, p.first_due_on) - c.today)
		FROM biomed_calibration_plans p JOIN unnest($2::text[], $3::date[]) AS c (id, today) ON c.id = p.customer_id
		LEFT JOIN LATERAL (SELECT id, calibrated_on, certificate_number, next_due_on FROM biomed_calibrations k
			WHERE k.device_id = p.device_id ORDER BY calibrated_on DESC LIMIT 1) l ON true
		WHERE ($1 = '' OR p.customer_id = $1) ORDER BY p.customer_id, p.device_id`, customerID, ids, days)
	if err != nil {
		return nil, fmt.Errorf("biomed: calibrations: %w", err)
	}
	defer rows.Close()
	out := []CalibrationStatus{}
	for rows.Next() {
		var c CalibrationStatus
		var id sql.NullInt64
		var last sql.NullTime
		var cert sql.NullString
		var due time.Time
		var days int
		if err := rows.Scan(&c.DeviceID, &c.CustomerID, &c.EveryMonths, &id, &last, &cert, &due, &c.OverdueTicketID, &days); err != nil {
			return nil, fmt.Errorf("biomed: calibrations: %w", err)
		}
		c.CalibrationID, c.Certificate, c.DueOn = id.Int64, cert.String, due.Format(dateLayout)
		if last.Valid {
			c.LastCalibrated = last.Time.Format(dateLayout)
		}
		switch {
		case days < 0:
			c.State = "overdue"
		case days <= DueSoonDays:
			c.State = "due_soon"
		default:
			c.State = "ok"
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if d, err := s.inv.Device(ctx, assets.Scope{}, out[i].DeviceID); err == nil {
			out[i].DeviceName = d.Name
		}
	}
	return out, nil
}

// Certificate returns a calibration's certificate in a's scope.
func (s *Store) Certificate(ctx context.Context, a auth.Actor, id int64) (maintenance.Attachment, error) {
	customerID, err := scope(a, "")
	if err != nil {
		return maintenance.Attachment{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	var f maintenance.Attachment
	err = s.db.QueryRowContext(ctx, `SELECT filename, content_type, data FROM biomed_calibrations WHERE id = $1 AND ($2 = '' OR customer_id = $2)`,
		id, customerID).Scan(&f.Name, &f.ContentType, &f.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return f, ErrNotFound.Errorf("calibration %d", id)
	}
	if err != nil {
		return f, fmt.Errorf("biomed: certificate %d: %w", id, err)
	}
	return f, nil
}

// calibrationAlerts opens a Sev 3 ticket for each calibration that fell
// overdue in its customer's calendar, once per due date.
func (s *Store) calibrationAlerts(ctx context.Context, cs *customers, now time.Time) (int, error) {
	var due []struct {
		DeviceID   string    `db:"device_id"`
		CustomerID string    `db:"customer_id"`
		DueOn      time.Time `db:"due_on"`
	}
	ids, days, err := s.customerDays(ctx, "", now)
	if err != nil {
		return 0, err
	}
	if err := s.db.SelectContext(ctx, &due, `SELECT p.device_id, p.customer_id, COALESCE(l.next_due_on, p.first_due_on) AS due_on
		FROM biomed_calibration_plans p JOIN unnest($1::text[], $2::date[]) AS c (id, today) ON c.id = p.customer_id
		LEFT JOIN LATERAL (SELECT next_due_on FROM biomed_calibrations k WHERE k.device_id = p.device_id ORDER BY calibrated_on DESC LIMIT 1) l ON true
		WHERE COALESCE(l.next_due_on, p.first_due_on) < c.today
		AND p.alerted_due_on IS DISTINCT FROM COALESCE(l.next_due_on, p.first_due_on)`, ids, days); err != nil {
		return 0, fmt.Errorf("biomed: overdue calibrations: %w", err)
	}
	n := 0
	for _, o := range due {
		err := s.inTx(ctx, "calibration overdue "+o.DeviceID, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE biomed_calibration_plans SET alerted_due_on = $2 WHERE device_id = $1
				AND alerted_due_on IS DISTINCT FROM $2`, o.DeviceID, o.DueOn)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				return nil // alerted by another sweeper
			}
			c, err := cs.get(ctx, o.CustomerID, now)
			if err != nil {
				return err
			}
			d, err := s.inv.Device(ctx, assets.Scope{}, o.DeviceID)
			if err != nil {
				return err
			}
			l := lang(c.Language)
			title := notify.CalibrationOverdueTitle(l, o.DueOn.Format(dateLayout), d.Name, d.Serial)
			text := notify.CalibrationOverdueText(l)
			t, ok, err := s.tickets.OpenSystemTx(ctx, tx, maintenance.SystemInput{CustomerID: d.CustomerID, SiteID: d.SiteID,
				DeviceIDs: []string{d.ID}, Title: cut(title, 200), Description: text, Category: "calibration", Severity: 3,
				Source: maintenance.SourceBiomed, AutoKey: "biomed:calibration:" + d.ID, OpenedAt: now,
				Data: map[string]any{"due_on": o.DueOn.Format(dateLayout)}})
			if err != nil {
				return err
			}
			if ok {
				n++
				_, err = tx.ExecContext(ctx, `UPDATE biomed_calibration_plans SET alert_ticket_id = $2 WHERE device_id = $1`, o.DeviceID, t.ID)
			}
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
