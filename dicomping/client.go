package dicomping

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Defaults used when the corresponding Options or Server field is zero.
const (
	DefaultCallingAETitle = "VIGIA"
	DefaultCalledAETitle  = "ANY-SCP"
	DefaultTimeout        = 10 * time.Second
	// DefaultMaxPDULength is the largest P-DATA-TF PDU we accept, as
	// advertised in our A-ASSOCIATE user information. C-ECHO needs only
	// about 100 bytes; 16 KiB is what most toolkits use.
	DefaultMaxPDULength = 16384
	// ImplementationClassUID identifies this implementation to peers (a
	// UUID-derived UID, PS3.5 annex B.2).
	ImplementationClassUID = "2.25.149774999266686798837471756882616502666"
	// ImplementationVersionName is sent along with ImplementationClassUID.
	ImplementationVersionName = "VIGIA_DICOMPING"
)

// verificationContextID is the presentation context ID of our one proposal.
// IDs are odd numbers (PS3.8 section 9.3.2.2).
const verificationContextID = 1

// Options configure Echo. The zero value is usable: it echoes as
// DefaultCallingAETitle to DefaultCalledAETitle over plain TCP and gives
// up after DefaultTimeout.
type Options struct {
	// CallingAETitle is our AE title; many peers only answer titles they know.
	CallingAETitle string
	// CalledAETitle is the AE title the peer answers to.
	CalledAETitle string
	// Timeout bounds the whole echo, connection to release. Zero means
	// DefaultTimeout, negative means none; a deadline of the context given
	// to Echo applies as well, and the earlier one wins.
	Timeout time.Duration
	// TLSConfig, when not nil, runs the association over TLS (DICOM TLS,
	// PS3.15 annex B, commonly on port 2762). An empty ServerName is taken
	// from addr. Set RootCAs to trust the peer's CA and Certificates to
	// present a client certificate.
	TLSConfig *tls.Config
	// MaxPDULength is the largest P-DATA-TF PDU we accept from the peer;
	// longer PDUs are refused as protocol errors. Zero means
	// DefaultMaxPDULength.
	MaxPDULength uint32
	// MessageID is the DIMSE message ID of the C-ECHO request; zero means 1.
	MessageID uint16
	// ImplementationClassUID and ImplementationVersionName identify us to
	// the peer; empty means this package's own.
	ImplementationClassUID    string
	ImplementationVersionName string
	// Dialer, when not nil, opens the TCP connection (to set a local
	// address, for instance).
	Dialer *net.Dialer

	// netConnIO makes a plain TCP echo read and write through net.Conn,
	// as a TLS one does, so that tests cover that path too.
	netConnIO bool
}

// Result is the outcome of an echo. On error it holds what was measured
// and learned before the failure.
type Result struct {
	Addr           string
	CallingAETitle string
	CalledAETitle  string
	// RTT is the whole echo: from starting to connect to the release reply.
	RTT time.Duration
	// Time of each phase; TLSHandshake is zero without TLS.
	Connect      time.Duration
	TLSHandshake time.Duration
	Associate    time.Duration
	Echo         time.Duration
	Release      time.Duration
	// TransferSyntax is the one the peer accepted for Verification.
	TransferSyntax string
	// What the peer said about itself in its A-ASSOCIATE-AC. A
	// PeerMaxPDULength of zero means unlimited.
	PeerMaxPDULength              uint32
	PeerImplementationClassUID    string
	PeerImplementationVersionName string
	// Status is the DIMSE status of the C-ECHO response (0 is Success).
	Status uint16
}

