package maintenance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of screenshots
	_ "image/png"
	"net/http"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// Attachment limits (seed 003: screenshots with the ticket), the same for
// the portal and for e-mail.
const (
	MaxAttachmentBytes = 5 << 20
	MaxAttachments     = 5
)

// Why an attachment is refused.
var (
	ErrAttachmentTooBig   = errors.New("maintenance: attachment too big")
	ErrAttachmentNotImage = errors.New("maintenance: attachment is not a PNG or JPEG image")
)

// Attachment is a screenshot checked by its content.
type Attachment struct {
	Name, ContentType string
	Data              []byte
	// VisitID links a photo taken on site to its visit; nil otherwise.
	VisitID *int64
}

// CheckAttachment accepts at most MaxAttachmentBytes of a PNG or JPEG by
// its content (the name and the sender's type are not trusted) that
// decodes as an image of sane dimensions.
func CheckAttachment(name string, data []byte) (Attachment, error) {
	a := Attachment{Name: CleanFilename(name), Data: data}
	if len(data) > MaxAttachmentBytes {
		return a, ErrAttachmentTooBig
	}
	a.ContentType = http.DetectContentType(data)
	if a.ContentType != "image/png" && a.ContentType != "image/jpeg" {
		return a, ErrAttachmentNotImage
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || (format != "png" && format != "jpeg") || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > 20000 || cfg.Height > 20000 {
		return a, ErrAttachmentNotImage
	}
	return a, nil
}

// CleanFilename keeps a file's base name, printable and short.
func CleanFilename(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, name)
	for len(name) > 200 || !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name[:min(len(name), 200)], "")
	}
	if name == "" || name == "." || name == "/" {
		name = "captura"
	}
	return name
}

// AddAttachmentsTx stores checked attachments on a ticket in the caller's
// transaction.
func AddAttachmentsTx(ctx context.Context, tx *sqlx.Tx, ticketID int64, customerID, by string, files []Attachment, at time.Time) error {
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_attachments (ticket_id, customer_id, filename, content_type, size_bytes, data, sha256,
			uploaded_by, created_at, visit_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			ticketID, customerID, f.Name, f.ContentType, len(f.Data), f.Data, sum[:], by, at, f.VisitID); err != nil {
			return fmt.Errorf("save attachment %s: %w", f.Name, err)
		}
	}
	return nil
}
