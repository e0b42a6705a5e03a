// Package orthanctest runs a real Orthanc PACS for integration tests, on
// free loopback ports, and can stop and start it again to play an outage.
package orthanctest

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// Orthanc is a running (or stopped) Orthanc instance.
type Orthanc struct {
	t        testing.TB
	bin      string
	config   string
	AET      string
	Host     string
	Port     int // DICOM
	HTTPPort int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	out  *strings.Builder
}

// Start runs Orthanc with the given AE title and DicomCheckCalledAet, so a
// wrong called AE title is rejected as a real PACS would. It is killed
// when the test ends.
func Start(t testing.TB, aet string) *Orthanc {
	t.Helper()
	return start(t, aet, nil)
}

// WorklistPlugin is where Debian's orthanc package installs the modality
// worklist plugin.
const WorklistPlugin = "/usr/share/orthanc/plugins/libModalityWorklists.so"

// StartWithWorklists runs Orthanc as Start does, with its modality
// worklist plugin answering C-FIND from the *.wl files in dir.
func StartWithWorklists(t testing.TB, aet, dir string) *Orthanc {
	t.Helper()
	if _, err := os.Stat(WorklistPlugin); err != nil {
		testpeer.Missing(t, "Orthanc's worklist plugin "+WorklistPlugin, "apt-get install orthanc")
	}
	// Any calling AE title may query, as at a site whose modalities are not
	// all declared.
	return start(t, aet, map[string]any{"Plugins": []string{WorklistPlugin}, "DicomAlwaysAllowFindWorklist": true,
		"Worklists": map[string]any{"Enable": true, "Database": dir}})
}

func start(t testing.TB, aet string, extra map[string]any) *Orthanc {
	t.Helper()
	bin := testpeer.Command(t, "Orthanc", "orthanc")
	dir := t.TempDir()
	o := &Orthanc{t: t, bin: bin, AET: aet, Host: "127.0.0.1", Port: testpeer.FreePort(t), HTTPPort: testpeer.FreePort(t)}
	cfg := map[string]any{
		"Name": "vigia-test", "DicomAet": aet, "DicomPort": o.Port, "HttpPort": o.HTTPPort,
		"StorageDirectory": filepath.Join(dir, "storage"), "IndexDirectory": filepath.Join(dir, "index"),
		"DicomCheckCalledAet": true, "RemoteAccessAllowed": false, "AuthenticationEnabled": false, "Plugins": []string{},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	o.config = filepath.Join(dir, "orthanc.json")
	if err := os.WriteFile(o.config, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o.StartAgain()
	t.Cleanup(o.Stop)
	return o
}

// Addr is the DICOM address.
func (o *Orthanc) Addr() string { return net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) }

// StartAgain starts a stopped Orthanc on the same ports and storage and
// waits until it accepts DICOM connections.
func (o *Orthanc) StartAgain() {
	o.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd != nil {
		return
	}
	o.out = &strings.Builder{}
	cmd := exec.Command(o.bin, o.config)
	cmd.Stdout, cmd.Stderr = o.out, o.out
	if err := cmd.Start(); err != nil {
		o.t.Fatalf("start Orthanc: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	o.cmd, o.done = cmd, done
	if err := testpeer.WaitListening(o.Addr(), done, 30*time.Second); err != nil {
		o.t.Fatalf("Orthanc: %v\n%s", err, o.out.String())
	}
}

// Stop kills Orthanc (as a crash or a power cut would) and waits for it.
func (o *Orthanc) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cmd == nil {
		return
	}
	o.cmd.Process.Kill()
	<-o.done
	o.cmd = nil
}
