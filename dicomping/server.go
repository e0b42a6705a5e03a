package dicomping

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("dicomping: server closed")

// DefaultServerTimeout is how long a Server waits for each PDU when
// Server.Timeout is zero.
const DefaultServerTimeout = 30 * time.Second

// releaseLinger bounds how long the server waits for the peer to close the
// connection after A-RELEASE-RP or A-ASSOCIATE-RJ (the ARTIM timer of PS3.8):
// letting the requestor close first keeps TIME_WAIT sockets on its side.
const releaseLinger = 2 * time.Second

// Association describes the peer of a C-ECHO request, for Server.Verify.
type Association struct {
	CallingAETitle string
	CalledAETitle  string
	RemoteAddr     net.Addr
}

// Server is a DICOM Verification SCP: it accepts associations that propose
// Verification, answers C-ECHO requests and handles release and abort.
// With Worklist set it also answers Modality Worklist C-FIND queries.
// Other SOP classes are refused in the A-ASSOCIATE-AC (abstract syntax not
// supported).
//
// A Server costs one goroutine per listener plus one per open connection,
// so a process can run thousands of them. Set the fields before the first
// call to Serve and do not change them afterwards.
type Server struct {
	// AETitle is the called AE title the server answers to; associations
	// to another title are rejected (called AE title not recognized).
	// Required unless AnyCalledAETitle is set.
	AETitle string
	// AnyCalledAETitle accepts whatever called AE title the peer uses.
	AnyCalledAETitle bool
	// AllowedCallingAETitles, when not empty, is the list of calling AE
	// titles accepted; others are rejected (calling AE title not recognized).
	AllowedCallingAETitles []string
	// MaxAssociations, when positive, bounds concurrent associations;
	// beyond it requests are rejected as transient (local limit exceeded).
	MaxAssociations int
	// TLSConfig, when not nil, makes Serve speak DICOM TLS. It needs a
	// certificate; set ClientAuth and ClientCAs to require client
	// certificates.
	TLSConfig *tls.Config
	// Timeout bounds the wait for each PDU from the peer, and the TLS
	// handshake. Zero means DefaultServerTimeout.
	Timeout time.Duration
	// MaxPDULength is the largest P-DATA-TF PDU accepted; zero means
	// DefaultMaxPDULength.
	MaxPDULength uint32
	// ImplementationClassUID and ImplementationVersionName identify the
	// server in its A-ASSOCIATE-AC; empty means this package's own.
	ImplementationClassUID    string
	ImplementationVersionName string
	// Verify, when not nil, is called for each C-ECHO request and returns
	// the DIMSE status to answer (0x0000 is Success); nil always answers
	// Success. A device simulator uses it to play a failing or slow device.
	Verify func(Association) uint16
	// Worklist, when not nil, makes the server a Modality Worklist SCP
	// too: it is called for each C-FIND request with the query, and
	// returns the matching items and the final status (0x0000 Success;
	// a failure status such as 0xC000 answers no item). WorklistDir
	// serves a folder of worklist files.
	Worklist func(Association, WorklistQuery) ([]WorklistItem, uint16)
	// Logger, when not nil, receives one debug record per refused or
	// aborted association. Nil logs nothing.
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	closing   atomic.Bool
	active    atomic.Int64 // associations being served, for MaxAssociations
	done      chan struct{}
	connsWG   sync.WaitGroup
}

func (s *Server) validate() error {
	if !s.AnyCalledAETitle {
		if err := ValidateAETitle(s.AETitle); err != nil {
			return &OptionsError{Field: "server AE title", Reason: err.Error() + " (or set AnyCalledAETitle)"}
		}
	}
	for _, ae := range s.AllowedCallingAETitles {
		if err := ValidateAETitle(ae); err != nil {
			return &OptionsError{Field: "allowed calling AE title", Reason: err.Error()}
		}
	}
	if s.MaxPDULength != 0 && s.MaxPDULength < minMaxPDULength {
		return &OptionsError{Field: "server max PDU length", Reason: fmt.Sprintf("%d is below %d", s.MaxPDULength, minMaxPDULength)}
	}
	if len(s.ImplementationClassUID) > 64 || len(s.ImplementationVersionName) > 16 {
		return &OptionsError{Field: "server implementation identity", Reason: "class UID is limited to 64 characters and version name to 16"}
	}
	return nil
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	if err := s.validate(); err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dicomping: listen: %w", err)
	}
	return s.Serve(l)
}

