// Package mailintake turns e-mail read from IMAP mailboxes into tickets:
// a customer's contact writes, Vigía opens the ticket (source email) and
// acknowledges it; a reply finds its ticket by In-Reply-To/References or
// by the ticket number in the subject and becomes a comment. Auto-replies,
// bounces and our own messages are not tickets; a sender nobody knows
// waits in the unmatched queue for the NOC, unanswered.
//
// The raw message is stored in PostgreSQL in the transaction that acts on
// it, before the message is flagged \Seen and archived; Message-ID (else
// mailbox UIDVALIDITY+UID) is unique, so a crash between the commit and
// the flag never acts twice. The ticket rules live in maintenance: this
// package only calls its exported operations.
package mailintake

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"net/textproto"
	"regexp"
	"strings"

	_ "github.com/emersion/go-message/charset" // Latin-1 and friends, common in hospitals' mail
	"github.com/emersion/go-message/mail"
)

// Limits on what is read from one message.
const (
	maxRawBytes  = 32 << 20
	maxTextBytes = 100000
)

// Message is what intake needs from one e-mail.
type Message struct {
	From         string   // address only, lower case
	Subject      string   // decoded
	MessageID    string   // without angle brackets; "" when absent
	References   []string // In-Reply-To then References, without brackets
	AutoSubmit   string   // Auto-Submitted, lower case
	Precedence   string   // lower case
	AutoReply    bool     // X-Autoreply / X-Autorespond
	Text         string
	Images       []Part // image/png and image/jpeg parts
	Refused      []string
	Report       *DeliveryReport // a multipart/report; report-type=delivery-status
	ReturnPathNo bool            // Return-Path: <> (a bounce or auto-reply)
}

// Part is one attachment.
type Part struct {
	Name string
	Data []byte
}

// DeliveryReport is a bounce (RFC 3464): the recipients it failed for and
// the Message-ID of the message it returns.
type DeliveryReport struct {
	OriginalMessageID string
	Failed            []FailedRecipient
}

// FailedRecipient is one recipient a delivery failed for.
type FailedRecipient struct {
	Address, Status, Diagnostic string
}

var errUnparseable = errors.New("mailintake: unparseable message")

// Parse reads an RFC 5322 message. An error means the message cannot be
// understood at all (it is then kept raw for the NOC).
func Parse(raw []byte) (*Message, error) {
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && mr == nil {
		return nil, fmt.Errorf("%w: %v", errUnparseable, err)
	}
	defer mr.Close()
	h := mr.Header
	m := &Message{}
	from, err := h.AddressList("From")
	if err != nil || len(from) == 0 {
		return nil, fmt.Errorf("%w: no valid From", errUnparseable)
	}
	m.From = strings.ToLower(from[0].Address)
	if m.Subject, err = h.Subject(); err != nil {
		m.Subject = h.Get("Subject")
	}
	if id, err := h.MessageID(); err == nil {
		m.MessageID = id
	}
	for _, k := range []string{"In-Reply-To", "References"} {
		ids, _ := h.MsgIDList(k)
		m.References = append(m.References, ids...)
	}
	m.AutoSubmit = strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted")))
	m.Precedence = strings.ToLower(strings.TrimSpace(h.Get("Precedence")))
	m.AutoReply = h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != ""
	m.ReturnPathNo = strings.TrimSpace(h.Get("Return-Path")) == "<>"
	ct, params, _ := h.ContentType()
	if ct == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") {
		m.Report = &DeliveryReport{}
	}
	var plain, htm string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if plain == "" && htm == "" {
				return nil, fmt.Errorf("%w: %v", errUnparseable, err)
			}
			break // keep what was read before a broken part
		}
		body, err := io.ReadAll(io.LimitReader(p.Body, maxRawBytes))
		if err != nil {
			continue
		}
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			pct, _, _ := ph.ContentType()
			switch {
			case pct == "text/plain" && plain == "":
				plain = string(body)
			case pct == "text/html" && htm == "":
				htm = string(body)
			case pct == "message/delivery-status" && m.Report != nil:
				m.Report.Failed = deliveryStatus(body)
			case (pct == "message/rfc822" || pct == "text/rfc822-headers") && m.Report != nil:
				m.Report.OriginalMessageID = headerMessageID(body)
			case pct == "image/png" || pct == "image/jpeg":
				m.Images = append(m.Images, Part{Name: "imagen", Data: body})
			}
		case *mail.AttachmentHeader:
			name, _ := ph.Filename()
			pct, _, _ := ph.ContentType()
			switch {
			case (pct == "message/rfc822" || pct == "text/rfc822-headers") && m.Report != nil:
				m.Report.OriginalMessageID = headerMessageID(body)
			case pct == "message/delivery-status" && m.Report != nil:
				m.Report.Failed = deliveryStatus(body)
			case strings.HasPrefix(pct, "image/"):
				m.Images = append(m.Images, Part{Name: name, Data: body})
			default:
				m.Refused = append(m.Refused, name)
			}
		}
	}
	m.Text = plain
	if strings.TrimSpace(m.Text) == "" && htm != "" {
		m.Text = htmlToText(htm)
	}
	m.Text = clean(strings.TrimSpace(m.Text))
	m.Subject = clean(m.Subject)
	if len(m.Text) > maxTextBytes {
		m.Text = strings.ToValidUTF8(m.Text[:maxTextBytes], "")
	}
	return m, nil
}

