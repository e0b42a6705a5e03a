package dicomping

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptedPeer listens on loopback and plays handle on every connection:
// the hostile or quirky peers no real implementation will impersonate.
func scriptedPeer(t *testing.T, handle func(t *testing.T, c net.Conn, rd *pduReader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Bounded so that a script waiting on a client that gave
				// up cannot outlive the test.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(t, c, newPDUReader(c, 1<<20))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// acceptAssociation reads an A-ASSOCIATE-RQ and accepts its first
// presentation context with implicit VR little endian.
func acceptAssociation(t *testing.T, c net.Conn, rd *pduReader, result byte) *associate {
	typ, body, err := rd.next()
	if err != nil || typ != pduAssociateRQ {
		t.Errorf("scripted peer: read A-ASSOCIATE-RQ: type %d, %v", typ, err)
		return nil
	}
	rq, err := parseAssociate(typ, body)
	if err != nil {
		t.Errorf("scripted peer: %v", err)
		return nil
	}
	ac := &associate{protocolVersion: 1, calledAE: rq.calledAE, callingAE: rq.callingAE, appContext: applicationContextName,
		contexts:     []presentationContext{{id: rq.contexts[0].id, result: result, transferSyntaxes: []string{ImplicitVRLittleEndian}}},
		maxPDULength: 32768, implClassUID: "1.2.3.4", implVersionName: "SCRIPTED"}
	c.Write(appendAssociate(nil, pduAssociateAC, ac))
	return rq
}

// readEchoRQ reads a P-DATA-TF holding a C-ECHO-RQ and returns its message ID.
func readEchoRQ(t *testing.T, rd *pduReader) (uint16, bool) {
	typ, body, err := rd.next()
	if err != nil || typ != pduPData {
		t.Errorf("scripted peer: read P-DATA-TF: type %d, %v", typ, err)
		return 0, false
	}
	pdvs, err := parsePData(body, nil)
	if err != nil {
		t.Errorf("scripted peer: %v", err)
		return 0, false
	}
	cmd, err := parseCommand(pdvs[0].data)
	if err != nil || cmd.commandField != commandCEchoRQ {
		t.Errorf("scripted peer: command %+v, %v", cmd, err)
		return 0, false
	}
	return cmd.messageID, true
}

func echoRSP(respondedTo, status uint16) []byte {
	cmd := appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRSP,
		respondedTo: respondedTo, dataSetType: noDataSet, status: status})
	return appendCommandPData(nil, 1, cmd, 0)
}

// drain reads until the client goes away, as a silent peer does.
func drain(c net.Conn) { io.Copy(io.Discard, c) }

