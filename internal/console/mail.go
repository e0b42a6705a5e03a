package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/mailintake"
)

// MailQueue is the unmatched-mail queue (mailintake.Intake): messages from
// senders nobody knows, and messages that could not be parsed.
type MailQueue interface {
	Queue(ctx context.Context, limit int) ([]mailintake.Queued, error)
	Assign(ctx context.Context, id int64, customerID, by string) (mailintake.Outcome, error)
	Discard(ctx context.Context, id int64, by string) error
}

// mailQueue shows the NOC the waiting messages, each with a form to make
// it a ticket of a customer, or to discard it.
func (c *Console) mailQueue(rq *request) error {
	var queue []mailintake.Queued
	if c.cfg.Mail != nil {
		var err error
		if queue, err = c.cfg.Mail.Queue(rq.ctx(), 200); err != nil {
			return err
		}
	}
	customers, err := c.cfg.Assets.Customers(rq.ctx(), assets.Scope{})
	if err != nil {
		return err
	}
	c.render(rq, http.StatusOK, "mail", translate(rq.lang, "mail.title"), map[string]any{"Queue": queue, "Customers": customers})
	return nil
}

func (c *Console) mailAct(rq *request) error {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil || c.cfg.Mail == nil {
		return errNotFound
	}
	by := rq.sess.User.Username + " (noc)"
	okText := translate(rq.lang, "mail.discarded")
	switch rq.r.PathValue("action") {
	case "assign":
		var out mailintake.Outcome
		out, err = c.cfg.Mail.Assign(rq.ctx(), id, rq.r.PostFormValue("customer"), by)
		okText = translate(rq.lang, "mail.assigned", out.Ticket)
	case "discard":
		err = c.cfg.Mail.Discard(rq.ctx(), id, by)
	default:
		return errNotFound
	}
	if errors.Is(err, mailintake.ErrNotFound) {
		return errNotFound
	}
	return c.afterAction(rq, "/console/noc/mail", err, okText)
}
