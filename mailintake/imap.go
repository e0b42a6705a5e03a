package mailintake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
)

// Mailbox is one IMAP mailbox to read: imap://USER@HOST[:PORT]/MAILBOX
// (STARTTLS, required unless the host is loopback) or
// imaps://USER@HOST[:PORT]/MAILBOX (implicit TLS).
type Mailbox struct {
	Implicit bool   // imaps
	Addr     string // host:port
	Host     string
	User     string
	Name     string // the mailbox, INBOX by default
	Password string // secret: never logged nor printed
	// Archive receives each message once acted on (created if missing).
	Archive string
	// TLS overrides the TLS configuration (tests, private CAs).
	TLS *tls.Config
}

// ParseMailbox reads an --imap-url. The password is never in the URL.
func ParseMailbox(raw, password, archive string) (Mailbox, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Mailbox{}, fmt.Errorf("imap url: %w", err)
	}
	var m Mailbox
	switch u.Scheme {
	case "imap":
	case "imaps":
		m.Implicit = true
	default:
		return m, fmt.Errorf("imap url %q: the scheme must be imap (STARTTLS) or imaps (implicit TLS)", u.Redacted())
	}
	if _, has := u.User.Password(); has {
		return m, errors.New("imap url: put the password in VIGIA_IMAP_PASSWORD or VIGIA_IMAP_PASSWORD_FILE, not in the URL")
	}
	if u.User == nil || u.User.Username() == "" || u.Hostname() == "" {
		return m, fmt.Errorf("imap url %q: want imap[s]://USER@HOST[:PORT]/MAILBOX", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return m, fmt.Errorf("imap url %q: no query or fragment", raw)
	}
	m.Host, m.User, m.Password, m.Archive = u.Hostname(), u.User.Username(), password, archive
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "143", true: "993"}[m.Implicit]
	}
	m.Addr = net.JoinHostPort(m.Host, port)
	m.Name = strings.TrimPrefix(u.Path, "/")
	if m.Name == "" {
		m.Name = "INBOX"
	}
	if m.Archive == "" || m.Archive == m.Name {
		return m, fmt.Errorf("imap url %q: the archive mailbox must differ from the mailbox read", raw)
	}
	return m, nil
}

// String names the mailbox without its secret (the inbound_mail.mailbox
// column and the logs).
func (m Mailbox) String() string {
	scheme := "imap"
	if m.Implicit {
		scheme = "imaps"
	}
	return (&url.URL{Scheme: scheme, User: url.User(m.User), Host: m.Addr, Path: "/" + m.Name}).String()
}

// LogValue shows the mailbox in logs, its password as <secret>.
func (m Mailbox) LogValue() slog.Value {
	pw := ""
	if m.Password != "" {
		pw = "<secret>"
	}
	return slog.GroupValue(slog.String("url", m.String()), slog.String("archive", m.Archive), slog.String("password", pw))
}

// Format prints the mailbox with its password as <secret>, whatever the verb.
func (m Mailbox) Format(f fmt.State, _ rune) {
	pw := ""
	if m.Password != "" {
		pw = " (password <secret>)"
	}
	fmt.Fprintf(f, "%s%s", m.String(), pw)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Leader says whether this instance may read the mailboxes
// (internal/leader): one reader in a multi-instance deployment.
type Leader interface {
	IsLeader(ctx context.Context) error
}

// Reader reads one mailbox: every message in it is processed, then
// flagged \Seen and moved to the archive. It waits with IDLE where the
// server supports it, else polls every Poll.
type Reader struct {
	Box    Mailbox
	Intake *Intake
	Leader Leader // nil: always read
	Poll   time.Duration
	Log    *slog.Logger

	// afterCommit runs between a message's commit and its \Seen flag
	// (tests: a crash there must not act twice).
	afterCommit func()
}

// Run reads until ctx ends, reconnecting after errors.
func (r *Reader) Run(ctx context.Context) error {
	if r.Poll <= 0 {
		r.Poll = 30 * time.Second
	}
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, errNotLeader) {
			r.Log.Warn("mailbox read failed, retrying", "mailbox", r.Box.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(r.Poll, 5*time.Second)):
		}
	}
}

var errNotLeader = errors.New("mailintake: not the leader")

