package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"strconv"
	"time"
)

// SMTP sends e-mail through an SMTP relay with net/smtp. STARTTLS is used
// whenever the server offers it; authentication (PLAIN) only over TLS or
// to localhost, as net/smtp enforces.
type SMTP struct {
	Addr     string // host:port
	From     string // envelope and header sender
	Username string
	Password string // secret: never logged
	// Timeout bounds one whole delivery (default 30 s): the outbox holds a
	// row lock while sending.
	Timeout time.Duration
	// TLS overrides the STARTTLS configuration (tests, private CAs).
	TLS *tls.Config
}

// Send delivers one message to one recipient.
func (m *SMTP) Send(ctx context.Context, to string, e Email) error {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return fmt.Errorf("smtp: address %q: %w", m.Addr, err)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", m.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: greeting from %s: %w", m.Addr, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := m.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("smtp: RCPT TO %s: %w", to, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(buildEmail(m.From, to, e)); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message refused: %w", err)
	}
	// The message is accepted once DATA is closed; QUIT errors do not matter.
	c.Quit()
	return nil
}

// buildEmail writes an RFC 5322 message in UTF-8, quoted-printable.
func buildEmail(from, to string, e Email) []byte {
	var b bytes.Buffer
	date := e.Date
	if date.IsZero() {
		date = time.Unix(0, 0)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n", from, to,
		mime.QEncoding.Encode("utf-8", e.Subject), date.Format(time.RFC1123Z), e.ID)
	b.WriteString("MIME-Version: 1.0\r\n")
	if e.Calendar == "" {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		qp := quotedprintable.NewWriter(&b)
		io.WriteString(qp, e.Body)
		qp.Close()
		return b.Bytes()
	}
	// The text, then the invitation: calendar clients act on a text/calendar
	// part with its iTIP method; others offer invite.ics as a file.
	mw := multipart.NewWriter(&b)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	text, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"}})
	qp := quotedprintable.NewWriter(text)
	io.WriteString(qp, e.Body)
	qp.Close()
	method := e.CalendarMethod
	if method == "" {
		method = "PUBLISH"
	}
	cal, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {`text/calendar; charset=utf-8; method=` + method + `; name="invite.ics"`},
		"Content-Disposition": {`attachment; filename="invite.ics"`}, "Content-Transfer-Encoding": {"base64"}})
	enc := base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: cal})
	io.WriteString(enc, e.Calendar)
	enc.Close()
	mw.Close()
	return b.Bytes()
}

// lineWrapper breaks base64 into 76-character lines (RFC 2045 §6.8).
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(76-l.col, len(p))
		if _, err := l.w.Write(p[:k]); err != nil {
			return n, err
		}
		n, p, l.col = n+k, p[k:], l.col+k
		if l.col == 76 {
			if _, err := io.WriteString(l.w, "\r\n"); err != nil {
				return n, err
			}
			l.col = 0
		}
	}
	return n, nil
}

// Webhooks posts notifications as JSON, signed with HMAC-SHA256 so the
// receiver can check origin and freshness:
//
//	X-Vigia-Event:     the event key (also the idempotency key)
//	X-Vigia-Timestamp: Unix seconds
//	X-Vigia-Signature: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))
type Webhooks struct {
	// Secrets maps each webhook URL to its signing secret.
	Secrets map[string][]byte
	Client  *http.Client
}

// Sign returns the signature header value for body at timestamp ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%d.", ts)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Post delivers one webhook; any non-2xx answer is a failure to retry.
func (h *Webhooks) Post(ctx context.Context, url, eventKey string, payload []byte, at time.Time) error {
	secret, ok := h.Secrets[url]
	if !ok {
		return fmt.Errorf("webhook %s: no secret configured", url)
	}
	client := h.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	ts := at.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Vigia-Event", eventKey)
	req.Header.Set("X-Vigia-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Vigia-Signature", Sign(secret, ts, payload))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s: answered %s", url, resp.Status)
	}
	return nil
}