// Echo verifies that a DICOM application entity answers: it opens an
// association with the peer at addr ("host:port"), proposing Verification
// with Implicit and Explicit VR Little Endian, sends a C-ECHO request, then
// releases the association.
//
// Every step honours ctx and opts.Timeout. A failure is an *Error whose
// cause can be reached with errors.As (*RejectedError, *AbortError,
// *ContextRejectedError, *StatusError, *ProtocolError, a net error) and
// classified with Classify. Invalid options give an *OptionsError.
func Echo(ctx context.Context, addr string, opts Options) (Result, error) {
	res := Result{Addr: addr}
	if err := opts.normalize(); err != nil {
		return res, err
	}
	res.CallingAETitle, res.CalledAETitle = opts.CallingAETitle, opts.CalledAETitle
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	bufs := echoBufsPool.Get().(*echoBufs)
	c := echoer{ctx: ctx, addr: addr, opts: &opts, res: &res, bufs: bufs}
	err := c.run()
	if c.conn != nil {
		c.conn.Close()
	}
	// Nothing returned aliases the buffers (results and errors hold
	// copies), and the connection is closed: they can serve another echo.
	bufs.release()
	echoBufsPool.Put(bufs)
	return res, err
}

// echoBufs are the buffers of one echo, pooled because a prober echoes
// many peers all the time: the read buffer, PDU body and write buffer
// would otherwise be about half of an echo's allocated bytes.
type echoBufs struct {
	rd  pduReader
	buf []byte
	raw rawSocket
}

// maxPooledBuf bounds what a pooled buffer keeps: a peer that sent a large
// A-ASSOCIATE-AC must not pin that much memory for the process's lifetime.
const maxPooledBuf = 4096

var echoBufsPool = sync.Pool{New: func() any {
	return &echoBufs{
		rd:  pduReader{r: bufio.NewReaderSize(nil, pduReadBufSize)},
		buf: make([]byte, 0, 512),
	}
}}

// release drops the references to the connection and oversized buffers.
func (b *echoBufs) release() {
	b.rd.r.Reset(nil)
	b.raw.release()
	if cap(b.rd.buf) > maxPooledBuf {
		b.rd.buf = nil
	}
	if cap(b.buf) > maxPooledBuf {
		b.buf = make([]byte, 0, 512)
	}
}

func (o *Options) normalize() error {
	if o.CallingAETitle == "" {
		o.CallingAETitle = DefaultCallingAETitle
	}
	if o.CalledAETitle == "" {
		o.CalledAETitle = DefaultCalledAETitle
	}
	if err := ValidateAETitle(o.CallingAETitle); err != nil {
		return &OptionsError{Field: "calling AE title", Reason: err.Error()}
	}
	if err := ValidateAETitle(o.CalledAETitle); err != nil {
		return &OptionsError{Field: "called AE title", Reason: err.Error()}
	}
	o.CallingAETitle, o.CalledAETitle = trimAE([]byte(o.CallingAETitle)), trimAE([]byte(o.CalledAETitle))
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxPDULength == 0 {
		o.MaxPDULength = DefaultMaxPDULength
	}
	if o.MaxPDULength < minMaxPDULength {
		return &OptionsError{Field: "max PDU length", Reason: fmt.Sprintf("%d is below %d", o.MaxPDULength, minMaxPDULength)}
	}
	if o.MessageID == 0 {
		o.MessageID = 1
	}
	if o.ImplementationClassUID == "" {
		o.ImplementationClassUID = ImplementationClassUID
		if o.ImplementationVersionName == "" {
			o.ImplementationVersionName = ImplementationVersionName
		}
	}
	if len(o.ImplementationClassUID) > 64 || len(o.ImplementationVersionName) > 16 {
		return &OptionsError{Field: "implementation identity", Reason: "class UID is limited to 64 characters and version name to 16"}
	}
	return nil
}

// ValidateAETitle reports whether ae is a usable AE title: 1 to 16
// characters of printable ASCII other than backslash, not all spaces
// (PS3.5 table 6.2-1).
func ValidateAETitle(ae string) error {
	if len(ae) > 16 {
		return fmt.Errorf("AE title %q is longer than 16 characters", ae)
	}
	if trimAE([]byte(ae)) == "" {
		return errors.New("AE title is empty")
	}
	for i := 0; i < len(ae); i++ {
		if ae[i] < 0x20 || ae[i] > 0x7e || ae[i] == '\\' {
			return fmt.Errorf("AE title %q contains a character not allowed (control, non-ASCII or backslash)", ae)
		}
	}
	return nil
}

