package maintenance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig of screenshots
	_ "image/png"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/httpx"
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

// StoredAttachment is an attachment kept with its ticket. Data is filled
// only by Attachment, which serves one file; listings leave it nil.
type StoredAttachment struct {
	ID          int64     `db:"id" json:"id"`
	TicketID    int64     `db:"ticket_id" json:"ticket_id"`
	CustomerID  string    `db:"customer_id" json:"customer_id"`
	Filename    string    `db:"filename" json:"filename"`
	ContentType string    `db:"content_type" json:"content_type"`
	Size        int       `db:"size" json:"size"`
	UploadedBy  string    `db:"uploaded_by" json:"uploaded_by"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	VisitID     *int64    `db:"visit_id" json:"visit_id,omitempty"` // a photo taken on this visit
	Data        []byte    `db:"data" json:"-"`
}

// AddAttachments stores checked attachments on ticket ticketID in scope
// (another customer's ticket is ErrNotFound), with the ticket's customer,
// signed by by.
func (s *Store) AddAttachments(ctx context.Context, sc Scope, ticketID int64, by string, files []Attachment, at time.Time) error {
	return s.inTx(ctx, "attach to ticket", func(tx *sqlx.Tx) error {
		t, err := lockTicket(ctx, tx, sc, strconv.FormatInt(ticketID, 10))
		if err != nil {
			return err
		}
		return AddAttachmentsTx(ctx, tx, t.ID, t.CustomerID, by, files, at)
	})
}

// Attachments lists a ticket's attachments in scope, oldest first,
// without their data.
func (s *Store) Attachments(ctx context.Context, sc Scope, ticketID int64) ([]StoredAttachment, error) {
	out := []StoredAttachment{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+attachmentColumns+`
		FROM ticket_attachments WHERE ticket_id = $1 AND ($2 = '' OR customer_id = $2) ORDER BY id`, ticketID, sc.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("maintenance: attachments of ticket %d: %w", ticketID, err)
	}
	return out, nil
}

const attachmentColumns = `id, ticket_id, customer_id, filename, content_type, size_bytes AS size, uploaded_by, created_at, visit_id`

// Attachment returns attachment id with its data, in scope: a customer
// reads only its own, on a ticket it may see. ticketRef, when not empty,
// is the ticket (id or number) the attachment must belong to. Another
// customer's attachment is ErrNotFound, exactly like a missing one.
func (s *Store) Attachment(ctx context.Context, sc Scope, ticketRef string, id int64) (StoredAttachment, error) {
	ticketID, _ := parseRef(ticketRef)
	var a StoredAttachment
	err := s.db.GetContext(ctx, &a, `SELECT a.id, a.ticket_id, a.customer_id, a.filename, a.content_type, a.size_bytes AS size,
			a.uploaded_by, a.created_at, a.visit_id, a.data
		FROM ticket_attachments a JOIN tickets t ON t.id = a.ticket_id
		WHERE a.id = $1 AND ($2 = '' OR (a.customer_id = $2 AND t.customer_id = $2 AND NOT t.noc_only))
			AND ($3 = '' OR ($4::bigint <> 0 AND t.id = $4::bigint) OR ($4::bigint = 0 AND t.number = $3))`,
		id, sc.CustomerID, ticketRef, ticketID)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound.Errorf("attachment %d", id)
	}
	if err != nil {
		return a, fmt.Errorf("maintenance: attachment %d: %w", id, err)
	}
	return a, nil
}

// SafeContentType is the type the file is served with: what the upload
// checks accepted (PNG or JPEG, by content), and anything else older or
// unexpected as bytes to download, never as something a browser renders.
func (a StoredAttachment) SafeContentType() string {
	if a.ContentType == "image/png" || a.ContentType == "image/jpeg" {
		return a.ContentType
	}
	return "application/octet-stream"
}

// attachment serves GET /api/v1/tickets/{id}/attachments/{n}: {id} is the
// ticket's id or number, {n} the attachment's id (the number the console's
// links carry). A customer's token reads only its own tickets'
// attachments: another customer's answers 404 like a missing one.
// attachments lists a ticket's attachments (without their data) for a
// caller who may see the ticket: each id is the {n} that downloads it.
func (a *API) attachments(w http.ResponseWriter, r *http.Request) {
	if _, ok := httpx.ReadQuery(w, r); !ok {
		return
	}
	sc := scopeOf(auth.RequestActor(r))
	d, err := a.store.Get(r.Context(), sc, r.PathValue("id"), a.now())
	if err != nil {
		a.errs.Fail(w, err, "ticket", r.PathValue("id"))
		return
	}
	list, err := a.store.Attachments(r.Context(), sc, d.ID)
	if err != nil {
		a.errs.Fail(w, err, "ticket", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"attachments": list})
}

func (a *API) attachment(w http.ResponseWriter, r *http.Request) {
	n, ok := httpx.PathID(w, r, "n", "attachment")
	if !ok {
		return
	}
	att, err := a.store.Attachment(r.Context(), scopeOf(auth.RequestActor(r)), r.PathValue("id"), n)
	if err != nil {
		a.errs.Fail(w, err, "attachment", r.PathValue("n"))
		return
	}
	httpx.WriteFile(w, att.SafeContentType(), "attachment", att.Filename, att.Data)
}
