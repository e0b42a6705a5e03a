package dicomping

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServerAssociationPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		server    *Server
		opts      Options
		wantClass Class
		wantErr   string
	}{
		{"exact called AE", &Server{AETitle: "SIM"}, Options{CalledAETitle: "SIM"}, ClassOK, ""},
		{"padding is not significant", &Server{AETitle: "SIM "}, Options{CalledAETitle: " SIM"}, ClassOK, ""},
		{"wrong called AE", &Server{AETitle: "SIM"}, Options{CalledAETitle: "sim"}, ClassMisconfigured,
			"rejected-permanent by service-user: called AE title not recognized"},
		{"any called AE", &Server{AnyCalledAETitle: true}, Options{CalledAETitle: "WHATEVER"}, ClassOK, ""},
		{"allowed calling AE", &Server{AETitle: "SIM", AllowedCallingAETitles: []string{"A", "VIGIA"}},
			Options{CalledAETitle: "SIM", CallingAETitle: "VIGIA"}, ClassOK, ""},
		{"calling AE not allowed", &Server{AETitle: "SIM", AllowedCallingAETitles: []string{"A"}},
			Options{CalledAETitle: "SIM", CallingAETitle: "VIGIA"}, ClassMisconfigured,
			"rejected-permanent by service-user: calling AE title not recognized"},
		{"failure status from Verify", &Server{AETitle: "SIM", Verify: func(a Association) uint16 {
			if a.CallingAETitle != "VIGIA" || a.CalledAETitle != "SIM" || a.RemoteAddr == nil {
				return 0xC000
			}
			return 0x0211
		}}, Options{CalledAETitle: "SIM"}, ClassStatus, "C-ECHO status 0x0211: failed: unrecognized operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := startServer(t, tt.server)
			res, err := Echo(context.Background(), addr, tt.opts)
			if got := Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.wantClass)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q lacks %q", err, tt.wantErr)
			}
			if err == nil && (res.PeerImplementationClassUID != ImplementationClassUID || res.PeerMaxPDULength != DefaultMaxPDULength) {
				t.Errorf("server identity not in result: %+v", res)
			}
		})
	}
}

func TestServerInvalidConfig(t *testing.T) {
	for _, s := range []*Server{{}, {AETitle: "SEVENTEEN-CHARS-X"}, {AnyCalledAETitle: true, AllowedCallingAETitles: []string{""}}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var oe *OptionsError
		if err := s.Serve(l); !errors.As(err, &oe) {
			t.Errorf("Serve with %+v = %v, want *OptionsError", s, err)
		}
	}
}

// rawAssociate opens an association by hand and returns the connection,
// its reader and the A-ASSOCIATE-AC, for tests that need to misbehave
// after associating or to look at the negotiation itself.
func rawAssociate(t *testing.T, addr string, rq *associate) (net.Conn, *pduReader, *associate) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(appendAssociate(nil, pduAssociateRQ, rq)); err != nil {
		t.Fatal(err)
	}
	rd := newPDUReader(c, DefaultMaxPDULength)
	typ, body, err := rd.next()
	if err != nil {
		t.Fatal(err)
	}
	if typ != pduAssociateAC {
		return c, rd, nil
	}
	ac, err := parseAssociate(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	return c, rd, ac
}

func verificationRQ(contexts ...presentationContext) *associate {
	return &associate{protocolVersion: 1, calledAE: "SIM", callingAE: "RAW", appContext: applicationContextName,
		contexts: contexts, maxPDULength: 0, implClassUID: "1.2.3"}
}