// clean makes outside text storable and readable: valid UTF-8, no NUL or
// other control characters but line breaks and tabs.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// deliveryStatus reads the per-recipient blocks of a message/delivery-status
// part and keeps those whose Action is failed.
func deliveryStatus(body []byte) []FailedRecipient {
	var out []FailedRecipient
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.TrimSpace(body), "\r\n\r\n"...))))
	for i := 0; i < 100; i++ {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 && strings.EqualFold(strings.TrimSpace(h.Get("Action")), "failed") {
			addr := h.Get("Final-Recipient")
			if addr == "" {
				addr = h.Get("Original-Recipient")
			}
			if _, a, ok := strings.Cut(addr, ";"); ok {
				addr = a
			}
			out = append(out, FailedRecipient{Address: strings.ToLower(strings.TrimSpace(addr)),
				Status: strings.TrimSpace(h.Get("Status")), Diagnostic: strings.TrimSpace(h.Get("Diagnostic-Code"))})
		}
		if err != nil {
			break
		}
	}
	return out
}

// headerMessageID reads the Message-ID of a returned message or its headers.
func headerMessageID(b []byte) string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	h, _ := r.ReadMIMEHeader()
	id := strings.TrimSpace(h.Get("Message-Id"))
	return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
}

var (
	dropElementRE = regexp.MustCompile(`(?is)<(script|style|head)\b.*?</(script|style|head)\s*>`)
	breakRE       = regexp.MustCompile(`(?i)<(br|/p|/div|/tr|/li|/h[1-6]|/table)\b[^>]*>`)
	tagRE         = regexp.MustCompile(`(?s)<[^>]*>`)
	blankLinesRE  = regexp.MustCompile(`\n[ \t]*(\n[ \t]*)+`)
	spacesRE      = regexp.MustCompile(`[ \t\r\f\v]+`)
)

// htmlToText keeps the words of an HTML body and its line breaks.
func htmlToText(s string) string {
	s = dropElementRE.ReplaceAllString(s, "")
	s = breakRE.ReplaceAllString(s, "\n")
	s = tagRE.ReplaceAllString(s, "")
	s = html.UnescapeString(s)
	s = spacesRE.ReplaceAllString(s, " ")
	s = blankLinesRE.ReplaceAllString(s, "\n\n")
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// ticketNumberRE finds a ticket number in a subject: VG-2026-000123.
var ticketNumberRE = regexp.MustCompile(`\bVG-\d{4}-\d{6}\b`)

// Noise says why a message is not a person writing, or "".
func (m *Message) Noise() string {
	local, _, _ := strings.Cut(m.From, "@")
	switch {
	case m.AutoSubmit != "" && m.AutoSubmit != "no":
		return "Auto-Submitted: " + m.AutoSubmit
	case m.Precedence == "bulk" || m.Precedence == "junk" || m.Precedence == "list":
		return "Precedence: " + m.Precedence
	case m.AutoReply:
		return "automatic reply"
	case local == "mailer-daemon" || local == "postmaster":
		return "from the mailer-daemon"
	case m.ReturnPathNo:
		return "null Return-Path (a bounce or automatic message)"
	}
	return ""
}
