package fleetsim

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vigia-noc/vigia/dicomping"
)

// tcpIdle is how long a plain TCP endpoint holds a silent connection, like
// a service waiting for a request that never comes.
const tcpIdle = 10 * time.Second

// endpoint is one listening address of a device. Its methods are called
// with the device's lock held.
type endpoint struct {
	addr    string
	ae      string // called AE title; empty for a plain TCP endpoint
	timeout time.Duration
	profile Profile
	// worklist is the folder of worklist files; empty: no worklist service.
	worklist string
	// agent, when not nil, makes this a UDP SNMP endpoint.
	agent *snmpAgent
	udp   net.PacketConn // nil while closed

	l     net.Listener // nil while closed
	dicom *dicomping.Server
	tcp   *tcpServer
	// fillers hold a blackholed listener's accept queue full (darken).
	fillers []net.Conn
}

// open listens on the endpoint's address. Blackholed, the port stays
// taken but completes no handshake (darken): a prober's connect times
// out, at the cost of no goroutine at all.
func (e *endpoint) open(blackhole bool) error {
	if e.agent != nil {
		// Blackholed, the socket is held but never read: requests pile
		// up in its buffer and then are dropped, unanswered.
		pc, err := net.ListenPacket("udp", e.addr)
		if err != nil {
			return err
		}
		e.udp = pc
		if !blackhole {
			go e.agent.serve(pc)
		}
		return nil
	}
	l, err := net.Listen("tcp", e.addr)
	if err != nil {
		return err
	}
	e.l = l
	if blackhole {
		fillers, err := darken(l)
		if err != nil {
			l.Close()
			e.l = nil
			return err
		}
		e.fillers = fillers
		return nil
	}
	e.serve()
	return nil
}

// serve starts answering on the open listener.
func (e *endpoint) serve() {
	if e.ae != "" {
		e.dicom = &dicomping.Server{AETitle: e.ae, Timeout: e.timeout}
		if e.worklist != "" {
			e.dicom.Worklist = dicomping.WorklistDir(e.worklist)
		}
		l := e.l
		if !e.profile.IsZero() {
			l = profiledListener{Listener: l, p: e.profile}
		}
		go e.dicom.Serve(l) // its error is ours: we close l
		return
	}
	e.tcp = &tcpServer{l: e.l, conns: map[net.Conn]struct{}{}}
	go e.tcp.serve()
}

// stopAccepting closes the listener: new connections are refused, open
// ones carry on.
func (e *endpoint) stopAccepting() {
	if e.l != nil {
		e.l.Close()
	}
	if e.udp != nil {
		e.udp.Close()
	}
}

// close drops the listener and every open connection, as a device that
// loses power does. Closing a blackholed listener resets the connections
// waiting in its backlog.
func (e *endpoint) close() {
	if e.dicom != nil {
		e.dicom.Close()
	}
	if e.tcp != nil {
		e.tcp.close()
	}
	// Closing it ourselves too, since Serve may not have registered it
	// yet; the port must be free when close returns, for a quick re-open.
	if e.l != nil {
		e.l.Close()
	}
	closeAll(e.fillers)
	// A closed UDP socket makes the kernel answer "port unreachable":
	// the poller's read fails at once, as with a refused connection.
	if e.udp != nil {
		e.udp.Close()
	}
	e.l, e.dicom, e.tcp, e.fillers, e.udp = nil, nil, nil, nil, nil
}

// shutdown lets open associations end until ctx is done.
func (e *endpoint) shutdown(ctx context.Context) error {
	var err error
	if e.dicom != nil {
		err = e.dicom.Shutdown(ctx)
	}
	e.close()
	return err
}

// tcpServer accepts connections and holds them until the peer closes or
// stays silent for tcpIdle: a TCP connect check succeeds, nothing more.
type tcpServer struct {
	l      net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (t *tcpServer) serve() {
	var backoff time.Duration
	for {
		c, err := t.l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like pass: back off
			// rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		go t.hold(c)
	}
}

func (t *tcpServer) hold(c net.Conn) {
	defer func() {
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		c.Close()
	}()
	// Reading until EOF lets the peer close first, so TIME_WAIT stays on
	// its side and not on ours.
	c.SetReadDeadline(time.Now().Add(tcpIdle))
	io.Copy(io.Discard, c)
}

func (t *tcpServer) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.l.Close()
	for c := range t.conns {
		c.Close()
	}
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