func TestServerPresentationContextNegotiation(t *testing.T) {
	t.Parallel()
	addr := startServer(t, &Server{AETitle: "SIM"})
	_, _, ac := rawAssociate(t, addr, verificationRQ(
		presentationContext{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{"1.2.840.10008.1.2.2", ExplicitVRLittleEndian, ImplicitVRLittleEndian}},
		presentationContext{id: 3, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{"1.2.840.10008.1.2.2"}},
		presentationContext{id: 5, abstractSyntax: "1.2.840.10008.5.1.4.1.1.2", transferSyntaxes: []string{ImplicitVRLittleEndian}},
		presentationContext{id: 7, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}},
	))
	if ac == nil {
		t.Fatal("association not accepted")
	}
	want := []struct {
		id     byte
		result byte
		ts     string
	}{
		{1, 0, ExplicitVRLittleEndian}, // the proposer's first supported choice
		{3, 4, ""},                     // transfer syntaxes not supported
		{5, 3, ""},                     // abstract syntax not supported
		{7, 0, ImplicitVRLittleEndian},
	}
	if len(ac.contexts) != len(want) {
		t.Fatalf("%d contexts in A-ASSOCIATE-AC, want %d", len(ac.contexts), len(want))
	}
	for i, w := range want {
		got := ac.contexts[i]
		if got.id != w.id || got.result != w.result || (w.ts != "" && got.transferSyntaxes[0] != w.ts) {
			t.Errorf("context %d: got %+v, want %+v", i, got, w)
		}
	}
}

// TestServerRefusesMisbehaviour checks that the server answers protocol
// violations with an A-ABORT carrying the right reason, then closes.
func TestServerRefusesMisbehaviour(t *testing.T) {
	t.Parallel()
	addr := startServer(t, &Server{AETitle: "SIM", Timeout: 300 * time.Millisecond})
	verification := presentationContext{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}}
	echo := appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRQ, messageID: 1, dataSetType: noDataSet})
	tests := []struct {
		name      string
		associate bool
		send      []byte
		// wantAbort is the A-ABORT reason expected, or -1 for a plain close.
		wantAbort int
	}{
		{"HTTP request", false, []byte("GET / HTTP/1.0\r\n\r\n"), 1},
		{"P-DATA before association", false, appendCommandPData(nil, 1, echo, 0), 2},
		{"4 GB A-ASSOCIATE-RQ", false, []byte{pduAssociateRQ, 0, 0xFF, 0xFF, 0xFF, 0xFF}, 0},
		{"silence", false, nil, -1},
		{"4 GB P-DATA", true, []byte{pduPData, 0, 0xFF, 0xFF, 0xFF, 0xFF}, 0},
		{"PDV on an unknown context", true, appendCommandPData(nil, 9, echo, 0), 6},
		{"second A-ASSOCIATE-RQ", true, appendAssociate(nil, pduAssociateRQ, verificationRQ(verification)), 2},
		{"C-STORE on the Verification context", true, appendCommandPData(nil, 1, appendCommand(nil, &command{
			affectedSOPClass: VerificationSOPClass, commandField: 0x0001, messageID: 1, dataSetType: noDataSet}), 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c net.Conn
			var rd *pduReader
			if tt.associate {
				var ac *associate
				c, rd, ac = rawAssociate(t, addr, verificationRQ(verification))
				if ac == nil {
					t.Fatal("not associated")
				}
			} else {
				var err error
				if c, err = net.Dial("tcp", addr); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				rd = newPDUReader(c, DefaultMaxPDULength)
			}
			c.Write(tt.send)
			typ, body, err := rd.next()
			if tt.wantAbort < 0 {
				if err == nil {
					t.Fatalf("server sent %s to a silent peer, want a close after its timeout", pduName(typ))
				}
				return
			}
			if err != nil || typ != pduAbort || body[2] != 2 || int(body[3]) != tt.wantAbort {
				t.Fatalf("got %s % x (%v), want A-ABORT from provider with reason %d", pduName(typ), body, err, tt.wantAbort)
			}
			if _, _, err := rd.next(); err == nil {
				t.Error("connection still open after A-ABORT")
			}
		})
	}
}

