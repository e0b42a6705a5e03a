package console

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
	"github.com/vigia-noc/vigia/maintenance"
)

func urlPathEscape(s string) string { return url.PathEscape(s) }

func (rq *request) customerScope() (assets.Scope, maintenance.Scope) {
	id := rq.sess.User.CustomerID
	return assets.Scope{CustomerID: id}, maintenance.Scope{CustomerID: id}
}

func (c *Console) portal(rq *request) error {
	as, ms := rq.customerScope()
	cu, err := c.cfg.Assets.Customer(rq.ctx(), as, as.CustomerID)
	if err != nil {
		return err
	}
	devices, err := c.devicesWithState(rq.ctx(), assets.DeviceFilter{Scope: as})
	if err != nil {
		return err
	}
	list, _, err := c.cfg.Tickets.List(rq.ctx(), maintenance.ListFilter{Scope: ms, Limit: 100})
	if err != nil {
		return err
	}
	open := urgencyQueue(list)
	holds, err := c.holdLines(rq, open)
	if err != nil {
		return err
	}
	var closed []maintenance.Ticket
	for _, t := range list {
		if t.Status == maintenance.StatusClosed && len(closed) < 20 {
			closed = append(closed, t)
		}
	}
	c.render(rq, http.StatusOK, "portal", translate(rq.lang, "portal.title", cu.Name), map[string]any{
		"Customer": cu, "Devices": devices, "Counts": countStates(devices), "Open": open, "Closed": closed, "Holds": holds,
		"Reports": c.cfg.Reports != nil, "Months": reportMonths(rq.now, cu.Location()), "Formats": reportFormats,
	})
	return nil
}

func (c *Console) portalTicket(rq *request) error {
	_, ms := rq.customerScope()
	p, err := c.loadTicket(rq, ms, rq.r.PathValue("ref"), false)
	if err != nil {
		return err
	}
	c.render(rq, http.StatusOK, "portal_ticket", p.Number+" · "+p.Title, p)
	return nil
}

// portalAct confirms or rejects a solution, reopens within the policy's
// window, or comments. The ticket store enforces which applies when.
func (c *Console) portalAct(rq *request) error {
	ref, action := rq.r.PathValue("ref"), rq.r.PostFormValue("action")
	if !slices.Contains([]string{"confirm", "reopen", "comment"}, action) {
		return fmt.Errorf("%w: unknown action %q", maintenance.ErrInvalid, action)
	}
	t, err := c.cfg.Tickets.Act(rq.ctx(), rq.actor(), ref, action, maintenance.ActionInput{Text: rq.r.PostFormValue("text")}, rq.now)
	to := "/console/portal/tickets/" + urlPathEscape(ref)
	if err == nil {
		to = "/console/portal/tickets/" + urlPathEscape(t.Number)
	}
	return c.afterAction(rq, to, err, translate(rq.lang, "act.done"))
}

func (c *Console) newTicketForm(rq *request) error {
	as, _ := rq.customerScope()
	devices, err := c.cfg.Assets.Devices(rq.ctx(), assets.DeviceFilter{Scope: as})
	if err != nil {
		return err
	}
	c.render(rq, http.StatusOK, "portal_new", translate(rq.lang, "portal.new"), map[string]any{
		"Devices": devices, "Severities": []int{1, 2, 3, 4}, "MaxMB": maxAttachmentBytes >> 20, "MaxFiles": maxAttachments,
		"Form": map[string]string{"severity": "3"},
	})
	return nil
}

// errBadUpload is an attachment refused by its content or size.
var errBadUpload = errors.New("console: bad attachment")

// upload is an attachment checked and read into memory.
type upload struct {
	name, contentType string
	data              []byte
}

