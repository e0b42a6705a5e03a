package dicomping

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the client end
// wrapped as Echo wraps it.
func tcpPair(t *testing.T) (*rawSocket, *net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	var rs rawSocket
	if rs.use(client) == nil {
		t.Fatal("use refused a plain TCP connection")
	}
	return &rs, client.(*net.TCPConn), server.(*net.TCPConn)
}

func TestRawSocketOnlyForPlainTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var rs rawSocket
	if rs.use(a) != nil {
		t.Error("use accepted a net.Pipe")
	}
	_, client, _ := tcpPair(t)
	if rs.use(tls.Client(client, &tls.Config{})) != nil {
		t.Error("use accepted a TLS connection: its bytes are not the socket's")
	}
}

// A write larger than the socket buffers, to a peer that reads slowly,
// must go through partial writes and waits for room, and arrive whole.
func TestRawSocketWriteUnderBackpressure(t *testing.T) {
	t.Parallel()
	rs, client, server := tcpPair(t)
	// A small send buffer, so that the write cannot go out in one call.
	// (Shrinking the peer's receive buffer instead stalls loopback TCP.)
	client.SetWriteBuffer(4096)
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	got := make(chan []byte, 1)
	go func() {
		var buf bytes.Buffer
		chunk := make([]byte, 16<<10)
		for buf.Len() < len(want) {
			n, err := server.Read(chunk)
			buf.Write(chunk[:n])
			if err != nil {
				break
			}
			if buf.Len()%(256<<10) < n {
				time.Sleep(20 * time.Millisecond) // let the sender's buffer fill
			}
		}
		got <- buf.Bytes()
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	n, err := rs.Write(want)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if g := <-got; !bytes.Equal(g, want) {
		t.Fatalf("the peer received %d bytes that differ from the %d written", len(g), len(want))
	}
}

// A peer that never reads: the write stops at the deadline with a timeout,
// reporting how much went out, worded as net.Conn words it.
func TestRawSocketWriteDeadline(t *testing.T) {
	t.Parallel()
	rs, client, _ := tcpPair(t)
	const deadline = 200 * time.Millisecond
	client.SetDeadline(time.Now().Add(deadline))
	b := make([]byte, 64<<20)
	start := time.Now()
	n, err := rs.Write(b)
	if elapsed := time.Since(start); elapsed > deadline+time.Second {
		t.Errorf("Write took %v with a %v deadline", elapsed, deadline)
	}
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() || n <= 0 || n >= len(b) {
		t.Fatalf("Write = %d, %v; want a partial write and a timeout", n, err)
	}
	if !strings.HasPrefix(err.Error(), "write tcp ") || !strings.HasSuffix(err.Error(), ": i/o timeout") {
		t.Errorf("error %q is not worded as net.Conn's", err)
	}
}

func TestRawSocketRead(t *testing.T) {
	t.Parallel()
	t.Run("dripped, then closed", func(t *testing.T) {
		t.Parallel()
		rs, client, server := tcpPair(t)
		msg := []byte("A-ASSOCIATE-AC in three segments")
		go func() {
			for _, part := range [][]byte{msg[:3], msg[3:20], msg[20:]} {
				server.Write(part)
				time.Sleep(20 * time.Millisecond)
			}
			server.Close()
		}()
		client.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(rs) // ReadAll stops at io.EOF
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %q, %v; want %q", got, err, msg)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		rs, client, _ := tcpPair(t)
		const deadline = 200 * time.Millisecond
		client.SetDeadline(time.Now().Add(deadline))
		start := time.Now()
		n, err := rs.Read(make([]byte, 64))
		if elapsed := time.Since(start); elapsed > deadline+time.Second || elapsed < deadline/2 {
			t.Errorf("Read returned after %v with a %v deadline", elapsed, deadline)
		}
		if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) || !strings.HasPrefix(err.Error(), "read tcp ") {
			t.Fatalf("Read = %d, %v; want a read timeout worded as net.Conn's", n, err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		t.Parallel()
		rs, client, server := tcpPair(t)
		server.SetLinger(0) // close with RST
		server.Close()
		client.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := rs.Read(make([]byte, 64))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Read after the peer's RST: %v, want ECONNRESET", err)
		}
	})
	t.Run("closed by us", func(t *testing.T) {
		t.Parallel()
		rs, client, _ := tcpPair(t)
		client.Close()
		if _, err := rs.Read(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read on a closed connection: %v, want net.ErrClosed", err)
		}
	})
}