func TestEchoAgainstHostileAndQuirkyPeers(t *testing.T) {
	t.Parallel()
	const deadline = 400 * time.Millisecond
	tests := []struct {
		name      string
		peer      func(t *testing.T, c net.Conn, rd *pduReader)
		wantClass Class
		wantPhase Phase
		wantErr   string // substring of the error
		check     func(t *testing.T, res Result, err error)
	}{
		{
			name: "sends garbage",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
				drain(c)
			},
			wantClass: ClassProtocol, wantPhase: PhaseAssociate, wantErr: "unrecognized PDU type 0x48",
		},
		{
			name: "announces a 4 GB PDU",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				c.Write([]byte{pduPData, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0})
				drain(c)
			},
			wantClass: ClassProtocol, wantPhase: PhaseAssociate, wantErr: "P-DATA-TF length 4294967295 exceeds our maximum 16384",
		},
		{
			name: "announces a 4 GB A-ASSOCIATE-AC",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				c.Write([]byte{pduAssociateAC, 0, 0xFF, 0xFF, 0xFF, 0xFF})
				drain(c)
			},
			wantClass: ClassProtocol, wantPhase: PhaseAssociate, wantErr: "exceeds 65536",
		},
		{
			name: "answers C-ECHO with a PDU over our maximum",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 0)
				rd.next()
				c.Write(binary.BigEndian.AppendUint32([]byte{pduPData, 0}, DefaultMaxPDULength+1))
				drain(c)
			},
			wantClass: ClassProtocol, wantPhase: PhaseEcho, wantErr: "exceeds our maximum",
		},
		{
			name:      "never answers",
			peer:      func(t *testing.T, c net.Conn, rd *pduReader) { drain(c) },
			wantClass: ClassDown, wantPhase: PhaseAssociate, wantErr: "deadline exceeded",
		},
		{
			name: "drips its answer one byte at a time",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				for _, b := range appendReject(nil, reject{1, 1, 7}) {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(deadline / 4)
				}
			},
			wantClass: ClassDown, wantPhase: PhaseAssociate, wantErr: "deadline exceeded",
		},
		{
			name:      "accepts, then never answers C-ECHO",
			peer:      func(t *testing.T, c net.Conn, rd *pduReader) { acceptAssociation(t, c, rd, 0); drain(c) },
			wantClass: ClassDown, wantPhase: PhaseEcho, wantErr: "deadline exceeded",
		},
		{
			name:      "closes without a word",
			peer:      func(t *testing.T, c net.Conn, rd *pduReader) {},
			wantClass: ClassProtocol, wantPhase: PhaseAssociate, wantErr: "peer closed the connection",
		},
		{
			name: "rejects transiently",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				c.Write(appendReject(nil, reject{RejectTransient, RejectSourceProviderPres, RejectReasonTemporaryCongestion}))
			},
			wantClass: ClassMisconfigured, wantPhase: PhaseAssociate,
			wantErr: "association rejected: rejected-transient by service-provider (presentation): temporary congestion",
			check: func(t *testing.T, res Result, err error) {
				var rj *RejectedError
				if !errors.As(err, &rj) || !rj.Transient() {
					t.Errorf("want a transient *RejectedError, got %#v", err)
				}
			},
		},
		{
			name: "aborts",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				rd.next()
				c.Write(appendAbort(nil, 2, 2))
			},
			wantClass: ClassProtocol, wantPhase: PhaseAssociate, wantErr: "association aborted by service-provider: unexpected PDU",
		},
		{
			name: "does not accept Verification",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 3)
				typ, _, _ := rd.next()
				if typ != pduAbort {
					t.Errorf("client sent %s after a refused context, want A-ABORT", pduName(typ))
				}
			},
			wantClass: ClassMisconfigured, wantPhase: PhaseAssociate, wantErr: "abstract syntax not supported",
		},
		{
			name: "answers with a failure status",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 0)
				id, ok := readEchoRQ(t, rd)
				if !ok {
					return
				}
				c.Write(echoRSP(id, 0x0122))
				if typ, _, _ := rd.next(); typ == pduReleaseRQ {
					c.Write(appendRelease(nil, pduReleaseRP))
				}
			},
			wantClass: ClassStatus, wantPhase: PhaseEcho, wantErr: "C-ECHO status 0x0122: refused: SOP class not supported",
			check: func(t *testing.T, res Result, err error) {
				if res.Status != 0x0122 || res.Release == 0 || res.PeerImplementationVersionName != "SCRIPTED" {
					t.Errorf("the association should still be released and the result filled: %+v", res)
				}
			},
		},
		{
			name: "answers another message ID",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 0)
				id, _ := readEchoRQ(t, rd)
				c.Write(echoRSP(id+1, 0))
				drain(c)
			},
			wantClass: ClassProtocol, wantPhase: PhaseEcho, wantErr: "C-ECHO-RSP answers message 2, we sent 1",
		},
		{
			name: "fragments its answer and collides on release",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 0)
				id, _ := readEchoRQ(t, rd)
				cmd := appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRSP, respondedTo: id, dataSetType: noDataSet})
				c.Write(appendCommandPData(nil, 1, cmd, 16))
				rd.next()
				c.Write(appendRelease(nil, pduReleaseRQ))
				if typ, _, _ := rd.next(); typ != pduReleaseRP {
					t.Errorf("client answered a release collision with %s", pduName(typ))
				}
				c.Write(appendRelease(nil, pduReleaseRP))
			},
			wantClass: ClassOK,
		},
		{
			name: "aborts instead of releasing",
			peer: func(t *testing.T, c net.Conn, rd *pduReader) {
				acceptAssociation(t, c, rd, 0)
				id, _ := readEchoRQ(t, rd)
				c.Write(echoRSP(id, 0))
				rd.next()
				c.Write(appendAbort(nil, 0, 0))
			},
			wantClass: ClassProtocol, wantPhase: PhaseRelease, wantErr: "aborted by service-user",
		},
	}
	for _, tt := range tests {
		for _, p := range ioPaths {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				addr := scriptedPeer(t, tt.peer)
				opts := p.opts
				opts.Timeout = deadline
				start := time.Now()
				res, err := Echo(context.Background(), addr, opts)
				elapsed := time.Since(start)
				// Generous slack for a loaded 2-core CI machine, but far below
				// what a hang or a 4 GB allocation would take.
				if elapsed > deadline+time.Second {
					t.Errorf("Echo took %v with a %v deadline", elapsed, deadline)
				}
				if got := Classify(err); got != tt.wantClass {
					t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.wantClass)
				}
				if tt.wantClass == ClassOK {
					return
				}
				var de *Error
				if !errors.As(err, &de) || de.Phase != tt.wantPhase || de.Addr != addr {
					t.Errorf("error %#v, want an *Error in phase %s for %s", err, tt.wantPhase, addr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q lacks %q", err, tt.wantErr)
				}
				if (tt.wantClass == ClassDown) != de.Timeout() {
					t.Errorf("Timeout() = %v for %v", de.Timeout(), err)
				}
				if tt.check != nil {
					tt.check(t, res, err)
				}
			})
		}
	}
}