// echoer is the state of one Echo call.
type echoer struct {
	ctx  context.Context
	addr string
	opts *Options
	res  *Result
	conn net.Conn
	// rw reads and writes PDUs: conn, or its raw socket for plain TCP.
	rw   io.ReadWriter
	bufs *echoBufs
	rd   *pduReader
	buf  []byte // write buffer, reused between PDUs
	// find, when not nil, makes the exchange a worklist C-FIND instead
	// of a C-ECHO.
	find *finder
}

// sopClass is the abstract syntax of the association's one proposal.
func (c *echoer) sopClass() string {
	if c.find != nil {
		return ModalityWorklistFind
	}
	return VerificationSOPClass
}

// longAgo is a deadline in the past: setting it unblocks pending I/O.
var longAgo = time.Unix(1, 0)

// goKeepAliveIdle is the idle time after which a net.Dialer with a zero
// KeepAlive sends its first TCP keep-alive probe.
const goKeepAliveIdle = 15 * time.Second

// Shared dialers (a Dialer is safe for concurrent use and DialContext does
// not modify it). noKeepAliveDialer skips the four setsockopt calls that
// turn keep-alive on and tune it: 4 to 14 µs of client CPU per connection
// on the 2-vCPU AMD EPYC VM of BENCHMARKS.md, up to 8 % of an echo.
var (
	defaultDialer     = &net.Dialer{}
	noKeepAliveDialer = &net.Dialer{KeepAlive: -1}
)

// dialerFor picks the dialer when Options.Dialer is nil. An association
// that must be over before goKeepAliveIdle can never send a keep-alive
// probe, so enabling keep-alive on it is pure cost; one with no deadline,
// or a later one, keeps Go's default so that a dead peer is still noticed.
func dialerFor(ctx context.Context) *net.Dialer {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= goKeepAliveIdle {
		return noKeepAliveDialer
	}
	return defaultDialer
}

func (c *echoer) run() error {
	start := time.Now()
	defer func() { c.res.RTT = time.Since(start) }()

	d := c.opts.Dialer
	if d == nil {
		d = dialerFor(c.ctx)
	}
	conn, err := d.DialContext(c.ctx, "tcp", c.addr)
	c.res.Connect = time.Since(start)
	if err != nil {
		return c.fail(PhaseConnect, err)
	}
	c.conn = conn
	if dl, ok := c.ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Cancellation has no deadline to set in advance: unblock I/O when it
	// happens. AfterFunc costs no goroutine until then.
	stop := context.AfterFunc(c.ctx, func() { conn.SetDeadline(longAgo) })
	defer stop()

	if c.opts.TLSConfig != nil {
		t := time.Now()
		cfg := c.opts.TLSConfig
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(c.addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		c.conn = tc
		err := tc.HandshakeContext(c.ctx)
		c.res.TLSHandshake = time.Since(t)
		if err != nil {
			return c.fail(PhaseTLS, err)
		}
	}
	c.rw = c.conn
	if c.opts.TLSConfig == nil && !c.opts.netConnIO {
		if rs := c.bufs.raw.use(c.conn); rs != nil {
			c.rw = rs
		}
	}
	c.bufs.rd.reset(c.rw, c.opts.MaxPDULength)
	c.rd, c.buf = &c.bufs.rd, c.bufs.buf[:0]
	// appends may grow c.buf; keep the grown one for the next echo.
	defer func() { c.bufs.buf = c.buf[:0] }()

	t := time.Now()
	ac, err := c.associate()
	c.res.Associate = time.Since(t)
	if err != nil {
		return c.fail(PhaseAssociate, err)
	}

	t = time.Now()
	// statusErr is a failure the peer answered, kept apart so that the
	// association is still released.
	var statusErr error
	phase := PhaseEcho
	if c.find != nil {
		phase = PhaseFind
		statusErr, err = c.findItems(ac)
		c.find.res.Find = time.Since(t)
	} else {
		var se *StatusError
		se, err = c.echo(ac)
		c.res.Echo = time.Since(t)
		if se != nil {
			statusErr = se
		}
	}
	if err != nil {
		return c.fail(phase, err)
	}

	t = time.Now()
	err = c.release()
	c.res.Release = time.Since(t)
	if err != nil {
		return c.fail(PhaseRelease, err)
	}
	if statusErr != nil {
		return &Error{Addr: c.addr, Phase: phase, Err: statusErr}
	}
	return nil
}

// fail turns an I/O or protocol failure into an *Error, replacing deadline
// and cancellation symptoms by the context's own error, and aborting the
// association when the peer broke the protocol (PS3.8 action AA-8).
func (c *echoer) fail(phase Phase, err error) error {
	var pe *ProtocolError
	switch {
	case c.ctx.Err() != nil:
		err = fmt.Errorf("%w (%v)", c.ctx.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	case errors.Is(err, errMalformed), errors.Is(err, errTooLong):
		err = &ProtocolError{Reason: "invalid PDU from peer", Err: err}
		c.abort(2, 0)
	case errors.As(err, &pe):
		c.abort(2, 2)
	case phase != PhaseConnect && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)):
		err = &ProtocolError{Reason: "peer closed the connection", Err: err}
	}
	return &Error{Addr: c.addr, Phase: phase, Err: err}
}

