package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// simBuffer is a bytes.Buffer safe to read while the simulator writes.
type simBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *simBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *simBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var simListening = regexp.MustCompile(`listening on (\S+)`)

// simStart runs `vigia simulate ARGS` in-process until the test cancels it,
// and returns its address once listening, a stop function that cancels it
// as SIGINT would and returns the exit code, and its stderr.
func simStart(t *testing.T, args ...string) (addr string, stop func() int, stderr *simBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout simBuffer
	stderr = &simBuffer{}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, append([]string{"simulate"}, args...), &stdout, stderr) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-exited:
			case <-time.After(10 * time.Second):
				t.Error("simulator still running 10s after cancellation")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m := simListening.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stop, stderr
		}
		select {
		case code := <-exited:
			t.Fatalf("simulator exited with %d before listening: %s", code, stderr.String())
		default:
		}
	}
	t.Fatalf("simulator not listening after 5s: %q %q", stdout.String(), stderr.String())
	return "", nil, nil
}

func TestSimulateDICOM(t *testing.T) {
	t.Parallel()
	addr, stop, _ := simStart(t, "dicom", "--listen", "127.0.0.1:0", "--ae", "SIM", "--allow-calling", "VIGIA, ECHOSCU")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"right AE", []string{"--called", "SIM"}, 0, "OK " + addr + " called=SIM"},
		{"wrong called AE", []string{"--called", "OTHER"}, 2, "called AE title not recognized"},
		{"calling AE not allowed", []string{"--called", "SIM", "--calling", "STRANGER"}, 2, "calling AE title not recognized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := echoRun(t, append(append([]string{"echo"}, tt.args...), addr)...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) {
				t.Fatalf("exit %d (want %d), stdout %q (want %q), stderr %q", code, tt.wantCode, stdout, tt.wantOut, stderr)
			}
		})
	}
	t.Run("dcmtk echoscu", func(t *testing.T) {
		echoscu := testpeer.Command(t, "echoscu", "dcmtk")
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.Command(echoscu, "-v", "-to", "5", "-aet", "ECHOSCU", "-aec", "SIM", host, port).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Received Echo Response (Success)") {
			t.Fatalf("echoscu: %v\n%s", err, out)
		}
	})
	if code := stop(); code != 0 {
		t.Fatalf("simulator exit %d after SIGINT, want 0", code)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still listening after SIGINT")
	}
}

func TestSimulateDICOMOverTLS(t *testing.T) {
	t.Parallel()
	pki := echoTestPKI(t)
	addr, stop, _ := simStart(t, "dicom", "--listen", "127.0.0.1:0", "--any-ae", "--tls",
		"--cert", pki["server.crt"], "--key", pki["server.key"], "--client-ca", pki["ca"])
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"mutual TLS", []string{"--tls", "--ca", pki["ca"], "--cert", pki["client.crt"], "--key", pki["client.key"]}, 0, "OK " + addr},
		{"no client certificate", []string{"--tls", "--ca", pki["ca"]}, 2, "REJECTED " + addr},
		{"server not trusted", []string{"--tls", "--cert", pki["client.crt"], "--key", pki["client.key"]}, 2, "certificate signed by unknown authority"},
		{"plain TCP to a TLS port", nil, 1, "PROTOCOL " + addr},
		{"--cert without --key", []string{"--tls", "--cert", pki["client.crt"]}, 64, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := echoRun(t, append(append([]string{"echo", "--timeout", "5s"}, tt.args...), addr)...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) {
				t.Fatalf("exit %d (want %d), stdout %q (want %q), stderr %q", code, tt.wantCode, stdout, tt.wantOut, stderr)
			}
		})
	}
	if code := stop(); code != 0 {
		t.Fatalf("simulator exit %d, want 0", code)
	}
}

func TestSimulateUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"help lists kinds", []string{"simulate", "--help"}, 0, "dicom      a DICOM Verification SCP", ""},
		{"no kind", []string{"simulate"}, 2, "", "Kinds:"},
		{"unknown kind", []string{"simulate", "toaster"}, 2, "", `unknown kind "toaster"; kinds: dicom`},
		{"kind help", []string{"simulate", "dicom", "--help"}, 0, "Usage: vigia simulate dicom", ""},
		{"tls without certificate", []string{"simulate", "dicom", "--tls"}, 2, "", "--tls needs --cert and --key"},
		{"bad AE", []string{"simulate", "dicom", "--ae", `A\B`}, 2, "", "--ae"},
		{"listen error", []string{"simulate", "dicom", "--listen", "256.0.0.1:1"}, 1, "", "simulate dicom: listen tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := echoRun(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantOut) || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tt.wantCode, stdout, tt.wantOut, stderr, tt.wantErr)
			}
		})
	}
}