// Serve accepts connections on l and serves each in its own goroutine
// until Shutdown or Close, then returns ErrServerClosed. It closes l.
// Serve may be called on several listeners at once.
func (s *Server) Serve(l net.Listener) error {
	if err := s.validate(); err != nil {
		l.Close()
		return err
	}
	if !s.track(l, nil, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.track(l, nil, false)
	defer l.Close()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("dicomping: accept: %w", err)
			}
			// Running out of file descriptors and the like pass; back off
			// rather than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.debug("accept failed, retrying", "error", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-s.doneChan():
			}
			continue
		}
		backoff = 0
		if !s.track(nil, conn, true) {
			conn.Close()
			return ErrServerClosed
		}
		go s.serveConn(conn)
	}
}

// track adds or removes a listener or connection; adding fails once the
// server is closing.
func (s *Server) track(l net.Listener, c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add && s.closing.Load() {
		return false
	}
	if l != nil {
		if s.listeners == nil {
			s.listeners = make(map[net.Listener]struct{})
		}
		if add {
			s.listeners[l] = struct{}{}
		} else {
			delete(s.listeners, l)
		}
	}
	if c != nil {
		if s.conns == nil {
			s.conns = make(map[net.Conn]struct{})
		}
		if add {
			s.conns[c] = struct{}{}
			s.connsWG.Add(1)
		} else {
			delete(s.conns, c)
			s.connsWG.Done()
		}
	}
	return true
}

func (s *Server) doneChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	return s.done
}

// stopAccepting marks the server closing and closes its listeners.
func (s *Server) stopAccepting() {
	done := s.doneChan()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing.Swap(true) {
		close(done)
	}
	for l := range s.listeners {
		l.Close()
	}
}

// Shutdown stops accepting connections, then waits for open associations
// to end (peers release them, or Timeout expires) until ctx is done, when
// it aborts those left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	finished := make(chan struct{})
	go func() {
		s.connsWG.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.closeConns()
		<-finished
		return ctx.Err()
	}
}

// Close stops accepting connections and closes open ones at once.
func (s *Server) Close() error {
	s.stopAccepting()
	s.closeConns()
	s.connsWG.Wait()
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		// An A-ABORT tells a peer mid-association why the connection ends;
		// the short deadline keeps a stuck peer from blocking the write.
		// Over TLS the plain bytes would be garbage, so just close.
		if s.TLSConfig == nil {
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(appendAbort(nil, 0, 0))
		}
		c.Close()
	}
}

func (s *Server) debug(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Debug(msg, args...)
	}
}

// serverConn is one connection being served.
type serverConn struct {
	s        *Server
	conn     net.Conn
	rd       *pduReader
	buf      []byte
	timeout  time.Duration
	peerMax  uint32
	accepted []byte // IDs of the presentation contexts accepted
	find     []byte // those of them for Modality Worklist FIND
	explicit []byte // those of them in Explicit VR Little Endian
	assoc    Association
}

func (s *Server) serveConn(conn net.Conn) {
	defer s.track(nil, conn, false)
	defer conn.Close()
	if s.TLSConfig != nil {
		conn = tls.Server(conn, s.TLSConfig)
		defer conn.Close()
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultServerTimeout
	}
	maxPDU := s.MaxPDULength
	if maxPDU == 0 {
		maxPDU = DefaultMaxPDULength
	}
	c := &serverConn{s: s, conn: conn, timeout: timeout, rd: newPDUReader(conn, maxPDU)}
	c.assoc.RemoteAddr = conn.RemoteAddr()
	if err := c.serve(maxPDU); err != nil {
		s.debug("association ended abnormally", "remote", c.assoc.RemoteAddr, "calling", c.assoc.CallingAETitle, "error", err)
	}
}

func (c *serverConn) next() (byte, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.rd.next()
}

func (c *serverConn) write(b []byte) error {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.conn.Write(b)
	return err
}

// abort sends an A-ABORT from the service provider (PS3.8 action AA-8).
func (c *serverConn) abort(reason byte) {
	c.write(appendAbort(c.buf[:0], 2, reason))
}

// linger waits for the peer to close after our last PDU, discarding what
// it sends (PS3.8 state Sta13).
func (c *serverConn) linger() {
	c.conn.SetReadDeadline(time.Now().Add(min(releaseLinger, c.timeout)))
	var scratch [64]byte
	for {
		if _, err := c.conn.Read(scratch[:]); err != nil {
			return
		}
	}
}