// abort sends a best-effort A-ABORT; the connection is closed next anyway.
func (c *echoer) abort(source, reason byte) {
	if c.rw != nil {
		c.rw.Write(appendAbort(c.buf[:0], source, reason))
	}
}

func (c *echoer) write(b []byte) error {
	_, err := c.rw.Write(b)
	return err
}

func (c *echoer) associate() (*associate, error) {
	rq := associate{
		protocolVersion: 1,
		calledAE:        c.opts.CalledAETitle,
		callingAE:       c.opts.CallingAETitle,
		appContext:      applicationContextName,
		contexts: []presentationContext{{
			id:               verificationContextID,
			abstractSyntax:   c.sopClass(),
			transferSyntaxes: []string{ImplicitVRLittleEndian, ExplicitVRLittleEndian},
		}},
		maxPDULength:    c.opts.MaxPDULength,
		implClassUID:    c.opts.ImplementationClassUID,
		implVersionName: c.opts.ImplementationVersionName,
	}
	c.buf = appendAssociate(c.buf[:0], pduAssociateRQ, &rq)
	if err := c.write(c.buf); err != nil {
		return nil, err
	}
	typ, body, err := c.rd.next()
	if err != nil {
		return nil, err
	}
	switch typ {
	case pduAssociateAC:
	case pduAssociateRJ:
		return nil, &RejectedError{Result: body[1], Source: body[2], Reason: body[3]}
	case pduAbort:
		return nil, &AbortError{Source: body[2], Reason: body[3]}
	default:
		return nil, &ProtocolError{Reason: "unexpected " + pduName(typ) + " in answer to A-ASSOCIATE-RQ"}
	}
	ac, err := parseAssociate(typ, body)
	if err != nil {
		return nil, err
	}
	c.res.PeerMaxPDULength = ac.maxPDULength
	c.res.PeerImplementationClassUID = ac.implClassUID
	c.res.PeerImplementationVersionName = ac.implVersionName
	var found *presentationContext
	for i := range ac.contexts {
		if ac.contexts[i].id == verificationContextID {
			found = &ac.contexts[i]
			break
		}
	}
	if found == nil || found.result != 0 {
		result := byte(0)
		if found != nil {
			result = found.result
		}
		c.abort(0, 0)
		return nil, &ContextRejectedError{Result: result, AbstractSyntax: c.sopClass()}
	}
	if len(found.transferSyntaxes) != 1 ||
		(found.transferSyntaxes[0] != ImplicitVRLittleEndian && found.transferSyntaxes[0] != ExplicitVRLittleEndian) {
		return nil, &ProtocolError{Reason: fmt.Sprintf("peer accepted %s with transfer syntaxes %q we did not propose", sopName(c.sopClass()), found.transferSyntaxes)}
	}
	c.res.TransferSyntax = found.transferSyntaxes[0]
	return ac, nil
}

