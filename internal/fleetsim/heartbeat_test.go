package fleetsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// vigiaStub records heartbeats as Vigía's endpoint would receive them,
// failing the first ones it is told to.
type vigiaStub struct {
	mu       sync.Mutex
	beats    []string // "path token"
	failures int
}

func (v *vigiaStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if v.failures > 0 {
		v.failures--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	v.beats = append(v.beats, r.URL.Path+" "+r.Header.Get("Authorization"))
	w.WriteHeader(http.StatusNoContent)
}

func (v *vigiaStub) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.beats)
}

func (v *vigiaStub) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.beats...)
}

func TestHeartbeats(t *testing.T) {
	t.Parallel()
	const every = 40 * time.Millisecond
	tests := []struct {
		name     string
		failures int // answers 503 first, as a Vigía starting up would
	}{
		{"vigia up", 0},
		{"vigia failing at first", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stub := &vigiaStub{failures: tt.failures}
			srv := httptest.NewServer(stub)
			defer srv.Close()
			var log logBuffer
			devices := []Device{
				{ID: "ris", Site: "s", Heartbeat: &Heartbeat{Token: assets.NewSecret("ris-token-0123456789"), Every: every}},
				{ID: "agent", Site: "s", Heartbeat: &Heartbeat{Token: assets.NewSecret("agent-token-0123456789"), Every: every}},
				{ID: "slow", Site: "s", Heartbeat: &Heartbeat{Token: assets.NewSecret("slow-token-0123456789"), Every: time.Hour}},
			}
			s := start(t, devices, Options{VigiaURL: srv.URL + "/", Logger: log.logger()})
			eventually(t, 2*time.Second, "5 heartbeats", func() bool { return stub.count() >= 5 })
			for _, b := range stub.all() {
				id, _, _ := strings.Cut(strings.TrimPrefix(b, "/api/v1/heartbeats/"), " ")
				if b != "/api/v1/heartbeats/"+id+" Bearer "+id+"-token-0123456789" {
					t.Fatalf("heartbeat %q: wrong path or token", b)
				}
			}
			if tt.failures > 0 && !strings.Contains(log.String(), "heartbeat failed; retrying") {
				t.Fatalf("failures not logged: %s", log.String())
			}
			if strings.Contains(log.String(), "token-0123456789") {
				t.Fatal("a heartbeat token reached the log")
			}

			if err := s.Down("ris", Refuse); err != nil {
				t.Fatal(err)
			}
			time.Sleep(every) // one beat may have been on its way
			risBeats := func() int { return beatsOf(stub, "ris") }
			before, total := risBeats(), stub.count()
			time.Sleep(5 * every)
			if after := risBeats(); after != before {
				t.Fatalf("%d heartbeats from a down device", after-before)
			}
			if stub.count() < total+3 {
				t.Fatalf("the device still up stopped beating too: %d then %d", total, stub.count())
			}
			// Back up, a device announces itself without waiting for its
			// period: "slow" beats once an hour, and once on start.
			eventually(t, 3*time.Second, "slow's first heartbeat", func() bool { return beatsOf(stub, "slow") == 1 })
			for _, id := range []string{"ris", "slow"} {
				if err := s.Down(id, Blackhole); err != nil {
					t.Fatal(err)
				}
				if err := s.Up(id); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, time.Second, "heartbeats right after coming up", func() bool {
				return risBeats() > before && beatsOf(stub, "slow") == 2
			})
		})
	}
}

func beatsOf(v *vigiaStub, id string) int {
	n := 0
	for _, b := range v.all() {
		if strings.HasPrefix(b, "/api/v1/heartbeats/"+id+" ") {
			n++
		}
	}
	return n
}