func TestEchoLocalFailures(t *testing.T) {
	t.Parallel()
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		addr      string
		opts      Options
		wantClass Class
		wantErr   string
	}{
		{"connection refused", context.Background(), refused, Options{}, ClassDown, "connect: dial tcp " + refused},
		{"cancelled by caller", cancelled, refused, Options{}, ClassLocal, "context canceled"},
		{"called AE too long", context.Background(), refused, Options{CalledAETitle: "THIS-IS-SEVENTEEN"}, ClassLocal, "longer than 16"},
		{"calling AE with backslash", context.Background(), refused, Options{CallingAETitle: `A\B`}, ClassLocal, "not allowed"},
		{"max PDU too small", context.Background(), refused, Options{MaxPDULength: 100}, ClassLocal, "below 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Echo(tt.ctx, tt.addr, tt.opts)
			if got := Classify(err); got != tt.wantClass || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v (class %v), want class %v and %q", err, got, tt.wantClass, tt.wantErr)
			}
		})
	}
}

func TestRejectedErrorDescription(t *testing.T) {
	tests := []struct {
		rj   RejectedError
		want string
	}{
		{RejectedError{1, 1, 7}, "rejected-permanent by service-user: called AE title not recognized"},
		{RejectedError{1, 1, 3}, "rejected-permanent by service-user: calling AE title not recognized"},
		{RejectedError{1, 1, 2}, "rejected-permanent by service-user: application context name not supported"},
		{RejectedError{1, 1, 1}, "rejected-permanent by service-user: no reason given"},
		{RejectedError{1, 2, 2}, "rejected-permanent by service-provider (ACSE): protocol version not supported"},
		{RejectedError{2, 3, 2}, "rejected-transient by service-provider (presentation): local limit exceeded"},
		{RejectedError{9, 9, 9}, "rejected (result 9) by source 9: reason 9"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.rj.Description(); got != tt.want {
				t.Errorf("Description() = %q", got)
			}
		})
	}
}

// Echo's buffers are pooled: a failed echo that left bytes buffered, or
// grew a buffer for a large PDU, must not leak into the next one.
func TestEchoPooledBuffersDoNotCarryOver(t *testing.T) {
	t.Parallel()
	// A peer that accepts with a large A-ASSOCIATE-AC (over maxPooledBuf),
	// sends a C-ECHO-RSP for message 7 in the same segment before being
	// asked, then garbage, and goes away.
	dirty := scriptedPeer(t, func(t *testing.T, c net.Conn, rd *pduReader) {
		if _, _, err := rd.next(); err != nil {
			return
		}
		ac := &associate{protocolVersion: 1, calledAE: "SIM", callingAE: "VIGIA", appContext: applicationContextName,
			contexts:     []presentationContext{{id: 1, result: 0, transferSyntaxes: []string{ImplicitVRLittleEndian}}},
			maxPDULength: 32768, implClassUID: "1.2.3.4", implVersionName: strings.Repeat("X", 16)}
		b := appendAssociate(nil, pduAssociateAC, ac)
		// Pad with an unknown item, which Echo skips, to exceed maxPooledBuf.
		pad := appendItem(nil, 0x7F, strings.Repeat("P", 2*maxPooledBuf))
		b = append(b, pad...)
		binary.BigEndian.PutUint32(b[2:], uint32(len(b)-pduHeaderLen))
		b = append(b, echoRSP(7, 0)...)
		b = append(b, "garbage"...)
		c.Write(b)
	})
	clean := startServer(t, &Server{AETitle: "SIM"})
	for i := range 20 {
		_, err := Echo(context.Background(), dirty, Options{CalledAETitle: "SIM", MessageID: 1, Timeout: 2 * time.Second})
		if err == nil {
			t.Fatalf("round %d: echo against the dirty peer succeeded", i)
		}
		res, err := Echo(context.Background(), clean, Options{CalledAETitle: "SIM", MessageID: uint16(100 + i), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("round %d: echo after a dirty one: %v", i, err)
		}
		if res.Status != 0 || res.PeerImplementationVersionName == strings.Repeat("X", 16) {
			t.Fatalf("round %d: result carries over the previous echo: %+v", i, res)
		}
	}
	b := echoBufsPool.Get().(*echoBufs)
	if cap(b.rd.buf) > maxPooledBuf || cap(b.buf) > maxPooledBuf {
		t.Errorf("pooled buffers of %d and %d bytes, want at most %d", cap(b.rd.buf), cap(b.buf), maxPooledBuf)
	}
	echoBufsPool.Put(b)
}

func TestDialerKeepAlive(t *testing.T) {
	t.Parallel()
	short, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	long, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want *net.Dialer
	}{
		{"deadline sooner than the first keep-alive probe", short, noKeepAliveDialer},
		{"deadline later than the first probe", long, defaultDialer},
		{"no deadline", context.Background(), defaultDialer},
	} {
		if got := dialerFor(tc.ctx); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
