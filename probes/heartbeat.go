package probes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/httpx"
)

// HeartbeatLog remembers when devices last spoke.
type HeartbeatLog interface {
	LastHeartbeat(ctx context.Context, deviceID string) (time.Time, bool, error)
	RecordHeartbeat(ctx context.Context, deviceID string, at time.Time, remote string) error
}

// Heartbeat judges devices and on-site agents that post to Vigía: silence
// longer than the device's grace is a failure.
type Heartbeat struct {
	Log   HeartbeatLog
	Clock clockwork.Clock
	// Started is when monitoring began: a device that has never spoken is
	// given its grace from then, not declared down at once.
	Started time.Time
}

// Applies reports whether the device sends heartbeats.
func (p *Heartbeat) Applies(d assets.Device) bool { return d.Heartbeat != nil }

// Probe compares the last heartbeat with the grace.
func (p *Heartbeat) Probe(ctx context.Context, d assets.Device) Result {
	start := time.Now()
	r := Result{Prober: "heartbeat"}
	last, ok, err := p.Log.LastHeartbeat(ctx, d.ID)
	r.Duration = time.Since(start)
	if err != nil {
		// Our own database failing says nothing about the device: its state
		// stays as it was. Its error text stays out of the detail, which
		// customers read; the failing writes of the same pass are logged by
		// the engine.
		r.Outcome, r.Detail = Unknown, "heartbeat not checked: Vigía's database did not answer"
		return r
	}
	now := p.Clock.Now()
	since := p.Started
	if ok && last.After(since) {
		since = last
	}
	silence := now.Sub(since)
	switch {
	case silence > d.Heartbeat.Grace && ok:
		r.Outcome = Failed
		r.Detail = fmt.Sprintf("no heartbeat for %s (grace %s), last at %s", silence.Round(time.Second), d.Heartbeat.Grace, last.UTC().Format(time.RFC3339))
	case silence > d.Heartbeat.Grace:
		r.Outcome = Failed
		r.Detail = fmt.Sprintf("no heartbeat ever received (grace %s)", d.Heartbeat.Grace)
	default:
		r.Outcome = OK
		r.Detail = fmt.Sprintf("heartbeat %s ago", silence.Round(time.Second))
	}
	return r
}

// HeartbeatBody is what an agent may say with its heartbeat.
type HeartbeatBody struct {
	Status  string `json:"status"`  // the agent's own view: ok, degraded…
	Version string `json:"version"` // agent software version
	Detail  string `json:"detail"`
}

// TokenLookup finds the device a heartbeat token belongs to.
type TokenLookup interface {
	DeviceByHeartbeatToken(ctx context.Context, token string) (assets.Device, error)
}

// HeartbeatAPI receives POST /api/v1/heartbeats/{device}. Each device has
// its own token (not an API token): a token of another device is refused
// with 403 and changes nothing.
type HeartbeatAPI struct {
	Devices TokenLookup
	Log     HeartbeatLog
	Clock   clockwork.Clock
	Metrics *Metrics
}

// Register adds the heartbeat route.
func (a *HeartbeatAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/heartbeats/{device}", a.post)
}

func (a *HeartbeatAPI) post(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigia-heartbeat"`)
		httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <the device's heartbeat token>")
		return
	}
	// Agents may send a small status document; it is read (bounded) and
	// checked strictly, so a broken agent is told at once.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		httpx.Fail(w, http.StatusRequestEntityTooLarge, "body_too_large", "a heartbeat body is at most 64 KiB")
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var doc HeartbeatBody
		if err := httpx.DecodeBytes(body, &doc); err != nil {
			httpx.Fail(w, http.StatusBadRequest, "invalid_json",
				`a heartbeat body, when sent, is {"status": "...", "version": "...", "detail": "..."}: %v`, err)
			return
		}
	}
	d, err := a.Devices.DeviceByHeartbeatToken(r.Context(), token)
	switch {
	case errors.Is(err, assets.ErrNotFound):
		httpx.Fail(w, http.StatusUnauthorized, "unauthorized", "unknown heartbeat token")
		return
	case err != nil:
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "cannot record heartbeats right now")
		return
	}
	if d.ID != r.PathValue("device") {
		httpx.Fail(w, http.StatusForbidden, "forbidden", "this token belongs to another device")
		return
	}
	now := a.Clock.Now()
	remote, _, _ := net.SplitHostPort(r.RemoteAddr)
	if err := a.Log.RecordHeartbeat(r.Context(), d.ID, now, remote); err != nil {
		httpx.Fail(w, http.StatusServiceUnavailable, "unavailable", "cannot record heartbeats right now")
		return
	}
	if a.Metrics != nil {
		a.Metrics.heartbeatSeen.WithLabelValues(labels(d)...).Set(float64(now.UnixNano()) / 1e9)
	}
	httpx.JSON(w, http.StatusAccepted, map[string]string{"device": d.ID, "received_at": now.UTC().Format(time.RFC3339Nano)})
}