// abortReason maps a reader error to the A-ABORT reason to send, or
// reports false when the connection is gone and there is nobody to tell.
func abortReason(err error) (byte, bool) {
	switch {
	case errors.Is(err, errUnrecognized):
		return 1, true // unrecognized PDU
	case errors.Is(err, errTooLong):
		return 0, true // reason not specified: no code says "too long"
	case errors.Is(err, errMalformed):
		return 6, true // invalid PDU parameter value
	}
	return 0, false
}

func (c *serverConn) serve(maxPDU uint32) error {
	c.buf = make([]byte, 0, 512)
	typ, body, err := c.next()
	if err != nil {
		if reason, ok := abortReason(err); ok {
			c.abort(reason)
		}
		return fmt.Errorf("awaiting A-ASSOCIATE-RQ: %w", err)
	}
	if typ != pduAssociateRQ {
		c.abort(2) // unexpected PDU
		return fmt.Errorf("got %s instead of A-ASSOCIATE-RQ", pduName(typ))
	}
	rq, err := parseAssociate(typ, body)
	if err != nil {
		c.abort(6)
		return err
	}
	c.assoc.CallingAETitle, c.assoc.CalledAETitle = rq.callingAE, rq.calledAE
	c.peerMax = rq.maxPDULength

	if n := c.s.active.Add(1); c.s.MaxAssociations > 0 && n > int64(c.s.MaxAssociations) {
		c.s.active.Add(-1)
		return c.reject(reject{RejectTransient, RejectSourceProviderPres, RejectReasonLocalLimitExceeded})
	}
	defer c.s.active.Add(-1)
	if rj := c.s.check(rq); rj != nil {
		return c.reject(*rj)
	}
	if err := c.write(appendAssociate(c.buf[:0], pduAssociateAC, c.s.acceptance(rq, maxPDU, c))); err != nil {
		return err
	}

	var pdvs []pdv
	var assembled []byte
	// awaiting is a command whose data set is being received, on the
	// context awaitingID.
	var awaiting *command
	var awaitingID byte
	var data []byte
	for {
		typ, body, err := c.next()
		if err != nil {
			if reason, ok := abortReason(err); ok {
				c.abort(reason)
			}
			if errors.Is(err, io.EOF) {
				return errors.New("peer closed the connection without releasing")
			}
			return err
		}
		switch typ {
		case pduPData:
		case pduReleaseRQ:
			if err := c.write(appendRelease(c.buf[:0], pduReleaseRP)); err != nil {
				return err
			}
			c.linger()
			return nil
		case pduAbort:
			return &AbortError{Source: body[2], Reason: body[3]}
		default:
			c.abort(2)
			return fmt.Errorf("unexpected %s on an established association", pduName(typ))
		}
		if pdvs, err = parsePData(body, pdvs); err != nil {
			c.abort(6)
			return err
		}
		for _, v := range pdvs {
			if !slices.Contains(c.accepted, v.contextID) {
				c.abort(6)
				return fmt.Errorf("PDV on presentation context %d, which was not accepted", v.contextID)
			}
			if !v.command {
				if awaiting == nil || v.contextID != awaitingID {
					// Verification has no data sets; a peer sending one
					// is not doing C-ECHO.
					c.abort(5)
					return errors.New("data set PDV without a command announcing it")
				}
				if data, err = appendBounded(data, v.data, maxIdentifierLen, "data set"); err != nil {
					c.abort(0)
					return err
				}
				if !v.last {
					continue
				}
				cmd := awaiting
				awaiting = nil
				if data == nil {
					data = []byte{} // an empty identifier is still one
				}
				if err := c.answer(v.contextID, cmd, data); err != nil {
					return err
				}
				data = data[:0]
				continue
			}
			if awaiting != nil {
				c.abort(5)
				return errors.New("command PDV where a data set was expected")
			}
			if assembled, err = appendBounded(assembled, v.data, maxCommandLen, "command set"); err != nil {
				c.abort(0)
				return err
			}
			if !v.last {
				continue
			}
			cmd, err := parseCommand(assembled)
			assembled = assembled[:0]
			if err != nil {
				c.abort(6)
				return err
			}
			if cmd.dataSetType != noDataSet && slices.Contains(c.find, v.contextID) {
				awaiting, awaitingID = cmd, v.contextID
				continue
			}
			if err := c.answer(v.contextID, cmd, nil); err != nil {
				return err
			}
		}
	}
}