// readUploads checks every file: at most maxAttachments, each at most
// maxAttachmentBytes, and a PNG or JPEG by its content (the name and the
// browser's type are not trusted) that decodes as an image.
func readUploads(lang string, files []*multipart.FileHeader) ([]upload, error) {
	var out []upload
	for _, fh := range files {
		if fh.Size == 0 && fh.Filename == "" {
			continue // the empty file input
		}
		if len(out) == maxAttachments {
			return nil, fmt.Errorf("%w: %s", errBadUpload, translate(lang, "portal.toomany", maxAttachments))
		}
		name := maintenance.CleanFilename(fh.Filename)
		if fh.Size > maxAttachmentBytes {
			return nil, fmt.Errorf("%w: %s", errBadUpload, translate(lang, "portal.bigfile", name, maxAttachmentBytes>>20))
		}
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, maxAttachmentBytes+1))
		f.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > maxAttachmentBytes {
			return nil, fmt.Errorf("%w: %s", errBadUpload, translate(lang, "portal.bigfile", name, maxAttachmentBytes>>20))
		}
		a, err := maintenance.CheckAttachment(name, data)
		switch {
		case errors.Is(err, maintenance.ErrAttachmentTooBig):
			return nil, fmt.Errorf("%w: %s", errBadUpload, translate(lang, "portal.bigfile", name, maxAttachmentBytes>>20))
		case err != nil:
			return nil, fmt.Errorf("%w: %s", errBadUpload, translate(lang, "portal.badfile", name))
		}
		out = append(out, upload{name: a.Name, contentType: a.ContentType, data: a.Data})
	}
	return out, nil
}

// createTicket opens a ticket from the portal with its screenshots. The
// attachments are checked before the ticket is opened, so a refused file
// opens nothing.
func (c *Console) createTicket(rq *request) error {
	as, _ := rq.customerScope()
	form := rq.r.MultipartForm
	if form == nil {
		return fmt.Errorf("%w: expected a multipart form", maintenance.ErrInvalid)
	}
	val := func(k string) string {
		if v := form.Value[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	sev, _ := strconv.Atoi(val("severity"))
	in := maintenance.CreateInput{Title: val("title"), Description: val("description"), Severity: sev}
	if d := val("device"); d != "" {
		in.DeviceIDs = []string{d}
	}
	if err := httpx.Validate(in); err != nil {
		return err
	}
	files, err := readUploads(rq.lang, form.File["attachments"])
	if err == nil {
		var t maintenance.Ticket
		t, err = c.cfg.Tickets.Create(rq.ctx(), rq.actor(), in, rq.now)
		if err == nil {
			if err := c.storeAttachments(rq, t.ID, nil, files); err != nil {
				return err
			}
			setFlash(rq, "ok", translate(rq.lang, "portal.created", t.Number))
			http.Redirect(rq.w, rq.r, "/console/portal/tickets/"+urlPathEscape(t.Number), http.StatusSeeOther)
			return nil
		}
	}
	if !isUserError(err) {
		return err
	}
	// Show the form again with what was typed and the reason.
	devices, derr := c.cfg.Assets.Devices(rq.ctx(), assets.DeviceFilter{Scope: as})
	if derr != nil {
		return derr
	}
	rq.flash = &flash{Kind: "error", Text: userMessage(err)}
	c.render(rq, http.StatusUnprocessableEntity, "portal_new", translate(rq.lang, "portal.new"), map[string]any{
		"Devices": devices, "Severities": []int{1, 2, 3, 4}, "MaxMB": maxAttachmentBytes >> 20, "MaxFiles": maxAttachments,
		"Form": map[string]string{"title": val("title"), "description": val("description"), "severity": val("severity"), "device": val("device")},
	})
	return nil
}

// attachment serves a screenshot to its customer's users and to staff;
// another customer's id answers 404 like a missing one.
func (c *Console) attachment(rq *request) error {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil {
		return errNotFound
	}
	a, err := c.cfg.Tickets.Attachment(rq.ctx(), maintenance.Scope{CustomerID: rq.principal().CustomerScope()}, "", id)
	if err != nil {
		return err
	}
	httpx.WriteFile(rq.w, a.SafeContentType(), "inline", a.Filename, a.Data)
	return nil
}
