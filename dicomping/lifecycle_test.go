package dicomping

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime/debug"
	"testing"
	"time"
)

// ioPaths are the ways Echo can do its I/O on plain TCP; the lifecycle
// and hostile-peer tests run on each. The default is the raw socket on
// Linux (rawsocket_linux.go); net.Conn is what TLS and other systems use.
var ioPaths = []struct {
	name string
	opts Options
}{
	{"default", Options{}},
	{"net.Conn", Options{netConnIO: true}},
}

// silentAfterAssociation accepts the association, then never answers.
func silentAfterAssociation(t *testing.T, c net.Conn, rd *pduReader) {
	acceptAssociation(t, c, rd, 0)
	drain(c)
}

// A deadline that passes while Echo waits for an answer ends the echo
// within the deadline (plus scheduling slack) as an outage, whether the
// deadline comes from Options.Timeout or only from the context.
func TestEchoDeadlineWhileWaiting(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	addr := scriptedPeer(t, silentAfterAssociation)
	for _, p := range ioPaths {
		for _, fromCtx := range []bool{false, true} {
			opts := p.opts
			ctx := context.Background()
			opts.Timeout = deadline
			if fromCtx {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, deadline)
				defer cancel()
				opts.Timeout = -1
			}
			start := time.Now()
			_, err := Echo(ctx, addr, opts)
			elapsed := time.Since(start)
			if elapsed > deadline+time.Second || elapsed < deadline/2 {
				t.Errorf("%s, deadline from context %v: Echo took %v with a %v deadline", p.name, fromCtx, elapsed, deadline)
			}
			var de *Error
			if Classify(err) != ClassDown || !errors.As(err, &de) || !de.Timeout() || de.Phase != PhaseEcho ||
				!errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s, deadline from context %v: got %v (class %v), want a timeout in phase echo, class down", p.name, fromCtx, err, Classify(err))
			}
		}
	}
}

// Cancelling a context without deadline unblocks an echo waiting for an
// answer at once, and is our side's doing (ClassLocal), not an outage.
func TestEchoCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	addr := scriptedPeer(t, silentAfterAssociation)
	for _, p := range ioPaths {
		opts := p.opts
		opts.Timeout = -1
		ctx, cancel := context.WithCancel(context.Background())
		const after = 200 * time.Millisecond
		timer := time.AfterFunc(after, cancel)
		start := time.Now()
		_, err := Echo(ctx, addr, opts)
		elapsed := time.Since(start)
		timer.Stop()
		cancel()
		if elapsed > after+time.Second {
			t.Errorf("%s: Echo returned %v after start, cancelled at %v", p.name, elapsed, after)
		}
		if Classify(err) != ClassLocal || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: got %v (class %v), want cancellation, class local", p.name, err, Classify(err))
		}
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// Echo closes its socket exactly once, whatever the outcome: a thousand
// echoes (successful, failed in each way, cancelled) leave no descriptor
// open. Not parallel, so that other tests' sockets do not blur the count.
func TestEchoLeavesNoDescriptorOpen(t *testing.T) {
	up := startServer(t, &Server{AETitle: "SIM"})
	garbage := scriptedPeer(t, func(t *testing.T, c net.Conn, rd *pduReader) {
		rd.next()
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	})
	silent := scriptedPeer(t, silentAfterAssociation)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	if _, err := Echo(context.Background(), up, Options{CalledAETitle: "SIM"}); err != nil {
		t.Fatal(err) // warm up: the runtime's own descriptors (epoll, eventfd)
	}
	// No garbage collection meanwhile: the finalizer of a forgotten
	// net.Conn would close its descriptor and hide the leak.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := openFDs(t)
	for _, p := range ioPaths {
		for i := range 1000 {
			opts := p.opts
			opts.CalledAETitle = "SIM"
			addr, want := up, ClassOK
			switch {
			case i%100 == 1:
				addr, want = garbage, ClassProtocol
			case i%100 == 2:
				addr, want = refused, ClassDown
			case i%100 == 3:
				addr, want = silent, ClassDown
				opts.Timeout = 20 * time.Millisecond
			}
			if _, err := Echo(context.Background(), addr, opts); Classify(err) != want {
				t.Fatalf("%s, echo %d to %s: %v, want class %v", p.name, i, addr, err, want)
			}
		}
	}
	// The peers in this process close their ends asynchronously.
	var after int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after = openFDs(t); after <= before {
			return
		}
	}
	t.Errorf("%d descriptors open before the echoes, %d after", before, after)
}