func (c *serverConn) reject(rj reject) error {
	if err := c.write(appendReject(c.buf[:0], rj)); err != nil {
		return err
	}
	c.linger()
	e := &RejectedError{Result: rj.result, Source: rj.source, Reason: rj.reason}
	return e
}

// answer responds to one DIMSE request: C-ECHO on a Verification context,
// C-FIND (with its identifier) on a worklist one. A C-CANCEL can only
// concern a query already answered in full (queries are answered before
// the next PDU is read), so it is ignored, as PS3.7 section 9.3.2.3
// allows. Anything else is a peer bug and aborts.
func (c *serverConn) answer(contextID byte, rq *command, data []byte) error {
	isFind := slices.Contains(c.find, contextID)
	switch {
	case rq.commandField == commandCCancelRQ:
		return nil
	case isFind && rq.commandField == commandCFindRQ && data != nil:
		return c.answerFind(contextID, rq, data)
	case isFind || rq.commandField != commandCEchoRQ:
		c.abort(0)
		name := "Verification"
		if isFind {
			name = "Modality Worklist FIND"
		}
		return fmt.Errorf("DIMSE command 0x%04X on a %s context", rq.commandField, name)
	}
	var status uint16
	if c.s.Verify != nil {
		status = c.s.Verify(c.assoc)
	}
	rsp := command{
		affectedSOPClass: VerificationSOPClass,
		commandField:     commandCEchoRSP,
		respondedTo:      rq.messageID,
		dataSetType:      noDataSet,
		status:           status,
	}
	var cmdBuf [128]byte
	c.buf = appendCommandPData(c.buf[:0], contextID, appendCommand(cmdBuf[:0], &rsp), c.peerMax)
	return c.write(c.buf)
}

// check returns the rejection an association request deserves, or nil.
func (s *Server) check(rq *associate) *reject {
	switch {
	case rq.protocolVersion&1 == 0:
		return &reject{RejectPermanent, RejectSourceProviderACSE, RejectReasonProtocolVersion}
	case rq.appContext != applicationContextName:
		return &reject{RejectPermanent, RejectSourceUser, RejectReasonApplicationContext}
	case !s.AnyCalledAETitle && rq.calledAE != trimAE([]byte(s.AETitle)):
		return &reject{RejectPermanent, RejectSourceUser, RejectReasonCalledAETitleNotRecognized}
	case len(s.AllowedCallingAETitles) > 0 && !slices.ContainsFunc(s.AllowedCallingAETitles,
		func(ae string) bool { return trimAE([]byte(ae)) == rq.callingAE }):
		return &reject{RejectPermanent, RejectSourceUser, RejectReasonCallingAETitleNotRecognized}
	}
	return nil
}

// acceptance builds the A-ASSOCIATE-AC for rq: Verification contexts (and
// Modality Worklist FIND ones when the server has a Worklist) are accepted
// with the first little-endian transfer syntax the peer proposed (its
// order is its preference), other abstract syntaxes refused.
func (s *Server) acceptance(rq *associate, maxPDU uint32, c *serverConn) *associate {
	ac := &associate{
		protocolVersion: 1,
		calledAE:        rq.calledAE,
		callingAE:       rq.callingAE,
		appContext:      applicationContextName,
		contexts:        make([]presentationContext, 0, len(rq.contexts)),
		maxPDULength:    maxPDU,
		implClassUID:    s.ImplementationClassUID,
		implVersionName: s.ImplementationVersionName,
	}
	if ac.implClassUID == "" {
		ac.implClassUID, ac.implVersionName = ImplementationClassUID, ImplementationVersionName
	}
	for _, pc := range rq.contexts {
		// The transfer syntax sub-item is present even when rejecting,
		// where its value is not significant (PS3.8 section 9.3.3.2).
		out := presentationContext{id: pc.id, result: 3, transferSyntaxes: []string{ImplicitVRLittleEndian}}
		isFind := pc.abstractSyntax == ModalityWorklistFind && s.Worklist != nil
		if pc.abstractSyntax == VerificationSOPClass || isFind {
			out.result = 4
			for _, ts := range pc.transferSyntaxes {
				if ts == ImplicitVRLittleEndian || ts == ExplicitVRLittleEndian {
					out.result = 0
					out.transferSyntaxes[0] = ts
					c.accepted = append(c.accepted, pc.id)
					if isFind {
						c.find = append(c.find, pc.id)
					}
					if ts == ExplicitVRLittleEndian {
						c.explicit = append(c.explicit, pc.id)
					}
					break
				}
			}
		}
		ac.contexts = append(ac.contexts, out)
	}
	return ac
}