func (r *Reader) leading(ctx context.Context) bool {
	if r.Leader == nil {
		return true
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.Leader.IsLeader(lctx) == nil
}

// dial connects and logs in: implicit TLS, or STARTTLS (a plain session
// only to loopback, where no wire can be read).
func (r *Reader) dial() (*client.Client, error) {
	b := r.Box
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.TLS != nil {
		cfg = b.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = b.Host
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	var c *client.Client
	var err error
	if b.Implicit {
		c, err = client.DialWithDialerTLS(dialer, b.Addr, cfg)
	} else {
		c, err = client.DialWithDialer(dialer, b.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", b.Addr, err)
	}
	c.Timeout = time.Minute
	if !b.Implicit {
		ok, err := c.SupportStartTLS()
		switch {
		case err != nil:
			c.Logout()
			return nil, fmt.Errorf("capabilities of %s: %w", b.Addr, err)
		case ok:
			if err := c.StartTLS(cfg); err != nil {
				c.Logout()
				return nil, fmt.Errorf("starttls with %s: %w", b.Addr, err)
			}
		case !loopback(b.Host):
			c.Logout()
			return nil, fmt.Errorf("%s offers no STARTTLS: refusing to send the password in clear (use imaps://)", b.Addr)
		}
	}
	if err := c.Login(b.User, b.Password); err != nil {
		c.Logout()
		return nil, fmt.Errorf("login to %s as %s: %w", b.Addr, b.User, err)
	}
	return c, nil
}

// session is one connection: read everything, then wait for more.
func (r *Reader) session(ctx context.Context) error {
	if !r.leading(ctx) {
		return errNotLeader
	}
	// The client blocks until its updates are read: read them all, and
	// keep only "the mailbox changed". The reader outlives the logout.
	updates := make(chan client.Update, 16)
	changed := make(chan struct{}, 1)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			select {
			case u := <-updates:
				if _, ok := u.(*client.MailboxUpdate); ok {
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			case <-quit:
				return
			}
		}
	}()
	c, err := r.dial()
	if err != nil {
		return err
	}
	defer c.Logout()
	c.Updates = updates
	if err := c.Create(r.Box.Archive); err != nil {
		// Usually "already exists"; a real failure shows at the first move.
		r.Log.Debug("create archive mailbox", "mailbox", r.Box.Archive, "err", err)
	}
	idle, _ := c.Support("IDLE")
	for {
		st, err := c.Select(r.Box.Name, false)
		if err != nil {
			return fmt.Errorf("select %s: %w", r.Box.Name, err)
		}
		if err := r.drain(ctx, c, st.UidValidity); err != nil {
			return err
		}
		if err := r.wait(ctx, c, changed, idle); err != nil {
			return err
		}
		if !r.leading(ctx) {
			return errNotLeader
		}
	}
}

// wait returns when the mailbox changed, the poll interval passed (a
// safety net, and the moment leadership is checked again) or ctx ended.
func (r *Reader) wait(ctx context.Context, c *client.Client, changed <-chan struct{}, idle bool) error {
	timer := time.NewTimer(r.Poll)
	defer timer.Stop()
	if !idle {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		}
	}
	// The command timeout would end IDLE after a minute: idle without it
	// (TCP keep-alives notice a dead server), and restore it after.
	timeout := c.Timeout
	c.Timeout = 0
	defer func() { c.Timeout = timeout }()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.Idle(stop, &client.IdleOptions{LogoutTimeout: 20 * time.Minute}) }()
	select {
	case err := <-done:
		return err
	case <-changed:
	case <-timer.C:
	case <-ctx.Done():
	}
	close(stop)
	err := <-done
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// drain processes every message of the selected mailbox, one at a time.
func (r *Reader) drain(ctx context.Context, c *client.Client, uidValidity uint32) error {
	uids, err := c.UidSearch(imap.NewSearchCriteria())
	if err != nil {
		return fmt.Errorf("search %s: %w", r.Box.Name, err)
	}
	for _, uid := range uids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.one(ctx, c, uidValidity, uid); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) one(ctx context.Context, c *client.Client, uidValidity, uid uint32) error {
	set := new(imap.SeqSet)
	set.AddNum(uid)
	section := &imap.BodySectionName{Peek: true}
	ch := make(chan *imap.Message, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- c.UidFetch(set, []imap.FetchItem{imap.FetchUid, imap.FetchInternalDate, imap.FetchRFC822Size, section.FetchItem()}, ch)
	}()
	var msg *imap.Message
	for m := range ch {
		if m.Uid == uid {
			msg = m
		}
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("fetch uid %d: %w", uid, err)
	}
	if msg == nil {
		return nil // expunged meanwhile
	}
	body := msg.GetBody(section)
	if body == nil {
		return fmt.Errorf("fetch uid %d: no body", uid)
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxRawBytes+1))
	if err != nil {
		return fmt.Errorf("read uid %d: %w", uid, err)
	}
	received := msg.InternalDate
	if received.IsZero() {
		received = r.Intake.now()
	}
	if _, err := r.Intake.Process(ctx, Envelope{Mailbox: r.Box.String(), UIDValidity: uidValidity, UID: uid, Received: received.UTC(), Raw: raw}); err != nil {
		return err
	}
	if r.afterCommit != nil {
		r.afterCommit()
	}
	// Only now, after the commit: \Seen, then out of the mailbox.
	if err := c.UidStore(set, imap.FormatFlagsOp(imap.AddFlags, true), []any{imap.SeenFlag}, nil); err != nil {
		return fmt.Errorf("flag uid %d seen: %w", uid, err)
	}
	if err := c.UidMove(set, r.Box.Archive); err != nil {
		return fmt.Errorf("move uid %d to %s: %w", uid, r.Box.Archive, err)
	}
	return nil
}

// ReadOnce connects, processes every message in the mailbox, and logs out.
func (r *Reader) ReadOnce(ctx context.Context) error {
	c, err := r.dial()
	if err != nil {
		return err
	}
	defer c.Logout()
	if err := c.Create(r.Box.Archive); err != nil {
		r.Log.Debug("create archive mailbox", "mailbox", r.Box.Archive, "err", err)
	}
	st, err := c.Select(r.Box.Name, false)
	if err != nil {
		return fmt.Errorf("select %s: %w", r.Box.Name, err)
	}
	return r.drain(ctx, c, st.UidValidity)
}