func TestServerManyConcurrentAssociations(t *testing.T) {
	t.Parallel()
	addr := startServer(t, &Server{AETitle: "SIM"})
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Echo(context.Background(), addr, Options{CalledAETitle: "SIM", MessageID: uint16(i + 1)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestServerMaxAssociations(t *testing.T) {
	t.Parallel()
	addr := startServer(t, &Server{AETitle: "SIM", MaxAssociations: 1})
	c, _, ac := rawAssociate(t, addr, verificationRQ(presentationContext{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}}))
	if ac == nil {
		t.Fatal("first association refused")
	}
	_, err := Echo(context.Background(), addr, Options{CalledAETitle: "SIM"})
	var rj *RejectedError
	if !errors.As(err, &rj) || !rj.Transient() || !strings.Contains(err.Error(), "local limit exceeded") {
		t.Fatalf("second association: %v, want transient rejection for local limit", err)
	}
	c.Write(appendAbort(nil, 0, 0))
	c.Close()
	// The slot frees once the server has seen the abort.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err = Echo(context.Background(), addr, Options{CalledAETitle: "SIM"}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerShutdown(t *testing.T) {
	t.Parallel()
	verification := presentationContext{id: 1, abstractSyntax: VerificationSOPClass, transferSyntaxes: []string{ImplicitVRLittleEndian}}

	t.Run("waits for an open association to release", func(t *testing.T) {
		t.Parallel()
		s := &Server{AETitle: "SIM"}
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		c, rd, _ := rawAssociate(t, l.Addr().String(), verificationRQ(verification))
		shut := make(chan error, 1)
		go func() { shut <- s.Shutdown(context.Background()) }()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v", err)
		}
		if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
			t.Error("still accepting after Shutdown")
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with an association open", err)
		case <-time.After(50 * time.Millisecond):
		}
		// The open association still gets its echo answered and released.
		c.Write(appendCommandPData(nil, 1, appendCommand(nil, &command{affectedSOPClass: VerificationSOPClass, commandField: commandCEchoRQ, messageID: 1, dataSetType: noDataSet}), 0))
		if typ, _, err := rd.next(); typ != pduPData || err != nil {
			t.Fatalf("echo during shutdown: %s %v", pduName(typ), err)
		}
		c.Write(appendRelease(nil, pduReleaseRQ))
		if typ, _, err := rd.next(); typ != pduReleaseRP || err != nil {
			t.Fatalf("release during shutdown: %s %v", pduName(typ), err)
		}
		c.Close()
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	})

	t.Run("aborts what is left when its context ends", func(t *testing.T) {
		t.Parallel()
		s := &Server{AETitle: "SIM"}
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		go s.Serve(l)
		_, rd, _ := rawAssociate(t, l.Addr().String(), verificationRQ(verification))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want deadline exceeded", err)
		}
		if typ, _, err := rd.next(); typ != pduAbort || err != nil {
			t.Fatalf("peer got %s %v, want A-ABORT", pduName(typ), err)
		}
		if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve after Shutdown = %v", err)
		}
	})
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, generated per test run.
type testPKI struct {
	pool           *x509.CertPool
	server, client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigia test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = issue(2, "sim", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.client = issue(3, "vigia", x509.ExtKeyUsageClientAuth, nil)
	return p
}

func TestEchoOverTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	mutual := startServer(t, &Server{AETitle: "SIM", TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}})
	plain := startServer(t, &Server{AETitle: "SIM"})
	tests := []struct {
		name      string
		addr      string
		tls       *tls.Config
		wantClass Class
	}{
		{"trusted, with client certificate", mutual, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}, ClassOK},
		{"without client certificate", mutual, &tls.Config{RootCAs: pki.pool}, ClassMisconfigured},
		{"server CA not trusted", mutual, &tls.Config{Certificates: []tls.Certificate{pki.client}}, ClassMisconfigured},
		{"wrong server name", mutual, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}, ServerName: "pacs.example.org"}, ClassMisconfigured},
		{"TLS to a plain server", plain, &tls.Config{RootCAs: pki.pool}, ClassProtocol},
		{"plain to a TLS server", mutual, nil, ClassProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := Echo(context.Background(), tt.addr, Options{CalledAETitle: "SIM", TLSConfig: tt.tls, Timeout: 5 * time.Second})
			if got := Classify(err); got != tt.wantClass {
				t.Fatalf("Classify(%v) = %v, want %v", err, got, tt.wantClass)
			}
			if err == nil && res.TLSHandshake <= 0 {
				t.Errorf("TLS handshake time not measured: %+v", res)
			}
		})
	}
}
