// Package smtptest starts a real SMTP server for tests: Debian's
// python3-aiosmtpd, with a small handler that writes every accepted
// message to a directory the test reads. Missing aiosmtpd skips the test
// locally and fails it in CI (internal/testpeer).
package smtptest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// handler is the aiosmtpd server: it prints its port, then stores each
// message as NNNNNN.eml (a JSON envelope line, then the raw message),
// renamed into place so a reader never sees half a file. The first
// fail_first DATA commands are answered 451, to exercise retries.
const handler = `import asyncio, json, os, sys
from aiosmtpd.smtp import SMTP

out, fail_first = sys.argv[1], int(sys.argv[2])

class Handler:
    def __init__(self):
        self.stored = 0
        self.failed = 0

    async def handle_DATA(self, server, session, envelope):
        if self.failed < fail_first:
            self.failed += 1
            return '451 4.3.0 temporary failure (test)'
        self.stored += 1
        name = os.path.join(out, '%06d' % self.stored)
        with open(name + '.tmp', 'wb') as f:
            f.write(json.dumps({'from': envelope.mail_from, 'to': envelope.rcpt_tos}).encode() + b'\n')
            f.write(envelope.original_content or envelope.content)
        os.rename(name + '.tmp', name + '.eml')
        return '250 2.0.0 stored'

async def main():
    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), '127.0.0.1', 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
`

// Server is a running SMTP server.
type Server struct {
	Addr string // 127.0.0.1:port
	dir  string
}

// Options tune the server.
type Options struct {
	// FailFirst answers the first N messages with a temporary failure (451).
	FailFirst int
}

// python finds an interpreter that can import aiosmtpd: the one in PATH
// may be a private build without Debian's python3-* packages.
func python(t testing.TB) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3", "/usr/local/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p
		}
	}
	testpeer.Missing(t, "python3 with aiosmtpd", "apt-get install python3-aiosmtpd")
	return ""
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	py := python(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "smtpd.py")
	if err := os.WriteFile(script, []byte(handler), 0o600); err != nil {
		t.Fatal(err)
	}
	mailDir := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, mailDir, fmt.Sprint(opts.FailFirst))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("smtptest: start aiosmtpd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	portc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		portc <- strings.TrimSpace(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case port := <-portc:
		if port == "" {
			t.Fatalf("smtptest: aiosmtpd did not start: %s", stderr.String())
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", port), dir: mailDir}
		return s
	case <-time.After(20 * time.Second):
		t.Fatalf("smtptest: aiosmtpd did not print its port: %s", stderr.String())
	}
	return nil
}

// Message is one message the server accepted.
type Message struct {
	From    string   // envelope sender
	To      []string // envelope recipients
	Header  mail.Header
	Subject string // decoded
	Body    string // decoded from quoted-printable when so encoded
	Raw     []byte
}

// Messages returns every message accepted so far, in arrival order.
func (s *Server) Messages() ([]Message, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Message
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		env, msg, ok := bytes.Cut(raw, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("smtptest: %s: no envelope line", n)
		}
		var m Message
		var e struct {
			From string   `json:"from"`
			To   []string `json:"to"`
		}
		if err := json.Unmarshal(env, &e); err != nil {
			return nil, fmt.Errorf("smtptest: %s: envelope: %w", n, err)
		}
		m.From, m.To, m.Raw = e.From, e.To, msg
		parsed, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			return nil, fmt.Errorf("smtptest: %s: %w", n, err)
		}
		m.Header = parsed.Header
		if m.Subject, err = new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject")); err != nil {
			return nil, fmt.Errorf("smtptest: %s: subject: %w", n, err)
		}
		var body io.Reader = parsed.Body
		if strings.EqualFold(parsed.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, fmt.Errorf("smtptest: %s: body: %w", n, err)
		}
		m.Body = string(b)
		out = append(out, m)
	}
	return out, nil
}

// Wait returns the messages once there are at least n, failing the test
// after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms, err := s.Messages()
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) >= n || time.Now().After(deadline) {
			if len(ms) < n {
				t.Fatalf("smtptest: %d messages after %s, want %d", len(ms), timeout, n)
			}
			return ms
		}
		time.Sleep(20 * time.Millisecond)
	}
}