// echo sends the C-ECHO request and reads the response. A non-Success
// status is returned apart so that the association is still released.
func (c *echoer) echo(ac *associate) (*StatusError, error) {
	rq := command{
		affectedSOPClass: VerificationSOPClass,
		commandField:     commandCEchoRQ,
		messageID:        c.opts.MessageID,
		dataSetType:      noDataSet,
	}
	var cmdBuf [128]byte
	cmd := appendCommand(cmdBuf[:0], &rq)
	c.buf = appendCommandPData(c.buf[:0], verificationContextID, cmd, ac.maxPDULength)
	if err := c.write(c.buf); err != nil {
		return nil, err
	}
	rsp, err := c.readCommand()
	if err != nil {
		return nil, err
	}
	if err := c.checkResponse(rsp, commandCEchoRSP, "C-ECHO"); err != nil {
		return nil, err
	}
	c.res.Status = rsp.status
	if rsp.status != 0 {
		return &StatusError{Status: rsp.status}, nil
	}
	return nil, nil
}

// checkResponse checks that rsp is the response (command field want) to
// our request, with a status.
func (c *echoer) checkResponse(rsp *command, want uint16, service string) error {
	switch {
	case rsp.commandField != want:
		return &ProtocolError{Reason: fmt.Sprintf("command field 0x%04X in answer to %s-RQ", rsp.commandField, service)}
	case rsp.respondedTo != c.opts.MessageID:
		return &ProtocolError{Reason: fmt.Sprintf("%s-RSP answers message %d, we sent %d", service, rsp.respondedTo, c.opts.MessageID)}
	case !rsp.hasStatus:
		return &ProtocolError{Reason: service + "-RSP without status"}
	}
	return nil
}

// readCommand reads P-DATA-TF PDUs until a whole command set arrived.
func (c *echoer) readCommand() (*command, error) {
	var assembled []byte
	var pdvs []pdv
	for {
		typ, body, err := c.rd.next()
		if err != nil {
			return nil, err
		}
		if err := pdataBody(typ, body, "C-ECHO-RSP"); err != nil {
			return nil, err
		}
		if pdvs, err = parsePData(body, pdvs); err != nil {
			return nil, err
		}
		for _, v := range pdvs {
			if v.contextID != verificationContextID {
				return nil, &ProtocolError{Reason: fmt.Sprintf("PDV on presentation context %d, we only proposed %d", v.contextID, verificationContextID)}
			}
			if !v.command {
				return nil, &ProtocolError{Reason: "data set PDV where a C-ECHO-RSP command was expected"}
			}
			if v.last && assembled == nil {
				// The common case: the whole command in one PDV, parsed
				// before the reader's buffer is reused.
				return parseCommand(v.data)
			}
			if assembled, err = appendBounded(assembled, v.data, maxCommandLen, "command set"); err != nil {
				return nil, &ProtocolError{Reason: err.Error()}
			}
			if v.last {
				return parseCommand(assembled)
			}
		}
	}
}

func (c *echoer) release() error {
	c.buf = appendRelease(c.buf[:0], pduReleaseRQ)
	if err := c.write(c.buf); err != nil {
		return err
	}
	for {
		typ, body, err := c.rd.next()
		if err != nil {
			return err
		}
		switch typ {
		case pduReleaseRP:
			return nil
		case pduReleaseRQ:
			// Release collision (PS3.8 section 9.2.2): as requestor we
			// answer and keep waiting for the peer's reply.
			c.buf = appendRelease(c.buf[:0], pduReleaseRP)
			if err := c.write(c.buf); err != nil {
				return err
			}
		case pduPData:
			// Late data on a released association carries nothing for us.
		case pduAbort:
			return &AbortError{Source: body[2], Reason: body[3]}
		default:
			return &ProtocolError{Reason: "unexpected " + pduName(typ) + " in answer to A-RELEASE-RQ"}
		}
	}
}
